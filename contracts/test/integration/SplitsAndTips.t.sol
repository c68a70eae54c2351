// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TextRecord, TrackInput} from "../../src/interfaces/IBeatStreamRegistry.sol";
import {IBeatStreamVault} from "../../src/interfaces/IBeatStreamVault.sol";
import {SessionGrant, SettlementItem, TipItem} from "../../src/types/DataTypes.sol";
import {Base_Test} from "../Base.t.sol";

/// @notice The split story end to end, as the Rust side will mirror it: an artist splits a track with a featured
/// vocalist, a listener streams and tips, the split changes mid-stream, the name is sold and the new holder changes it
/// again; every recipient's earnings are what each settled version's shares say, and the vault stays solvent.
contract SplitsAndTips_Integration_Test is Base_Test {
    address internal vocalist = address(0x70CA1);
    address internal producer = address(0x960D);
    address internal buyer = address(0xB0E2);
    address internal operatorOfOldHolder = address(0x0BE7);

    bytes32 internal node;
    uint256 internal trackId;
    SessionGrant internal grant;

    function setUp() public override {
        super.setUp();
        _setFee(250);
        node = _register(artist, "duo", 100, new TextRecord[](0));
        vm.startPrank(artist);
        trackId = registry.publishTrack(
            node,
            TrackInput({
                title: "Feat.", duration: 200, ratePerSecond: 0, contentHash: bytes32(0), metadataURI: ""
            })
        );
        registry.setApprovalForAll(operatorOfOldHolder, true);
        vm.stopPrank();
        grant = _defaultGrant();
        _fund(listener, 100 * ONE_USDC);
    }

    function _split(address a, uint16 sa, address b, uint16 sb) internal returns (address split) {
        address[] memory r = new address[](2);
        (r[0], r[1]) = (a, b);
        uint16[] memory s = new uint16[](2);
        (s[0], s[1]) = (sa, sb);
        (split,) = vault.setSplit(node, trackId, r, s);
    }

    function _voucher(address payee, uint256 cumulative) internal view returns (SettlementItem memory item) {
        item = _item(LISTENER_KEY, SESSION_KEY, grant, payee, cumulative);
    }

    function test_WhenSplitChangesAndNameIsSold_EachVersionPaysItsRecipients() external {
        // v1: artist 70%, vocalist 30%. The relay names playPayee(trackId) in the vouchers.
        vm.prank(artist);
        address v1 = _split(artist, 7000, vocalist, 3000);
        vm.assertEq(vault.playPayee(trackId), v1, "plays pay v1");
        SettlementItem memory streamedUnderV1 = _voucher(v1, 1_000_000); // 1 USDC of seconds
        TipItem memory tipUnderV1 = _tip(0, SESSION_KEY, grant, v1, 1, 500_000, unicode"love the hook 🎤");

        // The artist sells the name before the keeper settles; the old holder's operator loses its power too.
        vm.prank(artist);
        registry.transferFrom(artist, buyer, uint256(node));
        vm.expectRevert(
            abi.encodeWithSelector(
                IBeatStreamVault.BeatStreamVault_NotManager.selector, node, operatorOfOldHolder
            )
        );
        vm.prank(operatorOfOldHolder);
        _split(artist, 5000, vocalist, 5000);

        // v2 by the buyer: buyer 60%, producer 40%. Later plays pay v2.
        vm.prank(buyer);
        address v2 = _split(buyer, 6000, producer, 4000);
        vm.assertEq(vault.playPayee(trackId), v2, "plays pay v2");
        SettlementItem[] memory items = new SettlementItem[](2);
        items[0] = streamedUnderV1;
        items[1] = _voucher(v2, 2_000_001);
        items[1].grantSignature = "";
        TipItem[] memory tips = new TipItem[](1);
        tips[0] = tipUnderV1;

        vm.expectEmit(address(vault));
        emit IBeatStreamVault.Tipped(
            vault.grantId(grant), listener, v1, 1, 500_000, 12_500, unicode"love the hook 🎤"
        );
        (uint256 settledCount, uint256 tipsSettled) = vault.settleBatchWithTips(items, tips);
        vm.assertEq(settledCount, 2, "both vouchers");
        vm.assertEq(tipsSettled, 1, "the tip");

        // v1: (1,000,000 - 25,000) + (500,000 - 12,500) settled in two settlements, each split 70/30.
        vm.assertEq(vault.earningsOf(artist), 682_500 + 341_250, "artist: 70% of v1's voucher and tip");
        vm.assertEq(vault.earningsOf(vocalist), 292_500 + 146_250, "vocalist: 30% of v1's");
        // v2: 2,000,001 - 50,000 = 1,950,001; 60% is 1,170,000.6 and 40% 780,000.4: the unit goes to the buyer.
        vm.assertEq(vault.earningsOf(buyer), 1_170_001, "buyer: 60% of v2's, rounded up");
        vm.assertEq(vault.earningsOf(producer), 780_000, "producer: 40% of v2's");
        vm.assertEq(vault.accruedFees(), 25_000 + 12_500 + 50_000, "fees once per settlement");
        vm.assertEq(vault.grantSpent(vault.grantId(grant)), 3_500_001, "vouchers and tip against the cap");

        // Solvent: the vault holds exactly the listener's funds, the earnings and the fees.
        (uint256 available, uint256 thawing,) = vault.accountOf(listener);
        uint256 earnings = vault.earningsOf(artist) + vault.earningsOf(vocalist) + vault.earningsOf(buyer)
            + vault.earningsOf(producer);
        vm.assertEq(
            usdc.balanceOf(address(vault)), available + thawing + earnings + vault.accruedFees(), "solvent"
        );

        // Recipients withdraw what they earned; the split payees hold nothing.
        vm.prank(vocalist);
        vault.withdrawEarnings(vocalist, 438_750);
        vm.assertEq(usdc.balanceOf(vocalist), 438_750, "vocalist paid out");
        vm.assertEq(vault.earningsOf(v1) + vault.earningsOf(v2), 0, "split payees hold nothing");

        // The buyer clears the track's split: plays pay the address record again (still the old holder's until the
        // buyer sets it, as for any transferred name).
        vm.prank(buyer);
        vault.clearSplit(node, trackId);
        vm.assertEq(vault.playPayee(trackId), registry.addr(node), "plays pay the addr record");
        vm.assertEq(registry.addr(node), artist, "the record the buyer has not changed yet");
    }
}
