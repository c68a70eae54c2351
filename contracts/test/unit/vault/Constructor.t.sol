// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {IBeatStreamVault} from "../../../src/interfaces/IBeatStreamVault.sol";
import {Base_Test} from "../../Base.t.sol";
import {IBeatStreamVaultFull} from "../../utils/Interfaces.sol";

contract Constructor_Vault_Unit_Test is Base_Test {
    function test_WhenArgumentsValid() external {
        IBeatStreamVaultFull v = _deployVault(usdc, 2 days, 3 days, owner, treasury, 1000);
        vm.assertEq(address(v.token()), address(usdc), "token");
        vm.assertEq(uint256(v.withdrawalDelay()), 2 days, "withdrawalDelay");
        vm.assertEq(uint256(v.settlementWindow()), 3 days, "settlementWindow");
        vm.assertEq(v.owner(), owner, "owner");
        vm.assertEq(v.treasury(), treasury, "treasury");
        vm.assertEq(uint256(v.feeBps()), 1000, "feeBps");
        vm.assertEq(uint256(v.MAX_FEE_BPS()), 1000, "MAX_FEE_BPS");
        vm.assertEq(v.accruedFees(), 0, "accruedFees");
    }

    function test_RevertWhen_TokenZero() external {
        vm.expectRevert(abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_ZeroAddress.selector));
        _deployVault(IERC20(address(0)), 1 days, 1 days, owner, treasury, 0);
    }

    function test_RevertWhen_TreasuryZero() external {
        vm.expectRevert(abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_ZeroAddress.selector));
        _deployVault(usdc, 1 days, 1 days, owner, address(0), 0);
    }

    function test_RevertWhen_OwnerZero() external {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableInvalidOwner.selector, address(0)));
        _deployVault(usdc, 1 days, 1 days, address(0), treasury, 0);
    }

    function test_RevertWhen_FeeAboveMax() external {
        vm.expectRevert(
            abi.encodeWithSelector(
                IBeatStreamVault.BeatStreamVault_FeeTooHigh.selector, uint16(1001), uint16(1000)
            )
        );
        _deployVault(usdc, 1 days, 1 days, owner, treasury, 1001);
    }

    function test_WhenDeployed_EmitsFeeAndSettlers() external {
        address[] memory settlers = new address[](1);
        settlers[0] = keeper;
        vm.expectEmit();
        emit IBeatStreamVault.FeeScheduled(300, block.timestamp);
        vm.expectEmit();
        emit IBeatStreamVault.SettlerUpdated(keeper, true, block.timestamp);
        IBeatStreamVaultFull v = IBeatStreamVaultFull(
            vm.deployCode(
                "BeatStreamVault.sol:BeatStreamVault",
                abi.encode(usdc, 1 days, 1 days, owner, treasury, uint16(300), settlers, registry)
            )
        );
        vm.assertTrue(v.isSettler(keeper), "keeper settles at once");
        vm.assertFalse(v.isSettler(address(this)), "only the listed settlers");
        (uint16 pending, uint256 effectiveAt) = v.pendingFee();
        vm.assertEq(uint256(pending) + effectiveAt, 0, "nothing pending");
    }

    function test_RevertWhen_SettlerZero() external {
        address[] memory settlers = new address[](2);
        settlers[0] = keeper;
        vm.expectRevert(abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_ZeroAddress.selector));
        vm.deployCode(
            "BeatStreamVault.sol:BeatStreamVault",
            abi.encode(usdc, 1 days, 1 days, owner, treasury, uint16(0), settlers, registry)
        );
    }

    function test_WhenReadingDelayBounds() external view {
        vm.assertEq(uint256(vault.MIN_WITHDRAWAL_DELAY()), 1 minutes, "MIN_WITHDRAWAL_DELAY");
        vm.assertEq(uint256(vault.MAX_WITHDRAWAL_DELAY()), 30 days, "MAX_WITHDRAWAL_DELAY");
        vm.assertEq(uint256(vault.MAX_SETTLEMENT_WINDOW()), 365 days, "MAX_SETTLEMENT_WINDOW");
    }

    function test_WhenDelaysAtTheirBounds_Deploys() external {
        IBeatStreamVaultFull v = _deployVault(usdc, 1 minutes, 1 minutes, owner, treasury, 0);
        vm.assertEq(uint256(v.withdrawalDelay()), 1 minutes, "shortest delay, window equal to it");
        v = _deployVault(usdc, 30 days, 365 days, owner, treasury, 0);
        vm.assertEq(uint256(v.withdrawalDelay()), 30 days, "longest delay");
        vm.assertEq(uint256(v.settlementWindow()), 365 days, "longest window");
    }

    function _expectDelayOutOfRange(uint256 delay) internal {
        vm.expectRevert(
            abi.encodeWithSelector(
                IBeatStreamVault.BeatStreamVault_WithdrawalDelayOutOfRange.selector, delay, 1 minutes, 30 days
            )
        );
    }

    function _expectWindowOutOfRange(uint256 window, uint256 delay) internal {
        vm.expectRevert(
            abi.encodeWithSelector(
                IBeatStreamVault.BeatStreamVault_SettlementWindowOutOfRange.selector, window, delay, 365 days
            )
        );
    }

    function test_RevertWhen_WithdrawalDelayZero() external {
        _expectDelayOutOfRange(0);
        _deployVault(usdc, 0, 1 days, owner, treasury, 0);
    }

    function test_RevertWhen_WithdrawalDelayBelowMinimum() external {
        _expectDelayOutOfRange(59);
        _deployVault(usdc, 59, 1 days, owner, treasury, 0);
    }

    function test_RevertWhen_WithdrawalDelayAboveMaximum() external {
        _expectDelayOutOfRange(30 days + 1);
        _deployVault(usdc, 30 days + 1, 365 days, owner, treasury, 0);
    }

    function test_RevertWhen_SettlementWindowZero() external {
        _expectWindowOutOfRange(0, 1 days);
        _deployVault(usdc, 1 days, 0, owner, treasury, 0);
    }

    /// @dev A window shorter than the delay would let a grant expire, and its acked vouchers go unpaid, before the
    /// keeper's delay is over.
    function test_RevertWhen_SettlementWindowShorterThanDelay() external {
        _expectWindowOutOfRange(1 days - 1, 1 days);
        _deployVault(usdc, 1 days, 1 days - 1, owner, treasury, 0);
    }

    function test_RevertWhen_SettlementWindowAboveMaximum() external {
        _expectWindowOutOfRange(365 days + 1, 1 days);
        _deployVault(usdc, 1 days, 365 days + 1, owner, treasury, 0);
    }
}
