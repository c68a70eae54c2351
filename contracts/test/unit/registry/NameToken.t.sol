// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC721Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {IERC721Receiver} from "@openzeppelin/contracts/token/ERC721/IERC721Receiver.sol";

import {ForeignNft} from "../../mocks/ForeignNft.sol";
import {Registry_Unit_Test} from "./Registry.t.sol";

/// @notice Artist names as ERC-721 tokens of the registry: metadata, managerOf, transfer and approval rules, the
/// receiver hook (foreign tokens kept, its own refused), ERC-165.
contract NameToken_Unit_Test is Registry_Unit_Test {
    bytes32 internal node;
    uint256 internal tokenId;

    function setUp() public override {
        super.setUp();
        node = _register(artist, "alice");
        tokenId = uint256(node);
    }

    function test_WhenReadingTokenMetadata() external view {
        vm.assertEq(registry.name(), "BeatStream artist name", "name");
        vm.assertEq(registry.symbol(), "BEATSTREAM", "symbol");
        vm.assertEq(registry.ownerOf(tokenId), artist, "ownerOf");
        vm.assertEq(registry.balanceOf(artist), 1, "balanceOf");
        vm.assertEq(registry.tokenURI(tokenId), "", "no token URI");
    }

    function test_WhenNameUnregistered_ManagerIsZero() external {
        bytes32 unknown = _node("nobody");
        vm.assertEq(registry.managerOf(unknown), address(0), "no manager");
        vm.expectRevert(
            abi.encodeWithSelector(IERC721Errors.ERC721NonexistentToken.selector, uint256(unknown))
        );
        registry.ownerOf(uint256(unknown));
    }

    function test_WhenTwoNamesRegistered_EachHasItsToken() external {
        bytes32 second = _register(artist, "alice-two");
        vm.assertEq(registry.balanceOf(artist), 2, "two tokens");
        vm.assertEq(registry.managerOf(second), artist, "manager of the second");
    }

    function test_WhenHolderTransfers_ManagerFollows() external {
        vm.expectEmit(address(registry));
        emit IERC721.Transfer(artist, stranger, tokenId);
        vm.prank(artist);
        registry.transferFrom(artist, stranger, tokenId);
        vm.assertEq(registry.managerOf(node), stranger, "manager");
        vm.assertEq(registry.balanceOf(artist), 0, "artist balance");
    }

    function test_WhenApprovedAddressTransfers_ManagerFollows() external {
        vm.expectEmit(address(registry));
        emit IERC721.Approval(artist, operator, tokenId);
        vm.prank(artist);
        registry.approve(operator, tokenId);
        vm.prank(operator);
        registry.transferFrom(artist, stranger, tokenId);
        vm.assertEq(registry.managerOf(node), stranger, "moved by the approved address");
        vm.assertEq(registry.getApproved(tokenId), address(0), "approval cleared by the transfer");
    }

    function test_WhenOperatorApprovedForAll_ManagesEveryNameOfTheHolder() external {
        bytes32 second = _register(artist, "alice-two");
        vm.expectEmit(address(registry));
        emit IERC721.ApprovalForAll(artist, operator, true);
        vm.prank(artist);
        registry.setApprovalForAll(operator, true);
        vm.assertTrue(registry.isApprovedForAll(artist, operator), "isApprovedForAll");
        vm.startPrank(operator);
        registry.setRate(node, 1);
        registry.setRate(second, 2);
        vm.stopPrank();
        (, uint256 rate) = registry.artist(second);
        vm.assertEq(rate, 2, "second name managed");
    }

    function test_RevertWhen_StrangerTransfers() external {
        vm.prank(stranger);
        vm.expectRevert(
            abi.encodeWithSelector(IERC721Errors.ERC721InsufficientApproval.selector, stranger, tokenId)
        );
        registry.transferFrom(artist, stranger, tokenId);
    }

    function test_RevertWhen_StrangerApproves() external {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721InvalidApprover.selector, stranger));
        registry.approve(stranger, tokenId);
    }

    /// @dev Sent to the registry, a name token would be lost (nothing sends tokens on): the hook refuses it.
    function test_RevertWhen_NameSafeTransferredToTheRegistry() external {
        vm.prank(artist);
        vm.expectRevert(
            abi.encodeWithSelector(IERC721Errors.ERC721InvalidReceiver.selector, address(registry))
        );
        registry.safeTransferFrom(artist, address(registry), tokenId);
        vm.assertEq(registry.ownerOf(tokenId), artist, "still the artist's");
    }

    function test_RevertWhen_NameTransferredToTheRegistryWithoutSafeTransfer() external {
        vm.prank(artist);
        vm.expectRevert(
            abi.encodeWithSelector(IERC721Errors.ERC721InvalidReceiver.selector, address(registry))
        );
        registry.transferFrom(artist, address(registry), tokenId);
        vm.assertEq(registry.ownerOf(tokenId), artist, "still the artist's");
    }

    function test_RevertWhen_NameSafeTransferredToANonReceiver() external {
        address nonReceiver = address(usdc);
        vm.prank(artist);
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721InvalidReceiver.selector, nonReceiver));
        registry.safeTransferFrom(artist, nonReceiver, tokenId);
    }

    /// @dev The `.eth` registrar token of the parent name, sent here, stays here: nothing in the registry sends a
    /// token on, so no one can `reclaim` the parent in ENS with it again.
    function test_WhenForeignTokenSafeTransferred_RegistryKeepsIt() external {
        ForeignNft foreign = new ForeignNft();
        foreign.mint(stranger, 7);
        vm.prank(stranger);
        foreign.safeTransferFrom(stranger, address(registry), 7);
        vm.assertEq(foreign.ownerOf(7), address(registry), "held by the registry");
        vm.assertEq(registry.balanceOf(address(registry)), 0, "not one of its own names");
    }

    function test_WhenOnErc721ReceivedCalledByAnotherContract_ReturnsItsSelector() external {
        vm.assertEq(
            bytes32(registry.onERC721Received(address(this), stranger, 1, "")),
            bytes32(IERC721Receiver.onERC721Received.selector),
            "accepts"
        );
    }

    function test_RevertWhen_OnErc721ReceivedCalledByTheRegistryItself() external {
        vm.prank(address(registry));
        vm.expectRevert(
            abi.encodeWithSelector(IERC721Errors.ERC721InvalidReceiver.selector, address(registry))
        );
        registry.onERC721Received(artist, artist, tokenId, "");
    }

    function test_WhenQueryingTokenInterfaces() external view {
        vm.assertTrue(registry.supportsInterface(0x80ac58cd), "ERC-721");
        vm.assertTrue(registry.supportsInterface(0x5b5e139f), "ERC-721 metadata");
        vm.assertTrue(registry.supportsInterface(0x01ffc9a7), "ERC-165");
        vm.assertTrue(registry.supportsInterface(0x3b3b57de), "addr(bytes32)");
        vm.assertTrue(registry.supportsInterface(0x59d1d43c), "text(bytes32,string)");
        vm.assertFalse(registry.supportsInterface(0x780e9d63), "ERC-721 enumerable not served");
        vm.assertFalse(registry.supportsInterface(0xffffffff), "0xffffffff");
        vm.assertEq(bytes32(type(IERC721).interfaceId), bytes32(bytes4(0x80ac58cd)), "ERC-721 id");
    }
}
