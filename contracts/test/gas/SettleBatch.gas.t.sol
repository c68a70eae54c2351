// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SessionGrant, SettlementItem} from "../../src/types/DataTypes.sol";
import {Base_Test} from "../Base.t.sol";

/// @notice Gas of `settleBatch` at N = 1, 10 and 100, for first settlements of fresh (grant, payee) pairs and for
/// repeat settlements of the same pairs. Written to `snapshots/SettleBatch.json` by forge; `make gas` refreshes it.
///
/// Scenario (the worst realistic case): every item is a different listener with its own fresh grant and session key,
/// so each item touches its own cold listener account, grant and pair slots. Payees are 10 artists, items sorted by
/// payee as the keeper sends them. The fee is on (2.5%), so the fee path is measured too. Settled by this contract, a
/// settler since deployment (v2), after the fee was scheduled and the delay waited out.
/// forge-config: default.isolate = true
contract SettleBatch_Gas_Test is Base_Test {
    uint256 internal constant ARTISTS = 10;

    function setUp() public override {
        super.setUp();
        _setFee(250);
    }

    function test_Gas_SettleBatch_1() external {
        _measure(1);
    }

    function test_Gas_SettleBatch_10() external {
        _measure(10);
    }

    function test_Gas_SettleBatch_100() external {
        _measure(100);
    }

    function _measure(uint256 n) internal {
        vm.pauseGasMetering();
        SessionGrant[] memory grants = new SessionGrant[](n);
        uint256[] memory sessionKeys = new uint256[](n);
        uint256[] memory listenerKeys = new uint256[](n);
        address[] memory payees = new address[](n);
        for (uint256 i; i < n; ++i) {
            listenerKeys[i] = 0x1000 + i;
            sessionKeys[i] = 0x2000 + i;
            // Sorted by payee, as the keeper orders a batch.
            payees[i] = address(uint160(0xA000 + (i * ARTISTS) / n));
            grants[i] = _grant(vm.addr(listenerKeys[i]), vm.addr(sessionKeys[i]), 1000 * ONE_USDC, 1);
            _fund(grants[i].listener, 100 * ONE_USDC);
        }
        // Artists have earned before: an artist's first-ever earning is a one-off, not per voucher.
        for (uint256 a; a < ARTISTS; ++a) {
            _seedEarnings(address(uint160(0xA000 + a)));
        }

        SettlementItem[] memory first = _batch(grants, listenerKeys, sessionKeys, payees, 60 * 100, true);
        vm.resumeGasMetering();
        vault.settleBatch(first);
        uint256 gasFirst = vm.snapshotGasLastCall("SettleBatch", string.concat("first_n", vm.toString(n)));
        vm.pauseGasMetering();

        // Repeat: a minute later, each pair's next cumulative; grants are registered, so the keeper sends no grant
        // signature.
        SettlementItem[] memory repeat = _batch(grants, listenerKeys, sessionKeys, payees, 120 * 100, false);
        vm.resumeGasMetering();
        vault.settleBatch(repeat);
        uint256 gasRepeat = vm.snapshotGasLastCall("SettleBatch", string.concat("repeat_n", vm.toString(n)));

        vm.pauseGasMetering();

        // The same grants' second payees (the listener moved on to another artist): the pair has a slot of its own.
        address[] memory others = new address[](n);
        for (uint256 i; i < n; ++i) {
            others[i] = address(uint160(0xA000 + ((i * ARTISTS) / n + 1) % ARTISTS));
        }
        SettlementItem[] memory otherFirst =
            _batch(grants, listenerKeys, sessionKeys, others, 30 * 100, false);
        vm.resumeGasMetering();
        vault.settleBatch(otherFirst);
        uint256 gasOtherFirst =
            vm.snapshotGasLastCall("SettleBatch", string.concat("second_payee_first_n", vm.toString(n)));
        vm.pauseGasMetering();
        SettlementItem[] memory otherRepeat =
            _batch(grants, listenerKeys, sessionKeys, others, 90 * 100, false);
        vm.resumeGasMetering();
        vault.settleBatch(otherRepeat);
        uint256 gasOtherRepeat =
            vm.snapshotGasLastCall("SettleBatch", string.concat("second_payee_repeat_n", vm.toString(n)));

        vm.pauseGasMetering();

        // Repeat again after every listener revoked some other grant (a lost device): the flag in the account slot
        // makes settlement read the revocation of this grant and the listener's nonce floor, two cold slots.
        for (uint256 i; i < n; ++i) {
            vm.prank(grants[i].listener);
            vault.revokeGrant(keccak256(abi.encode("another grant", i)));
        }
        SettlementItem[] memory revokedOther =
            _batch(grants, listenerKeys, sessionKeys, payees, 150 * 100, false);
        vm.resumeGasMetering();
        vault.settleBatch(revokedOther);
        uint256 gasRevokedOther =
            vm.snapshotGasLastCall("SettleBatch", string.concat("repeat_revoked_other_n", vm.toString(n)));

        _perItem("first", n, gasFirst, first);
        _perItem("repeat", n, gasRepeat, repeat);
        _perItem("second_payee_first", n, gasOtherFirst, otherFirst);
        _perItem("second_payee_repeat", n, gasOtherRepeat, otherRepeat);
        _perItem("repeat_revoked_other", n, gasRevokedOther, revokedOther);
        for (uint256 i; i < n; ++i) {
            bytes32 id = vault.grantId(grants[i]);
            vm.assertEq(vault.settled(id, payees[i]), 150 * 100, "every first-payee item settled");
            vm.assertEq(vault.settled(id, others[i]), 90 * 100, "every second-payee item settled");
            vm.assertEq(vault.grantSpent(id), 240 * 100, "grant spend is the sum over payees");
        }
    }

    function _batch(
        SessionGrant[] memory grants,
        uint256[] memory listenerKeys,
        uint256[] memory sessionKeys,
        address[] memory payees,
        uint256 cumulative,
        bool withGrantSig
    ) internal view returns (SettlementItem[] memory items) {
        items = new SettlementItem[](grants.length);
        for (uint256 i; i < grants.length; ++i) {
            items[i] = SettlementItem({
                grant: grants[i],
                grantSignature: withGrantSig ? _signGrant(listenerKeys[i], grants[i]) : bytes(""),
                payee: payees[i],
                cumulative: cumulative,
                voucherSignature: _signVoucher(sessionKeys[i], grants[i], payees[i], cumulative)
            });
        }
    }

    /// @dev Records per-item figures: the whole transaction (what the keeper pays) and execution alone (the
    /// transaction less the 21,000 base and the calldata's 4/16 gas per zero/non-zero byte).
    function _perItem(string memory kind, uint256 n, uint256 txGas, SettlementItem[] memory items) internal {
        bytes memory data = abi.encodeCall(vault.settleBatch, (items));
        uint256 calldataGas;
        for (uint256 i; i < data.length; ++i) {
            calldataGas += data[i] == 0 ? 4 : 16;
        }
        string memory suffix = string.concat("_n", vm.toString(n));
        vm.snapshotValue("SettleBatch", string.concat(kind, "_tx_per_item", suffix), txGas / n);
        vm.snapshotValue("SettleBatch", string.concat(kind, "_calldata_per_item", suffix), calldataGas / n);
        vm.snapshotValue(
            "SettleBatch", string.concat(kind, "_exec_per_item", suffix), (txGas - 21_000 - calldataGas) / n
        );
    }

    function _seedEarnings(address payee) internal {
        uint256 key = uint256(keccak256(abi.encode("seed", payee)));
        SessionGrant memory grant = _grant(vm.addr(key), vm.addr(key + 1), ONE_USDC, 0);
        _fund(grant.listener, ONE_USDC);
        vault.settleBatch(_one(_item(key, key + 1, grant, payee, ONE_USDC)));
    }
}
