// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TextRecord, TrackInput} from "../../../src/interfaces/IBeatStreamRegistry.sol";
import {IBeatStreamVault} from "../../../src/interfaces/IBeatStreamVault.sol";
import {SessionGrant, SettlementItem, SkipReason} from "../../../src/types/DataTypes.sol";
import {Base_Test} from "../../Base.t.sol";

/// @notice Splits: setSplit and clearSplit (the manager rule and every bad input), and settlement to a split payee
/// (the parts, the fee taken once, versions honoured whenever vouchers settle).
contract Splits_Vault_Unit_Test is Base_Test {
    address internal alice = address(0xA11);
    address internal bob = address(0xB0B);
    address internal carol = address(0xCA201);
    address internal stranger = address(0x5792);

    bytes32 internal node;
    uint256 internal trackId;

    function setUp() public override {
        super.setUp();
        node = _register(artist, "neon", 100, new TextRecord[](0));
        vm.prank(artist);
        trackId = registry.publishTrack(
            node,
            TrackInput({
                title: "Night Drive",
                duration: 180,
                ratePerSecond: 0,
                contentHash: bytes32(0),
                metadataURI: ""
            })
        );
    }

    /*//////////////////////////////////////////////////////////////
                                 HELPERS
    //////////////////////////////////////////////////////////////*/

    function _two(address a, address b) internal pure returns (address[] memory r) {
        r = new address[](2);
        (r[0], r[1]) = (a, b);
    }

    function _three(address a, address b, address c) internal pure returns (address[] memory r) {
        r = new address[](3);
        (r[0], r[1], r[2]) = (a, b, c);
    }

    function _shares(uint16 a, uint16 b) internal pure returns (uint16[] memory s) {
        s = new uint16[](2);
        (s[0], s[1]) = (a, b);
    }

    function _shares(uint16 a, uint16 b, uint16 c) internal pure returns (uint16[] memory s) {
        s = new uint16[](3);
        (s[0], s[1], s[2]) = (a, b, c);
    }

    function _set(uint256 track, address[] memory recipients, uint16[] memory shares)
        internal
        returns (address split, uint64 version)
    {
        vm.prank(artist);
        return vault.setSplit(node, track, recipients, shares);
    }

    function _expectRevertSet(bytes memory err, address[] memory recipients, uint16[] memory shares)
        internal
    {
        vm.expectRevert(err);
        vm.prank(artist);
        vault.setSplit(node, 0, recipients, shares);
    }

    /*//////////////////////////////////////////////////////////////
                               SETTING SPLITS
    //////////////////////////////////////////////////////////////*/

    function test_WhenManagerSetsArtistSplit_StoresVersionOneAndEmits() external {
        address expected = vault.splitPayee(node, 0, 1);
        vm.expectEmit(address(vault));
        emit IBeatStreamVault.SplitSet(node, 0, expected, 1, _two(alice, bob), _shares(7000, 3000));
        (address split, uint64 version) = _set(0, _two(alice, bob), _shares(7000, 3000));
        vm.assertEq(split, expected, "payee derived from (node, trackId, version)");
        vm.assertEq(uint256(version), 1, "first version");
        (address current, uint64 currentVersion) = vault.currentSplit(node, 0);
        vm.assertEq(current, split, "current split");
        vm.assertEq(uint256(currentVersion), 1, "current version");
        vm.assertEq(uint256(vault.splitVersion(node, 0)), 1, "splitVersion");
        (bytes32 n, uint256 t, uint64 v, address[] memory recipients, uint16[] memory shares) =
            vault.splitOf(split);
        vm.assertEq(n, node, "node");
        vm.assertEq(t, 0, "artist-level");
        vm.assertEq(uint256(v), 1, "version");
        vm.assertEq(recipients.length, 2, "two recipients");
        vm.assertEq(recipients[0], alice, "alice first");
        vm.assertEq(recipients[1], bob, "bob second");
        vm.assertEq(uint256(shares[0]), 7000, "alice's share");
        vm.assertEq(uint256(shares[1]), 3000, "bob's share");
        (address none,) = vault.currentSplit(node, trackId);
        vm.assertEq(none, address(0), "the track has no split of its own");
    }

    function test_WhenManagerSetsTrackSplit_VersionsCountPerTrack() external {
        _set(0, _two(alice, bob), _shares(5000, 5000));
        (address split, uint64 version) = _set(trackId, _two(alice, carol), _shares(2500, 7500));
        vm.assertEq(uint256(version), 1, "a track's versions start at 1");
        vm.assertEq(split, vault.splitPayee(node, trackId, 1), "track payee");
        vm.assertTrue(split != vault.splitPayee(node, 0, 1), "track and artist payees differ");
        (address split2, uint64 version2) = _set(trackId, _two(alice, carol), _shares(2500, 7500));
        vm.assertEq(uint256(version2), 2, "second version");
        vm.assertTrue(split2 != split, "each version has its own payee");
    }

    function test_WhenSplitAddressHeldEarnings_SetSplitPassesThemOn() external {
        address split = vault.splitPayee(node, 0, 1);
        _fund(listener, 10 * ONE_USDC);
        vault.settleBatch(_one(_item(LISTENER_KEY, SESSION_KEY, _defaultGrant(), split, 1001)));
        vm.assertEq(vault.earningsOf(split), 1001, "paid as a plain payee before the split existed");
        uint256[] memory parts = new uint256[](2);
        (parts[0], parts[1]) = (501, 500);
        vm.expectEmit(address(vault));
        emit IBeatStreamVault.SplitPaid(split, 1001, parts);
        _set(0, _two(alice, bob), _shares(5000, 5000));
        vm.assertEq(vault.earningsOf(split), 0, "nothing left on the split");
        vm.assertEq(vault.earningsOf(alice), 501, "alice");
        vm.assertEq(vault.earningsOf(bob), 500, "bob");
    }

    function test_WhenTwentyRecipients_Sets() external {
        address[] memory recipients = new address[](20);
        uint16[] memory shares = new uint16[](20);
        for (uint256 i; i < 20; ++i) {
            recipients[i] = address(uint160(0xF000 + i));
            shares[i] = 500;
        }
        (address split,) = _set(0, recipients, shares);
        (,,, address[] memory stored,) = vault.splitOf(split);
        vm.assertEq(stored.length, 20, "twenty recipients");
        vm.assertEq(vault.MAX_SPLIT_RECIPIENTS(), 20, "the maximum");
    }

    /*//////////////////////////////////////////////////////////////
                               THE MANAGER RULE
    //////////////////////////////////////////////////////////////*/

    function test_RevertWhen_CallerIsNotTheManager() external {
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_NotManager.selector, node, stranger)
        );
        vm.prank(stranger);
        vault.setSplit(node, 0, _two(alice, bob), _shares(5000, 5000));
    }

    function test_RevertWhen_ArtistUnknown() external {
        bytes32 unknown = keccak256("nobody");
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_NotManager.selector, unknown, artist)
        );
        vm.prank(artist);
        vault.setSplit(unknown, 0, _two(alice, bob), _shares(5000, 5000));
    }

    function test_RevertWhen_StrangerClearsSplit() external {
        _set(0, _two(alice, bob), _shares(5000, 5000));
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_NotManager.selector, node, stranger)
        );
        vm.prank(stranger);
        vault.clearSplit(node, 0);
    }

    function test_WhenHolderApprovedOperator_OperatorSetsSplit() external {
        vm.prank(artist);
        registry.setApprovalForAll(stranger, true);
        vm.prank(stranger);
        (, uint64 version) = vault.setSplit(node, 0, _two(alice, bob), _shares(5000, 5000));
        vm.assertEq(uint256(version), 1, "an operator for all manages");

        address approved = address(0xAB);
        vm.prank(artist);
        registry.approve(approved, uint256(node));
        vm.prank(approved);
        (, version) = vault.setSplit(node, trackId, _two(alice, bob), _shares(5000, 5000));
        vm.assertEq(uint256(version), 1, "an address approved for the name manages");
    }

    function test_WhenNameTransferred_NewHolderManagesAndOldHolderNoLonger() external {
        address newHolder = address(0x4E3);
        _set(0, _two(alice, bob), _shares(5000, 5000));
        vm.prank(artist);
        registry.transferFrom(artist, newHolder, uint256(node));

        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_NotManager.selector, node, artist)
        );
        vm.prank(artist);
        vault.setSplit(node, 0, _two(alice, carol), _shares(5000, 5000));
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_NotManager.selector, node, artist)
        );
        vm.prank(artist);
        vault.clearSplit(node, 0);

        vm.prank(newHolder);
        (, uint64 version) = vault.setSplit(node, 0, _two(alice, carol), _shares(5000, 5000));
        vm.assertEq(uint256(version), 2, "the new holder sets the next version");
        vm.prank(newHolder);
        vault.clearSplit(node, 0);
    }

    function test_RevertWhen_TrackIsAnotherArtists() external {
        address other = address(0x07E4);
        bytes32 otherNode = _register(other, "other", 100, new TextRecord[](0));
        vm.prank(other);
        uint256 otherTrack = registry.publishTrack(
            otherNode,
            TrackInput({
                title: "Theirs", duration: 60, ratePerSecond: 0, contentHash: bytes32(0), metadataURI: ""
            })
        );
        vm.expectRevert(
            abi.encodeWithSelector(
                IBeatStreamVault.BeatStreamVault_TrackNotOfArtist.selector, node, otherTrack
            )
        );
        vm.prank(artist);
        vault.setSplit(node, otherTrack, _two(alice, bob), _shares(5000, 5000));
    }

    function test_RevertWhen_TrackUnknown() external {
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_TrackNotOfArtist.selector, node, 99)
        );
        vm.prank(artist);
        vault.setSplit(node, 99, _two(alice, bob), _shares(5000, 5000));
    }

    /*//////////////////////////////////////////////////////////////
                                 BAD INPUT
    //////////////////////////////////////////////////////////////*/

    function test_RevertWhen_SplitEmpty() external {
        _expectRevertSet(
            abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_SplitEmpty.selector),
            new address[](0),
            new uint16[](0)
        );
    }

    function test_RevertWhen_TooManyRecipients() external {
        address[] memory recipients = new address[](21);
        uint16[] memory shares = new uint16[](21);
        for (uint256 i; i < 21; ++i) {
            recipients[i] = address(uint160(0xF000 + i));
            shares[i] = 476;
        }
        _expectRevertSet(
            abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_SplitTooManyRecipients.selector, 21, 20),
            recipients,
            shares
        );
    }

    function test_RevertWhen_LengthsDiffer() external {
        _expectRevertSet(
            abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_SplitLengthMismatch.selector, 3, 2),
            _three(alice, bob, carol),
            _shares(5000, 5000)
        );
    }

    function test_RevertWhen_RecipientZero() external {
        _expectRevertSet(
            abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_SplitZeroRecipient.selector, 1),
            _two(alice, address(0)),
            _shares(5000, 5000)
        );
    }

    function test_RevertWhen_RecipientDuplicated() external {
        _expectRevertSet(
            abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_SplitDuplicateRecipient.selector, alice),
            _three(alice, bob, alice),
            _shares(4000, 3000, 3000)
        );
    }

    function test_RevertWhen_ShareZero() external {
        _expectRevertSet(
            abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_SplitZeroShare.selector, 2),
            _three(alice, bob, carol),
            _shares(5000, 5000, 0)
        );
    }

    function test_RevertWhen_SharesBelowTotal() external {
        _expectRevertSet(
            abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_SplitSharesNotTotal.selector, 9999),
            _two(alice, bob),
            _shares(5000, 4999)
        );
    }

    function test_RevertWhen_SharesAboveTotal() external {
        _expectRevertSet(
            abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_SplitSharesNotTotal.selector, 10_001),
            _two(alice, bob),
            _shares(5001, 5000)
        );
    }

    function test_RevertWhen_RecipientIsASplit() external {
        (address split,) = _set(trackId, _two(alice, bob), _shares(5000, 5000));
        _expectRevertSet(
            abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_SplitRecipientIsSplit.selector, split),
            _two(alice, split),
            _shares(5000, 5000)
        );
    }

    function test_RevertWhen_ClearingWithoutSplit() external {
        vm.expectRevert(abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_NoSplit.selector, node, 0));
        vm.prank(artist);
        vault.clearSplit(node, 0);
    }

    /*//////////////////////////////////////////////////////////////
                                 SETTLEMENT
    //////////////////////////////////////////////////////////////*/

    function test_WhenVoucherPaysSplit_RecipientsGetLargestRemainderPartsAfterOneFee() external {
        _setFee(250);
        (address split,) = _set(0, _three(alice, bob, carol), _shares(3333, 3333, 3334));
        _fund(listener, 10 * ONE_USDC);
        // 1,000,003 settled, fee 25,000 (2.5% rounded down), 975,003 to split: exact shares 324,968.4999,
        // 324,968.4999 and 325,066.0002; floors sum to 975,002, the unit left goes to the largest remainder (alice, then
        // bob on a tie: both .4999, alice first).
        uint256[] memory parts = new uint256[](3);
        (parts[0], parts[1], parts[2]) = (324_969, 324_968, 325_066);
        _expectSettled(_defaultGrant(), split, 1_000_003, 1_000_003, 25_000);
        vm.expectEmit(address(vault));
        emit IBeatStreamVault.SplitPaid(split, 975_003, parts);
        uint256 count =
            vault.settleBatch(_one(_item(LISTENER_KEY, SESSION_KEY, _defaultGrant(), split, 1_000_003)));
        vm.assertEq(count, 1, "settled");
        vm.assertEq(vault.earningsOf(alice), 324_969, "alice");
        vm.assertEq(vault.earningsOf(bob), 324_968, "bob");
        vm.assertEq(vault.earningsOf(carol), 325_066, "carol");
        vm.assertEq(vault.earningsOf(split), 0, "the split keeps nothing");
        vm.assertEq(vault.accruedFees(), 25_000, "fee once, on the whole amount");
        vm.assertEq(
            vault.settled(vault.grantId(_defaultGrant()), split), 1_000_003, "settled under the split payee"
        );
        uint256[] memory viewParts = vault.splitParts(split, 975_003);
        vm.assertEq(viewParts[0] + viewParts[1] + viewParts[2], 975_003, "splitParts agrees");
        vm.assertEq(viewParts[0], 324_969, "splitParts[0]");
    }

    function test_WhenRemaindersTie_EarlierRecipientGetsTheUnit() external {
        (address split,) = _set(0, _two(alice, bob), _shares(5000, 5000));
        uint256[] memory parts = vault.splitParts(split, 3);
        vm.assertEq(parts[0], 2, "alice first on a tie");
        vm.assertEq(parts[1], 1, "bob");
        (split,) = _set(0, _two(bob, alice), _shares(5000, 5000));
        parts = vault.splitParts(split, 3);
        vm.assertEq(parts[0], 2, "the earlier recipient, whoever it is");
        vm.assertEq(vault.splitParts(address(0xDEAD), 100).length, 0, "no split, no parts");
    }

    function test_WhenVouchersStreamedUnderV1SettleAfterV2_V1RecipientsArePaid() external {
        (address v1,) = _set(trackId, _two(alice, bob), _shares(6000, 4000));
        _fund(listener, 100 * ONE_USDC);
        SessionGrant memory grant = _defaultGrant();
        // Streamed under v1: the relay named v1's payee. The keeper has not settled yet when v2 is set.
        SettlementItem memory underV1 = _item(LISTENER_KEY, SESSION_KEY, grant, v1, 10_000);
        (address v2, uint64 version) = _set(trackId, _two(bob, carol), _shares(5000, 5000));
        vm.assertEq(uint256(version), 2, "v2");
        SettlementItem memory underV2 = _item(LISTENER_KEY, SESSION_KEY, grant, v2, 4000);
        SettlementItem[] memory items = new SettlementItem[](2);
        (items[0], items[1]) = (underV1, underV2);
        vm.assertEq(vault.settleBatch(items), 2, "both settle");
        vm.assertEq(vault.earningsOf(alice), 6000, "alice: 60% of v1's 10,000");
        vm.assertEq(vault.earningsOf(bob), 4000 + 2000, "bob: 40% of v1's and 50% of v2's");
        vm.assertEq(vault.earningsOf(carol), 2000, "carol: 50% of v2's 4,000, nothing of v1's");

        // After a clear, a later voucher under v1 still pays v1's recipients.
        vm.prank(artist);
        vault.clearSplit(node, trackId);
        (address current,) = vault.currentSplit(node, trackId);
        vm.assertEq(current, address(0), "no split for new plays");
        vault.settleBatch(_one(_item(LISTENER_KEY, SESSION_KEY, grant, v1, 15_000)));
        vm.assertEq(vault.earningsOf(alice), 9000, "alice: 60% of v1's next 5,000 too");
        vm.assertEq(vault.earningsOf(carol), 2000, "carol unchanged");
    }

    function test_WhenReadingPlayPayee_TrackSplitThenArtistSplitThenAddr() external {
        vm.assertEq(vault.playPayee(trackId), artist, "no split: the addr record");
        (address artistSplit,) = _set(0, _two(alice, bob), _shares(5000, 5000));
        vm.assertEq(vault.playPayee(trackId), artistSplit, "the artist's split");
        (address trackSplit,) = _set(trackId, _two(alice, carol), _shares(5000, 5000));
        vm.assertEq(vault.playPayee(trackId), trackSplit, "the track's split first");
        vm.prank(artist);
        vault.clearSplit(node, trackId);
        vm.assertEq(vault.playPayee(trackId), artistSplit, "back to the artist's split");
        vm.prank(artist);
        vault.clearSplit(node, 0);
        vm.prank(artist);
        registry.setAddr(node, carol);
        vm.assertEq(vault.playPayee(trackId), carol, "back to the addr record, as it is now");
        vm.expectRevert();
        vault.playPayee(99);
    }

    function test_WhenSplitCleared_EmitsAndNextVersionFollows() external {
        (address v1,) = _set(0, _two(alice, bob), _shares(5000, 5000));
        vm.expectEmit(address(vault));
        emit IBeatStreamVault.SplitCleared(node, 0, v1, 1);
        vm.prank(artist);
        vault.clearSplit(node, 0);
        vm.assertEq(uint256(vault.splitVersion(node, 0)), 1, "version kept");
        (, uint64 version) = _set(0, _two(alice, bob), _shares(5000, 5000));
        vm.assertEq(uint256(version), 2, "the next set is v2");
    }

    function test_WhenRecipientsWithdraw_TheyGetTheirParts() external {
        (address split,) = _set(0, _two(alice, bob), _shares(9000, 1000));
        _fund(listener, 10 * ONE_USDC);
        vault.settleBatch(_one(_item(LISTENER_KEY, SESSION_KEY, _defaultGrant(), split, ONE_USDC)));
        vm.prank(bob);
        vault.withdrawEarnings(bob, 100_000);
        vm.assertEq(usdc.balanceOf(bob), 100_000, "bob withdrew his 10%");
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_InsufficientEarnings.selector, 0, 1)
        );
        vm.prank(split);
        vault.withdrawEarnings(split, 1);
    }

    function test_WhenGasTooLowForSplitRecipients_SkipsInsufficientGasAndBatchGoesOn() external {
        address[] memory recipients = new address[](20);
        uint16[] memory shares = new uint16[](20);
        for (uint256 i; i < 20; ++i) {
            recipients[i] = address(uint160(0xF000 + i));
            shares[i] = 500;
        }
        (address split,) = _set(0, recipients, shares);
        _fund(listener, 10 * ONE_USDC);
        SettlementItem memory item = _item(LISTENER_KEY, SESSION_KEY, _defaultGrant(), split, ONE_USDC);
        _expectSkipped(item, SkipReason.InsufficientGas);
        uint256 count = vault.settleBatch{gas: 400_000}(_one(item));
        vm.assertEq(count, 0, "skipped, not reverted");
        vm.assertEq(vault.settled(vault.grantId(item.grant), split), 0, "nothing moved");
        vm.assertEq(vault.settleBatch{gas: 2_000_000}(_one(item)), 1, "settles with enough gas");
        vm.assertEq(vault.earningsOf(recipients[19]), ONE_USDC / 20, "the last recipient is paid");
    }
}
