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
}
