// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

import {IBeatStreamVault} from "../../../src/interfaces/IBeatStreamVault.sol";
import {SessionGrant} from "../../../src/types/DataTypes.sol";
import {Base_Test} from "../../Base.t.sol";

/// @notice scheduleFee, setTreasury, collectFees and the two-step ownership transfer.
contract Admin_Unit_Test is Base_Test {
    address internal stranger = address(0x5742);

    /*//////////////////////////////////////////////////////////////
                              SCHEDULE FEE
    //////////////////////////////////////////////////////////////*/

    /// @dev v1's setFee applied at once (event FeeUpdated); v2 schedules the fee for the withdrawal delay later.
    function test_WhenOwnerSchedulesFee() external {
        uint256 t0 = block.timestamp;
        vm.expectEmit(address(vault));
        emit IBeatStreamVault.FeeScheduled(250, t0 + WITHDRAWAL_DELAY);
        vm.prank(owner);
        vault.scheduleFee(250);
        vm.assertEq(uint256(vault.feeBps()), 0, "old fee until the delay is over");
        (uint16 pending, uint256 effectiveAt) = vault.pendingFee();
        vm.assertEq(uint256(pending), 250, "pending fee");
        vm.assertEq(effectiveAt, t0 + WITHDRAWAL_DELAY, "effective at");

        vm.warp(t0 + WITHDRAWAL_DELAY);
        vm.assertEq(uint256(vault.feeBps()), 250, "feeBps");
        (pending, effectiveAt) = vault.pendingFee();
        vm.assertEq(uint256(pending) + effectiveAt, 0, "nothing pending once in force");
    }

    function test_WhenOwnerSchedulesFeeToMax() external {
        _setFee(1000);
        vm.assertEq(uint256(vault.feeBps()), 1000, "max fee allowed");
        _setFee(0);
        vm.assertEq(uint256(vault.feeBps()), 0, "zero fee allowed");
    }

    function test_RevertWhen_FeeAboveMax() external {
        vm.prank(owner);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBeatStreamVault.BeatStreamVault_FeeTooHigh.selector, uint16(1001), uint16(1000)
            )
        );
        vault.scheduleFee(1001);
    }

    function test_RevertWhen_NonOwnerSchedulesFee() external {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger));
        vault.scheduleFee(1);
    }

    function test_WhenFeeScheduled_SettlementsUseTheOldFeeUntilTheDelay() external {
        uint256 t0 = block.timestamp;
        _fund(listener, 100 * ONE_USDC);
        SessionGrant memory grant = _defaultGrant();
        vm.prank(owner);
        vault.scheduleFee(1000);

        _expectSettled(grant, artist, 10 * ONE_USDC, 10 * ONE_USDC, 0);
        vault.settleBatch(_one(_item(LISTENER_KEY, SESSION_KEY, grant, artist, 10 * ONE_USDC)));
        vm.warp(t0 + WITHDRAWAL_DELAY - 1);
        _expectSettled(grant, artist, 10 * ONE_USDC, 20 * ONE_USDC, 0);
        vault.settleBatch(_one(_item(LISTENER_KEY, SESSION_KEY, grant, artist, 20 * ONE_USDC)));
        vm.assertEq(vault.accruedFees(), 0, "no fee before the delay");

        vm.warp(t0 + WITHDRAWAL_DELAY);
        _expectSettled(grant, artist, 10 * ONE_USDC, 30 * ONE_USDC, ONE_USDC);
        vault.settleBatch(_one(_item(LISTENER_KEY, SESSION_KEY, grant, artist, 30 * ONE_USDC)));
        vm.assertEq(vault.accruedFees(), ONE_USDC, "10% from the delay on");
    }

    function test_WhenScheduleReplacesAPendingOne_NeitherAppliesEarly() external {
        uint256 t0 = block.timestamp;
        vm.prank(owner);
        vault.scheduleFee(250);
        uint256 t1 = t0 + WITHDRAWAL_DELAY / 2;
        vm.warp(t1);
        vm.expectEmit(address(vault));
        emit IBeatStreamVault.FeeScheduled(500, t1 + WITHDRAWAL_DELAY);
        vm.prank(owner);
        vault.scheduleFee(500);

        vm.warp(t0 + WITHDRAWAL_DELAY);
        vm.assertEq(uint256(vault.feeBps()), 0, "the replaced 250 never applies");
        (uint16 pending, uint256 effectiveAt) = vault.pendingFee();
        vm.assertEq(uint256(pending), 500, "pending");
        vm.assertEq(effectiveAt, t1 + WITHDRAWAL_DELAY, "effective at");
        vm.warp(t1 + WITHDRAWAL_DELAY);
        vm.assertEq(uint256(vault.feeBps()), 500, "the new one from its own delay on");
    }

    function test_WhenScheduledAfterThePreviousTookEffect_ThePreviousStaysInForceMeanwhile() external {
        _setFee(250);
        uint256 t1 = block.timestamp;
        vm.prank(owner);
        vault.scheduleFee(0);
        vm.assertEq(uint256(vault.feeBps()), 250, "the fee in force until the next one's delay");
        vm.warp(t1 + WITHDRAWAL_DELAY - 1);
        vm.assertEq(uint256(vault.feeBps()), 250, "still");
        vm.warp(t1 + WITHDRAWAL_DELAY);
        vm.assertEq(uint256(vault.feeBps()), 0, "lowered, after the delay too");
    }

    /*//////////////////////////////////////////////////////////////
                              SET TREASURY
    //////////////////////////////////////////////////////////////*/

    function test_WhenOwnerSetsTreasury() external {
        address next = address(0x7E2);
        vm.expectEmit(address(vault));
        emit IBeatStreamVault.TreasuryUpdated(next);
        vm.prank(owner);
        vault.setTreasury(next);
        vm.assertEq(vault.treasury(), next, "treasury");
    }

    function test_RevertWhen_TreasuryZero() external {
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_ZeroAddress.selector));
        vault.setTreasury(address(0));
    }

    function test_RevertWhen_NonOwnerSetsTreasury() external {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger));
        vault.setTreasury(stranger);
    }

    /*//////////////////////////////////////////////////////////////
                              COLLECT FEES
    //////////////////////////////////////////////////////////////*/

    function test_WhenFeesAccrued_AnyoneCollectsToTreasury() external {
        _setFee(250);
        _fund(listener, 100 * ONE_USDC);
        vault.settleBatch(_one(_defaultItem(40 * ONE_USDC)));
        uint256 fee = 40 * ONE_USDC * 250 / 10_000;
        vm.assertEq(vault.accruedFees(), fee, "accrued");

        vm.expectEmit(address(vault));
        emit IBeatStreamVault.FeesCollected(treasury, fee);
        vm.prank(stranger);
        uint256 amount = vault.collectFees();

        vm.assertEq(amount, fee, "returned amount");
        vm.assertEq(usdc.balanceOf(treasury), fee, "treasury paid");
        vm.assertEq(vault.accruedFees(), 0, "accrued reset");
    }

    function test_WhenTreasuryChanged_FeesGoToNewTreasury() external {
        address next = address(0x7E2);
        _setFee(1000);
        vm.prank(owner);
        vault.setTreasury(next);
        _fund(listener, 10 * ONE_USDC);
        vault.settleBatch(_one(_defaultItem(10 * ONE_USDC)));

        vault.collectFees();
        vm.assertEq(usdc.balanceOf(next), ONE_USDC, "new treasury paid");
        vm.assertEq(usdc.balanceOf(treasury), 0, "old treasury not paid");
    }

    function test_RevertWhen_NoFeesAccrued() external {
        vm.expectRevert(abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_ZeroAmount.selector));
        vault.collectFees();
    }

    /*//////////////////////////////////////////////////////////////
                               OWNERSHIP
    //////////////////////////////////////////////////////////////*/

    function test_WhenOwnershipTransferredInTwoSteps() external {
        address next = address(0x0B);
        vm.prank(owner);
        vault.transferOwnership(next);
        vm.assertEq(vault.owner(), owner, "owner unchanged until accepted");
        vm.assertEq(vault.pendingOwner(), next, "pendingOwner");

        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger));
        vault.acceptOwnership();

        vm.prank(next);
        vault.acceptOwnership();
        vm.assertEq(vault.owner(), next, "owner");

        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, owner));
        vault.scheduleFee(1);
    }

    function test_WhenOwnerRenounces_AdminFunctionsLocked() external {
        vm.prank(owner);
        vault.renounceOwnership();
        vm.assertEq(vault.owner(), address(0), "no owner");
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, owner));
        vault.setTreasury(owner);
    }
}
