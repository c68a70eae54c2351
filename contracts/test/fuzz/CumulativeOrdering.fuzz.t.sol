// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SessionGrant, SettlementItem} from "../../src/types/DataTypes.sol";
import {Base_Test} from "../Base.t.sol";

/// @notice Vouchers arrive in any order, replayed, stale, over the cap or beyond the listener's funds: what settles is
/// always the newest voucher that the cap and funds allow, never more.
contract CumulativeOrdering_Fuzz_Test is Base_Test {
    uint256 internal constant N = 8;

    address internal artist2 = address(0xA28);

    function testFuzz_SettledIsMaxCumulativeWithinCapAndFunds(
        uint256[N] memory cumulatives,
        uint256 cap,
        uint256 funds,
        bool oneBatch
    ) external {
        cap = bound(cap, 1, 1e9);
        funds = bound(funds, 1, 1e9);
        SessionGrant memory grant = _grant(listener, sessionKey, cap, 1);
        _fund(listener, funds);

        // Cumulatives around the limit, so that some fit and some do not.
        uint256 limit = cap < funds ? cap : funds;
        uint256 expected;
        SettlementItem[] memory items = new SettlementItem[](N);
        for (uint256 i; i < N; ++i) {
            uint256 c = bound(cumulatives[i], 0, limit * 2);
            items[i] = _item(LISTENER_KEY, SESSION_KEY, grant, artist, c);
            if (c <= limit && c > expected) expected = c;
        }
        if (oneBatch) {
            vault.settleBatch(items);
        } else {
            for (uint256 i; i < N; ++i) {
                vault.settleBatch(_one(items[i]));
            }
        }

        bytes32 id = vault.grantId(grant);
        vm.assertEq(vault.settled(id, artist), expected, "settled is the max within cap and funds");
        vm.assertEq(vault.grantSpent(id), expected, "grantSpent");
        vm.assertEq(vault.earningsOf(artist), expected, "earnings");
        (uint256 available,,) = vault.accountOf(listener);
        vm.assertEq(available, funds - expected, "listener paid exactly that");
    }

    /// @dev Two payees share one grant's cap and one listener's funds: compared against a step-by-step model.
    function testFuzz_TwoPayeesMatchModel(uint256[N] memory cumulatives, uint256 cap, uint256 funds)
        external
    {
        cap = bound(cap, 1, 1e9);
        funds = bound(funds, 1, 1e9);
        SessionGrant memory grant = _grant(listener, sessionKey, cap, 1);
        _fund(listener, funds);

        address[2] memory payees = [artist, artist2];
        uint256[2] memory settledModel;
        uint256 spentModel;
        SettlementItem[] memory items = new SettlementItem[](N);
        for (uint256 i; i < N; ++i) {
            uint256 p = cumulatives[i] & 1;
            uint256 c = bound(cumulatives[i] >> 1, 0, cap);
            items[i] = _item(LISTENER_KEY, SESSION_KEY, grant, payees[p], c);
            if (c > settledModel[p]) {
                uint256 amount = c - settledModel[p];
                if (amount <= cap - spentModel && amount <= funds - spentModel) {
                    settledModel[p] = c;
                    spentModel += amount;
                }
            }
        }
        vault.settleBatch(items);

        bytes32 id = vault.grantId(grant);
        vm.assertEq(vault.settled(id, artist), settledModel[0], "payee 0");
        vm.assertEq(vault.settled(id, artist2), settledModel[1], "payee 1");
        vm.assertEq(vault.grantSpent(id), spentModel, "grantSpent");
        vm.assertEq(
            vault.grantSpent(id), vault.settled(id, artist) + vault.settled(id, artist2), "sum over payees"
        );
        vm.assertLe(spentModel, cap, "within cap");
        (uint256 available,,) = vault.accountOf(listener);
        vm.assertEq(available, funds - spentModel, "listener paid exactly the spend");
    }
}
