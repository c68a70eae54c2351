// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TextRecord} from "../../src/interfaces/IBeatStreamRegistry.sol";
import {SettlementItem, TipItem} from "../../src/types/DataTypes.sol";
import {Base_Test} from "../Base.t.sol";
import {FuzzSelector} from "../utils/Test.sol";
import {VaultHandler} from "./handlers/VaultHandler.sol";

/// @notice The vault's accounting, settlement and funding-rule invariants under random sequences of listener, relay,
/// keeper, payee, artist-manager and owner actions, with vouchers and tips to plain and split payees (see
/// {VaultHandler}).
contract Vault_Invariant_Test is Base_Test {
    /// @dev The fee the vault starts with, so that every run's settlements take one (the owner may schedule others).
    uint16 internal constant INITIAL_FEE_BPS = 250;

    VaultHandler internal handler;

    function setUp() public override {
        super.setUp();
        vault = _deployVault(usdc, WITHDRAWAL_DELAY, SETTLEMENT_WINDOW, owner, treasury, INITIAL_FEE_BPS);
        vm.label(address(vault), "vault");
        address manager = address(0x5D117);
        bytes32 node = _register(manager, "collective", 100, new TextRecord[](0));
        handler = new VaultHandler(vault, usdc, owner, keeper, INITIAL_FEE_BPS, node, manager);
        vm.label(address(handler), "handler");

        bytes4[] memory selectors = new bytes4[](31);
        selectors[0] = VaultHandler.deposit.selector;
        selectors[1] = VaultHandler.depositFor.selector;
        selectors[2] = VaultHandler.requestWithdrawal.selector;
        selectors[3] = VaultHandler.cancelWithdrawal.selector;
        selectors[4] = VaultHandler.withdraw.selector;
        selectors[5] = VaultHandler.warp.selector;
        selectors[6] = VaultHandler.withdrawEarnings.selector;
        selectors[7] = VaultHandler.collectFees.selector;
        selectors[8] = VaultHandler.scheduleFee.selector;
        selectors[9] = VaultHandler.revokeGrant.selector;
        selectors[10] = VaultHandler.revokeGrantsBelow.selector;
        selectors[11] = VaultHandler.selfDeal.selector;
        selectors[12] = VaultHandler.deposit.selector;
        selectors[13] = VaultHandler.warp.selector;
        // Acks and settlement are the heart of it: weight them up.
        for (uint256 i = 14; i < 20; ++i) {
            selectors[i] = VaultHandler.ack.selector;
        }
        for (uint256 i = 20; i < 24; ++i) {
            selectors[i] = VaultHandler.keeperSettle.selector;
        }
        selectors[24] = VaultHandler.tipAck.selector;
        selectors[25] = VaultHandler.tipAck.selector;
        selectors[26] = VaultHandler.tipAck.selector;
        selectors[27] = VaultHandler.keeperSettleTips.selector;
        selectors[28] = VaultHandler.keeperSettleTips.selector;
        selectors[29] = VaultHandler.setSplitVersion.selector;
        selectors[30] = VaultHandler.clearSplit.selector;
        targetContract(address(handler));
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    /// @dev usdc.balanceOf(vault) == Σ available + Σ thawing + Σ earnings + accruedFees, where the earners are the
    /// plain payees and the split recipients (a split payee holds no earnings).
    function invariant_TokenBalanceEqualsLiabilities() external view {
        uint256 liabilities = vault.accruedFees();
        for (uint256 i; i < handler.listenerCount(); ++i) {
            (uint256 available, uint256 thawing,) = vault.accountOf(handler.listeners(i));
            liabilities += available + thawing;
        }
        for (uint256 i; i < handler.earnerCount(); ++i) {
            liabilities += vault.earningsOf(handler.earners(i));
        }
        for (uint256 i; i < handler.payeeCount(); ++i) {
            if (handler.isSplit(handler.payees(i))) {
                vm.assertEq(vault.earningsOf(handler.payees(i)), 0, "a split payee holds no earnings");
            }
        }
        vm.assertEq(
            usdc.balanceOf(address(vault)), liabilities, "balance == available + thawing + earnings + fees"
        );
    }

    /// @dev No (grant, payee) is settled beyond the newest voucher the relay acked, the only vouchers counted as
    /// signed (the handler also sends vouchers the vault must refuse, and does not count them).
    function invariant_SettledNeverBeyondNewestSigned() external view {
        for (uint256 g; g < handler.grantCount(); ++g) {
            bytes32 id = handler.grantIds(g);
            for (uint256 p; p < handler.payeeCount(); ++p) {
                address payee = handler.payees(p);
                vm.assertLe(
                    vault.settled(id, payee), handler.newestSigned(id, payee), "settled <= newest signed"
                );
            }
            vm.assertEq(vault.settled(id, address(0)), 0, "the zero payee never settles");
        }
    }

    /// @dev No grant spends beyond its cap (clamped to 2^48 - 1).
    function invariant_GrantSpentNeverBeyondCap() external view {
        for (uint256 g; g < handler.grantCount(); ++g) {
            vm.assertLe(vault.grantSpent(handler.grantIds(g)), handler.effectiveCap(g), "grantSpent <= cap");
        }
    }

    /// @dev A grant's spend is the sum of what its payees settled by voucher plus the tips settled under it (the sum
    /// of its `Tipped` amounts).
    function invariant_GrantSpentEqualsSumOfSettled() external view {
        for (uint256 g; g < handler.grantCount(); ++g) {
            bytes32 id = handler.grantIds(g);
            uint256 sum = handler.eventTipped(id);
            for (uint256 p; p < handler.payeeCount(); ++p) {
                sum += vault.settled(id, handler.payees(p));
            }
            vm.assertEq(vault.grantSpent(id), sum, "grantSpent == sum of settled + tips");
        }
    }

    /// @dev Splits: Σ credited to recipients (the parts of every `SplitPaid`) == Σ settled to split payees by vouchers
    /// and tips − their fees; every `SplitPaid`'s parts sum to its amount.
    function invariant_SplitCreditsEqualSettledToSplitsLessFees() external view {
        vm.assertEq(
            handler.ghostSplitPartsSum(),
            handler.ghostSettledToSplitsSum() - handler.ghostSplitFeeSum(),
            "credited to recipients == settled to splits - fees"
        );
        vm.assertEq(handler.splitPaidMismatches(), 0, "parts sum to the amount");
    }

    /// @dev The ghost sum of every `Settled` amount equals what the vault holds as settled: settlements the handler
    /// saw are exactly the vault's state, none silent and none lost. With the keeper action settling at least one
    /// pending voucher whenever one exists (and failing the run when one inside its window does not settle), a vault
    /// that settled nothing could not pass a run in which the relay acked anything.
    function invariant_GhostSettledEqualsVaultSettled() external view {
        uint256 sum;
        for (uint256 g; g < handler.grantCount(); ++g) {
            sum += vault.grantSpent(handler.grantIds(g));
        }
        vm.assertEq(
            sum,
            handler.ghostSettledSum() + handler.ghostTippedSum(),
            "sum of spent == sum of Settled and Tipped"
        );
        vm.assertLe(handler.itemsSettled(), handler.acks(), "no more settlements than acks");
    }

    /// @dev The vault's state is the model's (see {VaultHandler}): each listener's available, thawing and thaw end,
    /// each pair's settled cumulative, each grant's spend, each payee's earnings, the accrued fees and the fee in
    /// force. The model settles every item the vault must accept, so a vault that settles nothing, skips a valid item,
    /// pays a wrong amount or takes a wrong fee leaves it behind.
    function invariant_VaultStateMatchesModel() public view {
        for (uint256 i; i < handler.listenerCount(); ++i) {
            address listener = handler.listeners(i);
            (uint256 available, uint256 thawing, uint256 thawEnd) = vault.accountOf(listener);
            (uint256 gAvailable, uint256 gThawing, uint256 gThawEnd) = handler.ghostAccount(listener);
            vm.assertEq(available, gAvailable, "available == model");
            vm.assertEq(thawing, gThawing, "thawing == model");
            vm.assertEq(thawEnd, gThawEnd, "thawEnd == model");
        }
        for (uint256 g; g < handler.grantCount(); ++g) {
            bytes32 id = handler.grantIds(g);
            vm.assertEq(vault.grantSpent(id), handler.ghostSpent(id), "grantSpent == model");
            for (uint256 p; p < handler.payeeCount(); ++p) {
                address payee = handler.payees(p);
                vm.assertEq(vault.settled(id, payee), handler.ghostSettled(id, payee), "settled == model");
            }
        }
        for (uint256 p; p < handler.earnerCount(); ++p) {
            address earner = handler.earners(p);
            vm.assertEq(vault.earningsOf(earner), handler.ghostEarnings(earner), "earnings == model");
        }
        vm.assertEq(vault.accruedFees(), handler.ghostAccruedFees(), "accruedFees == model");
        vm.assertEq(uint256(vault.feeBps()), handler.ghostFeeNow(), "fee in force == model");
    }

    /// @dev Item by item: every item sent to settleBatch that the vault must accept (by its rules, judged on the model
    /// before the batch) was settled with exactly the model's amount, cumulative and fee (`amount * feeBps / 10_000`,
    /// rounded down, with the fee in force), and every item it must refuse was skipped with the model's reason; the
    /// sums of the `Settled` amounts and fees are the model's.
    function invariant_MustAcceptItemsSettleExactly() public view {
        vm.assertEq(
            handler.mustAcceptSettledExactly(),
            handler.mustAcceptSubmitted(),
            "every must-accept item settled, exactly"
        );
        vm.assertEq(
            handler.mustRefuseSkippedAsExpected(),
            handler.mustRefuseSubmitted(),
            "every must-refuse item skipped, for the expected reason"
        );
        vm.assertEq(handler.ghostSettledSum(), handler.ghostExpectedSettledSum(), "settled amounts == model");
        vm.assertEq(handler.ghostFeeSum(), handler.ghostExpectedFeeSum(), "fees == amount * feeBps / 10000");
        vm.assertEq(
            handler.tipsMustAcceptSettledExactly(),
            handler.tipsMustAcceptSubmitted(),
            "every must-accept tip settled, exactly, with its message"
        );
        vm.assertEq(
            handler.tipsMustRefuseSkippedAsExpected(),
            handler.tipsMustRefuseSubmitted(),
            "every must-refuse tip skipped, for the expected reason"
        );
        vm.assertEq(handler.ghostTippedSum(), handler.ghostExpectedTippedSum(), "tipped amounts == model");
    }

    /// @dev The funding rule: every voucher the relay's guard accepted at time t settles in full at any time before
    /// t + the withdrawal delay, whatever the listener, owner, payees and keeper did since. Checked by settling, as
    /// the keeper, every such voucher not yet settled, in a snapshot that is then thrown away.
    /// Acked tips are held to the same rule, settled in the same call.
    function invariant_AckedVouchersStaySettleable() external {
        (SettlementItem[] memory items, uint256[] memory gs, uint256[] memory ps) = handler.pendingInWindow();
        TipItem[] memory tips = handler.pendingTipsInWindow();
        if (items.length == 0 && tips.length == 0) return;
        uint256 snapshot = vm.snapshotState();
        vm.prank(keeper);
        (uint256 count, uint256 tipCount) = vault.settleBatchWithTips(items, tips);
        vm.assertEq(count, items.length, "every acked voucher inside its window settles");
        vm.assertEq(tipCount, tips.length, "every acked tip inside its window settles");
        for (uint256 i; i < items.length; ++i) {
            vm.assertEq(
                vault.settled(handler.grantIds(gs[i]), handler.payees(ps[i])),
                items[i].cumulative,
                "settled in full"
            );
        }
        vm.revertToState(snapshot);
    }

    /// @dev At the end of each run: the listener's self-dealing attempts were all refused (each also fails the run at
    /// once if it is not), and no withdrawal went through before its thaw ended. Then, in whatever state the run left,
    /// a fresh acked voucher is settled ({VaultHandler.probe}), so that every run has settled something the vault
    /// must accept: the item checks and the model must still agree, and the settled amount is not zero.
    function afterInvariant() external {
        handler.probe();
        invariant_MustAcceptItemsSettleExactly();
        invariant_VaultStateMatchesModel();
        vm.assertGt(handler.mustAcceptSubmitted(), 0, "every run submits an item the vault must accept");
        vm.assertGt(handler.tipsMustAcceptSubmitted(), 0, "every run submits a tip the vault must accept");
        vm.assertGt(handler.ghostSplitPartsSum(), 0, "every run credits split recipients");
        vm.assertGt(handler.ghostSettledSum(), 0, "every run settles something");
        // The probe settled 3.001234 USDC under the fee in force: with any fee above zero, the fee is not zero.
        if (handler.ghostFeeNow() != 0) {
            vm.assertGt(handler.ghostFeeSum(), 0, "a nonzero fee takes something");
        }
        vm.assertEq(
            handler.calls("selfDeal"), handler.selfDealingRefused(), "every self-dealing attempt was refused"
        );
        vm.assertEq(handler.earlyWithdrawals(), 0, "no withdrawal before the thaw ended");
    }
}
