// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TextRecord} from "../../src/interfaces/IBeatStreamRegistry.sol";
import {SessionGrant, SettlementItem, TipItem} from "../../src/types/DataTypes.sol";
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

    /// @dev Splits: the same scenario at N = 100, but each of the 10 artists is paid through a split of `k`
    /// recipients (each with its own collaborators, who have earned before), so each item credits `k` recipients.
    /// Recorded as `split<k>_{first,repeat}_*`; a one-recipient artist without a split is `first_*` / `repeat_*`.
    function test_Gas_SettleBatch_Split1() external {
        _measureSplit(1);
    }

    function test_Gas_SettleBatch_Split2() external {
        _measureSplit(2);
    }

    function test_Gas_SettleBatch_Split5() external {
        _measureSplit(5);
    }

    /// @dev Tips at N = 100: each item a tip (32-byte message) under a registered grant of its own listener, to the 10
    /// artists, sorted by payee; `tip_*` for plain payees and `tip_split5_*` for 5-recipient splits.
    function test_Gas_SettleBatchWithTips_100() external {
        uint256 n = 100;
        vm.pauseGasMetering();
        (SessionGrant[] memory grants,, uint256[] memory sessionKeys, address[] memory payees) =
            _registeredGrants(n, _plainPayees());
        TipItem[] memory tips = _tips(grants, sessionKeys, payees, 1);
        SettlementItem[] memory none = new SettlementItem[](0);
        vm.resumeGasMetering();
        vault.settleBatchWithTips(none, tips);
        uint256 gasTips = vm.snapshotGasLastCall("SettleBatch", "tip_n100");
        vm.pauseGasMetering();
        _perItemTips("tip", n, gasTips, tips);

        (grants,, sessionKeys, payees) = _registeredGrants(n, _splitPayees(5));
        tips = _tips(grants, sessionKeys, payees, 1);
        vm.resumeGasMetering();
        vault.settleBatchWithTips(none, tips);
        gasTips = vm.snapshotGasLastCall("SettleBatch", "tip_split5_n100");
        vm.pauseGasMetering();
        _perItemTips("tip_split5", n, gasTips, tips);
        for (uint256 i; i < n; ++i) {
            vm.assertTrue(vault.isTipSettled(vault.grantId(grants[i]), 1), "every tip settled");
        }
    }

    function _measureSplit(uint256 k) internal {
        uint256 n = 100;
        vm.pauseGasMetering();
        address[] memory artistPayees = _splitPayees(k);
        SessionGrant[] memory grants = new SessionGrant[](n);
        uint256[] memory sessionKeys = new uint256[](n);
        uint256[] memory listenerKeys = new uint256[](n);
        address[] memory payees = new address[](n);
        for (uint256 i; i < n; ++i) {
            listenerKeys[i] = 0x1000 + i;
            sessionKeys[i] = 0x2000 + i;
            payees[i] = artistPayees[(i * ARTISTS) / n];
            grants[i] = _grant(vm.addr(listenerKeys[i]), vm.addr(sessionKeys[i]), 1000 * ONE_USDC, 1);
            _fund(grants[i].listener, 100 * ONE_USDC);
        }
        string memory kind = string.concat("split", vm.toString(k));
        SettlementItem[] memory first = _batch(grants, listenerKeys, sessionKeys, payees, 60 * 100, true);
        vm.resumeGasMetering();
        vault.settleBatch(first);
        uint256 gasFirst = vm.snapshotGasLastCall("SettleBatch", string.concat(kind, "_first_n100"));
        vm.pauseGasMetering();
        SettlementItem[] memory repeat = _batch(grants, listenerKeys, sessionKeys, payees, 120 * 100, false);
        vm.resumeGasMetering();
        vault.settleBatch(repeat);
        uint256 gasRepeat = vm.snapshotGasLastCall("SettleBatch", string.concat(kind, "_repeat_n100"));
        vm.pauseGasMetering();
        _perItem(string.concat(kind, "_first"), n, gasFirst, first);
        _perItem(string.concat(kind, "_repeat"), n, gasRepeat, repeat);
        for (uint256 i; i < n; ++i) {
            vm.assertEq(vault.settled(vault.grantId(grants[i]), payees[i]), 120 * 100, "every item settled");
        }
    }

    /// @dev The 10 artists as plain payees, each having earned before.
    function _plainPayees() internal returns (address[] memory payees) {
        payees = new address[](ARTISTS);
        for (uint256 a; a < ARTISTS; ++a) {
            payees[a] = address(uint160(0xA000 + a));
            _seedEarnings(payees[a]);
        }
    }

    /// @dev 10 registered artists, each with an artist-level split of `k` recipients of its own (equal shares, the
    /// first taking what 10,000 leaves), every recipient having earned before; returns the split payees.
    function _splitPayees(uint256 k) internal returns (address[] memory payees) {
        payees = new address[](ARTISTS);
        for (uint256 a; a < ARTISTS; ++a) {
            address manager = address(uint160(0xB000 + a));
            bytes32 node = _register(
                manager,
                string.concat("artist-", vm.toString(a), "-", vm.toString(k)),
                100,
                new TextRecord[](0)
            );
            address[] memory recipients = new address[](k);
            uint16[] memory shares = new uint16[](k);
            for (uint256 r; r < k; ++r) {
                recipients[r] = address(uint160(0xC0000 + a * 100 + r + k * 10_000));
                shares[r] = uint16(10_000 / k);
                _seedEarnings(recipients[r]);
            }
            shares[0] += uint16(10_000 - (10_000 / k) * k);
            vm.prank(manager);
            (payees[a],) = vault.setSplit(node, 0, recipients, shares);
        }
    }

    /// @dev `n` listeners, each with a funded grant already registered (by a first settlement to another payee).
    function _registeredGrants(uint256 n, address[] memory artistPayees)
        internal
        returns (
            SessionGrant[] memory grants,
            uint256[] memory listenerKeys,
            uint256[] memory sessionKeys,
            address[] memory payees
        )
    {
        grants = new SessionGrant[](n);
        listenerKeys = new uint256[](n);
        sessionKeys = new uint256[](n);
        payees = new address[](n);
        address[] memory other = new address[](n);
        uint256 salt = uint256(uint160(artistPayees[0]));
        for (uint256 i; i < n; ++i) {
            listenerKeys[i] = uint256(keccak256(abi.encode("tip listener", salt, i)));
            sessionKeys[i] = uint256(keccak256(abi.encode("tip session", salt, i)));
            payees[i] = artistPayees[(i * ARTISTS) / n];
            other[i] = address(0xE1);
            grants[i] = _grant(vm.addr(listenerKeys[i]), vm.addr(sessionKeys[i]), 1000 * ONE_USDC, 1);
            _fund(grants[i].listener, 100 * ONE_USDC);
        }
        vault.settleBatch(_batch(grants, listenerKeys, sessionKeys, other, 100, true));
    }

    function _tips(
        SessionGrant[] memory grants,
        uint256[] memory sessionKeys,
        address[] memory payees,
        uint256 tipId
    ) internal view returns (TipItem[] memory tips) {
        tips = new TipItem[](grants.length);
        string memory message = "thanks for the set, see you soon";
        for (uint256 i; i < grants.length; ++i) {
            tips[i] = _tip(0, sessionKeys[i], grants[i], payees[i], tipId, 2 * ONE_USDC, message);
        }
    }

    function _perItemTips(string memory kind, uint256 n, uint256 txGas, TipItem[] memory tips) internal {
        bytes memory data = abi.encodeCall(vault.settleBatchWithTips, (new SettlementItem[](0), tips));
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
