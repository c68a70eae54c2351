// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IBeatStreamRegistry, Track, TrackInput} from "../../../src/interfaces/IBeatStreamRegistry.sol";
import {Registry_Unit_Test} from "./Registry.t.sol";

/// @notice Rates and the track catalogue: setRate, publishTrack, updateTrack, unpublishTrack, track, playTerms.
contract Catalogue_Unit_Test is Registry_Unit_Test {
    bytes32 internal node;

    function setUp() public override {
        super.setUp();
        node = _register(artist, "alice");
    }

    function _publish(string memory title, uint128 rate) internal returns (uint256 trackId) {
        vm.prank(artist);
        trackId = registry.publishTrack(node, _trackInput(title, rate));
    }

    function _approveOperator() internal {
        vm.prank(artist);
        registry.setApprovalForAll(operator, true);
    }

    function _expectUnauthorized(address caller) internal {
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamRegistry.BeatStreamRegistry_Unauthorized.selector, node, caller)
        );
    }

    /*//////////////////////////////////////////////////////////////
                                SET RATE
    //////////////////////////////////////////////////////////////*/

    function test_WhenOwnerSetsRate() external {
        vm.expectEmit(address(registry));
        emit IBeatStreamRegistry.ArtistRateChanged(node, 250);
        vm.prank(artist);
        registry.setRate(node, 250);
        (bool registered, uint256 rate) = registry.artist(node);
        vm.assertTrue(registered, "still registered");
        vm.assertEq(rate, 250, "rate");
    }

    function test_WhenOperatorSetsRate() external {
        _approveOperator();
        vm.prank(operator);
        registry.setRate(node, 7);
        (, uint256 rate) = registry.artist(node);
        vm.assertEq(rate, 7, "rate");
    }

    function test_RevertWhen_StrangerSetsRate() external {
        vm.prank(stranger);
        _expectUnauthorized(stranger);
        registry.setRate(node, 1);
    }

    function test_RevertWhen_OperatorApprovalRevoked() external {
        _approveOperator();
        vm.prank(artist);
        registry.setApprovalForAll(operator, false);
        vm.prank(operator);
        _expectUnauthorized(operator);
        registry.setRate(node, 1);
    }

    /// @dev v1 let this test, which owns eth. in ENS, past the manager check (and then refused eth. as no artist). In
    /// v2 owning a node in ENS gives no authority: only a name token does, and only artists have one.
    function test_RevertWhen_EnsOwnerOfNonArtistNodeSetsRate() external {
        vm.assertEq(ens.owner(ETH_NODE), address(this), "this test owns eth. in ENS");
        // Owning a node in ENS makes no artist: only a name token does.
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamRegistry.BeatStreamRegistry_UnknownArtist.selector, ETH_NODE)
        );
        registry.setRate(ETH_NODE, 1);
    }

    function test_RevertWhen_SetRateOfUnregisteredNode() external {
        bytes32 unknown = _node("nobody");
        vm.prank(artist);
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamRegistry.BeatStreamRegistry_UnknownArtist.selector, unknown)
        );
        registry.setRate(unknown, 1);
    }

    function test_RevertWhen_SetRateTooHigh() external {
        uint256 rate = uint256(type(uint248).max) + 1;
        vm.prank(artist);
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamRegistry.BeatStreamRegistry_RateTooHigh.selector, rate)
        );
        registry.setRate(node, rate);
    }

    /*//////////////////////////////////////////////////////////////
                             PUBLISH TRACK
    //////////////////////////////////////////////////////////////*/

    function test_WhenPublishingTracks_IdsCountFromOne() external {
        TrackInput memory input = _trackInput("Night Drive", 150);
        vm.expectEmit(address(registry));
        emit IBeatStreamRegistry.TrackPublished(
            1, node, input.title, input.duration, input.ratePerSecond, input.contentHash, input.metadataURI
        );
        vm.prank(artist);
        uint256 first = registry.publishTrack(node, input);
        uint256 second = _publish("Morning Run", 0);

        vm.assertEq(first, 1, "first id");
        vm.assertEq(second, 2, "second id");
        vm.assertEq(registry.trackCount(), 2, "trackCount");

        Track memory stored = registry.track(1);
        vm.assertEq(stored.artistNode, node, "artistNode");
        vm.assertEq(uint256(stored.ratePerSecond), 150, "ratePerSecond");
        vm.assertEq(uint256(stored.duration), 180, "duration");
        vm.assertTrue(stored.published, "published");
        vm.assertEq(stored.contentHash, keccak256("Night Drive"), "contentHash");
        vm.assertEq(stored.title, "Night Drive", "title");
        vm.assertEq(stored.metadataURI, "ipfs://Night Drive", "metadataURI");
    }

    function test_WhenOperatorPublishesTrack() external {
        _approveOperator();
        vm.prank(operator);
        uint256 id = registry.publishTrack(node, _trackInput("Op", 0));
        vm.assertEq(registry.track(id).artistNode, node, "track belongs to the artist");
    }

    function test_RevertWhen_StrangerPublishesTrack() external {
        vm.prank(stranger);
        _expectUnauthorized(stranger);
        registry.publishTrack(node, _trackInput("Spam", 0));
    }

    function test_RevertWhen_PublishingForUnknownArtist() external {
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamRegistry.BeatStreamRegistry_UnknownArtist.selector, ETH_NODE)
        );
        registry.publishTrack(ETH_NODE, _trackInput("Eth", 0));
    }

    function test_RevertWhen_PublishingEmptyTitle() external {
        vm.prank(artist);
        vm.expectRevert(abi.encodeWithSelector(IBeatStreamRegistry.BeatStreamRegistry_InvalidTrack.selector));
        registry.publishTrack(node, _trackInput("", 0));
    }

    function test_RevertWhen_PublishingZeroDuration() external {
        TrackInput memory input = _trackInput("Silence", 0);
        input.duration = 0;
        vm.prank(artist);
        vm.expectRevert(abi.encodeWithSelector(IBeatStreamRegistry.BeatStreamRegistry_InvalidTrack.selector));
        registry.publishTrack(node, input);
    }

    /*//////////////////////////////////////////////////////////////
                              UPDATE TRACK
    //////////////////////////////////////////////////////////////*/

    function test_WhenUpdatingTrack() external {
        uint256 id = _publish("Draft", 10);
        TrackInput memory input = _trackInput("Final", 20);
        input.duration = 240;
        vm.expectEmit(address(registry));
        emit IBeatStreamRegistry.TrackUpdated(id, node, "Final", 240, 20, keccak256("Final"), "ipfs://Final");
        vm.prank(artist);
        registry.updateTrack(id, input);

        Track memory stored = registry.track(id);
        vm.assertEq(stored.title, "Final", "title");
        vm.assertEq(uint256(stored.duration), 240, "duration");
        vm.assertEq(uint256(stored.ratePerSecond), 20, "rate");
        vm.assertEq(stored.artistNode, node, "stays with its artist");
        vm.assertEq(registry.trackCount(), 1, "no new id");
    }

    function test_WhenUpdatingUnpublishedTrack_PublishesAgain() external {
        uint256 id = _publish("Draft", 10);
        vm.prank(artist);
        registry.unpublishTrack(id);
        vm.prank(artist);
        registry.updateTrack(id, _trackInput("Back", 10));
        vm.assertTrue(registry.track(id).published, "published again");
    }

    function test_WhenOperatorUpdatesTrack() external {
        uint256 id = _publish("Draft", 10);
        _approveOperator();
        vm.prank(operator);
        registry.updateTrack(id, _trackInput("ByOperator", 10));
        vm.assertEq(registry.track(id).title, "ByOperator", "title");
    }

    function test_RevertWhen_UpdatingUnknownTrack() external {
        vm.prank(artist);
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamRegistry.BeatStreamRegistry_UnknownTrack.selector, 0)
        );
        registry.updateTrack(0, _trackInput("Zero", 0));
        vm.prank(artist);
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamRegistry.BeatStreamRegistry_UnknownTrack.selector, 99)
        );
        registry.updateTrack(99, _trackInput("Nope", 0));
    }

    function test_RevertWhen_StrangerUpdatesTrack() external {
        uint256 id = _publish("Draft", 10);
        vm.prank(stranger);
        _expectUnauthorized(stranger);
        registry.updateTrack(id, _trackInput("Hijack", 0));
    }

    function test_RevertWhen_OtherArtistUpdatesTrack() external {
        uint256 id = _publish("Draft", 10);
        _register(stranger, "mallory");
        vm.prank(stranger);
        _expectUnauthorized(stranger);
        registry.updateTrack(id, _trackInput("Hijack", 0));
    }

    function test_RevertWhen_UpdatingToInvalidTrack() external {
        uint256 id = _publish("Draft", 10);
        vm.prank(artist);
        vm.expectRevert(abi.encodeWithSelector(IBeatStreamRegistry.BeatStreamRegistry_InvalidTrack.selector));
        registry.updateTrack(id, _trackInput("", 10));

        TrackInput memory input = _trackInput("Zero", 10);
        input.duration = 0;
        vm.prank(artist);
        vm.expectRevert(abi.encodeWithSelector(IBeatStreamRegistry.BeatStreamRegistry_InvalidTrack.selector));
        registry.updateTrack(id, input);
    }

    /*//////////////////////////////////////////////////////////////
                             UNPUBLISH TRACK
    //////////////////////////////////////////////////////////////*/

    function test_WhenUnpublishingTrack() external {
        uint256 id = _publish("Gone", 10);
        vm.expectEmit(address(registry));
        emit IBeatStreamRegistry.TrackUnpublished(id, node);
        vm.prank(artist);
        registry.unpublishTrack(id);
        Track memory stored = registry.track(id);
        vm.assertFalse(stored.published, "unpublished");
        vm.assertEq(stored.title, "Gone", "details kept");
    }

    function test_RevertWhen_UnpublishingTwice() external {
        uint256 id = _publish("Gone", 10);
        vm.startPrank(artist);
        registry.unpublishTrack(id);
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamRegistry.BeatStreamRegistry_TrackNotPublished.selector, id)
        );
        registry.unpublishTrack(id);
        vm.stopPrank();
    }

    function test_RevertWhen_UnpublishingUnknownTrack() external {
        vm.prank(artist);
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamRegistry.BeatStreamRegistry_UnknownTrack.selector, 1)
        );
        registry.unpublishTrack(1);
    }

    function test_RevertWhen_StrangerUnpublishesTrack() external {
        uint256 id = _publish("Mine", 10);
        vm.prank(stranger);
        _expectUnauthorized(stranger);
        registry.unpublishTrack(id);
    }

    /*//////////////////////////////////////////////////////////////
                            TRACK, PLAY TERMS
    //////////////////////////////////////////////////////////////*/

    function test_RevertWhen_ReadingUnknownTrack() external {
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamRegistry.BeatStreamRegistry_UnknownTrack.selector, 1)
        );
        registry.track(1);
    }

    function test_WhenTrackHasRate_PlayTermsUseTrackRate() external {
        uint256 id = _publish("Priced", 150);
        (uint256 rate, address payee) = registry.playTerms(id);
        vm.assertEq(rate, 150, "track rate");
        vm.assertEq(payee, artist, "payee is the addr record");
    }

    function test_WhenTrackRateZero_PlayTermsUseArtistRate() external {
        uint256 id = _publish("Default", 0);
        (uint256 rate,) = registry.playTerms(id);
        vm.assertEq(rate, RATE, "artist default");

        vm.prank(artist);
        registry.setRate(node, 333);
        (rate,) = registry.playTerms(id);
        vm.assertEq(rate, 333, "follows the artist's current rate");
    }

    function test_WhenAddrRecordChanges_PlayTermsPayTheNewAddress() external {
        uint256 id = _publish("Song", 0);
        address wallet = address(0x3A11E7);
        vm.prank(artist);
        registry.setAddr(node, wallet);
        (, address payee) = registry.playTerms(id);
        vm.assertEq(payee, wallet, "payee follows addr");
    }

    function test_RevertWhen_PlayTermsOfUnknownTrack() external {
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamRegistry.BeatStreamRegistry_UnknownTrack.selector, 5)
        );
        registry.playTerms(5);
    }
}
