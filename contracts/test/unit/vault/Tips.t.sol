// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TextRecord} from "../../../src/interfaces/IBeatStreamRegistry.sol";
import {IBeatStreamVault} from "../../../src/interfaces/IBeatStreamVault.sol";
import {SessionGrant, SettlementItem, SkipReason, TipItem} from "../../../src/types/DataTypes.sol";
import {Base_Test} from "../../Base.t.sol";

/// @notice Tips: settleBatchWithTips, the EIP-712 Tip type, the cap and funding rules, replay, the message limit and
/// every skip reason a tip can get.
contract Tips_Vault_Unit_Test is Base_Test {
    string internal constant MESSAGE = unicode"great set! 🎶 <b>not bold</b>";

    SessionGrant internal grant;
    bytes32 internal id;

    function setUp() public override {
        super.setUp();
        grant = _defaultGrant();
        id = vault.grantId(grant);
    }

    function _defaultTip(uint256 tipId, uint256 amount) internal view returns (TipItem memory) {
        return _tip(LISTENER_KEY, SESSION_KEY, grant, artist, tipId, amount, MESSAGE);
    }

    function _settleTips(TipItem[] memory tips) internal returns (uint256 tipsSettled) {
        (, tipsSettled) = vault.settleBatchWithTips(_noItems(), tips);
    }

    function _expectTipSkipped(TipItem memory tip, SkipReason reason) internal {
        vm.expectEmit(address(vault));
        emit IBeatStreamVault.TipSkipped(vault.grantId(tip.grant), tip.payee, tip.tipId, reason);
    }

    function _bytes(uint256 n) internal pure returns (string memory) {
        bytes memory b = new bytes(n);
        for (uint256 i; i < n; ++i) {
            b[i] = "x";
        }
        return string(b);
    }

    function test_WhenTipValid_SettlesOnceAndEmitsTheMessage() external {
        _setFee(250);
        _fund(listener, 10 * ONE_USDC);
        TipItem memory tip = _defaultTip(7, 2 * ONE_USDC);
        vm.expectEmit(address(vault));
        emit IBeatStreamVault.GrantRegistered(
            id, listener, sessionKey, grant.cap, grant.expiresAt, grant.nonce
        );
        vm.expectEmit(address(vault));
        emit IBeatStreamVault.Tipped(id, listener, artist, 7, 2 * ONE_USDC, 50_000, MESSAGE);
        (uint256 settledCount, uint256 tipsSettled) = vault.settleBatchWithTips(_noItems(), _oneTip(tip));
        vm.assertEq(settledCount, 0, "no vouchers");
        vm.assertEq(tipsSettled, 1, "the tip settled");
        vm.assertEq(vault.earningsOf(artist), 2 * ONE_USDC - 50_000, "artist paid after the fee");
        vm.assertEq(vault.accruedFees(), 50_000, "fee");
        vm.assertEq(vault.grantSpent(id), 2 * ONE_USDC, "counts toward the grant's cap");
        (uint256 available,,) = vault.accountOf(listener);
        vm.assertEq(available, 8 * ONE_USDC, "debited from the listener");
        vm.assertTrue(vault.isTipSettled(id, 7), "tip 7 settled");
        vm.assertFalse(vault.isTipSettled(id, 6), "tip 6 not");
        vm.assertFalse(vault.isTipSettled(id, 7 + 256), "the next word's bit not");
    }

    function test_WhenTipReplayed_SkipsTipAlreadySettled() external {
        _fund(listener, 10 * ONE_USDC);
        TipItem memory tip = _defaultTip(1, ONE_USDC);
        TipItem[] memory twice = new TipItem[](2);
        (twice[0], twice[1]) = (tip, tip);
        _expectTipSkipped(tip, SkipReason.TipAlreadySettled);
        vm.assertEq(_settleTips(twice), 1, "the copy in the same batch is skipped");
        _expectTipSkipped(tip, SkipReason.TipAlreadySettled);
        vm.assertEq(_settleTips(_oneTip(tip)), 0, "and in a later batch");
        vm.assertEq(vault.earningsOf(artist), ONE_USDC, "paid once");
        vm.assertEq(vault.grantSpent(id), ONE_USDC, "spent once");
    }

    function test_WhenTipAboveCap_SkipsCapExceeded() external {
        _fund(listener, 10 * ONE_USDC);
        grant.cap = ONE_USDC;
        id = vault.grantId(grant);
        // Vouchers and tips share the cap: 0.8 USDC streamed leaves 0.2 for tips.
        vault.settleBatch(_one(_item(LISTENER_KEY, SESSION_KEY, grant, artist, 800_000)));
        TipItem memory tip = _tip(0, SESSION_KEY, grant, artist, 1, 200_001, MESSAGE);
        _expectTipSkipped(tip, SkipReason.CapExceeded);
        vm.assertEq(_settleTips(_oneTip(tip)), 0, "above what the cap leaves");
        tip = _tip(0, SESSION_KEY, grant, artist, 1, 200_000, MESSAGE);
        vm.assertEq(_settleTips(_oneTip(tip)), 1, "exactly what the cap leaves");
        vm.assertEq(vault.grantSpent(id), ONE_USDC, "the cap spent");
    }

    function test_WhenTipAboveFunds_SkipsInsufficientFunds() external {
        _fund(listener, ONE_USDC);
        TipItem memory tip = _defaultTip(1, ONE_USDC + 1);
        _expectTipSkipped(tip, SkipReason.InsufficientFunds);
        vm.assertEq(_settleTips(_oneTip(tip)), 0, "not funded");
        vm.assertEq(vault.grantSpent(id), 0, "nothing spent");
        vm.assertFalse(vault.isTipSettled(id, 1), "and the id stays unused");
    }

    function test_WhenFundsThawing_TipStillSettles() external {
        _fund(listener, ONE_USDC);
        vm.prank(listener);
        vault.requestWithdrawal(ONE_USDC);
        vm.assertEq(_settleTips(_oneTip(_defaultTip(1, 600_000))), 1, "thawing funds pay, as for vouchers");
        (uint256 available, uint256 thawing,) = vault.accountOf(listener);
        vm.assertEq(available, 0, "available");
        vm.assertEq(thawing, 400_000, "thawing debited");
    }

    function test_WhenMessageTooLong_SkipsMessageTooLong() external {
        _fund(listener, 10 * ONE_USDC);
        TipItem memory tip = _tip(LISTENER_KEY, SESSION_KEY, grant, artist, 1, ONE_USDC, _bytes(281));
        _expectTipSkipped(tip, SkipReason.MessageTooLong);
        vm.assertEq(_settleTips(_oneTip(tip)), 0, "281 bytes");
        tip = _tip(LISTENER_KEY, SESSION_KEY, grant, artist, 1, ONE_USDC, _bytes(280));
        vm.expectEmit(address(vault));
        emit IBeatStreamVault.Tipped(id, listener, artist, 1, ONE_USDC, 0, _bytes(280));
        vm.assertEq(_settleTips(_oneTip(tip)), 1, "280 bytes");
        vm.assertEq(vault.MAX_TIP_MESSAGE_BYTES(), 280, "the limit");
    }

    function test_WhenMessageEmpty_Settles() external {
        _fund(listener, 10 * ONE_USDC);
        vm.assertEq(
            _settleTips(_oneTip(_tip(LISTENER_KEY, SESSION_KEY, grant, artist, 1, ONE_USDC, ""))),
            1,
            "no message"
        );
    }

    function test_WhenTipZeroOrPayeeZero_SkipsMalformed() external {
        _fund(listener, 10 * ONE_USDC);
        TipItem memory zero = _defaultTip(1, 0);
        _expectTipSkipped(zero, SkipReason.Malformed);
        vm.assertEq(_settleTips(_oneTip(zero)), 0, "zero amount");
        TipItem memory noPayee = _tip(LISTENER_KEY, SESSION_KEY, grant, address(0), 1, ONE_USDC, MESSAGE);
        _expectTipSkipped(noPayee, SkipReason.Malformed);
        vm.assertEq(_settleTips(_oneTip(noPayee)), 0, "zero payee");
        TipItem memory shortSig = _defaultTip(1, ONE_USDC);
        shortSig.tipSignature = hex"1234";
        _expectTipSkipped(shortSig, SkipReason.Malformed);
        vm.assertEq(_settleTips(_oneTip(shortSig)), 0, "signature not 65 bytes");
    }

    function test_WhenTipSignedWrongly_SkipsInvalidVoucherSignature() external {
        _fund(listener, 10 * ONE_USDC);
        TipItem memory wrongKey = _tip(LISTENER_KEY, LISTENER_KEY, grant, artist, 1, ONE_USDC, MESSAGE);
        _expectTipSkipped(wrongKey, SkipReason.InvalidVoucherSignature);
        vm.assertEq(_settleTips(_oneTip(wrongKey)), 0, "signed by the listener, not the session key");

        TipItem memory otherMessage = _defaultTip(1, ONE_USDC);
        otherMessage.message = "a message the key did not sign";
        _expectTipSkipped(otherMessage, SkipReason.InvalidVoucherSignature);
        vm.assertEq(_settleTips(_oneTip(otherMessage)), 0, "the message is signed");

        TipItem memory otherAmount = _defaultTip(1, ONE_USDC);
        otherAmount.amount = ONE_USDC + 1;
        _expectTipSkipped(otherAmount, SkipReason.InvalidVoucherSignature);
        vm.assertEq(_settleTips(_oneTip(otherAmount)), 0, "the amount is signed");

        TipItem memory highS = _defaultTip(1, ONE_USDC);
        highS.tipSignature = _highS(highS.tipSignature);
        _expectTipSkipped(highS, SkipReason.InvalidVoucherSignature);
        vm.assertEq(_settleTips(_oneTip(highS)), 0, "high-s twin");
    }

    function test_WhenVoucherSignatureUsedAsTip_SkipsInvalidVoucherSignature() external {
        _fund(listener, 10 * ONE_USDC);
        TipItem memory tip = _defaultTip(ONE_USDC, ONE_USDC);
        // A voucher for the same (grant, payee) signs another type: it cannot pass as a tip.
        tip.tipSignature = _signVoucher(SESSION_KEY, grant, artist, ONE_USDC);
        _expectTipSkipped(tip, SkipReason.InvalidVoucherSignature);
        vm.assertEq(_settleTips(_oneTip(tip)), 0, "distinct typehashes");
    }

    function test_WhenNewGrantUnsigned_SkipsInvalidGrantSignature() external {
        _fund(listener, 10 * ONE_USDC);
        TipItem memory tip = _tip(0, SESSION_KEY, grant, artist, 1, ONE_USDC, MESSAGE);
        _expectTipSkipped(tip, SkipReason.InvalidGrantSignature);
        vm.assertEq(_settleTips(_oneTip(tip)), 0, "an unregistered grant needs its signature");
    }

    function test_WhenGrantExpired_SkipsGrantExpired() external {
        _fund(listener, 10 * ONE_USDC);
        TipItem memory tip = _defaultTip(1, ONE_USDC);
        vm.warp(uint256(grant.expiresAt) + SETTLEMENT_WINDOW + 1);
        _expectTipSkipped(tip, SkipReason.GrantExpired);
        vm.assertEq(_settleTips(_oneTip(tip)), 0, "past the settlement window");
    }

    function test_WhenGrantRevoked_SkipsGrantRevoked() external {
        _fund(listener, 10 * ONE_USDC);
        vm.prank(listener);
        vault.revokeGrant(id);
        TipItem memory tip = _defaultTip(1, ONE_USDC);
        vm.assertEq(_settleTips(_oneTip(tip)), 1, "settles during the delay");
        vm.warp(block.timestamp + WITHDRAWAL_DELAY);
        tip = _tip(0, SESSION_KEY, grant, artist, 2, ONE_USDC, MESSAGE);
        _expectTipSkipped(tip, SkipReason.GrantRevoked);
        vm.assertEq(_settleTips(_oneTip(tip)), 0, "not after");
    }

    function test_WhenTipRegistersGrant_VouchersToTheSamePayeeSettleFromZero() external {
        _fund(listener, 10 * ONE_USDC);
        vm.assertEq(_settleTips(_oneTip(_defaultTip(1, ONE_USDC))), 1, "tip first");
        vm.assertEq(vault.settled(id, artist), 0, "no voucher settled yet");
        _expectSettled(grant, artist, 300, 300, 0);
        SettlementItem memory item = _item(LISTENER_KEY, SESSION_KEY, grant, artist, 300);
        item.grantSignature = "";
        vault.settleBatch(_one(item));
        vm.assertEq(vault.settled(id, artist), 300, "voucher settled from zero");
        vm.assertEq(vault.grantSpent(id), ONE_USDC + 300, "spent = tips + vouchers");
        vm.assertEq(vault.earningsOf(artist), ONE_USDC + 300, "earnings");
    }

    function test_WhenVouchersAndTipsInOneCall_BothSettle() external {
        _fund(listener, 10 * ONE_USDC);
        SettlementItem[] memory items = _one(_item(LISTENER_KEY, SESSION_KEY, grant, artist, 500));
        TipItem[] memory tips = new TipItem[](2);
        tips[0] = _tip(0, SESSION_KEY, grant, artist, 1, 1000, "one");
        tips[1] = _tip(0, SESSION_KEY, grant, artist, 2, 2000, "two");
        (uint256 settledCount, uint256 tipsSettled) = vault.settleBatchWithTips(items, tips);
        vm.assertEq(settledCount, 1, "the voucher");
        vm.assertEq(tipsSettled, 2, "both tips");
        vm.assertEq(vault.earningsOf(artist), 3500, "all paid");
        vm.assertEq(vault.grantSpent(id), 3500, "all counted");
    }

    function test_WhenTipToSplitPayee_SplitLikeAVoucher() external {
        bytes32 node = _register(artist, "neon", 100, new TextRecord[](0));
        address[] memory recipients = new address[](2);
        (recipients[0], recipients[1]) = (address(0xA11), address(0xB0B));
        uint16[] memory shares = new uint16[](2);
        (shares[0], shares[1]) = (6667, 3333);
        vm.prank(artist);
        (address split,) = vault.setSplit(node, 0, recipients, shares);
        _setFee(100);
        _fund(listener, 10 * ONE_USDC);
        // 1,000 tipped, fee 10, 990 split: 660.033 and 329.967, so 660 and 330.
        uint256[] memory parts = new uint256[](2);
        (parts[0], parts[1]) = (660, 330);
        TipItem memory tip = _tip(LISTENER_KEY, SESSION_KEY, grant, split, 1, 1000, MESSAGE);
        vm.expectEmit(address(vault));
        emit IBeatStreamVault.Tipped(id, listener, split, 1, 1000, 10, MESSAGE);
        vm.expectEmit(address(vault));
        emit IBeatStreamVault.SplitPaid(split, 990, parts);
        vm.assertEq(_settleTips(_oneTip(tip)), 1, "settled");
        vm.assertEq(vault.earningsOf(recipients[0]), 660, "first recipient");
        vm.assertEq(vault.earningsOf(recipients[1]), 330, "second recipient");
        vm.assertEq(vault.earningsOf(split), 0, "the split keeps nothing");
    }

    function test_WhenGasTooLowForSplitRecipients_SkipsInsufficientGas() external {
        bytes32 node = _register(artist, "neon", 100, new TextRecord[](0));
        address[] memory recipients = new address[](20);
        uint16[] memory shares = new uint16[](20);
        for (uint256 i; i < 20; ++i) {
            (recipients[i], shares[i]) = (address(uint160(0xF000 + i)), 500);
        }
        vm.prank(artist);
        (address split,) = vault.setSplit(node, 0, recipients, shares);
        _fund(listener, 10 * ONE_USDC);
        TipItem memory tip = _tip(LISTENER_KEY, SESSION_KEY, grant, split, 1, ONE_USDC, MESSAGE);
        _expectTipSkipped(tip, SkipReason.InsufficientGas);
        (, uint256 tipsSettled) = vault.settleBatchWithTips{gas: 500_000}(_noItems(), _oneTip(tip));
        vm.assertEq(tipsSettled, 0, "skipped, not reverted");
        vm.assertFalse(vault.isTipSettled(id, 1), "can be sent again");
        (, tipsSettled) = vault.settleBatchWithTips{gas: 2_000_000}(_noItems(), _oneTip(tip));
        vm.assertEq(tipsSettled, 1, "settles with enough gas");
    }

    function test_RevertWhen_NotSettler() external {
        TipItem[] memory tips = _oneTip(_defaultTip(1, 1));
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_NotSettler.selector, listener)
        );
        vm.prank(listener);
        vault.settleBatchWithTips(_noItems(), tips);
    }

    function test_WhenGasLowBeforeTips_EmitsTipsCutShort() external {
        _fund(listener, 10 * ONE_USDC);
        vm.expectEmit(address(vault));
        emit IBeatStreamVault.TipsCutShort(0, 1);
        (, uint256 tipsSettled) =
            vault.settleBatchWithTips{gas: 125_000}(_noItems(), _oneTip(_defaultTip(1, 1)));
        vm.assertEq(tipsSettled, 0, "not looked at");
        vm.assertFalse(vault.isTipSettled(id, 1), "can be sent again");
    }

    function test_WhenReadingTipDigest_ItIsTheEip712DigestOfTheTipType() external view {
        bytes32 typehash =
            keccak256("Tip(bytes32 grantId,address payee,uint256 tipId,uint256 amount,bytes32 messageHash)");
        bytes32 messageHash = keccak256(bytes(MESSAGE));
        bytes32 structHash =
            keccak256(abi.encode(typehash, id, artist, uint256(9), uint256(123), messageHash));
        bytes32 expected = keccak256(abi.encodePacked("\x19\x01", vault.domainSeparator(), structHash));
        vm.assertEq(vault.tipDigest(id, artist, 9, 123, messageHash), expected, "tipDigest");
    }
}
