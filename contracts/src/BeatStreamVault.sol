// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IBeatStreamRegistry, Track} from "./interfaces/IBeatStreamRegistry.sol";
import {IBeatStreamVault} from "./interfaces/IBeatStreamVault.sol";
import {SignatureParsing} from "./libraries/SignatureParsing.sol";
import {VoucherHashing} from "./libraries/VoucherHashing.sol";
import {
    Account,
    FeeSchedule,
    GrantState,
    NonceFloor,
    SessionGrant,
    SettlementItem,
    SkipReason,
    SplitHead,
    SplitInfo,
    SplitShare,
    TipItem
} from "./types/DataTypes.sol";

/// @title BeatStreamVault
/// @notice Listeners deposit USDC; their players sign cumulative per-second vouchers under a session grant; the
/// operator's settlers settle those vouchers in batches, paying artists' earnings, which artists pull.
/// @dev Invariant: token balance == Σ available + Σ thawing + Σ earnings + accruedFees.
///
/// Splits: an artist's manager sets versioned splits of the artist or of one track. Each version has a payee address
/// of its own, derived from (node, trackId, version); the relay names it in vouchers, and a settlement to it is
/// credited at once (push) to the version's recipients by its shares, so seconds streamed under a version are paid
/// under it whenever they settle. A payee's earnings and its split marker share one slot, which settlement reads
/// anyway, so a plain payee pays nothing for splits existing. Tips are one-off signed amounts settled beside vouchers.
///
/// The funding rule (v2): a relay acks a voucher, and releases the music, against the listener's available funds.
/// Nothing the listener can do takes those funds away faster than the withdrawal delay: withdrawals thaw for the
/// delay and thawing funds still settle; revocations take effect after the delay; only settlers may settle, so a
/// listener cannot pay itself (or its own artist name) ahead of the keeper; fee changes wait out the delay too.
contract BeatStreamVault is IBeatStreamVault, EIP712, Ownable2Step {
    using SafeERC20 for IERC20;

    /// @inheritdoc IBeatStreamVault
    uint16 public constant override MAX_FEE_BPS = 1000;

    uint256 private constant BPS = 10_000;

    /// @dev Gas given to a smart-wallet listener's `isValidSignature`. Bounded so that one hostile wallet cannot burn
    /// the gas of the whole batch (OpenZeppelin's SignatureChecker forwards all of it); ample for multisig checks.
    uint256 private constant ERC1271_GAS = 150_000;

    /// @dev The most gas one item needs outside a wallet check (a first settlement creating every slot it touches
    /// measures about 56,000). Below it the batch stops ({BatchCutShort}) instead of running out of gas, so a batch
    /// whose gas a hostile wallet burned still keeps the items it settled.
    uint256 private constant ITEM_GAS = 80_000;

    /// @dev The most gas one tip needs outside a wallet check (a first settlement of its grant to a payee that never
    /// earned, a new word of tip ids and a 280-byte message measure about 110,000). Below it the tips stop
    /// ({TipsCutShort}) instead of running out of gas.
    uint256 private constant TIP_GAS = 130_000;

    /// @dev Gas that must be left before a wallet check: the allowance, the 1/64 the EVM keeps back from a call, and
    /// the rest of the item after it.
    uint256 private constant ERC1271_GAS_NEEDED = ERC1271_GAS + ERC1271_GAS / 63 + ITEM_GAS;

    /// @inheritdoc IBeatStreamVault
    uint64 public constant override MIN_WITHDRAWAL_DELAY = 1 minutes;

    /// @inheritdoc IBeatStreamVault
    uint64 public constant override MAX_WITHDRAWAL_DELAY = 30 days;

    /// @inheritdoc IBeatStreamVault
    uint64 public constant override MAX_SETTLEMENT_WINDOW = 365 days;

    /// @dev The largest amount a grant can spend; larger caps are clamped to it (see {GrantState}).
    uint256 private constant MAX_GRANT_SPEND = type(uint48).max;

    /// @inheritdoc IBeatStreamVault
    uint256 public constant override MAX_SPLIT_RECIPIENTS = 20;

    /// @inheritdoc IBeatStreamVault
    uint256 public constant override MAX_TIP_MESSAGE_BYTES = 280;

    /// @dev The most gas crediting one split recipient takes (its share and earnings slots cold, earnings from zero,
    /// about 25,000) with a margin. A split item needs this per recipient beyond {ITEM_GAS}, else it is skipped
    /// ({SkipReason.InsufficientGas}) rather than running the batch out of gas.
    uint256 private constant SPLIT_RECIPIENT_GAS = 30_000;

    /// @dev Where a payee's word of {_payees} keeps its split size, and the mask of its earnings below.
    uint256 private constant SPLIT_SIZE_SHIFT = 248;
    uint256 private constant EARNINGS_MASK = type(uint248).max;

    /// @dev Tags the preimage of split payee addresses: keccak256("BeatStream split payee").
    bytes32 private constant SPLIT_PAYEE_TAG = keccak256("BeatStream split payee");

    /// @inheritdoc IBeatStreamVault
    IBeatStreamRegistry public immutable override registry;

    /// @inheritdoc IBeatStreamVault
    IERC20 public immutable override token;

    /// @inheritdoc IBeatStreamVault
    uint64 public immutable override withdrawalDelay;

    /// @inheritdoc IBeatStreamVault
    uint64 public immutable override settlementWindow;

    /// @inheritdoc IBeatStreamVault
    address public override treasury;

    FeeSchedule private _fee;

    /// @inheritdoc IBeatStreamVault
    uint256 public override accruedFees;

    /// @dev Each payee's earnings (the low 248 bits) and, for a split payee, its number of recipients (the top 8
    /// bits; zero for a plain payee). Settlement reads this word to credit the payee anyway, so telling a split from a
    /// plain payee costs a plain payee nothing. A split payee's earnings stay zero: its settlements go to its
    /// recipients.
    mapping(address payee => uint256 word) private _payees;

    mapping(address listener => Account) private _accounts;
    mapping(bytes32 grantId => GrantState) private _grants;
    /// @dev Settled cumulative of every payee of a grant but its first, which lives in {GrantState}.
    mapping(bytes32 grantId => mapping(address payee => uint256 cumulative)) private _settled;
    mapping(address account => uint256 from) private _settlerFrom;
    mapping(address listener => mapping(bytes32 grantId => uint256 effectiveAt)) private _revokedAt;
    mapping(address listener => NonceFloor) private _nonceFloors;
    mapping(bytes32 node => mapping(uint256 trackId => SplitHead)) private _splitHeads;
    mapping(address split => SplitInfo) private _splitInfo;
    mapping(address split => mapping(uint256 index => SplitShare)) private _splitShares;
    /// @dev Settled tip ids per grant, 256 to a word.
    mapping(bytes32 grantId => mapping(uint256 word => uint256 bits)) private _tipsSettled;

    /// @param token_ The token listeners deposit and artists earn (USDC).
    /// @param withdrawalDelay_ Seconds a withdrawal request thaws; the keeper's time to settle what is owed.
    /// @param settlementWindow_ Seconds after a grant expires during which its vouchers can still settle.
    /// @param owner_ May schedule the fee, set the treasury and allow settlers.
    /// @param treasury_ Receives protocol fees.
    /// @param feeBps_ Protocol fee in basis points, at most {MAX_FEE_BPS}.
    /// @param settlers_ May settle at once (the operator's keeper accounts).
    /// @param registry_ The artist registry: its name tokens decide who manages an artist's splits.
    constructor(
        IERC20 token_,
        uint64 withdrawalDelay_,
        uint64 settlementWindow_,
        address owner_,
        address treasury_,
        uint16 feeBps_,
        address[] memory settlers_,
        IBeatStreamRegistry registry_
    ) EIP712("BeatStream", "1") Ownable(owner_) {
        if (address(token_) == address(0) || treasury_ == address(0) || address(registry_) == address(0)) {
            revert BeatStreamVault_ZeroAddress();
        }
        if (feeBps_ > MAX_FEE_BPS) revert BeatStreamVault_FeeTooHigh(feeBps_, MAX_FEE_BPS);
        if (withdrawalDelay_ < MIN_WITHDRAWAL_DELAY || withdrawalDelay_ > MAX_WITHDRAWAL_DELAY) {
            revert BeatStreamVault_WithdrawalDelayOutOfRange(
                withdrawalDelay_, MIN_WITHDRAWAL_DELAY, MAX_WITHDRAWAL_DELAY
            );
        }
        if (settlementWindow_ < withdrawalDelay_ || settlementWindow_ > MAX_SETTLEMENT_WINDOW) {
            revert BeatStreamVault_SettlementWindowOutOfRange(
                settlementWindow_, withdrawalDelay_, MAX_SETTLEMENT_WINDOW
            );
        }
        token = token_;
        registry = registry_;
        withdrawalDelay = withdrawalDelay_;
        settlementWindow = settlementWindow_;
        treasury = treasury_;
        _fee.current = feeBps_;
        emit FeeScheduled(feeBps_, block.timestamp);
        for (uint256 i; i < settlers_.length; ++i) {
            if (settlers_[i] == address(0)) revert BeatStreamVault_ZeroAddress();
            _settlerFrom[settlers_[i]] = block.timestamp;
            emit SettlerUpdated(settlers_[i], true, block.timestamp);
        }
    }

    /*//////////////////////////////////////////////////////////////
                                LISTENERS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IBeatStreamVault
    function deposit(uint256 amount) external override {
        _deposit(msg.sender, amount);
    }

    /// @inheritdoc IBeatStreamVault
    function depositFor(address listener, uint256 amount) external override {
        if (listener == address(0)) revert BeatStreamVault_ZeroAddress();
        _deposit(listener, amount);
    }

    /// @inheritdoc IBeatStreamVault
    function depositWithPermit(uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        override
    {
        // A permit front-run by someone else has already set the allowance; the transfer below decides.
        try IERC20Permit(address(token)).permit(msg.sender, address(this), amount, deadline, v, r, s) {}
            catch {}
        _deposit(msg.sender, amount);
    }

    /// @inheritdoc IBeatStreamVault
    function requestWithdrawal(uint256 amount) external override {
        if (amount == 0) revert BeatStreamVault_ZeroAmount();
        Account memory acc = _accounts[msg.sender];
        if (amount > acc.available) revert BeatStreamVault_InsufficientAvailable(acc.available, amount);
        uint256 thawing = acc.thawing + amount;
        uint256 thawEnd = block.timestamp + withdrawalDelay;
        // Cannot truncate: amount <= acc.available, a uint120 (checked above).
        // forge-lint: disable-next-line(unsafe-typecast)
        acc.available -= uint120(amount);
        acc.thawing = SafeCast.toUint88(thawing);
        acc.thawEnd = SafeCast.toUint40(thawEnd);
        _accounts[msg.sender] = acc;
        emit WithdrawalRequested(msg.sender, amount, thawing, thawEnd);
    }

    /// @inheritdoc IBeatStreamVault
    function cancelWithdrawal() external override {
        Account memory acc = _accounts[msg.sender];
        if (acc.thawing == 0) revert BeatStreamVault_NothingThawing();
        uint256 amount = acc.thawing;
        // Cannot truncate: amount is acc.thawing, a uint88.
        // forge-lint: disable-next-line(unsafe-typecast)
        acc.available += uint120(amount);
        acc.thawing = 0;
        acc.thawEnd = 0;
        _accounts[msg.sender] = acc;
        emit WithdrawalCancelled(msg.sender, amount);
    }

    /// @inheritdoc IBeatStreamVault
    function withdraw(address to) external override returns (uint256 amount) {
        if (to == address(0)) revert BeatStreamVault_ZeroAddress();
        Account memory acc = _accounts[msg.sender];
        amount = acc.thawing;
        if (amount == 0) revert BeatStreamVault_NothingThawing();
        if (block.timestamp < acc.thawEnd) revert BeatStreamVault_WithdrawalNotReady(acc.thawEnd);
        acc.thawing = 0;
        acc.thawEnd = 0;
        _accounts[msg.sender] = acc;
        emit Withdrawn(msg.sender, to, amount);
        token.safeTransfer(to, amount);
    }

    /// @inheritdoc IBeatStreamVault
    function revokeGrant(bytes32 grantId_) external override {
        uint256 existing = _revokedAt[msg.sender][grantId_];
        if (existing != 0) revert BeatStreamVault_GrantAlreadyRevoked(grantId_, existing);
        uint256 effectiveAt = block.timestamp + withdrawalDelay;
        _revokedAt[msg.sender][grantId_] = effectiveAt;
        _accounts[msg.sender].hasRevocations = true;
        emit GrantRevoked(msg.sender, grantId_, effectiveAt);
    }

    /// @inheritdoc IBeatStreamVault
    function revokeGrantsBelow(uint64 nonceFloor) external override {
        NonceFloor memory f = _nonceFloors[msg.sender];
        if (nonceFloor <= f.floor) revert BeatStreamVault_NonceFloorNotRaised(f.floor, nonceFloor);
        // A pending raise that has not taken effect is replaced: the floor in force stays the one before it, so a
        // raise never takes effect sooner than the delay after it was asked for.
        if (block.timestamp >= f.floorFrom) f.previous = f.floor;
        f.floor = nonceFloor;
        uint256 effectiveAt = block.timestamp + withdrawalDelay;
        // Cannot truncate: a uint40 timestamp lasts until the year 36812; the delay is at most MAX_WITHDRAWAL_DELAY.
        // forge-lint: disable-next-line(unsafe-typecast)
        f.floorFrom = uint40(effectiveAt);
        _nonceFloors[msg.sender] = f;
        _accounts[msg.sender].hasRevocations = true;
        emit NonceFloorRaised(msg.sender, nonceFloor, effectiveAt);
    }

    /*//////////////////////////////////////////////////////////////
                               SETTLEMENT
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IBeatStreamVault
    function settleBatch(SettlementItem[] calldata items) external override returns (uint256 settledCount) {
        if (!_isSettler(msg.sender)) revert BeatStreamVault_NotSettler(msg.sender);
        uint256 fee = _feeNow(_fee);
        uint256 fees;
        (settledCount, fees) = _settleItems(items, fee);
        if (fees != 0) accruedFees += fees;
    }

    /// @inheritdoc IBeatStreamVault
    function settleBatchWithTips(SettlementItem[] calldata items, TipItem[] calldata tips)
        external
        override
        returns (uint256 settledCount, uint256 tipsSettled)
    {
        if (!_isSettler(msg.sender)) revert BeatStreamVault_NotSettler(msg.sender);
        uint256 fee = _feeNow(_fee);
        uint256 fees;
        (settledCount, fees) = _settleItems(items, fee);
        uint256 n = tips.length;
        for (uint256 i; i < n;) {
            if (gasleft() < TIP_GAS) {
                emit TipsCutShort(i, n);
                break;
            }
            (bool ok, uint256 tipFee) = _settleTip(tips[i], fee);
            if (ok) {
                fees += tipFee;
                ++tipsSettled;
            }
            unchecked {
                ++i;
            }
        }
        if (fees != 0) accruedFees += fees;
    }

    /// @inheritdoc IBeatStreamVault
    function withdrawEarnings(address to, uint256 amount) external override {
        if (to == address(0)) revert BeatStreamVault_ZeroAddress();
        if (amount == 0) revert BeatStreamVault_ZeroAmount();
        uint256 word = _payees[msg.sender];
        uint256 earnings = word & EARNINGS_MASK;
        if (amount > earnings) revert BeatStreamVault_InsufficientEarnings(earnings, amount);
        _payees[msg.sender] = word - amount;
        emit EarningsWithdrawn(msg.sender, to, amount);
        token.safeTransfer(to, amount);
    }

    /*//////////////////////////////////////////////////////////////
                                 SPLITS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IBeatStreamVault
    function setSplit(bytes32 node, uint256 trackId, address[] calldata recipients, uint16[] calldata shares)
        external
        override
        returns (address split, uint64 version)
    {
        _checkManager(node, trackId);
        uint256 n = recipients.length;
        if (n == 0) revert BeatStreamVault_SplitEmpty();
        if (n > MAX_SPLIT_RECIPIENTS) revert BeatStreamVault_SplitTooManyRecipients(n, MAX_SPLIT_RECIPIENTS);
        if (shares.length != n) revert BeatStreamVault_SplitLengthMismatch(n, shares.length);
        SplitHead memory head = _splitHeads[node][trackId];
        version = head.version + 1;
        split = _splitPayee(node, trackId, version);
        uint256 total;
        for (uint256 i; i < n; ++i) {
            address recipient = recipients[i];
            if (recipient == address(0)) revert BeatStreamVault_SplitZeroRecipient(i);
            if (shares[i] == 0) revert BeatStreamVault_SplitZeroShare(i);
            for (uint256 j; j < i; ++j) {
                if (recipients[j] == recipient) revert BeatStreamVault_SplitDuplicateRecipient(recipient);
            }
            if (_payees[recipient] >> SPLIT_SIZE_SHIFT != 0 || recipient == split) {
                revert BeatStreamVault_SplitRecipientIsSplit(recipient);
            }
            total += shares[i];
            _splitShares[split][i] = SplitShare({recipient: recipient, bps: shares[i]});
        }
        if (total != BPS) revert BeatStreamVault_SplitSharesNotTotal(total);
        _splitHeads[node][trackId] = SplitHead({version: version, active: true});
        _splitInfo[split] = SplitInfo({node: node, trackId: trackId, version: version});
        uint256 earlier = _payees[split] & EARNINGS_MASK;
        _payees[split] = n << SPLIT_SIZE_SHIFT;
        emit SplitSet(node, trackId, split, version, recipients, shares);
        // Only a settler could have paid this address before now, naming a split no one had set: pass it on.
        if (earlier != 0) _paySplit(split, n, earlier);
    }

    /// @inheritdoc IBeatStreamVault
    function clearSplit(bytes32 node, uint256 trackId) external override {
        _checkManager(node, trackId);
        SplitHead memory head = _splitHeads[node][trackId];
        if (!head.active) revert BeatStreamVault_NoSplit(node, trackId);
        _splitHeads[node][trackId].active = false;
        emit SplitCleared(node, trackId, _splitPayee(node, trackId, head.version), head.version);
    }

    /*//////////////////////////////////////////////////////////////
                                  ADMIN
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IBeatStreamVault
    function scheduleFee(uint16 feeBps_) external override onlyOwner {
        if (feeBps_ > MAX_FEE_BPS) revert BeatStreamVault_FeeTooHigh(feeBps_, MAX_FEE_BPS);
        FeeSchedule memory f = _fee;
        f.current = uint16(_feeNow(f));
        f.next = feeBps_;
        uint256 effectiveAt = block.timestamp + withdrawalDelay;
        // Cannot truncate: a uint40 timestamp lasts until the year 36812; the delay is at most MAX_WITHDRAWAL_DELAY.
        // forge-lint: disable-next-line(unsafe-typecast)
        f.nextFrom = uint40(effectiveAt);
        _fee = f;
        emit FeeScheduled(feeBps_, effectiveAt);
    }

    /// @inheritdoc IBeatStreamVault
    function setSettler(address settler, bool allowed) external override onlyOwner {
        if (settler == address(0)) revert BeatStreamVault_ZeroAddress();
        uint256 effectiveAt = block.timestamp;
        if (allowed) {
            uint256 from = _settlerFrom[settler];
            // Re-allowing an allowed settler keeps its start; a new one waits out the delay, so a new settler cannot
            // settle vouchers no relay acked before the keeper has settled those the relays did.
            effectiveAt = from != 0 ? from : block.timestamp + withdrawalDelay;
            _settlerFrom[settler] = effectiveAt;
        } else {
            delete _settlerFrom[settler];
        }
        emit SettlerUpdated(settler, allowed, effectiveAt);
    }

    /// @inheritdoc IBeatStreamVault
    function setTreasury(address treasury_) external override onlyOwner {
        if (treasury_ == address(0)) revert BeatStreamVault_ZeroAddress();
        treasury = treasury_;
        emit TreasuryUpdated(treasury_);
    }

    /// @inheritdoc IBeatStreamVault
    function collectFees() external override returns (uint256 amount) {
        amount = accruedFees;
        if (amount == 0) revert BeatStreamVault_ZeroAmount();
        accruedFees = 0;
        address to = treasury;
        emit FeesCollected(to, amount);
        token.safeTransfer(to, amount);
    }

    /*//////////////////////////////////////////////////////////////
                                  VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IBeatStreamVault
    function earningsOf(address payee) external view override returns (uint256 amount) {
        return _payees[payee] & EARNINGS_MASK;
    }

    /// @inheritdoc IBeatStreamVault
    function accountOf(address listener)
        external
        view
        override
        returns (uint256 available, uint256 thawing, uint256 thawEnd)
    {
        Account memory acc = _accounts[listener];
        return (acc.available, acc.thawing, acc.thawEnd);
    }

    /// @inheritdoc IBeatStreamVault
    function feeBps() external view override returns (uint16) {
        return uint16(_feeNow(_fee));
    }

    /// @inheritdoc IBeatStreamVault
    function pendingFee() external view override returns (uint16 feeBps_, uint256 effectiveAt) {
        FeeSchedule memory f = _fee;
        if (f.nextFrom == 0 || block.timestamp >= f.nextFrom) return (0, 0);
        return (f.next, f.nextFrom);
    }

    /// @inheritdoc IBeatStreamVault
    function isSettler(address account) external view override returns (bool) {
        return _isSettler(account);
    }

    /// @inheritdoc IBeatStreamVault
    function settlerFrom(address account) external view override returns (uint256) {
        return _settlerFrom[account];
    }

    /// @inheritdoc IBeatStreamVault
    function spendableOf(address listener) external view override returns (uint256) {
        return _accounts[listener].available;
    }

    /// @inheritdoc IBeatStreamVault
    function grantRevokedAt(address listener, bytes32 grantId_) external view override returns (uint256) {
        return _revokedAt[listener][grantId_];
    }

    /// @inheritdoc IBeatStreamVault
    function nonceFloorOf(address listener)
        external
        view
        override
        returns (uint64 floor, uint64 previous, uint256 floorFrom)
    {
        NonceFloor memory f = _nonceFloors[listener];
        return (f.floor, f.previous, f.floorFrom);
    }

    /// @inheritdoc IBeatStreamVault
    function isRevoked(SessionGrant calldata grant) external view override returns (bool) {
        return _isRevoked(grant.listener, VoucherHashing.grantId(grant), grant.nonce);
    }

    /// @inheritdoc IBeatStreamVault
    function settled(bytes32 grantId_, address payee) external view override returns (uint256) {
        GrantState memory grant = _grants[grantId_];
        if (payee != address(0) && payee == grant.firstPayee) return grant.firstPayeeSettled;
        return _settled[grantId_][payee];
    }

    /// @inheritdoc IBeatStreamVault
    function grantSpent(bytes32 grantId_) external view override returns (uint256) {
        return _grants[grantId_].spent;
    }

    /// @inheritdoc IBeatStreamVault
    function domainSeparator() external view override returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @inheritdoc IBeatStreamVault
    function grantId(SessionGrant calldata grant) external pure override returns (bytes32) {
        return VoucherHashing.grantId(grant);
    }

    /// @inheritdoc IBeatStreamVault
    function grantDigest(SessionGrant calldata grant) external view override returns (bytes32) {
        return _hashTypedDataV4(VoucherHashing.grantId(grant));
    }

    /// @inheritdoc IBeatStreamVault
    function voucherDigest(bytes32 grantId_, address payee, uint256 cumulative)
        external
        view
        override
        returns (bytes32)
    {
        return _hashTypedDataV4(VoucherHashing.voucherHash(grantId_, payee, cumulative));
    }

    /// @inheritdoc IBeatStreamVault
    function tipDigest(bytes32 grantId_, address payee, uint256 tipId, uint256 amount, bytes32 messageHash)
        external
        view
        override
        returns (bytes32)
    {
        return _hashTypedDataV4(VoucherHashing.tipHash(grantId_, payee, tipId, amount, messageHash));
    }

    /// @inheritdoc IBeatStreamVault
    function isTipSettled(bytes32 grantId_, uint256 tipId) external view override returns (bool) {
        return _tipsSettled[grantId_][tipId >> 8] & _tipBit(tipId) != 0;
    }

    /// @inheritdoc IBeatStreamVault
    function splitPayee(bytes32 node, uint256 trackId, uint64 version)
        external
        pure
        override
        returns (address)
    {
        return _splitPayee(node, trackId, version);
    }

    /// @inheritdoc IBeatStreamVault
    function currentSplit(bytes32 node, uint256 trackId)
        external
        view
        override
        returns (address split, uint64 version)
    {
        SplitHead memory head = _splitHeads[node][trackId];
        if (!head.active) return (address(0), 0);
        return (_splitPayee(node, trackId, head.version), head.version);
    }

    /// @inheritdoc IBeatStreamVault
    function playPayee(uint256 trackId) external view override returns (address) {
        IBeatStreamRegistry r = registry;
        bytes32 node = r.track(trackId).artistNode;
        SplitHead memory head = _splitHeads[node][trackId];
        if (head.active) return _splitPayee(node, trackId, head.version);
        head = _splitHeads[node][0];
        if (head.active) return _splitPayee(node, 0, head.version);
        return r.addr(node);
    }

    /// @inheritdoc IBeatStreamVault
    function splitVersion(bytes32 node, uint256 trackId) external view override returns (uint64) {
        return _splitHeads[node][trackId].version;
    }

    /// @inheritdoc IBeatStreamVault
    function splitOf(address split)
        external
        view
        override
        returns (
            bytes32 node,
            uint256 trackId,
            uint64 version,
            address[] memory recipients,
            uint16[] memory shares
        )
    {
        SplitInfo memory info = _splitInfo[split];
        uint256 n = _payees[split] >> SPLIT_SIZE_SHIFT;
        recipients = new address[](n);
        shares = new uint16[](n);
        for (uint256 i; i < n; ++i) {
            SplitShare memory share = _splitShares[split][i];
            (recipients[i], shares[i]) = (share.recipient, share.bps);
        }
        return (info.node, info.trackId, info.version, recipients, shares);
    }

    /// @inheritdoc IBeatStreamVault
    function splitParts(address split, uint256 amount)
        external
        view
        override
        returns (uint256[] memory parts)
    {
        uint256 size = _payees[split] >> SPLIT_SIZE_SHIFT;
        if (size == 0) return parts;
        (, parts) = _splitParts(split, size, amount);
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNAL
    //////////////////////////////////////////////////////////////*/

    function _deposit(address listener, uint256 amount) private {
        if (amount == 0) revert BeatStreamVault_ZeroAmount();
        Account storage acc = _accounts[listener];
        uint256 available = acc.available + amount;
        if (available > type(uint120).max) revert BeatStreamVault_BalanceOverflow();
        // Cannot truncate: checked just above: available <= type(uint120).max.
        // forge-lint: disable-next-line(unsafe-typecast)
        acc.available = uint120(available);
        emit Deposited(listener, msg.sender, amount);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @dev Settles one item or emits why not. Cheap checks come first; the grant signature is verified only the
    /// first time a grant settles (a registered grant's id commits to every field the signature covered).
    function _settle(SettlementItem calldata item, uint256 fee) private returns (bool, uint256) {
        SessionGrant calldata grant = item.grant;
        bytes32 id = VoucherHashing.grantId(grant);
        address payee = item.payee;
        address listener = grant.listener;
        uint256 cumulative = item.cumulative;

        if (payee == address(0) || listener == address(0)) {
            return _skip(id, payee, cumulative, SkipReason.Malformed);
        }
        if (block.timestamp > uint256(grant.expiresAt) + settlementWindow) {
            return _skip(id, payee, cumulative, SkipReason.GrantExpired);
        }
        GrantState memory state = _grants[id];
        bool isNewGrant = state.firstPayee == address(0);
        bool inGrantSlot = isNewGrant || state.firstPayee == payee;
        uint256 prior = inGrantSlot ? state.firstPayeeSettled : _settled[id][payee];
        if (cumulative <= prior) return _skip(id, payee, cumulative, SkipReason.StaleVoucher);
        uint256 amount = cumulative - prior;
        uint256 cap = grant.cap < MAX_GRANT_SPEND ? grant.cap : MAX_GRANT_SPEND;
        // spent <= cap always holds (the id commits to the cap), and this form cannot overflow on a huge cumulative.
        if (amount > cap - state.spent) return _skip(id, payee, cumulative, SkipReason.CapExceeded);

        if (isNewGrant) {
            (bool grantOk, SkipReason grantProblem) = _checkGrantSignature(id, listener, item.grantSignature);
            if (!grantOk) return _skip(id, payee, cumulative, grantProblem);
        }
        bytes32 voucherDigest_ = _hashTypedDataV4(VoucherHashing.voucherHash(id, payee, cumulative));
        address signer = SignatureParsing.recoverCalldata(voucherDigest_, item.voucherSignature);
        if (signer == address(0) || signer != grant.sessionKey) {
            // A session key is an EOA: its signature is 65 bytes. Told apart only here, off the hot path.
            SkipReason reason = item.voucherSignature.length == 65
                ? SkipReason.InvalidVoucherSignature
                : SkipReason.Malformed;
            return _skip(id, payee, cumulative, reason);
        }
        Account memory acc = _accounts[listener];
        if (acc.hasRevocations && _isRevoked(listener, id, grant.nonce)) {
            return _skip(id, payee, cumulative, SkipReason.GrantRevoked);
        }
        uint256 payeeWord = _payees[payee];
        uint256 splitSize = payeeWord >> SPLIT_SIZE_SHIFT;
        if (splitSize != 0 && gasleft() < ITEM_GAS + splitSize * SPLIT_RECIPIENT_GAS) {
            return _skip(id, payee, cumulative, SkipReason.InsufficientGas);
        }
        if (!_debit(listener, acc, amount)) {
            return _skip(id, payee, cumulative, SkipReason.InsufficientFunds);
        }

        // Both fit 48 bits: cumulative <= spent + amount <= cap <= MAX_GRANT_SPEND.
        // Cannot truncate: amount <= cap - spent and cap <= MAX_GRANT_SPEND < 2^48 (see above).
        // forge-lint: disable-next-line(unsafe-typecast)
        state.spent += uint48(amount);
        if (inGrantSlot) {
            state.firstPayee = payee;
            // Cannot truncate: cumulative <= cap <= MAX_GRANT_SPEND < 2^48.
            // forge-lint: disable-next-line(unsafe-typecast)
            state.firstPayeeSettled = uint48(cumulative);
        } else {
            _settled[id][payee] = cumulative;
        }
        _grants[id] = state;
        uint256 itemFee = amount * fee / BPS;
        // A plain payee's earnings cannot reach bit 248: they are backed by the token balance.
        if (splitSize == 0) _payees[payee] = payeeWord + (amount - itemFee);

        if (isNewGrant) _emitGrantRegistered(id, grant);
        emit Settled(id, listener, payee, amount, cumulative, itemFee);
        if (splitSize != 0) _paySplit(payee, splitSize, amount - itemFee);
        return (true, itemFee);
    }

    /// @dev Settles one tip or emits why not, in the order and under the rules of {_settle}: a tip is a voucher
    /// increase of `amount` that settles once per (grant, tipId) instead of by a cumulative.
    function _settleTip(TipItem calldata tip, uint256 fee) private returns (bool, uint256) {
        SessionGrant calldata grant = tip.grant;
        bytes32 id = VoucherHashing.grantId(grant);
        address payee = tip.payee;
        address listener = grant.listener;
        uint256 tipId = tip.tipId;
        uint256 amount = tip.amount;

        if (payee == address(0) || listener == address(0) || amount == 0) {
            return _skipTip(id, payee, tipId, SkipReason.Malformed);
        }
        if (bytes(tip.message).length > MAX_TIP_MESSAGE_BYTES) {
            return _skipTip(id, payee, tipId, SkipReason.MessageTooLong);
        }
        if (block.timestamp > uint256(grant.expiresAt) + settlementWindow) {
            return _skipTip(id, payee, tipId, SkipReason.GrantExpired);
        }
        uint256 word = _tipsSettled[id][tipId >> 8];
        uint256 bit = _tipBit(tipId);
        if (word & bit != 0) return _skipTip(id, payee, tipId, SkipReason.TipAlreadySettled);
        GrantState memory state = _grants[id];
        bool isNewGrant = state.firstPayee == address(0);
        uint256 cap = grant.cap < MAX_GRANT_SPEND ? grant.cap : MAX_GRANT_SPEND;
        if (amount > cap - state.spent) return _skipTip(id, payee, tipId, SkipReason.CapExceeded);
        if (isNewGrant) {
            (bool grantOk, SkipReason grantProblem) = _checkGrantSignature(id, listener, tip.grantSignature);
            if (!grantOk) return _skipTip(id, payee, tipId, grantProblem);
        }
        bytes32 digest =
            _hashTypedDataV4(VoucherHashing.tipHash(id, payee, tipId, amount, keccak256(bytes(tip.message))));
        address signer = SignatureParsing.recoverCalldata(digest, tip.tipSignature);
        if (signer == address(0) || signer != grant.sessionKey) {
            SkipReason reason =
                tip.tipSignature.length == 65 ? SkipReason.InvalidVoucherSignature : SkipReason.Malformed;
            return _skipTip(id, payee, tipId, reason);
        }
        Account memory acc = _accounts[listener];
        if (acc.hasRevocations && _isRevoked(listener, id, grant.nonce)) {
            return _skipTip(id, payee, tipId, SkipReason.GrantRevoked);
        }
        uint256 payeeWord = _payees[payee];
        uint256 splitSize = payeeWord >> SPLIT_SIZE_SHIFT;
        if (splitSize != 0 && gasleft() < TIP_GAS + splitSize * SPLIT_RECIPIENT_GAS) {
            return _skipTip(id, payee, tipId, SkipReason.InsufficientGas);
        }
        if (!_debit(listener, acc, amount)) return _skipTip(id, payee, tipId, SkipReason.InsufficientFunds);

        // Cannot truncate: amount <= cap - spent and cap <= MAX_GRANT_SPEND < 2^48 (see above).
        // forge-lint: disable-next-line(unsafe-typecast)
        state.spent += uint48(amount);
        // A tip that registers the grant makes its payee the grant's first payee, with nothing settled by voucher.
        if (isNewGrant) state.firstPayee = payee;
        _grants[id] = state;
        _tipsSettled[id][tipId >> 8] = word | bit;
        uint256 tipFee = amount * fee / BPS;
        if (splitSize == 0) _payees[payee] = payeeWord + (amount - tipFee);

        if (isNewGrant) _emitGrantRegistered(id, grant);
        emit Tipped(id, listener, payee, tipId, amount, tipFee, tip.message);
        if (splitSize != 0) _paySplit(payee, splitSize, amount - tipFee);
        return (true, tipFee);
    }

    /// @dev Settles `items` in order (see {settleBatch}); returns how many settled and the fees they took.
    function _settleItems(SettlementItem[] calldata items, uint256 fee)
        private
        returns (uint256 settledCount, uint256 fees)
    {
        uint256 n = items.length;
        for (uint256 i; i < n;) {
            if (gasleft() < ITEM_GAS) {
                emit BatchCutShort(i, n);
                break;
            }
            (bool ok, uint256 itemFee) = _settle(items[i], fee);
            if (ok) {
                fees += itemFee;
                ++settledCount;
            }
            unchecked {
                ++i;
            }
        }
    }

    /// @dev Whether a new grant's signature is its listener's (EOA, or ERC-1271 under a gas cap), and if not, the
    /// skip reason.
    function _checkGrantSignature(bytes32 id, address listener, bytes calldata signature)
        private
        view
        returns (bool ok, SkipReason reason)
    {
        bytes32 digest = _hashTypedDataV4(id);
        if (signature.length == 65 && SignatureParsing.recoverCalldata(digest, signature) == listener) {
            return (true, reason);
        }
        if (listener.code.length == 0) return (false, SkipReason.InvalidGrantSignature);
        // A wallet check gets its whole allowance or none: with less, a wallet that burns what it is given would
        // leave too little for the items after it and revert the batch.
        if (gasleft() < ERC1271_GAS_NEEDED) return (false, SkipReason.InsufficientGas);
        if (!_isValidWalletSignature(listener, digest, signature)) {
            return (false, SkipReason.InvalidGrantSignature);
        }
        return (true, reason);
    }

    /// @dev Credits `amount` settled to `split` to its `size` recipients by their shares and emits {SplitPaid}.
    function _paySplit(address split, uint256 size, uint256 amount) private {
        (address[] memory recipients, uint256[] memory parts) = _splitParts(split, size, amount);
        for (uint256 i; i < size; ++i) {
            uint256 part = parts[i];
            // Recipients are plain payees (setSplit refuses split payees).
            if (part != 0) _payees[recipients[i]] += part;
        }
        emit SplitPaid(split, amount, parts);
    }

    /// @dev The recipients of `split` and their parts of `amount`: each gets `amount * bps / 10,000` rounded down, and
    /// the units left over (fewer than `size`) go one each to the recipients with the largest remainders, the earlier
    /// recipient first on a tie. So the parts sum to `amount` and each is its exact share rounded down or up.
    function _splitParts(address split, uint256 size, uint256 amount)
        private
        view
        returns (address[] memory recipients, uint256[] memory parts)
    {
        recipients = new address[](size);
        parts = new uint256[](size);
        uint256[] memory remainders = new uint256[](size);
        uint256 given;
        for (uint256 i; i < size; ++i) {
            SplitShare memory share = _splitShares[split][i];
            recipients[i] = share.recipient;
            uint256 scaled = amount * share.bps;
            parts[i] = scaled / BPS;
            remainders[i] = scaled % BPS;
            given += parts[i];
        }
        // The remainders sum to (amount - given) * 10,000, each below 10,000, so more of them than units left are
        // non-zero and each round finds one.
        for (uint256 left = amount - given; left != 0; --left) {
            uint256 best;
            uint256 bestRemainder;
            for (uint256 i; i < size; ++i) {
                if (remainders[i] > bestRemainder) (best, bestRemainder) = (i, remainders[i]);
            }
            parts[best] += 1;
            remainders[best] = 0;
        }
    }

    /// @dev The caller must manage `node` in the registry as the registry itself decides (holder of the name token,
    /// or approved by the holder for it or for all), and a per-track split must be of one of the artist's tracks.
    function _checkManager(bytes32 node, uint256 trackId) private view {
        IBeatStreamRegistry r = registry;
        address holder = r.managerOf(node);
        if (
            holder == address(0)
                || (msg.sender != holder
                    && !IERC721(address(r)).isApprovedForAll(holder, msg.sender)
                    && IERC721(address(r)).getApproved(uint256(node)) != msg.sender)
        ) revert BeatStreamVault_NotManager(node, msg.sender);
        if (trackId == 0) return;
        try r.track(trackId) returns (Track memory t) {
            if (t.artistNode == node) return;
        } catch {}
        revert BeatStreamVault_TrackNotOfArtist(node, trackId);
    }

    /// @dev The bit of `tipId` in its word of {_tipsSettled}: 1 shifted left by the id's low 8 bits.
    function _tipBit(uint256 tipId) private pure returns (uint256 bit) {
        assembly ("memory-safe") {
            bit := shl(and(tipId, 0xff), 1)
        }
    }

    function _splitPayee(bytes32 node, uint256 trackId, uint64 version) private pure returns (address) {
        return address(uint160(uint256(keccak256(abi.encode(SPLIT_PAYEE_TAG, node, trackId, version)))));
    }

    /// @dev An ERC-1271 wallet's approval under a gas cap, reading only the 32-byte answer so a wallet cannot make
    /// the vault copy a huge return value either. The whole word must be the magic value, as OpenZeppelin's
    /// SignatureChecker requires: a contract whose fallback echoes its calldata returns the selector in the first
    /// four bytes followed by the digest, and must not pass.
    function _isValidWalletSignature(address listener, bytes32 digest, bytes calldata signature)
        private
        view
        returns (bool)
    {
        bytes memory data = abi.encodeCall(IERC1271.isValidSignature, (digest, signature));
        bool success;
        bytes32 answer;
        uint256 size;
        assembly ("memory-safe") {
            success := staticcall(ERC1271_GAS, listener, add(data, 0x20), mload(data), 0x00, 0x20)
            size := returndatasize()
            answer := mload(0x00)
        }
        return success && size >= 32 && answer == bytes32(IERC1271.isValidSignature.selector);
    }

    /// @dev Takes `amount` from the listener's available funds first, then from thawing funds; false if short.
    function _debit(address listener, Account memory acc, uint256 amount) private returns (bool) {
        uint256 available = acc.available;
        if (amount <= available) {
            unchecked {
                // Cannot truncate: available - amount <= available, a uint120.
                // forge-lint: disable-next-line(unsafe-typecast)
                acc.available = uint120(available - amount);
            }
        } else {
            uint256 thawing = acc.thawing;
            if (amount > available + thawing) return false;
            unchecked {
                acc.available = 0;
                // Cannot truncate: thawing - (amount - available) < thawing, a uint88.
                // forge-lint: disable-next-line(unsafe-typecast)
                acc.thawing = uint88(thawing - (amount - available));
            }
        }
        _accounts[listener] = acc;
        return true;
    }

    /// @dev Whether the listener's revocation of the grant (by id, or by a nonce floor in force) has taken effect.
    function _isRevoked(address listener, bytes32 id, uint64 nonce) private view returns (bool) {
        uint256 revokedAt = _revokedAt[listener][id];
        if (revokedAt != 0 && block.timestamp >= revokedAt) return true;
        NonceFloor memory f = _nonceFloors[listener];
        uint64 floor = block.timestamp >= f.floorFrom ? f.floor : f.previous;
        return nonce < floor;
    }

    function _isSettler(address account) private view returns (bool) {
        uint256 from = _settlerFrom[account];
        return from != 0 && block.timestamp >= from;
    }

    function _feeNow(FeeSchedule memory f) private view returns (uint256) {
        return f.nextFrom != 0 && block.timestamp >= f.nextFrom ? f.next : f.current;
    }

    function _emitGrantRegistered(bytes32 id, SessionGrant calldata grant) private {
        emit GrantRegistered(id, grant.listener, grant.sessionKey, grant.cap, grant.expiresAt, grant.nonce);
    }

    function _skip(bytes32 id, address payee, uint256 cumulative, SkipReason reason)
        private
        returns (bool, uint256)
    {
        emit SettlementSkipped(id, payee, cumulative, reason);
        return (false, 0);
    }

    function _skipTip(bytes32 id, address payee, uint256 tipId, SkipReason reason)
        private
        returns (bool, uint256)
    {
        emit TipSkipped(id, payee, tipId, reason);
        return (false, 0);
    }
}
