// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

import {Base_Test} from "../Base.t.sol";

contract MockUSDC_Unit_Test is Base_Test {
    bytes32 internal constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");

    address internal spender = address(0x5BE2);

    function _permitDigest(address holder, uint256 value, uint256 nonce, uint256 deadline)
        internal
        view
        returns (bytes32)
    {
        bytes32 structHash = keccak256(abi.encode(PERMIT_TYPEHASH, holder, spender, value, nonce, deadline));
        return keccak256(abi.encodePacked("\x19\x01", usdc.DOMAIN_SEPARATOR(), structHash));
    }

    function test_WhenReadingMetadata() external view {
        vm.assertEq(usdc.name(), "Mock USD Coin", "name");
        vm.assertEq(usdc.symbol(), "USDC", "symbol");
        vm.assertEq(uint256(usdc.decimals()), 6, "decimals");
        vm.assertEq(usdc.totalSupply(), 0, "totalSupply");
    }

    function test_WhenAnyoneMints() external {
        vm.expectEmit(address(usdc));
        emit IERC20.Transfer(address(0), listener, 5 * ONE_USDC);
        vm.prank(address(0xBEEF));
        usdc.mint(listener, 5 * ONE_USDC);
        vm.assertEq(usdc.balanceOf(listener), 5 * ONE_USDC, "balance");
        vm.assertEq(usdc.totalSupply(), 5 * ONE_USDC, "totalSupply");
    }

    function test_RevertWhen_MintingToZero() external {
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InvalidReceiver.selector, address(0)));
        usdc.mint(address(0), 1);
    }

    function test_WhenTransferring() external {
        usdc.mint(listener, 5 * ONE_USDC);
        vm.prank(listener);
        usdc.transfer(spender, 2 * ONE_USDC);
        vm.assertEq(usdc.balanceOf(spender), 2 * ONE_USDC, "received");
        vm.assertEq(usdc.balanceOf(listener), 3 * ONE_USDC, "sent");
    }

    function test_RevertWhen_TransferringMoreThanBalance() external {
        usdc.mint(listener, 1);
        vm.prank(listener);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, listener, 1, 2)
        );
        usdc.transfer(spender, 2);
    }

    function test_WhenDomainSeparatorRead_EqualsHandComputed() external view {
        bytes32 expected = keccak256(
            abi.encode(
                keccak256(
                    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
                ),
                keccak256("Mock USD Coin"),
                keccak256("1"),
                block.chainid,
                address(usdc)
            )
        );
        vm.assertEq(usdc.DOMAIN_SEPARATOR(), expected, "DOMAIN_SEPARATOR");
    }

    function test_WhenPermitSigned_SetsAllowance() external {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(LISTENER_KEY, _permitDigest(listener, 9, 0, deadline));
        vm.expectEmit(address(usdc));
        emit IERC20.Approval(listener, spender, 9);
        usdc.permit(listener, spender, 9, deadline, v, r, s);
        vm.assertEq(usdc.allowance(listener, spender), 9, "allowance");
        vm.assertEq(usdc.nonces(listener), 1, "nonce");
    }

    function test_RevertWhen_PermitExpired() external {
        uint256 deadline = block.timestamp - 1;
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(LISTENER_KEY, _permitDigest(listener, 9, 0, deadline));
        vm.expectRevert(abi.encodeWithSelector(ERC20Permit.ERC2612ExpiredSignature.selector, deadline));
        usdc.permit(listener, spender, 9, deadline, v, r, s);
    }

    function test_RevertWhen_PermitSignedByOther() external {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(SESSION_KEY, _permitDigest(listener, 9, 0, deadline));
        vm.expectRevert(
            abi.encodeWithSelector(ERC20Permit.ERC2612InvalidSigner.selector, sessionKey, listener)
        );
        usdc.permit(listener, spender, 9, deadline, v, r, s);
    }

    function test_RevertWhen_PermitReplayed() external {
        uint256 deadline = block.timestamp + 1 hours;
        bytes32 digest = _permitDigest(listener, 9, 0, deadline);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(LISTENER_KEY, digest);
        usdc.permit(listener, spender, 9, deadline, v, r, s);
        // The nonce moved on, so the same signature now recovers some other address.
        address recovered = ecrecover(_permitDigest(listener, 9, 1, deadline), v, r, s);
        vm.expectRevert(
            abi.encodeWithSelector(ERC20Permit.ERC2612InvalidSigner.selector, recovered, listener)
        );
        usdc.permit(listener, spender, 9, deadline, v, r, s);
    }

    function test_WhenApprovedSpenderTransfersFrom() external {
        usdc.mint(listener, 5);
        vm.prank(listener);
        usdc.approve(spender, 3);
        vm.prank(spender);
        usdc.transferFrom(listener, spender, 3);
        vm.assertEq(usdc.balanceOf(spender), 3, "moved");
        vm.assertEq(usdc.allowance(listener, spender), 0, "allowance spent");
        vm.prank(spender);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, spender, 0, 1)
        );
        usdc.transferFrom(listener, spender, 1);
    }
}
