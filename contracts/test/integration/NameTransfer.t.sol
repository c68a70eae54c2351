// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IBeatStreamRegistry, TextRecord, TrackInput} from "../../src/interfaces/IBeatStreamRegistry.sol";
import {Base_Test} from "../Base.t.sol";
import {IENSRegistryFull} from "../utils/IENSRegistryFull.sol";

/// @notice Authority over an artist is authority over its ENS name: transferring the name in ENS transfers it.
contract NameTransfer_Integration_Test is Base_Test {
    address internal buyer = address(0xB0E2);
    address internal oldOperator = address(0x0BE7);
    bytes32 internal node;
    uint256 internal trackId;

    function setUp() public override {
        super.setUp();
        vm.startPrank(artist);
        node = registry.registerArtist("alice", 100, new TextRecord[](0));
        trackId = registry.publishTrack(node, _input("Song"));
        IENSRegistryFull(address(ens)).setApprovalForAll(oldOperator, true);
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

    function test_WhenNameTransferredInEns_NewOwnerControlsArtist() external {
        vm.expectEmit(address(ens));
        emit IENSRegistryFull.Transfer(node, buyer);
        vm.prank(artist);
        ens.setOwner(node, buyer);
        vm.assertEq(ens.owner(node), buyer, "ENS owner");

        // The old owner and its operator lost control.
        vm.prank(artist);
        _expectUnauthorized(artist);
        registry.setRate(node, 1);
        vm.prank(oldOperator);
        _expectUnauthorized(oldOperator);
        registry.publishTrack(node, _input("Nope"));
        vm.prank(artist);
        _expectUnauthorized(artist);
        registry.unpublishTrack(trackId);

        // The address record is a record, not the owner: it pays the old owner until the new owner changes it.
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
        vm.assertEq(registry.track(trackId).title, "Remastered", "updated by the new owner");
        vm.assertEq(registry.text(node, "description"), "new management", "text");
    }

    function test_WhenNameTransferredBack_OriginalOwnerRegainsControl() external {
        vm.prank(artist);
        ens.setOwner(node, buyer);
        vm.prank(buyer);
        ens.setOwner(node, artist);
        vm.prank(artist);
        registry.setRate(node, 5);
        vm.prank(oldOperator);
        registry.setRate(node, 6);
        (, uint256 rate) = registry.artist(node);
        vm.assertEq(rate, 6, "rate");
    }

    function test_WhenNameTransferred_LabelStaysTaken() external {
        vm.prank(artist);
        ens.setOwner(node, buyer);
        vm.prank(buyer);
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamRegistry.BeatStreamRegistry_LabelTaken.selector, "alice")
        );
        registry.registerArtist("alice", 1, new TextRecord[](0));
    }
}
