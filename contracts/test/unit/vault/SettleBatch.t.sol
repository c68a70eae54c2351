// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IBeatStreamVault} from "../../../src/interfaces/IBeatStreamVault.sol";
import {SessionGrant, SettlementItem, SkipReason} from "../../../src/types/DataTypes.sol";
import {Base_Test} from "../../Base.t.sol";
import {IBeatStreamVaultFull} from "../../utils/Interfaces.sol";

/// @notice settleBatch: what settles, and every reason an item is skipped. Each bad item is sent between two good
/// items of another listener's grant, and the test checks that both good items still settle and the bad one changes
/// nothing.
contract SettleBatch_Unit_Test is Base_Test {
    uint256 internal constant OTHER_LISTENER_KEY = 0xB0B;
    uint256 internal constant OTHER_SESSION_KEY = 0x5E56;
    uint256 internal constant FUNDS = 100 * ONE_USDC;

    address internal artist2 = address(0xA28);
    address internal artist3 = address(0xA29);
    uint256 internal t0;
    uint256 internal chainId0;

    /// @dev The grant of the good items around each bad one.
    SessionGrant internal goodGrant;

    function setUp() public override {
        super.setUp();
        t0 = block.timestamp;
        chainId0 = block.chainid;
        _fund(listener, FUNDS);
        goodGrant = SessionGrant({
            listener: vm.addr(OTHER_LISTENER_KEY),
            sessionKey: vm.addr(OTHER_SESSION_KEY),
            cap: 1000 * ONE_USDC,
            expiresAt: uint64(t0 + 365 days),
            nonce: 7
        });
        _fund(goodGrant.listener, FUNDS);
    }

    /*//////////////////////////////////////////////////////////////
                                HELPERS
    //////////////////////////////////////////////////////////////*/

    /// @dev What a bad item must leave as it was.
    struct Footprint {
        uint256 settled;
        uint256 spent;
        uint256 available;
        uint256 thawing;
        uint256 earnings;
    }

    function _footprint(SettlementItem memory item) internal view returns (Footprint memory f) {
        bytes32 id = vault.grantId(item.grant);
        f.settled = vault.settled(id, item.payee);
        f.spent = vault.grantSpent(id);
        (f.available, f.thawing,) = vault.accountOf(item.grant.listener);
        f.earnings = vault.earningsOf(item.payee);
    }

    /// @dev Settles [good, bad, good] and checks that exactly the bad item is skipped for `reason`, with no effect.
    function _assertSkippedBetweenGoodItems(SettlementItem memory bad, SkipReason reason) internal {
        Footprint memory before = _footprint(bad);

        SettlementItem memory first = _goodItem(artist2);
        SettlementItem memory last = _goodItem(artist3);
        _expectSettled(goodGrant, artist2, ONE_USDC, first.cumulative, 0);
        _expectSkipped(bad, reason);
        _expectSettled(goodGrant, artist3, ONE_USDC, last.cumulative, 0);
        vm.assertEq(vault.settleBatch(_three(first, bad, last)), 2, "both good items settled");

        Footprint memory after_ = _footprint(bad);
        vm.assertEq(after_.settled, before.settled, "bad item: settled unchanged");
        vm.assertEq(after_.spent, before.spent, "bad item: grantSpent unchanged");
        vm.assertEq(after_.available, before.available, "bad item: available unchanged");
        vm.assertEq(after_.thawing, before.thawing, "bad item: thawing unchanged");
        vm.assertEq(after_.earnings, before.earnings, "bad item: earnings unchanged");
    }

    /// @dev The next good voucher for `payee` under the good grant: one more USDC than last time.
    function _goodItem(address payee) internal view returns (SettlementItem memory) {
        uint256 cumulative = vault.settled(vault.grantId(goodGrant), payee) + ONE_USDC;
        return _item(OTHER_LISTENER_KEY, OTHER_SESSION_KEY, goodGrant, payee, cumulative);
    }

    function _withCap(uint256 cap) internal view returns (SessionGrant memory grant) {
        grant = _defaultGrant();
        grant.cap = cap;
    }

    /*//////////////////////////////////////////////////////////////
                                SETTLES
    //////////////////////////////////////////////////////////////*/

    function test_WhenEmptyBatch_ReturnsZero() external {
        vm.assertEq(vault.settleBatch(new SettlementItem[](0)), 0, "nothing settled");
    }

    function test_WhenFirstSettlement_RegistersGrantAndPaysPayee() external {
        SessionGrant memory grant = _defaultGrant();
        bytes32 id = vault.grantId(grant);

        vm.expectEmit(address(vault));
        emit IBeatStreamVault.GrantRegistered(
            id, listener, sessionKey, grant.cap, grant.expiresAt, grant.nonce
        );
        _expectSettled(grant, artist, 3 * ONE_USDC, 3 * ONE_USDC, 0);
        // The operator's keeper, a settler since deployment, submits.
        SettlementItem[] memory items = _one(_defaultItem(3 * ONE_USDC));
        vm.prank(keeper);
        uint256 count = vault.settleBatch(items);

        vm.assertEq(count, 1, "settled");
        vm.assertEq(vault.settled(id, artist), 3 * ONE_USDC, "settled cumulative");
        vm.assertEq(vault.grantSpent(id), 3 * ONE_USDC, "grantSpent");
        vm.assertEq(vault.earningsOf(artist), 3 * ONE_USDC, "earnings");
        (uint256 available,,) = vault.accountOf(listener);
        vm.assertEq(available, FUNDS - 3 * ONE_USDC, "listener debited");
        vm.assertEq(usdc.balanceOf(address(vault)), 2 * FUNDS, "no tokens leave in settlement");
    }

    function test_WhenGrantRegistered_SettlesWithEmptyGrantSignature() external {
        vault.settleBatch(_one(_defaultItem(ONE_USDC)));

        SettlementItem memory item = _defaultItem(4 * ONE_USDC);
        item.grantSignature = "";
        vm.recordLogs();
        _expectSettled(item.grant, artist, 3 * ONE_USDC, 4 * ONE_USDC, 0);
        uint256 count = vault.settleBatch(_one(item));

        vm.assertEq(count, 1, "settled without grant signature");
        vm.assertEq(vault.settled(vault.grantId(item.grant), artist), 4 * ONE_USDC, "settled cumulative");
        vm.assertEq(vault.earningsOf(artist), 4 * ONE_USDC, "earnings");
    }

    function test_WhenGrantRegistered_GrantRegisteredNotEmittedAgain() external {
        vault.settleBatch(_one(_defaultItem(ONE_USDC)));
        vm.recordLogs();
        vault.settleBatch(_one(_defaultItem(2 * ONE_USDC)));
        vm.assertEq(vm.getRecordedLogs().length, 1, "only Settled");
    }

    function test_WhenSameVoucherSettledTwice_SecondIsStaleNoOp() external {
        SettlementItem memory item = _defaultItem(5 * ONE_USDC);
        vault.settleBatch(_one(item));
        (uint256 availableBefore,,) = vault.accountOf(listener);

        _expectSkipped(item, SkipReason.StaleVoucher);
        uint256 count = vault.settleBatch(_one(item));

        vm.assertEq(count, 0, "nothing settled");
        (uint256 available,,) = vault.accountOf(listener);
        vm.assertEq(available, availableBefore, "listener not debited again");
        vm.assertEq(vault.earningsOf(artist), 5 * ONE_USDC, "earnings unchanged");
        vm.assertEq(vault.grantSpent(vault.grantId(item.grant)), 5 * ONE_USDC, "grantSpent unchanged");
    }

    function test_WhenSameVoucherTwiceInOneBatch_SecondIsStale() external {
        SettlementItem memory item = _defaultItem(5 * ONE_USDC);
        SettlementItem[] memory items = new SettlementItem[](2);
        items[0] = item;
        items[1] = item;
        _expectSettled(item.grant, artist, 5 * ONE_USDC, 5 * ONE_USDC, 0);
        _expectSkipped(item, SkipReason.StaleVoucher);
        vm.assertEq(vault.settleBatch(items), 1, "once");
        vm.assertEq(vault.earningsOf(artist), 5 * ONE_USDC, "paid once");
    }

    function test_WhenNewerVoucherSettles_PaysOnlyTheDifference() external {
        vault.settleBatch(_one(_defaultItem(2 * ONE_USDC)));
        _expectSettled(_defaultGrant(), artist, 5 * ONE_USDC, 7 * ONE_USDC, 0);
        vault.settleBatch(_one(_defaultItem(7 * ONE_USDC)));
        vm.assertEq(vault.earningsOf(artist), 7 * ONE_USDC, "earnings");
        (uint256 available,,) = vault.accountOf(listener);
        vm.assertEq(available, FUNDS - 7 * ONE_USDC, "debited in total");
    }

    function test_WhenSecondPayeeUnderSameGrant_SettlesIndependently() external {
        SessionGrant memory grant = _defaultGrant();
        bytes32 id = vault.grantId(grant);
        vault.settleBatch(_one(_defaultItem(2 * ONE_USDC)));

        SettlementItem memory second = _item(LISTENER_KEY, SESSION_KEY, grant, artist2, 3 * ONE_USDC);
        second.grantSignature = "";
        _expectSettled(grant, artist2, 3 * ONE_USDC, 3 * ONE_USDC, 0);
        vm.assertEq(vault.settleBatch(_one(second)), 1, "second payee settled");

        // Each payee's cumulative is its own: the first payee's next voucher pays its own difference.
        _expectSettled(grant, artist, ONE_USDC, 3 * ONE_USDC, 0);
        vault.settleBatch(_one(_defaultItem(3 * ONE_USDC)));

        vm.assertEq(vault.settled(id, artist), 3 * ONE_USDC, "first payee");
        vm.assertEq(vault.settled(id, artist2), 3 * ONE_USDC, "second payee");
        vm.assertEq(vault.grantSpent(id), 6 * ONE_USDC, "grantSpent sums payees");
        vm.assertEq(vault.earningsOf(artist2), 3 * ONE_USDC, "second payee earnings");
    }

    function test_WhenAvailableEmpty_DrawsFromThawing() external {
        vm.prank(listener);
        vault.requestWithdrawal(FUNDS);

        _expectSettled(_defaultGrant(), artist, 30 * ONE_USDC, 30 * ONE_USDC, 0);
        vm.assertEq(vault.settleBatch(_one(_defaultItem(30 * ONE_USDC))), 1, "settled from thawing");

        (uint256 available, uint256 thawing, uint256 thawEnd) = vault.accountOf(listener);
        vm.assertEq(available, 0, "available");
        vm.assertEq(thawing, FUNDS - 30 * ONE_USDC, "thawing reduced");
        vm.assertEq(thawEnd, t0 + WITHDRAWAL_DELAY, "thawEnd unchanged");
    }

    function test_WhenAvailableShort_DrawsAvailableFirstThenThawing() external {
        vm.prank(listener);
        vault.requestWithdrawal(60 * ONE_USDC);

        vault.settleBatch(_one(_defaultItem(50 * ONE_USDC)));

        (uint256 available, uint256 thawing,) = vault.accountOf(listener);
        vm.assertEq(available, 0, "available used up first");
        vm.assertEq(thawing, 50 * ONE_USDC, "the rest from thawing");
    }

    function test_WhenAvailableAndThawingExactlyCover_Settles() external {
        vm.prank(listener);
        vault.requestWithdrawal(60 * ONE_USDC);
        vm.assertEq(vault.settleBatch(_one(_defaultItem(FUNDS))), 1, "settled");
        (uint256 available, uint256 thawing,) = vault.accountOf(listener);
        vm.assertEq(available + thawing, 0, "drained");
    }

    function test_WhenFeeSet_AccruesFees() external {
        _setFee(250);
        SessionGrant memory grant = _defaultGrant();

        // 2.5% of 40 USDC.
        _expectSettled(grant, artist, 40 * ONE_USDC, 40 * ONE_USDC, ONE_USDC);
        vault.settleBatch(_one(_defaultItem(40 * ONE_USDC)));
        vm.assertEq(vault.earningsOf(artist), 39 * ONE_USDC, "earnings net of fee");
        vm.assertEq(vault.accruedFees(), ONE_USDC, "fee accrued");

        // Fees round down: 2.5% of 39 base units is 0.975.
        _expectSettled(grant, artist, 39, 40 * ONE_USDC + 39, 0);
        vault.settleBatch(_one(_defaultItem(40 * ONE_USDC + 39)));
        vm.assertEq(vault.accruedFees(), ONE_USDC, "no fee on a tiny amount");
        vm.assertEq(vault.earningsOf(artist), 39 * ONE_USDC + 39, "payee gets it all");

        // Fees of several items in one batch add up.
        SettlementItem[] memory items = new SettlementItem[](2);
        items[0] = _item(LISTENER_KEY, SESSION_KEY, grant, artist2, 4 * ONE_USDC);
        items[1] = _item(LISTENER_KEY, SESSION_KEY, grant, artist3, 8 * ONE_USDC);
        vault.settleBatch(items);
        vm.assertEq(vault.accruedFees(), ONE_USDC + 100_000 + 200_000, "batch fees");
        vm.assertEq(vault.earningsOf(artist2) + vault.earningsOf(artist3), 12 * ONE_USDC - 300_000, "net");

        (uint256 available,,) = vault.accountOf(listener);
        vm.assertEq(available, FUNDS - 52 * ONE_USDC - 39, "listener pays gross");
        vm.assertEq(
            usdc.balanceOf(address(vault)),
            available + FUNDS + vault.earningsOf(artist) + vault.earningsOf(artist2)
                + vault.earningsOf(artist3) + vault.accruedFees(),
            "balance covers every liability"
        );
    }

    function test_WhenGrantCapAbove2Pow48Minus1_CapIsClampedTo2Pow48Minus1() external {
        uint256 clamp = type(uint48).max;
        SessionGrant memory grant = _withCap(type(uint256).max);
        bytes32 id = vault.grantId(grant);
        _fund(listener, clamp);

        SettlementItem memory over = _item(LISTENER_KEY, SESSION_KEY, grant, artist, clamp + 1);
        _expectSkipped(over, SkipReason.CapExceeded);
        vm.assertEq(vault.settleBatch(_one(over)), 0, "above the clamp");

        vm.assertEq(
            vault.settleBatch(_one(_item(LISTENER_KEY, SESSION_KEY, grant, artist, clamp))), 1, "at the clamp"
        );
        vm.assertEq(vault.grantSpent(id), clamp, "spent the clamped cap");
        vm.assertEq(vault.settled(id, artist), clamp, "settled");

        SettlementItem memory more = _item(LISTENER_KEY, SESSION_KEY, grant, artist2, 1);
        _expectSkipped(more, SkipReason.CapExceeded);
        vm.assertEq(vault.settleBatch(_one(more)), 0, "nothing left under the clamp for another payee");
    }

    /*//////////////////////////////////////////////////////////////
                                 SKIPS
    //////////////////////////////////////////////////////////////*/

    function test_WhenVoucherSignedByWrongKey_SkipsInvalidVoucherSignature() external {
        SettlementItem memory bad = _defaultItem(ONE_USDC);
        bad.voucherSignature = _signVoucher(LISTENER_KEY, bad.grant, artist, ONE_USDC);
        _assertSkippedBetweenGoodItems(bad, SkipReason.InvalidVoucherSignature);
    }

    function test_WhenVoucherSignedForOtherPayee_SkipsInvalidVoucherSignature() external {
        SettlementItem memory bad = _defaultItem(ONE_USDC);
        bad.voucherSignature = _signVoucher(SESSION_KEY, bad.grant, artist2, ONE_USDC);
        _assertSkippedBetweenGoodItems(bad, SkipReason.InvalidVoucherSignature);
    }

    function test_WhenVoucherSignedForOtherCumulative_SkipsInvalidVoucherSignature() external {
        SettlementItem memory bad = _defaultItem(ONE_USDC);
        bad.cumulative = 2 * ONE_USDC;
        _assertSkippedBetweenGoodItems(bad, SkipReason.InvalidVoucherSignature);
    }

    function test_WhenVoucherSignatureIsHighSTwin_SkipsInvalidVoucherSignature() external {
        SettlementItem memory good = _defaultItem(ONE_USDC);
        SettlementItem memory bad = _defaultItem(ONE_USDC);
        bad.voucherSignature = _highS(good.voucherSignature);

        // The twin really is the same signature to ecrecover; only the low-s rule rejects it.
        bytes32 digest = vault.voucherDigest(vault.grantId(bad.grant), artist, ONE_USDC);
        (bytes32 r, bytes32 s, uint8 v) = _split(bad.voucherSignature);
        vm.assertGt(uint256(s), SECP256K1_N / 2, "twin is high-s");
        vm.assertEq(ecrecover(digest, v, r, s), sessionKey, "twin recovers the session key");

        _assertSkippedBetweenGoodItems(bad, SkipReason.InvalidVoucherSignature);
        // The original still settles afterwards.
        vm.assertEq(vault.settleBatch(_one(good)), 1, "low-s original settles");
    }

    function test_WhenGrantSignatureIsHighSTwin_SkipsInvalidGrantSignature() external {
        SettlementItem memory good = _defaultItem(ONE_USDC);
        SettlementItem memory bad = _defaultItem(ONE_USDC);
        bad.grantSignature = _highS(good.grantSignature);

        bytes32 digest = vault.grantDigest(bad.grant);
        (bytes32 r, bytes32 s, uint8 v) = _split(bad.grantSignature);
        vm.assertGt(uint256(s), SECP256K1_N / 2, "twin is high-s");
        vm.assertEq(ecrecover(digest, v, r, s), listener, "twin recovers the listener");

        _assertSkippedBetweenGoodItems(bad, SkipReason.InvalidGrantSignature);
        vm.assertEq(vault.settleBatch(_one(good)), 1, "low-s original settles");
    }

    function test_WhenVoucherSignedForAnotherChain_SkipsInvalidVoucherSignature() external {
        SettlementItem memory bad = _defaultItem(ONE_USDC);
        bytes32 id = vault.grantId(bad.grant);
        vm.chainId(chainId0 + 1);
        bad.voucherSignature = _sign(SESSION_KEY, vault.voucherDigest(id, artist, ONE_USDC));
        vm.chainId(chainId0);
        _assertSkippedBetweenGoodItems(bad, SkipReason.InvalidVoucherSignature);
    }

    function test_WhenGrantSignedForAnotherChain_SkipsInvalidGrantSignature() external {
        SettlementItem memory bad = _defaultItem(ONE_USDC);
        vm.chainId(chainId0 + 1);
        bad.grantSignature = _signGrant(LISTENER_KEY, bad.grant);
        vm.chainId(chainId0);
        _assertSkippedBetweenGoodItems(bad, SkipReason.InvalidGrantSignature);
    }

    function test_WhenVoucherSignedForAnotherVault_SkipsInvalidVoucherSignature() external {
        IBeatStreamVaultFull other =
            _deployVault(usdc, WITHDRAWAL_DELAY, SETTLEMENT_WINDOW, owner, treasury, 0);
        SettlementItem memory bad = _defaultItem(ONE_USDC);
        bad.voucherSignature =
            _sign(SESSION_KEY, other.voucherDigest(vault.grantId(bad.grant), artist, ONE_USDC));
        _assertSkippedBetweenGoodItems(bad, SkipReason.InvalidVoucherSignature);
    }

    function test_WhenGrantSignedForAnotherVault_SkipsInvalidGrantSignature() external {
        IBeatStreamVaultFull other =
            _deployVault(usdc, WITHDRAWAL_DELAY, SETTLEMENT_WINDOW, owner, treasury, 0);
        SettlementItem memory bad = _defaultItem(ONE_USDC);
        bad.grantSignature = _sign(LISTENER_KEY, other.grantDigest(bad.grant));
        _assertSkippedBetweenGoodItems(bad, SkipReason.InvalidGrantSignature);
    }

    function test_WhenGrantSignedBySomeoneElse_SkipsInvalidGrantSignature() external {
        SettlementItem memory bad = _defaultItem(ONE_USDC);
        bad.grantSignature = _signGrant(OTHER_LISTENER_KEY, bad.grant);
        _assertSkippedBetweenGoodItems(bad, SkipReason.InvalidGrantSignature);
    }

    function test_WhenGrantSignedBySessionKey_SkipsInvalidGrantSignature() external {
        SettlementItem memory bad = _defaultItem(ONE_USDC);
        bad.grantSignature = _signGrant(SESSION_KEY, bad.grant);
        _assertSkippedBetweenGoodItems(bad, SkipReason.InvalidGrantSignature);
    }

    function test_WhenNewGrantHasEmptyGrantSignature_SkipsInvalidGrantSignature() external {
        SettlementItem memory bad = _defaultItem(ONE_USDC);
        bad.grantSignature = "";
        _assertSkippedBetweenGoodItems(bad, SkipReason.InvalidGrantSignature);
    }

    function test_WhenGrantSignatureWrongLength_SkipsInvalidGrantSignature() external {
        SettlementItem memory bad = _defaultItem(ONE_USDC);
        bytes memory sig = bad.grantSignature;
        bad.grantSignature = abi.encodePacked(sig, bytes1(0));
        _assertSkippedBetweenGoodItems(bad, SkipReason.InvalidGrantSignature);
    }

    function test_WhenRegisteredGrantTampered_SkipsInvalidGrantSignature() external {
        vault.settleBatch(_one(_defaultItem(ONE_USDC)));
        // Raising the cap of a registered grant makes another, unregistered grant whose signature is missing.
        SessionGrant memory raised = _withCap(10_000 * ONE_USDC);
        SettlementItem memory bad = _item(LISTENER_KEY, SESSION_KEY, raised, artist, 2 * ONE_USDC);
        bad.grantSignature = "";
        _assertSkippedBetweenGoodItems(bad, SkipReason.InvalidGrantSignature);
    }

    function test_WhenCumulativeAboveCap_SkipsCapExceeded() external {
        SessionGrant memory grant = _withCap(10 * ONE_USDC);
        SettlementItem memory bad = _item(LISTENER_KEY, SESSION_KEY, grant, artist, 10 * ONE_USDC + 1);
        _assertSkippedBetweenGoodItems(bad, SkipReason.CapExceeded);
        // Exactly the cap settles.
        vm.assertEq(
            vault.settleBatch(_one(_item(LISTENER_KEY, SESSION_KEY, grant, artist, 10 * ONE_USDC))),
            1,
            "at cap"
        );
    }

    function test_WhenPayeesTogetherPassCap_SkipsCapExceeded() external {
        SessionGrant memory grant = _withCap(10 * ONE_USDC);
        vault.settleBatch(_one(_item(LISTENER_KEY, SESSION_KEY, grant, artist, 6 * ONE_USDC)));
        address artist4 = address(0xA2A);
        SettlementItem memory bad = _item(LISTENER_KEY, SESSION_KEY, grant, artist4, 4 * ONE_USDC + 1);
        _assertSkippedBetweenGoodItems(bad, SkipReason.CapExceeded);
        vm.assertEq(
            vault.settleBatch(_one(_item(LISTENER_KEY, SESSION_KEY, grant, artist4, 4 * ONE_USDC))),
            1,
            "the rest of the cap settles"
        );
    }

    function test_WhenCumulativeIsMaxUint256_SkipsCapExceededWithoutReverting() external {
        vault.settleBatch(_one(_defaultItem(ONE_USDC)));
        SettlementItem memory bad = _defaultItem(type(uint256).max);
        _assertSkippedBetweenGoodItems(bad, SkipReason.CapExceeded);
    }

    function test_WhenCumulativeIsMaxUint256AndCapIsMaxUint256_SkipsCapExceeded() external {
        SessionGrant memory grant = _withCap(type(uint256).max);
        SettlementItem memory bad = _item(LISTENER_KEY, SESSION_KEY, grant, artist, type(uint256).max);
        _assertSkippedBetweenGoodItems(bad, SkipReason.CapExceeded);
    }

    function test_WhenPastSettlementWindow_SkipsGrantExpired() external {
        SettlementItem memory bad = _defaultItem(ONE_USDC);
        vm.warp(uint256(bad.grant.expiresAt) + SETTLEMENT_WINDOW + 1);
        _assertSkippedBetweenGoodItems(bad, SkipReason.GrantExpired);
    }

    function test_WhenExpiredButInsideSettlementWindow_Settles() external {
        // Both items are built before warping: the default grant's expiry is relative to the current time.
        SettlementItem memory item = _defaultItem(ONE_USDC);
        SettlementItem memory last = _defaultItem(2 * ONE_USDC);
        vm.warp(uint256(item.grant.expiresAt) + 1);
        vm.assertEq(vault.settleBatch(_one(item)), 1, "just after expiry");
        vm.warp(uint256(item.grant.expiresAt) + SETTLEMENT_WINDOW);
        vm.assertEq(vault.settleBatch(_one(last)), 1, "at the end of the window");
        vm.assertEq(vault.earningsOf(artist), 2 * ONE_USDC, "earnings");
    }

    function test_WhenListenerUnfunded_SkipsInsufficientFunds() external {
        uint256 unfundedKey = 0xB10E;
        SessionGrant memory grant = _grant(vm.addr(unfundedKey), sessionKey, 1000 * ONE_USDC, 1);
        SettlementItem memory bad = _item(unfundedKey, SESSION_KEY, grant, artist, ONE_USDC);
        _assertSkippedBetweenGoodItems(bad, SkipReason.InsufficientFunds);
        vm.assertEq(vault.grantSpent(vault.grantId(grant)), 0, "grant not registered by a skipped item");
    }

    function test_WhenAvailablePlusThawingShort_SkipsInsufficientFunds() external {
        vm.prank(listener);
        vault.requestWithdrawal(40 * ONE_USDC);
        SettlementItem memory bad = _defaultItem(FUNDS + 1);
        _assertSkippedBetweenGoodItems(bad, SkipReason.InsufficientFunds);
    }

    function test_WhenCumulativeEqualsSettled_SkipsStaleVoucher() external {
        vault.settleBatch(_one(_defaultItem(5 * ONE_USDC)));
        _assertSkippedBetweenGoodItems(_defaultItem(5 * ONE_USDC), SkipReason.StaleVoucher);
    }

    function test_WhenCumulativeBelowSettled_SkipsStaleVoucher() external {
        vault.settleBatch(_one(_defaultItem(5 * ONE_USDC)));
        _assertSkippedBetweenGoodItems(_defaultItem(4 * ONE_USDC), SkipReason.StaleVoucher);
    }

    function test_WhenCumulativeZero_SkipsStaleVoucher() external {
        _assertSkippedBetweenGoodItems(_defaultItem(0), SkipReason.StaleVoucher);
    }

    function test_WhenPayeeZero_SkipsMalformed() external {
        SettlementItem memory bad = _item(LISTENER_KEY, SESSION_KEY, _defaultGrant(), address(0), ONE_USDC);
        _assertSkippedBetweenGoodItems(bad, SkipReason.Malformed);
    }

    function test_WhenListenerZero_SkipsMalformed() external {
        SessionGrant memory grant = _defaultGrant();
        grant.listener = address(0);
        SettlementItem memory bad = _item(LISTENER_KEY, SESSION_KEY, grant, artist, ONE_USDC);
        _assertSkippedBetweenGoodItems(bad, SkipReason.Malformed);
    }

    function test_WhenVoucherSignatureTooShort_SkipsMalformed() external {
        SettlementItem memory bad = _defaultItem(ONE_USDC);
        (bytes32 r, bytes32 s,) = _split(bad.voucherSignature);
        bad.voucherSignature = abi.encodePacked(r, s);
        _assertSkippedBetweenGoodItems(bad, SkipReason.Malformed);
    }

    function test_WhenVoucherSignatureTooLong_SkipsMalformed() external {
        SettlementItem memory bad = _defaultItem(ONE_USDC);
        bad.voucherSignature = abi.encodePacked(bad.voucherSignature, bytes1(0));
        _assertSkippedBetweenGoodItems(bad, SkipReason.Malformed);
    }

    function test_WhenVoucherSignatureEmpty_SkipsMalformed() external {
        SettlementItem memory bad = _defaultItem(ONE_USDC);
        bad.voucherSignature = "";
        _assertSkippedBetweenGoodItems(bad, SkipReason.Malformed);
    }
}
