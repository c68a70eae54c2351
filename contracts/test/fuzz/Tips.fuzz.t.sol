// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IBeatStreamVault} from "../../src/interfaces/IBeatStreamVault.sol";
import {SessionGrant, SkipReason, TipItem} from "../../src/types/DataTypes.sol";
import {Base_Test} from "../Base.t.sol";

/// @notice Tips against the cap and the funds over fuzzed amounts: a tip settles exactly when the grant's cap and the
/// listener's available plus thawing funds cover it after what vouchers already spent, and then moves exactly its amount.
contract Tips_Fuzz_Test is Base_Test {
    uint256 internal constant MAX_SPEND = type(uint48).max;

    function testFuzz_Tip_SettlesIffCapAndFundsCoverIt(
        uint256 cap,
        uint256 funds,
        uint256 streamed,
        uint256 amount,
        uint256 tipId
    ) external {
        cap = bound(cap, 1, MAX_SPEND);
        funds = bound(funds, 1, MAX_SPEND);
        streamed = bound(streamed, 0, cap < funds ? cap : funds);
        amount = bound(amount, 1, MAX_SPEND);
        _fund(listener, funds);
        SessionGrant memory grant = _grant(listener, sessionKey, cap, 1);
        bytes32 id = vault.grantId(grant);
        if (streamed != 0) {
            vault.settleBatch(_one(_item(LISTENER_KEY, SESSION_KEY, grant, artist, streamed)));
        }

        TipItem memory tip = _tip(LISTENER_KEY, SESSION_KEY, grant, artist, tipId, amount, "fuzz");
        bool capOk = amount <= cap - streamed;
        bool fundsOk = amount <= funds - streamed;
        if (!capOk || !fundsOk) {
            vm.expectEmit(address(vault));
            emit IBeatStreamVault.TipSkipped(
                id, artist, tipId, capOk ? SkipReason.InsufficientFunds : SkipReason.CapExceeded
            );
        }
        (, uint256 tipsSettled) = vault.settleBatchWithTips(_noItems(), _oneTip(tip));
        vm.assertEq(tipsSettled, capOk && fundsOk ? 1 : 0, "settles iff cap and funds cover it");
        uint256 moved = tipsSettled == 1 ? amount : 0;
        vm.assertEq(vault.grantSpent(id), streamed + moved, "spent");
        vm.assertEq(vault.earningsOf(artist), streamed + moved, "earnings (no fee)");
        vm.assertEq(vault.spendableOf(listener) + streamed + moved, funds, "debited");
        vm.assertEq(vault.isTipSettled(id, tipId), tipsSettled == 1, "id used iff settled");
    }
}
