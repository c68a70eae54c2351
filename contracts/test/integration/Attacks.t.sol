// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC721Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

import {IBeatStreamRegistry, TextRecord, TrackInput} from "../../src/interfaces/IBeatStreamRegistry.sol";
import {IBeatStreamVault} from "../../src/interfaces/IBeatStreamVault.sol";
import {SessionGrant, SettlementItem, SkipReason} from "../../src/types/DataTypes.sol";
import {Base_Test} from "../Base.t.sol";
import {EchoWallet, TwoFacedWallet} from "../mocks/SmartWallet.sol";
import {Vm} from "../utils/Vm.sol";

/// @notice Issue 14's attacks, one test per numbered scenario, each written as the attacker would try it on v2 and
/// asserting that it fails. Each test's comment says how the same attack worked on v1.
///
/// The promise under attack: the relay acked a voucher (and released the music) because the listener's vault funds
/// back it; the keeper, a settler, settles it within the withdrawal delay.
contract Attacks_Integration_Test is Base_Test {
    uint256 internal constant FUNDS = 100 * ONE_USDC;
    /// @dev The keeper's gas limit in v1: simulated * 1.25 + 20,000.
    uint256 internal constant V1_MARGIN_NUM = 125;
    uint256 internal constant V1_MARGIN_DEN = 100;
    uint256 internal constant V1_MARGIN_ADD = 20_000;
    /// @dev What the v2 keeper adds per item that needs a wallet check: the wallet's whole allowance.
    uint256 internal constant WALLET_ALLOWANCE = 150_000;

    uint256 internal constant ATTACKER_SESSION_KEY = 0xBAD5E55;
    uint256 internal constant WALLET_OWNER_KEY = 0x0E0A;
    uint256 internal constant HONEST_KEYS = 0x7000;

    address internal accomplice = address(0xACC0);
    address internal attacker = address(0xA77AC);
    uint256 internal t0;

    /// @dev The voucher the relay acked for the real artist: 30 USDC under the listener's grant.
    SessionGrant internal grant;
    SettlementItem internal acked;

    function setUp() public override {
        super.setUp();
        t0 = block.timestamp;
        _fund(listener, FUNDS);
        grant = _grant(listener, sessionKey, 1000 * ONE_USDC, 1);
        grant.expiresAt = uint64(t0 + 30 days);
        acked = _item(LISTENER_KEY, SESSION_KEY, grant, artist, 30 * ONE_USDC);
    }

    /*//////////////////////////////////////////////////////////////
                                HELPERS
    //////////////////////////////////////////////////////////////*/

    function _keeperSettles(SettlementItem memory item) internal returns (uint256) {
        SettlementItem[] memory items = _one(item);
        vm.prank(keeper);
        return vault.settleBatch(items);
    }

    function _assertAckedSettledInFull() internal view {
        vm.assertEq(
            vault.settled(vault.grantId(grant), artist), acked.cumulative, "acked voucher settled in full"
        );
        vm.assertEq(vault.earningsOf(artist), acked.cumulative, "the real artist is paid");
    }

    /// @dev A voucher for `payee` under a grant of the listener to a session key the listener (or a thief) holds.
    function _selfDealing(address payee, uint256 cumulative, uint64 nonce)
        internal
        view
        returns (SettlementItem memory)
    {
        SessionGrant memory own = _grant(listener, vm.addr(ATTACKER_SESSION_KEY), 1000 * ONE_USDC, nonce);
        return _item(LISTENER_KEY, ATTACKER_SESSION_KEY, own, payee, cumulative);
    }

    function _expectNotSettler(address caller) internal {
        vm.expectRevert(abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_NotSettler.selector, caller));
    }

    function _calldataGas(bytes memory data) internal pure returns (uint256 gas) {
        for (uint256 i; i < data.length; ++i) {
            gas += data[i] == 0 ? 4 : 16;
        }
    }

    function _count(Vm.Log[] memory logs, bytes32 topic0) internal pure returns (uint256 n) {
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] == topic0) ++n;
        }
    }

    function _countSkips(Vm.Log[] memory logs, SkipReason reason) internal view returns (uint256 n) {
        for (uint256 i; i < logs.length; ++i) {
            if (
                logs[i].emitter == address(vault)
                    && logs[i].topics[0] == IBeatStreamVault.SettlementSkipped.selector
            ) {
                (, SkipReason r) = abi.decode(logs[i].data, (uint256, SkipReason));
                if (r == reason) ++n;
            }
        }
    }

    /*//////////////////////////////////////////////////////////////
                 1. WITHDRAWAL DELAY BYPASS BY SELF-PAYMENT
    //////////////////////////////////////////////////////////////*/

    /// @dev v1: settleBatch was permissionless. The listener signed a grant to a session key it held and a voucher
    /// paying an address it controlled everything it had, settled it itself and pulled the earnings in the same block:
    /// no withdrawal delay, and the relay's acked voucher for the real artist was then skipped InsufficientFunds.
    function test_Attack1_ListenerSelfPaysToOwnAddress_NotSettlerAndAckedVoucherStillSettles() external {
        SettlementItem[] memory selfPay = _one(_selfDealing(accomplice, FUNDS, 99));

        vm.prank(listener);
        _expectNotSettler(listener);
        vault.settleBatch(selfPay);
        vm.prank(accomplice);
        _expectNotSettler(accomplice);
        vault.settleBatch(selfPay);
        vm.prank(accomplice);
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_InsufficientEarnings.selector, 0, FUNDS)
        );
        vault.withdrawEarnings(accomplice, FUNDS);

        (uint256 available,,) = vault.accountOf(listener);
        vm.assertEq(available, FUNDS, "nothing left the listener's account");
        vm.assertEq(_keeperSettles(acked), 1, "the keeper settles the acked voucher");
        _assertAckedSettledInFull();
    }

    /// @dev v1: registration was open and settlement permissionless, so the listener registered an artist name of its
    /// own, signed itself a voucher paying that name's `addr`, settled it ahead of the keeper and withdrew the earnings.
    function test_Attack1_ListenerSelfPaysToOwnArtistName_NotSettlerAndAckedVoucherStillSettles() external {
        bytes32 node = _register(listener, "mallory", 1, new TextRecord[](0));
        vm.prank(listener);
        uint256 trackId = registry.publishTrack(
            node,
            TrackInput({
                title: "Silence", duration: 1, ratePerSecond: 0, contentHash: bytes32(0), metadataURI: ""
            })
        );
        (, address payee) = registry.playTerms(trackId);
        vm.assertEq(payee, listener, "the listener's own name pays the listener");
        SettlementItem[] memory selfPay = _one(_selfDealing(payee, FUNDS, 99));

        // Front-running the keeper's batch: the listener's own settlement goes first, and is refused.
        vm.prank(listener);
        _expectNotSettler(listener);
        vault.settleBatch(selfPay);
        vm.prank(listener);
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_InsufficientEarnings.selector, 0, FUNDS)
        );
        vault.withdrawEarnings(listener, FUNDS);

        vm.assertEq(_keeperSettles(acked), 1, "the keeper's batch settles the acked voucher");
        _assertAckedSettledInFull();
    }

    /// @dev The listener's other path out, a withdrawal, waits out the delay, and thawing funds still settle what was
    /// acked before the request (v1 too: this path was already closed, the self-payment above was the open one).
    function test_Attack1_ListenerWithdrawsEverything_AckedVoucherSettlesFromThawingFunds() external {
        vm.prank(listener);
        vault.requestWithdrawal(FUNDS);
        vm.assertEq(vault.spendableOf(listener), 0, "nothing left for the relay to promise");
        vm.prank(listener);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBeatStreamVault.BeatStreamVault_WithdrawalNotReady.selector, t0 + WITHDRAWAL_DELAY
            )
        );
        vault.withdraw(listener);

        vm.warp(t0 + WITHDRAWAL_DELAY - 1);
        vm.assertEq(_keeperSettles(acked), 1, "settles from thawing funds until the end of the delay");
        _assertAckedSettledInFull();
        vm.warp(t0 + WITHDRAWAL_DELAY);
        vm.prank(listener);
        vm.assertEq(vault.withdraw(listener), FUNDS - acked.cumulative, "the listener gets the rest");
    }

    /*//////////////////////////////////////////////////////////////
                           2. LEAKED SESSION KEY
    //////////////////////////////////////////////////////////////*/

    /// @dev v1: no revocation. A thief holding the session key signed vouchers to itself under the (registered)
    /// grant up to its cap and settled them itself, from available and even thawing funds; the listener could only
    /// race it by withdrawing, which the delay made hopeless.
    function test_Attack2_LeakedKey_RevokedById_AckedSettleUntilTheDelayThenGrantRevoked() external {
        // The relay acked 30 USDC (`acked`) and, before it saw the revocation, 40 USDC more for the same pair.
        SettlementItem memory ackedLater = _item(LISTENER_KEY, SESSION_KEY, grant, artist, 40 * ONE_USDC);
        // The thief signs with the leaked session key under the same grant, paying itself.
        SettlementItem memory stolen = _item(LISTENER_KEY, SESSION_KEY, grant, attacker, FUNDS);

        bytes32 id = vault.grantId(grant);
        vm.prank(listener);
        vault.revokeGrant(id);

        SettlementItem[] memory stolenBatch = _one(stolen);
        vm.prank(attacker);
        _expectNotSettler(attacker);
        vault.settleBatch(stolenBatch);

        vm.warp(t0 + WITHDRAWAL_DELAY - 1);
        vm.assertEq(_keeperSettles(acked), 1, "acked before the revocation: settles within the delay");
        _assertAckedSettledInFull();

        vm.warp(t0 + WITHDRAWAL_DELAY);
        _expectSkipped(ackedLater, SkipReason.GrantRevoked);
        vm.assertEq(_keeperSettles(ackedLater), 0, "after the delay: GrantRevoked");
        // Even a settler sending the thief's voucher (no relay acks a revoked grant) gets nothing through.
        _expectSkipped(stolen, SkipReason.GrantRevoked);
        vm.assertEq(_keeperSettles(stolen), 0, "the thief's voucher: GrantRevoked");
        vm.assertEq(vault.earningsOf(attacker), 0, "the thief earned nothing");
        (uint256 available,,) = vault.accountOf(listener);
        vm.assertEq(available, FUNDS - acked.cumulative, "the rest of the listener's funds are safe");
    }

    /// @dev As above, with "sign out everywhere": every grant below a nonce, registered or not, is revoked.
    function test_Attack2_LeakedKey_RevokedByNonceFloor_AckedSettleUntilTheDelayThenGrantRevoked() external {
        SettlementItem memory ackedLater = _item(LISTENER_KEY, SESSION_KEY, grant, artist, 40 * ONE_USDC);
        // The thief also holds a second, never-settled grant of the listener (nonce 2).
        SessionGrant memory second = _grant(listener, sessionKey, 1000 * ONE_USDC, 2);
        second.expiresAt = uint64(t0 + 30 days);
        SettlementItem memory stolen = _item(LISTENER_KEY, SESSION_KEY, second, attacker, FUNDS);

        vm.prank(listener);
        vault.revokeGrantsBelow(3);

        vm.warp(t0 + WITHDRAWAL_DELAY - 1);
        vm.assertEq(_keeperSettles(acked), 1, "acked before the revocation: settles within the delay");
        _assertAckedSettledInFull();

        vm.warp(t0 + WITHDRAWAL_DELAY);
        vm.assertTrue(vault.isRevoked(grant) && vault.isRevoked(second), "both grants revoked");
        _expectSkipped(ackedLater, SkipReason.GrantRevoked);
        vm.assertEq(_keeperSettles(ackedLater), 0, "after the delay: GrantRevoked");
        _expectSkipped(stolen, SkipReason.GrantRevoked);
        vm.assertEq(_keeperSettles(stolen), 0, "the thief's grant: GrantRevoked");
        vm.assertEq(vault.earningsOf(attacker), 0, "the thief earned nothing");

        // A new grant above the floor works as before.
        SessionGrant memory fresh = _grant(listener, vm.addr(0xF2E5), 1000 * ONE_USDC, 3);
        vm.assertEq(_keeperSettles(_item(LISTENER_KEY, 0xF2E5, fresh, artist, 50 * ONE_USDC)), 1, "new grant");
    }

    /*//////////////////////////////////////////////////////////////
                   3. A TWO-FACED WALLET SINKS A BATCH
    //////////////////////////////////////////////////////////////*/

    /// @dev [honest, honest, wallet, honest, honest]: the wallet's grant is new, so the vault asks the wallet.
    function _twoFacedBatch() internal returns (TwoFacedWallet wallet, SettlementItem[] memory items) {
        wallet = new TwoFacedWallet(vm.addr(WALLET_OWNER_KEY));
        usdc.mint(address(this), FUNDS);
        usdc.approve(address(vault), FUNDS);
        vault.depositFor(address(wallet), FUNDS);
        items = new SettlementItem[](5);
        for (uint256 i; i < 5; ++i) {
            if (i == 2) {
                SessionGrant memory g = _grant(address(wallet), sessionKey, 1000 * ONE_USDC, 1);
                items[i] = _item(WALLET_OWNER_KEY, SESSION_KEY, g, artist, ONE_USDC);
            } else {
                uint256 key = HONEST_KEYS + i;
                SessionGrant memory g = _grant(vm.addr(key), sessionKey, 1000 * ONE_USDC, 1);
                _fund(g.listener, FUNDS);
                items[i] = _item(key, SESSION_KEY, g, artist, ONE_USDC);
            }
        }
    }

    /// @dev The keeper's simulation: the batch with the wallet honest, measured, then undone. Returns the gas limit
    /// the v1 keeper set (simulated transaction * 1.25 + 20,000) and the transaction's intrinsic and calldata gas.
    function _simulate(SettlementItem[] memory items) internal returns (uint256 v1Limit, uint256 overhead) {
        uint256 snapshot = vm.snapshotState();
        vm.prank(keeper);
        uint256 before = gasleft();
        vm.assertEq(vault.settleBatch(items), 5, "in simulation every item settles");
        uint256 execution = before - gasleft();
        vm.revertToState(snapshot);
        overhead = 21_000 + _calldataGas(abi.encodeCall(vault.settleBatch, (items)));
        v1Limit = (overhead + execution) * V1_MARGIN_NUM / V1_MARGIN_DEN + V1_MARGIN_ADD;
    }

    /// @dev v1: the wallet was cheap when the keeper simulated and burned its whole 150,000-gas allowance when mined,
    /// which the keeper's margin (25% + 20,000) did not cover: the batch ran out of gas and reverted, honest items
    /// and all, and the keeper paid for it. v2 under the same v1 budget: the vault checks its gas before each item and
    /// before the wallet call, so the batch does not revert; the honest items before the wallet settle, and the vault
    /// skips the wallet (InsufficientGas) or stops the batch (BatchCutShort) rather than run dry.
    function test_Attack3_TwoFacedWallet_UnderTheV1KeeperBudget_BatchDoesNotRevert() external {
        (TwoFacedWallet wallet, SettlementItem[] memory items) = _twoFacedBatch();
        (uint256 v1Limit, uint256 overhead) = _simulate(items);

        vm.prank(vm.addr(WALLET_OWNER_KEY));
        wallet.arm(true);
        vm.recordLogs();
        vm.prank(keeper);
        uint256 count = vault.settleBatch{gas: v1Limit - overhead}(items);
        Vm.Log[] memory logs = vm.getRecordedLogs();

        for (uint256 i; i < 2; ++i) {
            vm.assertEq(
                vault.settled(vault.grantId(items[i].grant), artist), ONE_USDC, "honest item before it"
            );
        }
        vm.assertEq(vault.grantSpent(vault.grantId(items[2].grant)), 0, "the wallet's item did not settle");
        vm.assertGe(count, 2, "at least the honest items before the wallet");
        vm.assertGe(
            _countSkips(logs, SkipReason.InsufficientGas)
                + _count(logs, IBeatStreamVault.BatchCutShort.selector),
            1,
            "the vault skipped the wallet for gas or cut the batch short"
        );
    }

    /// @dev v2's keeper budgets the wallet's whole allowance (+150,000 per item that needs a wallet check): every
    /// honest item settles and the burning wallet's item is skipped InvalidGrantSignature.
    function test_Attack3_TwoFacedWallet_UnderTheV2KeeperBudget_EveryHonestItemSettles() external {
        (TwoFacedWallet wallet, SettlementItem[] memory items) = _twoFacedBatch();
        (uint256 v1Limit, uint256 overhead) = _simulate(items);
        uint256 v2Limit = v1Limit + WALLET_ALLOWANCE;

        vm.prank(vm.addr(WALLET_OWNER_KEY));
        wallet.arm(true);
        vm.recordLogs();
        _expectSkipped(items[2], SkipReason.InvalidGrantSignature);
        vm.prank(keeper);
        uint256 count = vault.settleBatch{gas: v2Limit - overhead}(items);
        Vm.Log[] memory logs = vm.getRecordedLogs();

        vm.assertEq(count, 4, "every honest item");
        for (uint256 i; i < 5; ++i) {
            if (i == 2) continue;
            vm.assertEq(vault.settled(vault.grantId(items[i].grant), artist), ONE_USDC, "honest item settled");
        }
        vm.assertEq(_count(logs, IBeatStreamVault.BatchCutShort.selector), 0, "not cut short");
        (uint256 available,,) = vault.accountOf(address(wallet));
        vm.assertEq(available, FUNDS, "the wallet paid nothing");
    }

    /*//////////////////////////////////////////////////////////////
                     4. AN ECHOING CONTRACT AS LISTENER
    //////////////////////////////////////////////////////////////*/

    /// @dev v1 compared only the first four bytes of `isValidSignature`'s answer. A contract whose fallback echoes its
    /// calldata answers `0x1626ba7e` followed by the digest, so anyone could sign a grant as that contract (to a
    /// session key of their own) and spend whatever had been deposited for it.
    function test_Attack4_EchoWalletAsListener_CannotRegisterAGrant() external {
        EchoWallet echo = new EchoWallet();
        usdc.mint(address(this), FUNDS);
        usdc.approve(address(vault), FUNDS);
        vault.depositFor(address(echo), FUNDS);

        // The attacker's grant for the echoing contract, "signed" with junk, to its own session key, paying itself.
        SessionGrant memory g = _grant(address(echo), vm.addr(ATTACKER_SESSION_KEY), FUNDS, 1);
        SettlementItem memory item = SettlementItem({
            grant: g,
            grantSignature: abi.encodePacked(bytes32(uint256(1)), bytes32(uint256(2)), uint8(27)),
            payee: attacker,
            cumulative: FUNDS,
            voucherSignature: _signVoucher(ATTACKER_SESSION_KEY, g, attacker, FUNDS)
        });
        // Even sent by a settler, it is refused.
        _expectSkipped(item, SkipReason.InvalidGrantSignature);
        vm.assertEq(_keeperSettles(item), 0, "InvalidGrantSignature");
        vm.assertEq(vault.grantSpent(vault.grantId(g)), 0, "no grant registered");
        (uint256 available,,) = vault.accountOf(address(echo));
        vm.assertEq(available, FUNDS, "the contract's funds stay");
        vm.assertEq(vault.earningsOf(attacker), 0, "nothing earned");
    }

    /*//////////////////////////////////////////////////////////////
                      5. FEE CHANGE FRONT-RUNNING A BATCH
    //////////////////////////////////////////////////////////////*/

    /// @dev v1: setFee applied at once. The owner saw the keeper's batch of vouchers streamed at 0% and front-ran it
    /// with setFee(MAX_FEE_BPS): artists lost 10% of what they had streamed.
    function test_Attack5_OwnerFrontRunsABatchWithAFeeRaise_OldFeeApplies() external {
        SettlementItem[] memory batch = _one(acked);
        uint16 maxFee = vault.MAX_FEE_BPS();
        vm.prank(owner);
        vault.scheduleFee(maxFee);
        _expectSettled(grant, artist, acked.cumulative, acked.cumulative, 0);
        vm.prank(keeper);
        vault.settleBatch(batch);
        vm.assertEq(vault.accruedFees(), 0, "no fee taken");
        _assertAckedSettledInFull();

        // Still the old fee at the last second of the delay; the new one only after it.
        SettlementItem memory later = _item(LISTENER_KEY, SESSION_KEY, grant, artist, 40 * ONE_USDC);
        vm.warp(t0 + WITHDRAWAL_DELAY - 1);
        _expectSettled(grant, artist, 10 * ONE_USDC, 40 * ONE_USDC, 0);
        _keeperSettles(later);
        vm.warp(t0 + WITHDRAWAL_DELAY);
        _expectSettled(grant, artist, 10 * ONE_USDC, 50 * ONE_USDC, ONE_USDC);
        _keeperSettles(_item(LISTENER_KEY, SESSION_KEY, grant, artist, 50 * ONE_USDC));
    }

    /*//////////////////////////////////////////////////////////////
                      6. ZERO OR OUT-OF-RANGE DELAYS
    //////////////////////////////////////////////////////////////*/

    /// @dev v1 accepted `withdrawalDelay = 0` and `settlementWindow = 0`: a listener on such a vault requested and
    /// withdrew in one block, ahead of any acked voucher, and a grant's vouchers stopped settling the second it expired.
    function test_Attack6_VaultWithZeroOrOutOfRangeDelays_IsRefused() external {
        vm.expectRevert(
            abi.encodeWithSelector(
                IBeatStreamVault.BeatStreamVault_WithdrawalDelayOutOfRange.selector, 0, 1 minutes, 30 days
            )
        );
        _deployVault(usdc, 0, 0, owner, treasury, 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBeatStreamVault.BeatStreamVault_SettlementWindowOutOfRange.selector, 0, 1 days, 365 days
            )
        );
        _deployVault(usdc, 1 days, 0, owner, treasury, 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBeatStreamVault.BeatStreamVault_WithdrawalDelayOutOfRange.selector, 1, 1 minutes, 30 days
            )
        );
        _deployVault(usdc, 1, 1, owner, treasury, 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBeatStreamVault.BeatStreamVault_SettlementWindowOutOfRange.selector,
                1 hours,
                1 days,
                365 days
            )
        );
        _deployVault(usdc, 1 days, 1 hours, owner, treasury, 0);
    }

    /*//////////////////////////////////////////////////////////////
                                7. NAMES
    //////////////////////////////////////////////////////////////*/

    /// @dev v1: whoever owned `<label>.beatstream.eth` in ENS managed the artist. Whoever controls `beatstream.eth`
    /// (the `.eth` registrant can `reclaim` it, a lapsed name can be re-registered) called
    /// `setSubnodeOwner(root, label, itself)` and then the registry's setAddr: every play paid it.
    function test_Attack7a_EnsParentTakeover_CannotTouchTheArtist() external {
        bytes32 node = _register(artist, "alice", 100, new TextRecord[](0));
        TrackInput memory input = TrackInput({
            title: "Song", duration: 60, ratePerSecond: 0, contentHash: bytes32(0), metadataURI: ""
        });
        vm.prank(artist);
        uint256 trackId = registry.publishTrack(node, input);

        // This test owns eth. in the dev ENS: beatstream.eth goes to the attacker, who takes the artist's subname.
        ens.setSubnodeOwner(ETH_NODE, keccak256("beatstream"), attacker);
        vm.startPrank(attacker);
        ens.setSubnodeOwner(ROOT_NODE, keccak256("alice"), attacker);
        ens.setResolver(node, attacker);
        vm.stopPrank();
        vm.assertEq(ens.owner(node), attacker, "the attacker owns the subname in ENS");

        bytes memory unauthorized = abi.encodeWithSelector(
            IBeatStreamRegistry.BeatStreamRegistry_Unauthorized.selector, node, attacker
        );
        vm.startPrank(attacker);
        vm.expectRevert(unauthorized);
        registry.setAddr(node, attacker);
        vm.expectRevert(unauthorized);
        registry.setRate(node, 1);
        vm.expectRevert(unauthorized);
        registry.setText(node, "description", "mine now");
        vm.expectRevert(unauthorized);
        registry.publishTrack(node, input);
        vm.expectRevert(unauthorized);
        registry.updateTrack(trackId, input);
        vm.expectRevert(unauthorized);
        registry.unpublishTrack(trackId);
        vm.expectRevert(
            abi.encodeWithSelector(IERC721Errors.ERC721InsufficientApproval.selector, attacker, uint256(node))
        );
        registry.transferFrom(artist, attacker, uint256(node));
        vm.stopPrank();

        (uint256 rate, address payee) = registry.playTerms(trackId);
        vm.assertEq(payee, artist, "plays still pay the artist");
        vm.assertEq(rate, 100, "rate unchanged");
        vm.assertEq(registry.addr(node), artist, "addr unchanged");
        vm.assertEq(registry.managerOf(node), artist, "the artist still manages it");
        vm.prank(artist);
        registry.setRate(node, 120);
    }

    /// @dev v1: registerArtist(label, rate, records) was first come, first served. A watcher who saw an artist's
    /// registration in the mempool sent the same call from its own address with more gas and became the name's payee.
    function test_Attack7b_CopiedRegistrationFromOwnAddress_CommitmentNotFound() external {
        bytes32 secret = keccak256("the artist's secret");
        bytes32 artistsCommitment = registry.makeCommitment("neon", artist, secret);
        vm.prank(artist);
        registry.commit(artistsCommitment);
        vm.warp(block.timestamp + registry.MIN_COMMITMENT_AGE());

        // The artist's reveal is in the mempool; the attacker copies it, secret included, from its own address.
        bytes32 attackersView = registry.makeCommitment("neon", attacker, secret);
        vm.prank(attacker);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBeatStreamRegistry.BeatStreamRegistry_CommitmentNotFound.selector, attackersView
            )
        );
        registry.registerArtist("neon", 1, new TextRecord[](0), secret);

        vm.prank(artist);
        bytes32 node = registry.registerArtist("neon", 100, new TextRecord[](0), secret);
        vm.assertEq(registry.managerOf(node), artist, "the artist got its name");
        vm.assertEq(registry.addr(node), artist, "and its payments");
    }

    /// @dev The label is public once the reveal is in the mempool; a commitment made then is too new to use in that
    /// block, and by the time it is old enough the name is taken.
    function test_Attack7b_CommitOnSeeingTheReveal_TooNewThenLabelTaken() external {
        bytes32 secret = keccak256("the artist's secret");
        bytes32 artistsCommitment = registry.makeCommitment("neon", artist, secret);
        vm.prank(artist);
        registry.commit(artistsCommitment);
        vm.warp(block.timestamp + registry.MIN_COMMITMENT_AGE());

        bytes32 mine = keccak256("attacker's secret");
        bytes32 commitment = registry.makeCommitment("neon", attacker, mine);
        vm.prank(attacker);
        registry.commit(commitment);
        uint256 readyAt = block.timestamp + registry.MIN_COMMITMENT_AGE();
        vm.prank(attacker);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBeatStreamRegistry.BeatStreamRegistry_CommitmentTooNew.selector, commitment, readyAt
            )
        );
        registry.registerArtist("neon", 1, new TextRecord[](0), mine);

        vm.prank(artist);
        bytes32 node = registry.registerArtist("neon", 100, new TextRecord[](0), secret);
        vm.warp(block.timestamp + registry.MIN_COMMITMENT_AGE());
        vm.prank(attacker);
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamRegistry.BeatStreamRegistry_LabelTaken.selector, "neon")
        );
        registry.registerArtist("neon", 1, new TextRecord[](0), mine);
        vm.assertEq(registry.managerOf(node), artist, "the artist keeps its name");
    }

    /// @dev Copying the commit transaction itself gains nothing: the commitment names the artist as owner. The copy
    /// lands first, so the artist's own commit is refused as pending, but the commitment stands and its reveal works.
    function test_Attack7b_CopiedCommit_ArtistStillRegisters() external {
        bytes32 secret = keccak256("the artist's secret");
        bytes32 commitment = registry.makeCommitment("neon", artist, secret);
        vm.prank(attacker);
        registry.commit(commitment);
        vm.prank(artist);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBeatStreamRegistry.BeatStreamRegistry_CommitmentPending.selector, commitment
            )
        );
        registry.commit(commitment);

        vm.warp(block.timestamp + registry.MIN_COMMITMENT_AGE());
        vm.prank(attacker);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBeatStreamRegistry.BeatStreamRegistry_CommitmentNotFound.selector,
                keccak256(abi.encode("neon", attacker, secret))
            )
        );
        registry.registerArtist("neon", 1, new TextRecord[](0), secret);
        vm.prank(artist);
        bytes32 node = registry.registerArtist("neon", 100, new TextRecord[](0), secret);
        vm.assertEq(registry.managerOf(node), artist, "the artist registers");
    }
}
