// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC721Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";

import {IBeatStreamRegistry, TextRecord, TrackInput} from "../../src/interfaces/IBeatStreamRegistry.sol";
import {Base_Test} from "../Base.t.sol";

/// @notice Authority over an artist is its name token (v2; v1: its ENS name): transferring the token transfers the
/// artist, approvals let an operator manage it, and an operator approved by the old holder loses its power.
contract NameTransfer_Integration_Test is Base_Test {
    address internal buyer = address(0xB0E2);
    address internal oldOperator = address(0x0BE7);
    address internal tokenOperator = address(0x0BE8);
    bytes32 internal node;
    uint256 internal tokenId;
    uint256 internal trackId;

    function setUp() public override {
        super.setUp();
        node = _register(artist, "alice", 100, new TextRecord[](0));
        tokenId = uint256(node);
        vm.startPrank(artist);
        trackId = registry.publishTrack(node, _input("Song"));
        registry.setApprovalForAll(oldOperator, true);
        vm.stopPrank();
    }

    function _input(string memory title) internal pure returns (TrackInput memory) {
        return
            TrackInput({
                title: title, duration: 60, ratePerSecond: 0, contentHash: bytes32(0), metadataURI: ""
            });
    }

    function _expectUnauthorized(address caller) internal {
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamRegistry.BeatStreamRegistry_Unauthorized.selector, node, caller)
        );
    }

    function test_WhenNameTokenTransferred_NewHolderControlsArtist() external {
        vm.expectEmit(address(registry));
        emit IERC721.Transfer(artist, buyer, tokenId);
        vm.prank(artist);
        registry.transferFrom(artist, buyer, tokenId);
        vm.assertEq(registry.ownerOf(tokenId), buyer, "token holder");
        vm.assertEq(registry.managerOf(node), buyer, "manager");
        vm.assertEq(ens.owner(node), address(registry), "the ENS name never moved");

        // The old holder and its operator lost control.
        vm.prank(artist);
        _expectUnauthorized(artist);
        registry.setRate(node, 1);
        vm.prank(oldOperator);
        _expectUnauthorized(oldOperator);
        registry.publishTrack(node, _input("Nope"));
        vm.prank(artist);
        _expectUnauthorized(artist);
        registry.unpublishTrack(trackId);
        vm.prank(oldOperator);
        _expectUnauthorized(oldOperator);
        registry.setAddr(node, oldOperator);

        // The address record is a record, not the holder: it pays the old holder until the new one changes it.
        (, address payee) = registry.playTerms(trackId);
        vm.assertEq(payee, artist, "payee until setAddr");

        vm.startPrank(buyer);
        registry.setAddr(node, buyer);
        registry.setRate(node, 250);
        registry.setText(node, "description", "new management");
        registry.updateTrack(trackId, _input("Remastered"));
        uint256 newTrack = registry.publishTrack(node, _input("New"));
        registry.unpublishTrack(newTrack);
        vm.stopPrank();

        (uint256 rate, address newPayee) = registry.playTerms(trackId);
        vm.assertEq(rate, 250, "new rate");
        vm.assertEq(newPayee, buyer, "new payee");
        vm.assertEq(registry.track(trackId).title, "Remastered", "updated by the new holder");
        vm.assertEq(registry.text(node, "description"), "new management", "text");
    }

    function test_WhenNameTransferredBack_OriginalOwnerRegainsControl() external {
        vm.prank(artist);
        registry.transferFrom(artist, buyer, tokenId);
        vm.prank(buyer);
        registry.safeTransferFrom(buyer, artist, tokenId);
        vm.prank(artist);
        registry.setRate(node, 5);
        // An approval for all is the holder's, not the token's: it applies again once the artist holds it again.
        vm.prank(oldOperator);
        registry.setRate(node, 6);
        (, uint256 rate) = registry.artist(node);
        vm.assertEq(rate, 6, "rate");
    }

    function test_WhenNameTransferred_LabelStaysTaken() external {
        vm.prank(artist);
        registry.transferFrom(artist, buyer, tokenId);
        bytes32 secret = keccak256("buyer's secret");
        vm.prank(buyer);
        registry.commit(registry.makeCommitment("alice", buyer, secret));
        vm.warp(block.timestamp + registry.MIN_COMMITMENT_AGE());
        vm.prank(buyer);
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamRegistry.BeatStreamRegistry_LabelTaken.selector, "alice")
        );
        registry.registerArtist("alice", 1, new TextRecord[](0), secret);
    }

    function test_WhenTokenApproved_OperatorManagesAndLosesItOnTransfer() external {
        vm.prank(artist);
        registry.approve(tokenOperator, tokenId);
        vm.assertEq(registry.getApproved(tokenId), tokenOperator, "approved");

        vm.startPrank(tokenOperator);
        registry.setRate(node, 42);
        registry.setText(node, "genre", "house");
        registry.updateTrack(trackId, _input("Edited"));
        vm.stopPrank();
        (, uint256 rate) = registry.artist(node);
        vm.assertEq(rate, 42, "rate set by the approved address");

        // The approval of one token is cleared by its transfer.
        vm.prank(artist);
        registry.transferFrom(artist, buyer, tokenId);
        vm.assertEq(registry.getApproved(tokenId), address(0), "approval cleared");
        vm.prank(tokenOperator);
        _expectUnauthorized(tokenOperator);
        registry.setRate(node, 43);
    }

    function test_WhenApprovalRevoked_OperatorLosesPower() external {
        vm.prank(artist);
        registry.setApprovalForAll(oldOperator, false);
        vm.prank(oldOperator);
        _expectUnauthorized(oldOperator);
        registry.setRate(node, 1);
    }

    function test_WhenOperatorTransfersName_ArtistMovesWithIt() external {
        // An operator approved for all may also move the name, as ERC-721 has it.
        vm.prank(oldOperator);
        registry.safeTransferFrom(artist, buyer, tokenId);
        vm.assertEq(registry.managerOf(node), buyer, "manager");
        vm.prank(oldOperator);
        _expectUnauthorized(oldOperator);
        registry.setRate(node, 1);
    }

    function test_RevertWhen_StrangerTransfersName() external {
        vm.prank(buyer);
        vm.expectRevert(
            abi.encodeWithSelector(IERC721Errors.ERC721InsufficientApproval.selector, buyer, tokenId)
        );
        registry.transferFrom(artist, buyer, tokenId);
        vm.assertEq(registry.managerOf(node), artist, "unchanged");
    }
}
