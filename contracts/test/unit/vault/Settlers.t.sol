// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

import {IBeatStreamVault} from "../../../src/interfaces/IBeatStreamVault.sol";
import {SettlementItem} from "../../../src/types/DataTypes.sol";
import {Base_Test} from "../../Base.t.sol";

/// @notice Who may settle: the deployment's settlers at once, settlers the owner adds only after the withdrawal delay,
/// removed ones at once no longer; everyone else is refused with NotSettler.
contract Settlers_Unit_Test is Base_Test {
    address internal newSettler = address(0x5E77);
    address internal stranger = address(0x5742);
    uint256 internal t0;

    function setUp() public override {
        super.setUp();
        t0 = block.timestamp;
        _fund(listener, 100 * ONE_USDC);
    }

    function _expectNotSettler(address caller) internal {
        vm.expectRevert(abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_NotSettler.selector, caller));
    }

    function test_WhenDeployed_ItsSettlersSettleAtOnce() external {
        vm.assertTrue(vault.isSettler(address(this)), "the test contract");
        vm.assertTrue(vault.isSettler(keeper), "the keeper");
        vm.assertEq(vault.settlerFrom(keeper), t0, "from deployment");
        SettlementItem[] memory items = _one(_defaultItem(ONE_USDC));
        vm.prank(keeper);
        vm.assertEq(vault.settleBatch(items), 1, "keeper settles");
    }

    function test_RevertWhen_NonSettlerSettles() external {
        vm.assertFalse(vault.isSettler(stranger), "stranger");
        vm.assertEq(vault.settlerFrom(stranger), 0, "never allowed");
        SettlementItem[] memory items = _one(_defaultItem(ONE_USDC));
        vm.prank(stranger);
        _expectNotSettler(stranger);
        vault.settleBatch(items);
        // Not even an empty batch, nor the owner, nor the listener whose voucher it is, nor its payee.
        vm.prank(stranger);
        _expectNotSettler(stranger);
        vault.settleBatch(new SettlementItem[](0));
        vm.prank(owner);
        _expectNotSettler(owner);
        vault.settleBatch(items);
        vm.prank(listener);
        _expectNotSettler(listener);
        vault.settleBatch(items);
        vm.prank(artist);
        _expectNotSettler(artist);
        vault.settleBatch(items);
    }

    function test_WhenOwnerAddsSettler_ItSettlesFromTheDelayOn() external {
        vm.expectEmit(address(vault));
        emit IBeatStreamVault.SettlerUpdated(newSettler, true, t0 + WITHDRAWAL_DELAY);
        vm.prank(owner);
        vault.setSettler(newSettler, true);
        vm.assertEq(vault.settlerFrom(newSettler), t0 + WITHDRAWAL_DELAY, "settlerFrom");
        vm.assertFalse(vault.isSettler(newSettler), "not yet");

        SettlementItem[] memory items = _one(_defaultItem(ONE_USDC));
        vm.warp(t0 + WITHDRAWAL_DELAY - 1);
        vm.prank(newSettler);
        _expectNotSettler(newSettler);
        vault.settleBatch(items);

        vm.warp(t0 + WITHDRAWAL_DELAY);
        vm.assertTrue(vault.isSettler(newSettler), "from the delay on");
        vm.prank(newSettler);
        vm.assertEq(vault.settleBatch(items), 1, "settles");
    }

    function test_WhenOwnerAllowsASettlerAgain_ItKeepsItsStart() external {
        vm.expectEmit(address(vault));
        emit IBeatStreamVault.SettlerUpdated(keeper, true, t0);
        vm.prank(owner);
        vault.setSettler(keeper, true);
        vm.assertEq(vault.settlerFrom(keeper), t0, "an effective settler stays effective");

        vm.prank(owner);
        vault.setSettler(newSettler, true);
        vm.warp(t0 + 1 hours);
        vm.prank(owner);
        vault.setSettler(newSettler, true);
        vm.assertEq(vault.settlerFrom(newSettler), t0 + WITHDRAWAL_DELAY, "a pending settler's start is kept");
    }

    function test_WhenOwnerRemovesSettler_ItIsRefusedAtOnce() external {
        vm.warp(t0 + 1 hours);
        vm.expectEmit(address(vault));
        emit IBeatStreamVault.SettlerUpdated(keeper, false, t0 + 1 hours);
        vm.prank(owner);
        vault.setSettler(keeper, false);
        vm.assertFalse(vault.isSettler(keeper), "removed");
        vm.assertEq(vault.settlerFrom(keeper), 0, "settlerFrom cleared");
        SettlementItem[] memory items = _one(_defaultItem(ONE_USDC));
        vm.prank(keeper);
        _expectNotSettler(keeper);
        vault.settleBatch(items);

        // Allowed again, it waits out the delay like any new settler.
        vm.prank(owner);
        vault.setSettler(keeper, true);
        vm.assertEq(vault.settlerFrom(keeper), t0 + 1 hours + WITHDRAWAL_DELAY, "waits again");
        vm.assertFalse(vault.isSettler(keeper), "not yet");
    }

    function test_WhenPendingSettlerRemoved_ItNeverSettles() external {
        vm.prank(owner);
        vault.setSettler(newSettler, true);
        vm.prank(owner);
        vault.setSettler(newSettler, false);
        vm.warp(t0 + WITHDRAWAL_DELAY);
        vm.assertFalse(vault.isSettler(newSettler), "removed before it started");
    }

    function test_RevertWhen_NonOwnerSetsSettler() external {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger));
        vault.setSettler(stranger, true);
        vm.prank(keeper);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, keeper));
        vault.setSettler(newSettler, true);
    }

    function test_RevertWhen_SettlerZero() external {
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_ZeroAddress.selector));
        vault.setSettler(address(0), true);
    }
}
