// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

import {IBeatStreamVault} from "../../../src/interfaces/IBeatStreamVault.sol";
import {Base_Test} from "../../Base.t.sol";

contract Deposit_Unit_Test is Base_Test {
    address internal payer = address(0xFA7E);

    /*//////////////////////////////////////////////////////////////
                                DEPOSIT
    //////////////////////////////////////////////////////////////*/

    function test_WhenCallerApproved() external {
        usdc.mint(listener, 100 * ONE_USDC);
        vm.startPrank(listener);
        usdc.approve(address(vault), 100 * ONE_USDC);
        vm.expectEmit(address(vault));
        emit IBeatStreamVault.Deposited(listener, listener, 60 * ONE_USDC);
        vault.deposit(60 * ONE_USDC);
        vault.deposit(40 * ONE_USDC);
        vm.stopPrank();

        (uint256 available, uint256 thawing, uint256 thawEnd) = vault.accountOf(listener);
        vm.assertEq(available, 100 * ONE_USDC, "available adds up");
        vm.assertEq(thawing, 0, "thawing");
        vm.assertEq(thawEnd, 0, "thawEnd");
        vm.assertEq(usdc.balanceOf(address(vault)), 100 * ONE_USDC, "vault holds the tokens");
        vm.assertEq(usdc.balanceOf(listener), 0, "listener paid");
    }

    function test_RevertWhen_DepositAmountZero() external {
        vm.prank(listener);
        vm.expectRevert(abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_ZeroAmount.selector));
        vault.deposit(0);
    }

    function test_RevertWhen_DepositNotApproved() external {
        usdc.mint(listener, ONE_USDC);
        vm.prank(listener);
        vm.expectRevert(
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(vault), 0, ONE_USDC
            )
        );
        vault.deposit(ONE_USDC);
    }

    /// @dev Available funds are packed in 120 bits (v1: 128), beside thawing funds, the thaw end and the revocation
    /// flag.
    function test_RevertWhen_DepositOverflowsPackedBalance() external {
        uint256 max = type(uint120).max;
        usdc.mint(listener, max + 1);
        vm.startPrank(listener);
        usdc.approve(address(vault), max + 1);
        vault.deposit(max);
        vm.expectRevert(abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_BalanceOverflow.selector));
        vault.deposit(1);
        vm.stopPrank();
    }

    /*//////////////////////////////////////////////////////////////
                              DEPOSIT FOR
    //////////////////////////////////////////////////////////////*/

    function test_WhenDepositingForAnotherListener() external {
        usdc.mint(payer, 5 * ONE_USDC);
        vm.startPrank(payer);
        usdc.approve(address(vault), 5 * ONE_USDC);
        vm.expectEmit(address(vault));
        emit IBeatStreamVault.Deposited(listener, payer, 5 * ONE_USDC);
        vault.depositFor(listener, 5 * ONE_USDC);
        vm.stopPrank();

        (uint256 available,,) = vault.accountOf(listener);
        vm.assertEq(available, 5 * ONE_USDC, "listener credited");
        (uint256 payerAvailable,,) = vault.accountOf(payer);
        vm.assertEq(payerAvailable, 0, "payer not credited");
        vm.assertEq(usdc.balanceOf(payer), 0, "payer paid");
    }

    function test_RevertWhen_DepositForZeroListener() external {
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_ZeroAddress.selector));
        vault.depositFor(address(0), ONE_USDC);
    }

    function test_RevertWhen_DepositForAmountZero() external {
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_ZeroAmount.selector));
        vault.depositFor(listener, 0);
    }

    /*//////////////////////////////////////////////////////////////
                          DEPOSIT WITH PERMIT
    //////////////////////////////////////////////////////////////*/

    function test_WhenPermitValid() external {
        uint256 amount = 7 * ONE_USDC;
        uint256 deadline = block.timestamp + 1 hours;
        usdc.mint(listener, amount);
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(LISTENER_KEY, listener, amount, deadline);

        vm.expectEmit(address(vault));
        emit IBeatStreamVault.Deposited(listener, listener, amount);
        vm.prank(listener);
        vault.depositWithPermit(amount, deadline, v, r, s);

        (uint256 available,,) = vault.accountOf(listener);
        vm.assertEq(available, amount, "available");
        vm.assertEq(usdc.nonces(listener), 1, "permit consumed");
        vm.assertEq(usdc.allowance(listener, address(vault)), 0, "allowance spent");
        vm.assertEq(usdc.balanceOf(address(vault)), amount, "vault balance");
    }

    function test_WhenPermitFrontRun() external {
        uint256 amount = 7 * ONE_USDC;
        uint256 deadline = block.timestamp + 1 hours;
        usdc.mint(listener, amount);
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(LISTENER_KEY, listener, amount, deadline);

        // Someone copies the permit from the mempool and submits it first.
        vm.prank(address(0xBAD));
        usdc.permit(listener, address(vault), amount, deadline, v, r, s);
        vm.assertEq(usdc.nonces(listener), 1, "front-run permit consumed the nonce");

        vm.expectEmit(address(vault));
        emit IBeatStreamVault.Deposited(listener, listener, amount);
        vm.prank(listener);
        vault.depositWithPermit(amount, deadline, v, r, s);

        (uint256 available,,) = vault.accountOf(listener);
        vm.assertEq(available, amount, "deposit still went through");
    }

    function test_RevertWhen_PermitInvalidAndNoAllowance() external {
        uint256 amount = 7 * ONE_USDC;
        uint256 deadline = block.timestamp + 1 hours;
        usdc.mint(listener, amount);
        // Signed by the wrong key: the permit fails silently and the transfer finds no allowance.
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(SESSION_KEY, listener, amount, deadline);

        vm.prank(listener);
        vm.expectRevert(
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(vault), 0, amount
            )
        );
        vault.depositWithPermit(amount, deadline, v, r, s);
    }

    function test_RevertWhen_PermitAmountZero() external {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(LISTENER_KEY, listener, 0, deadline);
        vm.prank(listener);
        vm.expectRevert(abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_ZeroAmount.selector));
        vault.depositWithPermit(0, deadline, v, r, s);
    }

    function _signPermit(uint256 key, address holder, uint256 value, uint256 deadline)
        internal
        view
        returns (uint8 v, bytes32 r, bytes32 s)
    {
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256(
                    "Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"
                ),
                holder,
                address(vault),
                value,
                usdc.nonces(holder),
                deadline
            )
        );
        return vm.sign(key, keccak256(abi.encodePacked("\x19\x01", usdc.DOMAIN_SEPARATOR(), structHash)));
    }
}
