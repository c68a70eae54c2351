// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IBeatStreamVault} from "../../../src/interfaces/IBeatStreamVault.sol";
import {Base_Test} from "../../Base.t.sol";

contract WithdrawEarnings_Unit_Test is Base_Test {
    uint256 internal constant EARNED = 12 * ONE_USDC;

    function setUp() public override {
        super.setUp();
        _fund(listener, 100 * ONE_USDC);
        vault.settleBatch(_one(_defaultItem(EARNED)));
    }

    function test_WhenWithdrawingToSelf() external {
        vm.expectEmit(address(vault));
        emit IBeatStreamVault.EarningsWithdrawn(artist, artist, 5 * ONE_USDC);
        vm.prank(artist);
        vault.withdrawEarnings(artist, 5 * ONE_USDC);

        vm.assertEq(usdc.balanceOf(artist), 5 * ONE_USDC, "artist paid");
        vm.assertEq(vault.earningsOf(artist), EARNED - 5 * ONE_USDC, "earnings left");
    }

    function test_WhenWithdrawingToAnyAddress() external {
        address label = address(0x1ABE1);
        vm.expectEmit(address(vault));
        emit IBeatStreamVault.EarningsWithdrawn(artist, label, EARNED);
        vm.prank(artist);
        vault.withdrawEarnings(label, EARNED);

        vm.assertEq(usdc.balanceOf(label), EARNED, "recipient paid");
        vm.assertEq(usdc.balanceOf(artist), 0, "artist not paid directly");
        vm.assertEq(vault.earningsOf(artist), 0, "all withdrawn");
        vm.assertEq(usdc.balanceOf(address(vault)), 100 * ONE_USDC - EARNED, "vault keeps listener funds");
    }

    function test_RevertWhen_ToZero() external {
        vm.prank(artist);
        vm.expectRevert(abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_ZeroAddress.selector));
        vault.withdrawEarnings(address(0), 1);
    }

    function test_RevertWhen_AmountZero() external {
        vm.prank(artist);
        vm.expectRevert(abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_ZeroAmount.selector));
        vault.withdrawEarnings(artist, 0);
    }

    function test_RevertWhen_AmountAboveEarnings() external {
        vm.prank(artist);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBeatStreamVault.BeatStreamVault_InsufficientEarnings.selector, EARNED, EARNED + 1
            )
        );
        vault.withdrawEarnings(artist, EARNED + 1);
    }

    function test_RevertWhen_CallerHasNoEarnings() external {
        vm.prank(listener);
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_InsufficientEarnings.selector, 0, 1)
        );
        vault.withdrawEarnings(listener, 1);
    }
}
