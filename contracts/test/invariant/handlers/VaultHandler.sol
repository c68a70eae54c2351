// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IBeatStreamVault} from "../../../src/interfaces/IBeatStreamVault.sol";
import {SessionGrant, SettlementItem, SkipReason, TipItem} from "../../../src/types/DataTypes.sol";
import {IBeatStreamVaultFull, IMockUSDC} from "../../utils/Interfaces.sol";
import {VM, Vm} from "../../utils/Vm.sol";

/// @notice Drives the vault the way the world does, with the relay's guard in the loop: listeners deposit, thaw,
/// cancel, withdraw, revoke grants and try to settle to themselves; the relay acks vouchers only within the funding
/// rule; the keeper settles acked vouchers (random subsets, mixed with vouchers the vault must refuse); the owner
/// schedules fees; artists pull earnings; time passes. Every input is bounded so that no call reverts, except the
/// self-dealing attempts, whose expected revert is caught and counted.
/// @dev The relay's guard, as `docs/DECISIONS.md` ("The funding rule") and the relay apply it: a voucher raising a
/// pair's cumulative by `increase` is acked only if the grant is not expired, not revoked as the relay sees it
/// (`grantRevokedAt != 0`, or its nonce below the newest floor), the grant's acked total stays within its cap, and
/// Σ over the listener's acked pairs (acked cumulative − settled) + increase ≤ `vault.spendableOf(listener)`.
/// The handler records, per (grant, payee), the newest acked cumulative and when it was acked. Only acked vouchers
/// count as signed: every other voucher it sends is one the vault must refuse.
///
/// Beside the relay's view, the handler keeps a ghost model of the vault, following the vault's own rules
/// (`BeatStreamVault._settle`): accounts, settled cumulatives, grant spend and registration, revocations and nonce
/// floors, the fee schedule, earnings and fees. For every item it sends to `settleBatch` it decides, from the model
/// alone, whether the vault must accept it (payee and listener set, inside the settlement window, above the settled
/// cumulative, within the cap, grant signed by the listener unless registered, voucher signed by the session key,
/// revocation not in effect, available + thawing funds cover it) and with what amount and fee
/// (`amount * feeBps / 10_000`, rounded down per item, with the fee in force), or which `SkipReason` it must give.
/// Only what the vault must accept is counted as owed and settled in the model; the vault's events are compared item
/// by item, and the invariants compare the vault's state with the model's.
///
/// Splits and tips: two of the five payees are split payees of one artist, version 1 (three recipients, one of them
/// also a plain payee) and version 2 (two recipients), so vouchers streamed under v1 keep settling after v2 is set; the
/// artist's manager sets further versions and clears them meanwhile, which must change nothing for v1 and v2. The model
/// splits each settlement to a split payee by its own largest-remainder rule (written independently of the vault's).
/// The relay also acks tips under the same guard (a tip counts toward the grant's cap and the listener's outstanding
/// total until it settles); the keeper settles acked tips with `settleBatchWithTips`, mixed with tips the vault must
/// refuse (replays, over-long messages, above the cap), and the model decides each tip's outcome as for vouchers.
contract VaultHandler {
    Vm internal constant vm = VM;

    uint256 internal constant ONE_USDC = 1e6;
    uint256 internal constant LISTENERS = 3;
    /// @dev Payees 0 to 2 are plain; 3 and 4 are the split payees of versions 1 and 2.
    uint256 internal constant PAYEES = 5;
    uint256 internal constant PLAIN_PAYEES = 3;
    uint256 internal constant MAX_TIP_MESSAGE = 280;
    uint256 internal constant GRANTS = 6;
    uint256 internal constant MAX_JUNK = 3;
    uint256 internal constant MAX_SPEND = type(uint48).max;
    /// @dev The highest nonce floor a listener raises to; grants have nonces 0 to 5.
    uint64 internal constant MAX_FLOOR = 7;
    /// @dev A session key a listener holds for its self-dealing attempts: its grants are never acked.
    uint256 internal constant OWN_SESSION_KEY = 0x0575E55;
    /// @dev The session key of the grant `probe` settles under at the end of each run.
    uint256 internal constant PROBE_SESSION_KEY = 0x960BE;
    uint256 internal constant BPS = 10_000;

    IBeatStreamVaultFull public immutable vault;
    /// @notice The artist whose splits the split payees are, and its manager.
    bytes32 public immutable node;
    address public immutable manager;
    IMockUSDC public immutable usdc;
    address public immutable owner;
    address public immutable keeper;
    uint256 public immutable withdrawalDelay;
    uint256 public immutable settlementWindow;

    uint256[] internal _listenerKeys;
    address[] public listeners;
    address[] public payees;
    /// @notice Every address that can hold earnings: the plain payees and the split recipients.
    address[] public earners;
    mapping(address payee => bool) public isSplit;
    mapping(address split => address[]) internal _splitRecipients;
    mapping(address split => uint16[]) internal _splitShares;
    SessionGrant[] internal _grants;
    bytes32[] public grantIds;
    uint256[] internal _grantListenerKey;
    uint256[] internal _grantSessionKey;

    /// @notice The newest cumulative the relay acked for (grant, payee): the only vouchers counted as signed.
    mapping(bytes32 grantId => mapping(address payee => uint256)) public newestSigned;
    /// @notice When the newest voucher of (grant index, payee index) was acked.
    mapping(uint256 g => mapping(uint256 p => uint256)) public ackTime;

    /// @notice How often each handler function ran (did something), and what settlement did.
    mapping(string name => uint256) public calls;
    uint256 public acks;
    uint256 public acksRefused;
    uint256 public itemsSettled;
    uint256 public itemsSkipped;
    uint256 public selfDealingRefused;
    /// @notice Withdrawals the vault let through before the thaw ended (must stay zero).
    uint256 public earlyWithdrawals;
    /// @notice Σ of the `amount` of every `Settled` event the vault emitted: what the vault says it moved.
    uint256 public ghostSettledSum;
    /// @notice Σ of the `fee` of every `Settled` event the vault emitted.
    uint256 public ghostFeeSum;
    /// @notice Σ of the amounts and fees of `Settled` and `Tipped` events to split payees, and Σ of the parts of every
    /// `SplitPaid` event: what recipients were credited.
    uint256 public ghostSettledToSplitsSum;
    uint256 public ghostSplitFeeSum;
    uint256 public ghostSplitPartsSum;
    /// @notice `SplitPaid` events whose parts did not sum to their amount (must stay zero).
    uint256 public splitPaidMismatches;

    /// @notice A tip the relay acked: grant and payee index, id, amount, message length and when it was acked.
    struct AckedTip {
        uint256 g;
        uint256 p;
        uint256 tipId;
        uint256 amount;
        uint256 messageLength;
        uint256 ackTime;
    }

    AckedTip[] internal _ackedTips;
    /// @notice Σ of the tips the relay acked per grant: they count toward the cap like voucher increases.
    mapping(bytes32 grantId => uint256) public tipAcked;
    /// @notice Σ of the amounts of `Tipped` events per grant, over all grants, and of their fees.
    mapping(bytes32 grantId => uint256) public eventTipped;
    uint256 public ghostTippedSum;
    uint256 public ghostTipFeeSum;
    /// @notice Tips sent to `settleBatchWithTips` the vault must accept and refuse, and how many it treated exactly so.
    uint256 public tipsMustAcceptSubmitted;
    uint256 public tipsMustAcceptSettledExactly;
    uint256 public tipsMustRefuseSubmitted;
    uint256 public tipsMustRefuseSkippedAsExpected;
    uint256 public ghostExpectedTippedSum;

    /*//////////////////////////////////////////////////////////////
                    THE MODEL: WHAT THE VAULT MUST DO
    //////////////////////////////////////////////////////////////*/

    struct GhostAccount {
        uint256 available;
        uint256 thawing;
        uint256 thawEnd;
    }

    struct GhostFloor {
        uint64 floor;
        uint64 previous;
        uint256 floorFrom;
    }

    /// @notice The model's outcome for one item sent to `settleBatch`.
    struct Expected {
        bool settles;
        SkipReason reason;
        uint256 amount;
        uint256 fee;
    }

    mapping(address listener => GhostAccount) public ghostAccount;
    /// @notice The settled cumulative of (grant, payee) as the vault's rules make it.
    mapping(bytes32 grantId => mapping(address payee => uint256)) public ghostSettled;
    mapping(bytes32 grantId => uint256) public ghostSpent;
    mapping(bytes32 grantId => bool) public ghostRegistered;
    mapping(bytes32 grantId => mapping(uint256 tipId => bool)) public ghostTipSettled;
    mapping(address payee => uint256) public ghostEarnings;
    uint256 public ghostAccruedFees;
    mapping(address listener => mapping(bytes32 grantId => uint256)) internal _ghostRevokedAt;
    mapping(address listener => GhostFloor) internal _ghostFloor;
    uint256 internal _feeCurrent;
    uint256 internal _feeNext;
    uint256 internal _feeNextFrom;

    /// @notice Items sent to `settleBatch` that the vault must accept, and how many of them it settled exactly
    /// (a `Settled` with the model's amount, cumulative and fee).
    uint256 public mustAcceptSubmitted;
    uint256 public mustAcceptSettledExactly;
    /// @notice Items the vault must refuse, and how many it skipped with the model's reason.
    uint256 public mustRefuseSubmitted;
    uint256 public mustRefuseSkippedAsExpected;
    /// @notice Σ of the model's amounts and fees for the items the vault must accept.
    uint256 public ghostExpectedSettledSum;
    uint256 public ghostExpectedFeeSum;
    /// @notice Whether `probe` ran, and what it settled.
    bool public probed;

    /// @param feeBps_ The fee the vault was deployed with: the model's fee in force until the owner schedules another.
    /// @param node_ A registered artist whose splits the handler sets, as its manager `manager_`.
    constructor(
        IBeatStreamVaultFull vault_,
        IMockUSDC usdc_,
        address owner_,
        address keeper_,
        uint256 feeBps_,
        bytes32 node_,
        address manager_
    ) {
        vault = vault_;
        node = node_;
        manager = manager_;
        usdc = usdc_;
        owner = owner_;
        keeper = keeper_;
        withdrawalDelay = vault_.withdrawalDelay();
        settlementWindow = vault_.settlementWindow();
        _feeCurrent = feeBps_;
        uint256 now_ = vm.getBlockTimestamp();
        for (uint256 i; i < LISTENERS; ++i) {
            uint256 key = 0x1157E + i;
            _listenerKeys.push(key);
            listeners.push(vm.addr(key));
        }
        for (uint256 i; i < PLAIN_PAYEES; ++i) {
            payees.push(address(uint160(0xA27157 + i)));
            earners.push(payees[i]);
        }
        address[] memory recipients = new address[](3);
        (recipients[0], recipients[1], recipients[2]) = (payees[0], address(0xC0117AB1), address(0xC0117AB2));
        uint16[] memory shares = new uint16[](3);
        (shares[0], shares[1], shares[2]) = (5000, 3333, 1667);
        _addSplit(recipients, shares);
        recipients = new address[](2);
        (recipients[0], recipients[1]) = (address(0xC0117AB2), address(0xC0117AB3));
        shares = new uint16[](2);
        (shares[0], shares[1]) = (5001, 4999);
        _addSplit(recipients, shares);
        for (uint256 i = 1; i < 4; ++i) {
            earners.push(address(uint160(0xC0117AB0 + i)));
        }
        // Caps from tiny to clamped, expiries from soon to far, so that caps bind and grants expire.
        uint256[GRANTS] memory caps =
            [5 * ONE_USDC, 50 * ONE_USDC, 500 * ONE_USDC, MAX_SPEND, type(uint256).max, 20 * ONE_USDC];
        uint256[GRANTS] memory lifetimes = [uint256(2 days), 5 days, 30 days, 365 days, 10 days, 60 days];
        for (uint256 g; g < GRANTS; ++g) {
            uint256 listenerIndex = g % LISTENERS;
            uint256 sessionKey = 0x5E5510 + g;
            SessionGrant memory grant = SessionGrant({
                listener: listeners[listenerIndex],
                sessionKey: vm.addr(sessionKey),
                cap: caps[g],
                expiresAt: uint64(now_ + lifetimes[g]),
                nonce: uint64(g)
            });
            _grants.push(grant);
            grantIds.push(vault.grantId(grant));
            _grantListenerKey.push(_listenerKeys[listenerIndex]);
            _grantSessionKey.push(sessionKey);
        }
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    function listenerCount() external view returns (uint256) {
        return listeners.length;
    }

    function payeeCount() external view returns (uint256) {
        return payees.length;
    }

    function earnerCount() external view returns (uint256) {
        return earners.length;
    }

    function grantCount() external view returns (uint256) {
        return _grants.length;
    }

    /// @notice The most a grant may spend: its cap, clamped to 2^48 - 1.
    function effectiveCap(uint256 g) public view returns (uint256) {
        uint256 cap = _grants[g].cap;
        return cap < MAX_SPEND ? cap : MAX_SPEND;
    }

    /// @notice Whether the newest acked voucher of (g, p) is still inside the window the funding rule promises:
    /// acked at t, it settles at any time before t + the withdrawal delay (at t + delay the listener may withdraw, and
    /// a revocation made at t takes effect).
    function inWindow(uint256 g, uint256 p) public view returns (bool) {
        uint256 t = ackTime[g][p];
        return t != 0 && vm.getBlockTimestamp() < t + withdrawalDelay;
    }

    /// @notice The acked voucher of (g, p) as the keeper sends it: the grant signature while the grant is unregistered.
    function ackedItem(uint256 g, uint256 p) public view returns (SettlementItem memory item) {
        item.grant = _grants[g];
        item.payee = payees[p];
        item.cumulative = newestSigned[grantIds[g]][item.payee];
        if (!ghostRegistered[grantIds[g]]) {
            item.grantSignature = _sign(_grantListenerKey[g], vault.grantDigest(item.grant));
        }
        item.voucherSignature =
            _sign(_grantSessionKey[g], vault.voucherDigest(grantIds[g], item.payee, item.cumulative));
    }

    /// @notice Every acked voucher still inside its window and not yet settled in full, as the keeper sends them.
    function pendingInWindow()
        external
        view
        returns (SettlementItem[] memory items, uint256[] memory gs, uint256[] memory ps)
    {
        uint256 n;
        for (uint256 g; g < GRANTS; ++g) {
            for (uint256 p; p < PAYEES; ++p) {
                if (inWindow(g, p) && _pending(g, p)) ++n;
            }
        }
        items = new SettlementItem[](n);
        gs = new uint256[](n);
        ps = new uint256[](n);
        n = 0;
        for (uint256 g; g < GRANTS; ++g) {
            for (uint256 p; p < PAYEES; ++p) {
                if (inWindow(g, p) && _pending(g, p)) {
                    items[n] = ackedItem(g, p);
                    (gs[n], ps[n]) = (g, p);
                    ++n;
                }
            }
        }
    }

    /// @notice The fee in force now, as the model has the schedule.
    function ghostFeeNow() public view returns (uint256) {
        return _feeNextFrom != 0 && vm.getBlockTimestamp() >= _feeNextFrom ? _feeNext : _feeCurrent;
    }

    /// @notice Whether the listener's revocation of the grant (by id, or by the nonce floor in force) is in effect.
    function ghostRevoked(address listener, bytes32 id, uint64 nonce) public view returns (bool) {
        uint256 now_ = vm.getBlockTimestamp();
        uint256 revokedAt = _ghostRevokedAt[listener][id];
        if (revokedAt != 0 && now_ >= revokedAt) return true;
        GhostFloor memory f = _ghostFloor[listener];
        return nonce < (now_ >= f.floorFrom ? f.floor : f.previous);
    }

    /*//////////////////////////////////////////////////////////////
                               LISTENERS
    //////////////////////////////////////////////////////////////*/

    function deposit(uint256 listenerSeed, uint256 amount) external {
        calls["deposit"]++;
        address who = listeners[listenerSeed % LISTENERS];
        amount = _bound(amount, 1, 200 * ONE_USDC);
        usdc.mint(who, amount);
        vm.startPrank(who);
        usdc.approve(address(vault), amount);
        vault.deposit(amount);
        vm.stopPrank();
        ghostAccount[who].available += amount;
    }

    function depositFor(uint256 listenerSeed, uint256 amount) external {
        calls["depositFor"]++;
        address who = listeners[listenerSeed % LISTENERS];
        amount = _bound(amount, 1, 200 * ONE_USDC);
        usdc.mint(address(this), amount);
        usdc.approve(address(vault), amount);
        vault.depositFor(who, amount);
        ghostAccount[who].available += amount;
    }

    function requestWithdrawal(uint256 listenerSeed, uint256 amount) external {
        address who = listeners[listenerSeed % LISTENERS];
        GhostAccount storage acc = ghostAccount[who];
        if (acc.available == 0) return;
        calls["requestWithdrawal"]++;
        amount = _bound(amount, 1, acc.available);
        vm.prank(who);
        vault.requestWithdrawal(amount);
        acc.available -= amount;
        acc.thawing += amount;
        acc.thawEnd = vm.getBlockTimestamp() + withdrawalDelay;
    }

    function cancelWithdrawal(uint256 listenerSeed) external {
        address who = listeners[listenerSeed % LISTENERS];
        GhostAccount storage acc = ghostAccount[who];
        if (acc.thawing == 0) return;
        calls["cancelWithdrawal"]++;
        vm.prank(who);
        vault.cancelWithdrawal();
        (acc.available, acc.thawing, acc.thawEnd) = (acc.available + acc.thawing, 0, 0);
    }

    /// @dev Withdraws thawed funds; with `waitOut`, waits for the thaw to end first, as a patient listener would.
    /// Otherwise, before the thaw ends, the listener tries anyway: the vault must refuse with WithdrawalNotReady, and
    /// the expected revert is caught and counted. A withdrawal that went through early is counted too (and checked
    /// by `afterInvariant`), and the funds it took are then missing for the invariants to find.
    function withdraw(uint256 listenerSeed, uint256 toSeed, bool waitOut) external {
        address who = listeners[listenerSeed % LISTENERS];
        GhostAccount storage acc = ghostAccount[who];
        uint256 thawEnd = acc.thawEnd;
        if (acc.thawing == 0) return;
        if (waitOut && vm.getBlockTimestamp() < thawEnd) vm.warp(thawEnd);
        vm.prank(who);
        if (vm.getBlockTimestamp() >= thawEnd) {
            calls["withdraw"]++;
            vault.withdraw(_sink(toSeed));
            (acc.thawing, acc.thawEnd) = (0, 0);
            return;
        }
        try vault.withdraw(_sink(toSeed)) returns (uint256) {
            earlyWithdrawals++;
        } catch (bytes memory reason) {
            if (
                keccak256(reason)
                    != keccak256(
                        abi.encodeWithSelector(
                            IBeatStreamVault.BeatStreamVault_WithdrawalNotReady.selector, thawEnd
                        )
                    )
            ) revert("early withdrawal refused for the wrong reason");
            calls["earlyWithdrawalRefused"]++;
        }
    }

    function revokeGrant(uint256 grantSeed) external {
        uint256 g = grantSeed % GRANTS;
        address who = _grants[g].listener;
        if (vault.grantRevokedAt(who, grantIds[g]) != 0) return;
        calls["revokeGrant"]++;
        vm.prank(who);
        vault.revokeGrant(grantIds[g]);
        _ghostRevokedAt[who][grantIds[g]] = vm.getBlockTimestamp() + withdrawalDelay;
    }

    /// @dev Raises the floor by one or two, so that a listener's grants are revoked one at a time over a run.
    function revokeGrantsBelow(uint256 listenerSeed, uint256 floorSeed) external {
        address who = listeners[listenerSeed % LISTENERS];
        (uint64 floor,,) = vault.nonceFloorOf(who);
        if (floor >= MAX_FLOOR) return;
        calls["revokeGrantsBelow"]++;
        uint64 newFloor = floor + 1 + uint64(floorSeed % 2);
        vm.prank(who);
        vault.revokeGrantsBelow(newFloor);
        GhostFloor storage f = _ghostFloor[who];
        // A pending raise not yet in effect is replaced; the floor in force stays the one before it.
        if (vm.getBlockTimestamp() >= f.floorFrom) f.previous = f.floor;
        f.floor = newFloor;
        f.floorFrom = vm.getBlockTimestamp() + withdrawalDelay;
    }

    /// @dev A listener (or an accomplice payee) tries to settle a voucher it wrote itself, paying itself, a payee or
    /// its accomplice, ahead of the keeper. Settlement is settler-only, so this must revert with NotSettler; the
    /// expected revert is caught (fail_on_revert is on) and counted, anything else fails the run.
    function selfDeal(uint256 listenerSeed, uint256 payeeSeed, uint256 amount, bool fromPayee) external {
        uint256 l = listenerSeed % LISTENERS;
        address who = listeners[l];
        (uint256 available, uint256 thawing,) = vault.accountOf(who);
        SessionGrant memory own = SessionGrant({
            listener: who,
            sessionKey: vm.addr(OWN_SESSION_KEY),
            cap: MAX_SPEND,
            expiresAt: uint64(vm.getBlockTimestamp() + 1 days),
            nonce: uint64(100 + amount % 1000)
        });
        SettlementItem[] memory items = new SettlementItem[](1);
        items[0].grant = own;
        items[0].grantSignature = _sign(_listenerKeys[l], vault.grantDigest(own));
        items[0].payee = payeeSeed % 2 == 0 ? who : payees[payeeSeed % PAYEES];
        items[0].cumulative = _bound(amount, 1, available + thawing + 1);
        items[0].voucherSignature = _sign(
            OWN_SESSION_KEY, vault.voucherDigest(vault.grantId(own), items[0].payee, items[0].cumulative)
        );

        address caller = fromPayee ? items[0].payee : who;
        vm.prank(caller);
        try vault.settleBatch(items) returns (uint256) {
            revert("a non-settler settled");
        } catch (bytes memory reason) {
            if (
                keccak256(reason)
                    != keccak256(
                        abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_NotSettler.selector, caller)
                    )
            ) {
                revert("self-dealing refused for the wrong reason");
            }
        }
        calls["selfDeal"]++;
        selfDealingRefused++;
    }

    function warp(uint256 seconds_) external {
        calls["warp"]++;
        vm.warp(vm.getBlockTimestamp() + _bound(seconds_, 1, 2 days));
    }

    /*//////////////////////////////////////////////////////////////
                                 RELAY
    //////////////////////////////////////////////////////////////*/

    /// @dev The relay acks the pair's next voucher if its guard allows it; the increase is drawn within what the
    /// guard would accept, so that acks happen often.
    function ack(uint256 grantSeed, uint256 payeeSeed, uint256 increase) external {
        uint256 g = grantSeed % GRANTS;
        uint256 p = payeeSeed % PAYEES;
        SessionGrant memory grant = _grants[g];
        bytes32 id = grantIds[g];
        uint256 now_ = vm.getBlockTimestamp();

        (uint64 floor,,) = vault.nonceFloorOf(grant.listener);
        bool refused =
            now_ > grant.expiresAt || vault.grantRevokedAt(grant.listener, id) != 0 || grant.nonce < floor;
        uint256 headroom;
        if (!refused) {
            uint256 capLeft = effectiveCap(g) - _ackedTotal(g);
            uint256 fundsLeft = vault.spendableOf(grant.listener);
            uint256 outstanding = _outstanding(grant.listener);
            fundsLeft = fundsLeft > outstanding ? fundsLeft - outstanding : 0;
            headroom = capLeft < fundsLeft ? capLeft : fundsLeft;
            refused = headroom == 0;
        }
        if (refused) {
            acksRefused++;
            return;
        }
        increase = _bound(increase, 1, headroom < 5 * ONE_USDC ? headroom : 5 * ONE_USDC);
        calls["ack"]++;
        acks++;
        newestSigned[id][payees[p]] += increase;
        ackTime[g][p] = now_;
    }

    /*//////////////////////////////////////////////////////////////
                                 KEEPER
    //////////////////////////////////////////////////////////////*/

    /// @dev The keeper settles a random subset of the acked vouchers not yet settled (at least one when any is
    /// pending), after up to {MAX_JUNK} vouchers the vault must refuse. Every acked voucher still inside its window
    /// must settle in full: if one does not, the handler reverts and the run fails.
    function keeperSettle(uint256 subsetSeed, uint256 junkSeed) external {
        uint256 pendingPairs;
        for (uint256 i; i < GRANTS * PAYEES; ++i) {
            if (_pending(i / PAYEES, i % PAYEES)) ++pendingPairs;
        }
        uint256 junk = junkSeed % (MAX_JUNK + 1);
        if (pendingPairs == 0 && junk == 0) return;
        calls["keeperSettle"]++;

        // Which pending pairs go: a bit of the seed each; if none, the one the seed points at.
        uint256[] memory chosen = new uint256[](pendingPairs);
        uint256 n;
        uint256 k;
        for (uint256 i; i < GRANTS * PAYEES; ++i) {
            if (!_pending(i / PAYEES, i % PAYEES)) continue;
            if ((subsetSeed >> k) & 1 == 1) chosen[n++] = i;
            ++k;
        }
        if (n == 0 && pendingPairs != 0) {
            k = subsetSeed % pendingPairs;
            for (uint256 i; i < GRANTS * PAYEES; ++i) {
                if (!_pending(i / PAYEES, i % PAYEES)) continue;
                if (k == 0) {
                    chosen[n++] = i;
                    break;
                }
                --k;
            }
        }

        // The vouchers the vault must refuse go first, so that no acked item of the batch registers their grant.
        SettlementItem[] memory items = new SettlementItem[](junk + n);
        bool[] memory grantSigOk = new bool[](junk + n);
        bool[] memory voucherSigOk = new bool[](junk + n);
        for (uint256 j; j < junk; ++j) {
            (items[j], grantSigOk[j], voucherSigOk[j]) =
                _junkItem(uint256(keccak256(abi.encode(junkSeed, j))));
        }
        for (uint256 j; j < n; ++j) {
            items[junk + j] = ackedItem(chosen[j] / PAYEES, chosen[j] % PAYEES);
            (grantSigOk[junk + j], voucherSigOk[junk + j]) = (true, true);
        }
        uint256[] memory before = new uint256[](items.length);
        for (uint256 j; j < items.length; ++j) {
            before[j] = vault.settled(vault.grantId(items[j].grant), items[j].payee);
        }

        _submit(items, grantSigOk, voucherSigOk);

        for (uint256 j; j < items.length; ++j) {
            uint256 after_ = vault.settled(vault.grantId(items[j].grant), items[j].payee);
            if (after_ < before[j]) revert("settled went down");
        }
        for (uint256 j; j < n; ++j) {
            (uint256 g, uint256 p) = (chosen[j] / PAYEES, chosen[j] % PAYEES);
            if (inWindow(g, p) && _pending(g, p)) {
                revert("an acked voucher inside its window did not settle");
            }
        }
    }

    /// @notice Run once at the end of a run (from `afterInvariant`, not by the fuzzer): whatever state the run left
    /// (fees scheduled, time passed, revocations, thawing funds), a listener who deposits and streams under a fresh
    /// grant is acked and settled, and the vault must pay the voucher exactly. So every run settles at least one item
    /// the vault must accept, and a vault that pays nothing cannot pass a run that happened to ack nothing.
    function probe() external {
        require(!probed, "probe runs once");
        probed = true;
        address who = listeners[0];
        uint256 amount = 3 * ONE_USDC + 1234;
        usdc.mint(who, amount);
        vm.startPrank(who);
        usdc.approve(address(vault), amount);
        vault.deposit(amount);
        vm.stopPrank();
        ghostAccount[who].available += amount;

        // Above every nonce floor a listener raises (MAX_FLOOR), and a session key no other grant uses.
        SessionGrant memory grant = SessionGrant({
            listener: who,
            sessionKey: vm.addr(PROBE_SESSION_KEY),
            cap: 10 * ONE_USDC,
            expiresAt: uint64(vm.getBlockTimestamp() + 1 days),
            nonce: MAX_FLOOR + 1
        });
        bytes32 id = vault.grantId(grant);
        SettlementItem[] memory items = new SettlementItem[](1);
        items[0].grant = grant;
        items[0].grantSignature = _sign(_listenerKeys[0], vault.grantDigest(grant));
        items[0].payee = payees[0];
        items[0].cumulative = amount;
        items[0].voucherSignature = _sign(PROBE_SESSION_KEY, vault.voucherDigest(id, payees[0], amount));
        // The relay acks it: the listener's own funds back it whole.
        newestSigned[id][payees[0]] = amount;
        acks++;
        bool[] memory yes = new bool[](1);
        yes[0] = true;
        uint256 accepted = mustAcceptSubmitted;
        _submit(items, yes, yes);
        if (mustAcceptSubmitted != accepted + 1) revert("the model refused the probe's voucher");

        // And a tip under the same grant to split v1 (registered now, so no grant signature), funded the same way.
        uint256 tipAmount = ONE_USDC + 777;
        usdc.mint(who, tipAmount);
        vm.startPrank(who);
        usdc.approve(address(vault), tipAmount);
        vault.deposit(tipAmount);
        vm.stopPrank();
        ghostAccount[who].available += tipAmount;
        TipItem[] memory tips = new TipItem[](1);
        tips[0].grant = grant;
        tips[0].payee = payees[PLAIN_PAYEES];
        tips[0].tipId = 1;
        tips[0].amount = tipAmount;
        tips[0].message = "probe";
        tips[0].tipSignature = _sign(
            PROBE_SESSION_KEY, vault.tipDigest(id, payees[PLAIN_PAYEES], 1, tipAmount, keccak256("probe"))
        );
        accepted = tipsMustAcceptSubmitted;
        _submitTips(tips, yes, yes);
        if (tipsMustAcceptSubmitted != accepted + 1) revert("the model refused the probe's tip");
    }

    /// @dev One of: a stale voucher, one past the cap, a huge one, one signed by the wrong key, one for the zero
    /// payee, one under a new grant signed by the wrong key. None was acked, and the vault must refuse each.
    function _junkItem(uint256 r)
        internal
        view
        returns (SettlementItem memory item, bool grantSigOk, bool voucherSigOk)
    {
        uint256 g = r % GRANTS;
        uint256 mode = (r >> 8) % 6;
        uint256 noise = r >> 16;
        bytes32 id = grantIds[g];
        item.grant = _grants[g];
        item.payee = payees[(r >> 4) % PAYEES];
        uint256 prior = ghostSettled[id][item.payee];
        uint256 signingKey = _grantSessionKey[g];
        uint256 grantKey = _grantListenerKey[g];
        if (mode == 0) {
            item.cumulative = noise % (prior + 1); // stale or equal
        } else if (mode == 1) {
            item.cumulative = prior + (effectiveCap(g) - ghostSpent[id]) + 1 + noise % 1000; // past the cap
        } else if (mode == 2) {
            item.cumulative = type(uint256).max - noise % 3; // huge
        } else if (mode == 3) {
            item.cumulative = prior + 1 + noise % ONE_USDC;
            signingKey = _grantListenerKey[g]; // the wrong key
        } else if (mode == 4) {
            item.cumulative = prior + 1 + noise % ONE_USDC;
            item.payee = address(0); // malformed
        } else {
            // A grant never registered, its signature by the session key instead of the listener.
            item.grant.nonce = uint64(1000 + noise % 1000);
            id = vault.grantId(item.grant);
            item.cumulative = 1 + noise % ONE_USDC;
            grantKey = _grantSessionKey[g];
        }
        item.grantSignature = _sign(grantKey, vault.grantDigest(item.grant));
        item.voucherSignature = _sign(signingKey, vault.voucherDigest(id, item.payee, item.cumulative));
        grantSigOk = grantKey == _grantListenerKey[g];
        voucherSigOk = signingKey == _grantSessionKey[g];
    }

    /// @dev Sends `items` as the keeper, with the model's outcome for each worked out first, in order (items of one
    /// batch share funds, caps and registration). `grantSigOk[j]` / `voucherSigOk[j]`: whether item j's grant was
    /// signed by its listener and its voucher by its session key (the handler knows which key it signed with).
    /// Each item's event is compared with the model's outcome and counted; the model then holds the vault's state as
    /// its rules make it, which the invariants compare with the vault's.
    function _submit(SettlementItem[] memory items, bool[] memory grantSigOk, bool[] memory voucherSigOk)
        internal
    {
        Expected[] memory expected = new Expected[](items.length);
        for (uint256 j; j < items.length; ++j) {
            expected[j] = _expectAndApply(items[j], grantSigOk[j], voucherSigOk[j]);
        }
        vm.recordLogs();
        vm.prank(keeper);
        uint256 settledCount = vault.settleBatch(items);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        _addSettledEvents(logs);
        _compareOutcomes(items, expected, logs);
        itemsSettled += settledCount;
        itemsSkipped += items.length - settledCount;
    }

    /// @dev The vault's rules for one item, in the vault's order, against the model; applies the outcome to the model.
    function _expectAndApply(SettlementItem memory item, bool grantSigOk, bool voucherSigOk)
        internal
        returns (Expected memory e)
    {
        SessionGrant memory grant = item.grant;
        bytes32 id = vault.grantId(grant);
        address payee = item.payee;
        uint256 now_ = vm.getBlockTimestamp();
        e.settles = false;
        if (payee == address(0) || grant.listener == address(0)) {
            e.reason = SkipReason.Malformed;
        } else if (now_ > uint256(grant.expiresAt) + settlementWindow) {
            e.reason = SkipReason.GrantExpired;
        } else if (item.cumulative <= ghostSettled[id][payee]) {
            e.reason = SkipReason.StaleVoucher;
        } else {
            uint256 amount = item.cumulative - ghostSettled[id][payee];
            uint256 cap = grant.cap < MAX_SPEND ? grant.cap : MAX_SPEND;
            GhostAccount storage acc = ghostAccount[grant.listener];
            if (amount > cap - ghostSpent[id]) {
                e.reason = SkipReason.CapExceeded;
            } else if (!ghostRegistered[id] && !grantSigOk) {
                e.reason = SkipReason.InvalidGrantSignature;
            } else if (!voucherSigOk) {
                e.reason = SkipReason.InvalidVoucherSignature;
            } else if (ghostRevoked(grant.listener, id, grant.nonce)) {
                e.reason = SkipReason.GrantRevoked;
            } else if (amount > acc.available + acc.thawing) {
                e.reason = SkipReason.InsufficientFunds;
            } else {
                e.settles = true;
                e.amount = amount;
                e.fee = amount * ghostFeeNow() / BPS;
                // Available funds first, then thawing ones.
                if (amount <= acc.available) {
                    acc.available -= amount;
                } else {
                    (acc.available, acc.thawing) = (0, acc.thawing - (amount - acc.available));
                }
                ghostSpent[id] += amount;
                ghostSettled[id][payee] = item.cumulative;
                ghostRegistered[id] = true;
                _ghostCredit(payee, amount - e.fee);
                ghostAccruedFees += e.fee;
            }
        }
        if (e.settles) {
            mustAcceptSubmitted++;
            ghostExpectedSettledSum += e.amount;
            ghostExpectedFeeSum += e.fee;
        } else {
            mustRefuseSubmitted++;
        }
    }

    /// @dev Matches the batch's per-item events (`Settled` or `SettlementSkipped`, one per item, in order) with the
    /// model's outcomes and counts those that agree exactly. A batch cut short leaves its last items without an event
    /// and so without a match.
    function _compareOutcomes(SettlementItem[] memory items, Expected[] memory expected, Vm.Log[] memory logs)
        internal
    {
        uint256 j;
        for (uint256 i; i < logs.length && j < items.length; ++i) {
            if (logs[i].emitter != address(vault)) continue;
            bytes32 topic = logs[i].topics[0];
            if (topic == IBeatStreamVault.Settled.selector) {
                (uint256 amount, uint256 cumulative, uint256 fee) =
                    abi.decode(logs[i].data, (uint256, uint256, uint256));
                Expected memory e = expected[j];
                if (
                    e.settles && logs[i].topics[1] == vault.grantId(items[j].grant)
                        && address(uint160(uint256(logs[i].topics[3]))) == items[j].payee
                        && amount == e.amount && cumulative == items[j].cumulative && fee == e.fee
                ) mustAcceptSettledExactly++;
                ++j;
            } else if (topic == IBeatStreamVault.SettlementSkipped.selector) {
                (, SkipReason reason) = abi.decode(logs[i].data, (uint256, SkipReason));
                if (!expected[j].settles && reason == expected[j].reason) mustRefuseSkippedAsExpected++;
                ++j;
            }
        }
    }

    /*//////////////////////////////////////////////////////////////
                                 SPLITS
    //////////////////////////////////////////////////////////////*/

    /// @dev The manager sets a further version of the artist's split (never a payee here), with random shares over
    /// the recipients of v1 and v2: what v1 and v2 pay must not change.
    function setSplitVersion(uint256 seed) external {
        calls["setSplitVersion"]++;
        address[] memory recipients = new address[](2);
        (recipients[0], recipients[1]) =
        (earners[seed % earners.length], address(uint160(0xC0117AC0 + seed % 7)));
        uint16[] memory shares = new uint16[](2);
        shares[0] = uint16(1 + (seed >> 8) % 9999);
        shares[1] = 10_000 - shares[0];
        vm.prank(manager);
        vault.setSplit(node, 0, recipients, shares);
    }

    /// @dev The manager clears the artist's current split; v1 and v2 still settle by their shares.
    function clearSplit() external {
        (address current,) = vault.currentSplit(node, 0);
        if (current == address(0)) return;
        calls["clearSplit"]++;
        vm.prank(manager);
        vault.clearSplit(node, 0);
    }

    /// @notice The model's parts of `amount` settled to `split`: each recipient's share rounded down, plus one unit for
    /// each recipient ranked among the first (amount - Σ floors) by remainder, larger first, earlier first on a tie.
    function ghostParts(address split, uint256 amount) public view returns (uint256[] memory parts) {
        uint16[] memory shares = _splitShares[split];
        uint256 n = shares.length;
        parts = new uint256[](n);
        uint256 left = amount;
        for (uint256 i; i < n; ++i) {
            parts[i] = amount * shares[i] / BPS;
            left -= parts[i];
        }
        for (uint256 i; i < n; ++i) {
            uint256 ri = amount * shares[i] % BPS;
            uint256 rank;
            for (uint256 j; j < n; ++j) {
                uint256 rj = amount * shares[j] % BPS;
                if (rj > ri || (rj == ri && j < i)) ++rank;
            }
            if (rank < left) parts[i] += 1;
        }
    }

    function _addSplit(address[] memory recipients, uint16[] memory shares) internal {
        vm.prank(manager);
        (address split,) = vault.setSplit(node, 0, recipients, shares);
        payees.push(split);
        isSplit[split] = true;
        _splitRecipients[split] = recipients;
        _splitShares[split] = shares;
    }

    /// @dev Credits `net` to a plain payee, or to a split payee's recipients by the model's parts.
    function _ghostCredit(address payee, uint256 net) internal {
        if (!isSplit[payee]) {
            ghostEarnings[payee] += net;
            return;
        }
        uint256[] memory parts = ghostParts(payee, net);
        address[] memory recipients = _splitRecipients[payee];
        for (uint256 i; i < parts.length; ++i) {
            ghostEarnings[recipients[i]] += parts[i];
        }
    }

    /*//////////////////////////////////////////////////////////////
                                  TIPS
    //////////////////////////////////////////////////////////////*/

    /// @dev The relay acks a tip if its guard allows it, as for a voucher increase: the grant is live and not revoked
    /// as the relay sees it, and the tip fits both the cap left after everything acked and the listener's available
    /// funds less everything acked and unsettled.
    function tipAck(uint256 grantSeed, uint256 payeeSeed, uint256 amount, uint256 messageSeed) external {
        uint256 g = grantSeed % GRANTS;
        SessionGrant memory grant = _grants[g];
        bytes32 id = grantIds[g];
        (uint64 floor,,) = vault.nonceFloorOf(grant.listener);
        if (
            vm.getBlockTimestamp() > grant.expiresAt || vault.grantRevokedAt(grant.listener, id) != 0
                || grant.nonce < floor
        ) return;
        uint256 capLeft = effectiveCap(g) - _ackedTotal(g);
        uint256 fundsLeft = vault.spendableOf(grant.listener);
        uint256 outstanding = _outstanding(grant.listener);
        fundsLeft = fundsLeft > outstanding ? fundsLeft - outstanding : 0;
        uint256 headroom = capLeft < fundsLeft ? capLeft : fundsLeft;
        if (headroom == 0) return;
        calls["tipAck"]++;
        amount = _bound(amount, 1, headroom < 3 * ONE_USDC ? headroom : 3 * ONE_USDC);
        _ackedTips.push(
            AckedTip({
                g: g,
                p: payeeSeed % PAYEES,
                tipId: _ackedTips.length,
                amount: amount,
                messageLength: messageSeed % (MAX_TIP_MESSAGE + 1),
                ackTime: vm.getBlockTimestamp()
            })
        );
        tipAcked[id] += amount;
    }

    /// @dev The keeper settles a random subset of the acked tips not yet settled (at least one when any is pending),
    /// after up to two tips the vault must refuse. Every acked tip still inside its window must settle.
    function keeperSettleTips(uint256 subsetSeed, uint256 junkSeed) external {
        uint256 pendingCount;
        for (uint256 t; t < _ackedTips.length; ++t) {
            if (!_tipSettled(t)) ++pendingCount;
        }
        uint256 junk = junkSeed % 3;
        if (pendingCount == 0 && junk == 0) return;
        calls["keeperSettleTips"]++;
        uint256[] memory chosen = new uint256[](pendingCount);
        uint256 n;
        uint256 k;
        for (uint256 t; t < _ackedTips.length; ++t) {
            if (_tipSettled(t)) continue;
            if ((subsetSeed >> (k % 256)) & 1 == 1 || (n == 0 && k == pendingCount - 1)) chosen[n++] = t;
            ++k;
        }
        TipItem[] memory tips = new TipItem[](junk + n);
        bool[] memory grantSigOk = new bool[](junk + n);
        bool[] memory tipSigOk = new bool[](junk + n);
        for (uint256 j; j < junk; ++j) {
            (tips[j], grantSigOk[j], tipSigOk[j]) = _junkTip(uint256(keccak256(abi.encode(junkSeed, j))));
        }
        for (uint256 j; j < n; ++j) {
            tips[junk + j] = ackedTip(chosen[j]);
            (grantSigOk[junk + j], tipSigOk[junk + j]) = (true, true);
        }
        _submitTips(tips, grantSigOk, tipSigOk);
        for (uint256 j; j < n; ++j) {
            AckedTip memory tip = _ackedTips[chosen[j]];
            if (vm.getBlockTimestamp() < tip.ackTime + withdrawalDelay && !_tipSettled(chosen[j])) {
                revert("an acked tip inside its window did not settle");
            }
        }
    }

    /// @notice Acked tip `t` as the keeper sends it: the grant signature while the grant is unregistered.
    function ackedTip(uint256 t) public view returns (TipItem memory tip) {
        AckedTip memory a = _ackedTips[t];
        tip = _signedTip(a.g, payees[a.p], a.tipId, a.amount, _message(a.messageLength, a.tipId));
    }

    /// @notice Every acked tip still inside its window and not yet settled, as the keeper sends them.
    function pendingTipsInWindow() external view returns (TipItem[] memory tips) {
        uint256 n;
        for (uint256 t; t < _ackedTips.length; ++t) {
            if (_tipInWindow(t) && !_tipSettled(t)) ++n;
        }
        tips = new TipItem[](n);
        n = 0;
        for (uint256 t; t < _ackedTips.length; ++t) {
            if (_tipInWindow(t) && !_tipSettled(t)) tips[n++] = ackedTip(t);
        }
    }

    function ackedTipCount() external view returns (uint256) {
        return _ackedTips.length;
    }

    function _tipSettled(uint256 t) internal view returns (bool) {
        return vault.isTipSettled(grantIds[_ackedTips[t].g], _ackedTips[t].tipId);
    }

    function _tipInWindow(uint256 t) internal view returns (bool) {
        return vm.getBlockTimestamp() < _ackedTips[t].ackTime + withdrawalDelay;
    }

    /// @dev A message of `length` bytes, different per tip.
    function _message(uint256 length, uint256 salt) internal pure returns (string memory) {
        bytes memory b = new bytes(length);
        for (uint256 i; i < length; ++i) {
            b[i] = bytes1(uint8(0x41 + (i + salt) % 26));
        }
        return string(b);
    }

    function _signedTip(uint256 g, address payee, uint256 tipId, uint256 amount, string memory message)
        internal
        view
        returns (TipItem memory tip)
    {
        tip.grant = _grants[g];
        if (!ghostRegistered[grantIds[g]]) {
            tip.grantSignature = _sign(_grantListenerKey[g], vault.grantDigest(tip.grant));
        }
        tip.payee = payee;
        tip.tipId = tipId;
        tip.amount = amount;
        tip.message = message;
        tip.tipSignature = _sign(
            _grantSessionKey[g], vault.tipDigest(grantIds[g], payee, tipId, amount, keccak256(bytes(message)))
        );
    }

    /// @dev One of: a replay of a settled acked tip, an unacked tip with a 281-byte message, an unacked tip past the
    /// cap, an unacked tip signed by the wrong key. None may settle.
    function _junkTip(uint256 r) internal view returns (TipItem memory tip, bool grantSigOk, bool tipSigOk) {
        uint256 g = r % GRANTS;
        uint256 mode = (r >> 8) % 4;
        address payee = payees[(r >> 4) % PAYEES];
        // Unacked tips use ids far above the acked ones'.
        uint256 tipId = 1e9 + (r >> 16) % 1e6;
        (grantSigOk, tipSigOk) = (true, true);
        if (mode == 0) {
            for (uint256 t; t < _ackedTips.length; ++t) {
                if (_tipSettled(t)) return (ackedTip(t), true, true);
            }
            mode = 1;
        }
        if (mode == 1) {
            tip = _signedTip(g, payee, tipId, 1 + (r >> 40) % ONE_USDC, _message(MAX_TIP_MESSAGE + 1, r));
        } else if (mode == 2) {
            uint256 capLeft = effectiveCap(g) - ghostSpent[grantIds[g]];
            tip = _signedTip(g, payee, tipId, capLeft + 1 + (r >> 40) % 1000, "over the cap");
        } else {
            tip = _signedTip(g, payee, tipId, 1 + (r >> 40) % ONE_USDC, "wrong key");
            tip.tipSignature = _sign(
                _grantListenerKey[g],
                vault.tipDigest(grantIds[g], payee, tipId, tip.amount, keccak256(bytes(tip.message)))
            );
            tipSigOk = false;
        }
    }

    /// @dev Sends `tips` as the keeper with the model's outcome for each worked out first, in order; compares each
    /// tip's event with it and counts agreements.
    function _submitTips(TipItem[] memory tips, bool[] memory grantSigOk, bool[] memory tipSigOk) internal {
        Expected[] memory expected = new Expected[](tips.length);
        for (uint256 t; t < tips.length; ++t) {
            expected[t] = _expectAndApplyTip(tips[t], grantSigOk[t], tipSigOk[t]);
        }
        vm.recordLogs();
        vm.prank(keeper);
        vault.settleBatchWithTips(new SettlementItem[](0), tips);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        _addSettledEvents(logs);
        uint256 j;
        for (uint256 i; i < logs.length && j < tips.length; ++i) {
            if (logs[i].emitter != address(vault)) continue;
            bytes32 topic = logs[i].topics[0];
            if (topic == IBeatStreamVault.Tipped.selector) {
                (uint256 tipId, uint256 amount, uint256 fee, string memory message) =
                    abi.decode(logs[i].data, (uint256, uint256, uint256, string));
                Expected memory e = expected[j];
                if (
                    e.settles && logs[i].topics[1] == vault.grantId(tips[j].grant)
                        && address(uint160(uint256(logs[i].topics[3]))) == tips[j].payee
                        && tipId == tips[j].tipId && amount == e.amount && fee == e.fee
                        && keccak256(bytes(message)) == keccak256(bytes(tips[j].message))
                ) tipsMustAcceptSettledExactly++;
                ++j;
            } else if (topic == IBeatStreamVault.TipSkipped.selector) {
                (uint256 tipId, SkipReason reason) = abi.decode(logs[i].data, (uint256, SkipReason));
                if (!expected[j].settles && reason == expected[j].reason && tipId == tips[j].tipId) {
                    tipsMustRefuseSkippedAsExpected++;
                }
                ++j;
            }
        }
    }

    /// @dev The vault's rules for one tip, in the vault's order, against the model; applies the outcome to the model.
    function _expectAndApplyTip(TipItem memory tip, bool grantSigOk, bool tipSigOk)
        internal
        returns (Expected memory e)
    {
        SessionGrant memory grant = tip.grant;
        bytes32 id = vault.grantId(grant);
        uint256 amount = tip.amount;
        GhostAccount storage acc = ghostAccount[grant.listener];
        uint256 cap = grant.cap < MAX_SPEND ? grant.cap : MAX_SPEND;
        if (tip.payee == address(0) || grant.listener == address(0) || amount == 0) {
            e.reason = SkipReason.Malformed;
        } else if (bytes(tip.message).length > MAX_TIP_MESSAGE) {
            e.reason = SkipReason.MessageTooLong;
        } else if (vm.getBlockTimestamp() > uint256(grant.expiresAt) + settlementWindow) {
            e.reason = SkipReason.GrantExpired;
        } else if (ghostTipSettled[id][tip.tipId]) {
            e.reason = SkipReason.TipAlreadySettled;
        } else if (amount > cap - ghostSpent[id]) {
            e.reason = SkipReason.CapExceeded;
        } else if (!ghostRegistered[id] && !grantSigOk) {
            e.reason = SkipReason.InvalidGrantSignature;
        } else if (!tipSigOk) {
            e.reason = SkipReason.InvalidVoucherSignature;
        } else if (ghostRevoked(grant.listener, id, grant.nonce)) {
            e.reason = SkipReason.GrantRevoked;
        } else if (amount > acc.available + acc.thawing) {
            e.reason = SkipReason.InsufficientFunds;
        } else {
            e.settles = true;
            e.amount = amount;
            e.fee = amount * ghostFeeNow() / BPS;
            if (amount <= acc.available) {
                acc.available -= amount;
            } else {
                (acc.available, acc.thawing) = (0, acc.thawing - (amount - acc.available));
            }
            ghostSpent[id] += amount;
            ghostRegistered[id] = true;
            ghostTipSettled[id][tip.tipId] = true;
            _ghostCredit(tip.payee, amount - e.fee);
            ghostAccruedFees += e.fee;
        }
        if (e.settles) {
            tipsMustAcceptSubmitted++;
            ghostExpectedTippedSum += e.amount;
        } else {
            tipsMustRefuseSubmitted++;
        }
    }

    /*//////////////////////////////////////////////////////////////
                            PAYEES, OWNER
    //////////////////////////////////////////////////////////////*/

    function withdrawEarnings(uint256 payeeSeed, uint256 amount, uint256 toSeed) external {
        address payee = earners[payeeSeed % earners.length];
        uint256 earnings = vault.earningsOf(payee);
        if (earnings == 0) return;
        calls["withdrawEarnings"]++;
        amount = _bound(amount, 1, earnings);
        vm.prank(payee);
        vault.withdrawEarnings(_sink(toSeed), amount);
        ghostEarnings[payee] -= amount;
    }

    function collectFees() external {
        if (vault.accruedFees() == 0) return;
        calls["collectFees"]++;
        vault.collectFees();
        ghostAccruedFees = 0;
    }

    function scheduleFee(uint256 fee) external {
        calls["scheduleFee"]++;
        fee = _bound(fee, 0, vault.MAX_FEE_BPS());
        vm.prank(owner);
        vault.scheduleFee(uint16(fee));
        _feeCurrent = ghostFeeNow();
        _feeNext = fee;
        _feeNextFrom = vm.getBlockTimestamp() + withdrawalDelay;
    }

    /*//////////////////////////////////////////////////////////////
                                HELPERS
    //////////////////////////////////////////////////////////////*/

    /// @dev Whether (g, p) has an acked voucher not settled in full.
    function _pending(uint256 g, uint256 p) internal view returns (bool) {
        address payee = payees[p];
        return newestSigned[grantIds[g]][payee] > vault.settled(grantIds[g], payee);
    }

    /// @dev Σ over the grant's payees of the newest acked cumulative: what the relay has promised under the cap.
    function _ackedTotal(uint256 g) internal view returns (uint256 total) {
        for (uint256 p; p < PAYEES; ++p) {
            total += newestSigned[grantIds[g]][payees[p]];
        }
        total += tipAcked[grantIds[g]];
    }

    /// @dev Σ over the listener's acked pairs of (acked cumulative − settled): what its funds back already. Pairs whose
    /// vouchers can no longer settle are still counted, as a relay that does not know it would.
    function _outstanding(address listener) internal view returns (uint256 total) {
        for (uint256 g; g < GRANTS; ++g) {
            if (_grants[g].listener != listener) continue;
            for (uint256 p; p < PAYEES; ++p) {
                uint256 acked = newestSigned[grantIds[g]][payees[p]];
                uint256 settled = vault.settled(grantIds[g], payees[p]);
                if (acked > settled) total += acked - settled;
            }
        }
        for (uint256 t; t < _ackedTips.length; ++t) {
            AckedTip memory tip = _ackedTips[t];
            if (_grants[tip.g].listener != listener) continue;
            if (!vault.isTipSettled(grantIds[tip.g], tip.tipId)) total += tip.amount;
        }
    }

    /// @dev Adds what each `Settled` moved to the ghost sum, and checks that each settled voucher is an acked one (the
    /// keeper sends a pair's newest acked cumulative and nothing else the vault may accept).
    function _addSettledEvents(Vm.Log[] memory logs) internal {
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter == address(vault) && logs[i].topics[0] == IBeatStreamVault.Settled.selector) {
                (uint256 amount, uint256 cumulative, uint256 fee) =
                    abi.decode(logs[i].data, (uint256, uint256, uint256));
                address payee = address(uint160(uint256(logs[i].topics[3])));
                if (cumulative != newestSigned[logs[i].topics[1]][payee]) {
                    revert("the vault settled a voucher no relay acked");
                }
                ghostSettledSum += amount;
                ghostFeeSum += fee;
                if (isSplit[payee]) {
                    ghostSettledToSplitsSum += amount;
                    ghostSplitFeeSum += fee;
                }
            } else if (
                logs[i].emitter == address(vault) && logs[i].topics[0] == IBeatStreamVault.Tipped.selector
            ) {
                (, uint256 amount, uint256 fee,) =
                    abi.decode(logs[i].data, (uint256, uint256, uint256, string));
                ghostTippedSum += amount;
                ghostTipFeeSum += fee;
                eventTipped[logs[i].topics[1]] += amount;
                if (isSplit[address(uint160(uint256(logs[i].topics[3])))]) {
                    ghostSettledToSplitsSum += amount;
                    ghostSplitFeeSum += fee;
                }
            } else if (
                logs[i].emitter == address(vault) && logs[i].topics[0] == IBeatStreamVault.SplitPaid.selector
            ) {
                (uint256 amount, uint256[] memory parts) = abi.decode(logs[i].data, (uint256, uint256[]));
                uint256 sum;
                for (uint256 j; j < parts.length; ++j) {
                    sum += parts[j];
                }
                if (sum != amount) splitPaidMismatches++;
                ghostSplitPartsSum += sum;
            }
        }
    }

    function _sign(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    /// @dev Where withdrawals go: never the vault itself, whose balance the invariants account for.
    function _sink(uint256 seed) internal pure returns (address) {
        return address(uint160(0x51E4 + seed % 3));
    }

    function _bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        if (x >= min && x <= max) return x;
        return min + x % (max - min + 1);
    }
}
