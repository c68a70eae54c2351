// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IBeatStreamVault} from "../../../src/interfaces/IBeatStreamVault.sol";
import {SessionGrant} from "../../../src/types/DataTypes.sol";
import {Base_Test} from "../../Base.t.sol";

/// @notice requestWithdrawal, cancelWithdrawal and withdraw.
contract Withdrawal_Unit_Test is Base_Test {
    uint256 internal constant DEPOSIT = 100 * ONE_USDC;
    address internal recipient = address(0xC0FFEE);
    uint256 internal t0;

    function setUp() public override {
        super.setUp();
        t0 = block.timestamp;
        _fund(listener, DEPOSIT);
    }

    /*//////////////////////////////////////////////////////////////
                           REQUEST WITHDRAWAL
    //////////////////////////////////////////////////////////////*/

    function test_WhenRequestingWithdrawal() external {
        vm.expectEmit(address(vault));
        emit IBeatStreamVault.WithdrawalRequested(
            listener, 30 * ONE_USDC, 30 * ONE_USDC, t0 + WITHDRAWAL_DELAY
        );
        vm.prank(listener);
        vault.requestWithdrawal(30 * ONE_USDC);

        (uint256 available, uint256 thawing, uint256 thawEnd) = vault.accountOf(listener);
        vm.assertEq(available, 70 * ONE_USDC, "available");
        vm.assertEq(thawing, 30 * ONE_USDC, "thawing");
        vm.assertEq(thawEnd, t0 + WITHDRAWAL_DELAY, "thawEnd");
        vm.assertEq(usdc.balanceOf(address(vault)), DEPOSIT, "no tokens move yet");
    }

    function test_WhenRequestingAgain_AddsAndRestartsDelay() external {
        vm.prank(listener);
        vault.requestWithdrawal(30 * ONE_USDC);

        vm.warp(t0 + 12 hours);
        vm.expectEmit(address(vault));
        emit IBeatStreamVault.WithdrawalRequested(
            listener, 20 * ONE_USDC, 50 * ONE_USDC, t0 + 12 hours + WITHDRAWAL_DELAY
        );
        vm.prank(listener);
        vault.requestWithdrawal(20 * ONE_USDC);

        (uint256 available, uint256 thawing, uint256 thawEnd) = vault.accountOf(listener);
        vm.assertEq(available, 50 * ONE_USDC, "available");
        vm.assertEq(thawing, 50 * ONE_USDC, "thawing adds");
        vm.assertEq(thawEnd, t0 + 12 hours + WITHDRAWAL_DELAY, "delay restarts for the whole");

        // The first request's original end is no longer enough.
        vm.warp(t0 + WITHDRAWAL_DELAY);
        vm.prank(listener);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBeatStreamVault.BeatStreamVault_WithdrawalNotReady.selector, t0 + 12 hours + WITHDRAWAL_DELAY
            )
        );
        vault.withdraw(recipient);
    }

    function test_WhenRequestingAllAvailable() external {
        vm.prank(listener);
        vault.requestWithdrawal(DEPOSIT);
        (uint256 available, uint256 thawing,) = vault.accountOf(listener);
        vm.assertEq(available, 0, "available");
        vm.assertEq(thawing, DEPOSIT, "thawing");
    }

    function test_RevertWhen_RequestAmountZero() external {
        vm.prank(listener);
        vm.expectRevert(abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_ZeroAmount.selector));
        vault.requestWithdrawal(0);
    }

    function test_RevertWhen_RequestAboveAvailable() external {
        vm.prank(listener);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBeatStreamVault.BeatStreamVault_InsufficientAvailable.selector, DEPOSIT, DEPOSIT + 1
            )
        );
        vault.requestWithdrawal(DEPOSIT + 1);
    }

    function test_RevertWhen_RequestWithNoAccount() external {
        vm.prank(address(0xDEAD));
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_InsufficientAvailable.selector, 0, 1)
        );
        vault.requestWithdrawal(1);
    }

    /// @dev Thawing funds are packed in 88 bits (3e20 USDC): a larger request fails in SafeCast, not silently.
    function test_RevertWhen_ThawingWouldOverflowPackedBalance() external {
        uint256 huge = uint256(type(uint88).max) + 1;
        _fund(listener, huge);
        vm.prank(listener);
        vm.expectRevert(
            abi.encodeWithSelector(SafeCast.SafeCastOverflowedUintDowncast.selector, uint8(88), huge + 0)
        );
        vault.requestWithdrawal(huge);
    }

    /*//////////////////////////////////////////////////////////////
                           CANCEL WITHDRAWAL
    //////////////////////////////////////////////////////////////*/

    function test_WhenCancellingWithdrawal() external {
        vm.startPrank(listener);
        vault.requestWithdrawal(30 * ONE_USDC);
        vm.expectEmit(address(vault));
        emit IBeatStreamVault.WithdrawalCancelled(listener, 30 * ONE_USDC);
        vault.cancelWithdrawal();
        vm.stopPrank();

        (uint256 available, uint256 thawing, uint256 thawEnd) = vault.accountOf(listener);
        vm.assertEq(available, DEPOSIT, "all available again");
        vm.assertEq(thawing, 0, "thawing");
        vm.assertEq(thawEnd, 0, "thawEnd cleared");
    }

    function test_RevertWhen_CancelWithNothingThawing() external {
        vm.prank(listener);
        vm.expectRevert(abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_NothingThawing.selector));
        vault.cancelWithdrawal();
    }

    function test_RevertWhen_CancelTwice() external {
        vm.startPrank(listener);
        vault.requestWithdrawal(ONE_USDC);
        vault.cancelWithdrawal();
        vm.expectRevert(abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_NothingThawing.selector));
        vault.cancelWithdrawal();
        vm.stopPrank();
    }

    /*//////////////////////////////////////////////////////////////
                                WITHDRAW
    //////////////////////////////////////////////////////////////*/

    function test_WhenWithdrawingAfterDelay() external {
        vm.prank(listener);
        vault.requestWithdrawal(30 * ONE_USDC);

        // Exactly at the end of the delay is enough.
        vm.warp(t0 + WITHDRAWAL_DELAY);
        vm.expectEmit(address(vault));
        emit IBeatStreamVault.Withdrawn(listener, recipient, 30 * ONE_USDC);
        vm.prank(listener);
        uint256 amount = vault.withdraw(recipient);

        vm.assertEq(amount, 30 * ONE_USDC, "returned amount");
        vm.assertEq(usdc.balanceOf(recipient), 30 * ONE_USDC, "recipient paid");
        vm.assertEq(usdc.balanceOf(address(vault)), 70 * ONE_USDC, "vault keeps the rest");
        (uint256 available, uint256 thawing, uint256 thawEnd) = vault.accountOf(listener);
        vm.assertEq(available, 70 * ONE_USDC, "available untouched");
        vm.assertEq(thawing, 0, "thawing cleared");
        vm.assertEq(thawEnd, 0, "thawEnd cleared");
    }

    function test_RevertWhen_WithdrawingBeforeDelay() external {
        vm.prank(listener);
        vault.requestWithdrawal(30 * ONE_USDC);

        vm.warp(t0 + WITHDRAWAL_DELAY - 1);
        vm.prank(listener);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBeatStreamVault.BeatStreamVault_WithdrawalNotReady.selector, t0 + WITHDRAWAL_DELAY
            )
        );
        vault.withdraw(recipient);
    }

    function test_WhenWithdrawingAfterSettlementsDrewFromThawing() external {
        // Everything is thawing, so the settlement must draw from thawing funds.
        vm.prank(listener);
        vault.requestWithdrawal(DEPOSIT);
        SessionGrant memory grant = _defaultGrant();
        vault.settleBatch(_one(_item(LISTENER_KEY, SESSION_KEY, grant, artist, 40 * ONE_USDC)));
        (, uint256 thawingAfterSettle,) = vault.accountOf(listener);
        vm.assertEq(thawingAfterSettle, 60 * ONE_USDC, "settlement drew from thawing");

        vm.warp(t0 + WITHDRAWAL_DELAY);
        vm.expectEmit(address(vault));
        emit IBeatStreamVault.Withdrawn(listener, recipient, 60 * ONE_USDC);
        vm.prank(listener);
        uint256 amount = vault.withdraw(recipient);

        vm.assertEq(amount, 60 * ONE_USDC, "withdraws what settlements left");
        vm.assertEq(usdc.balanceOf(recipient), 60 * ONE_USDC, "recipient paid");
        vm.assertEq(usdc.balanceOf(address(vault)), 40 * ONE_USDC, "artist's earnings stay");
        vm.assertEq(vault.earningsOf(artist), 40 * ONE_USDC, "artist earned");
    }

    function test_RevertWhen_SettlementsDrainedAllThawing() external {
        vm.prank(listener);
        vault.requestWithdrawal(DEPOSIT);
        vault.settleBatch(_one(_defaultItem(DEPOSIT)));

        vm.warp(t0 + WITHDRAWAL_DELAY);
        vm.prank(listener);
        vm.expectRevert(abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_NothingThawing.selector));
        vault.withdraw(recipient);
    }

    function test_RevertWhen_WithdrawToZero() external {
        vm.prank(listener);
        vault.requestWithdrawal(ONE_USDC);
        vm.warp(t0 + WITHDRAWAL_DELAY);
        vm.prank(listener);
        vm.expectRevert(abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_ZeroAddress.selector));
        vault.withdraw(address(0));
    }

    function test_RevertWhen_WithdrawWithNothingThawing() external {
        vm.prank(listener);
        vm.expectRevert(abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_NothingThawing.selector));
        vault.withdraw(recipient);
    }

    function test_RevertWhen_WithdrawTwice() external {
        vm.prank(listener);
        vault.requestWithdrawal(ONE_USDC);
        vm.warp(t0 + WITHDRAWAL_DELAY);
        vm.startPrank(listener);
        vault.withdraw(recipient);
        vm.expectRevert(abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_NothingThawing.selector));
        vault.withdraw(recipient);
        vm.stopPrank();
    }
}
