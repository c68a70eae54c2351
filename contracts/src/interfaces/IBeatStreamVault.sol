// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {SessionGrant, SettlementItem, SkipReason, TipItem} from "../types/DataTypes.sol";
import {IBeatStreamRegistry} from "./IBeatStreamRegistry.sol";

/// @title IBeatStreamVault
/// @notice Holds listeners' USDC and pays artists from per-second cumulative vouchers, settled in batches.
interface IBeatStreamVault {
    /*//////////////////////////////////////////////////////////////
                                 EVENTS
    //////////////////////////////////////////////////////////////*/

    /// @notice Emitted when `from` deposits `amount` to `listener`'s available balance.
    event Deposited(address indexed listener, address indexed from, uint256 amount);

    /// @notice Emitted when a listener moves `amount` from available to thawing; `thawEnd` is the new end of the delay.
    /// @param thawing The listener's whole thawing amount after the request.
    event WithdrawalRequested(address indexed listener, uint256 amount, uint256 thawing, uint256 thawEnd);

    /// @notice Emitted when a listener moves all thawing funds back to available.
    event WithdrawalCancelled(address indexed listener, uint256 amount);

    /// @notice Emitted when a listener takes their thawed funds out of the vault to `to`.
    event Withdrawn(address indexed listener, address indexed to, uint256 amount);

    /// @notice Emitted the first time a grant settles; the grant's signature is not checked again after this.
    event GrantRegistered(
        bytes32 indexed grantId,
        address indexed listener,
        address indexed sessionKey,
        uint256 cap,
        uint64 expiresAt,
        uint64 nonce
    );

    /// @notice Emitted when a voucher settles: `amount` left the listener's funds (available first, then thawing),
    /// `amount - fee` went to the payee's earnings and `fee` to the protocol.
    /// @param cumulative The voucher's cumulative; now the settled amount for (grantId, payee).
    event Settled(
        bytes32 indexed grantId,
        address indexed listener,
        address indexed payee,
        uint256 amount,
        uint256 cumulative,
        uint256 fee
    );

    /// @notice Emitted for a batch item that did not settle; the rest of the batch goes on.
    event SettlementSkipped(
        bytes32 indexed grantId, address indexed payee, uint256 cumulative, SkipReason reason
    );

    /// @notice Emitted when a payee pulls `amount` of earnings to `to`.
    event EarningsWithdrawn(address indexed payee, address indexed to, uint256 amount);

    /// @notice Emitted when the owner schedules a protocol fee; it applies to settlements from `effectiveAt`, at
    /// least the withdrawal delay later, so vouchers streamed under the old fee can settle under it first.
    event FeeScheduled(uint16 feeBps, uint256 effectiveAt);

    /// @notice Emitted when the owner allows or disallows an address to submit `settleBatch`. An allowed settler may
    /// settle from `effectiveAt` (the deployment's settlers at once, later ones after the withdrawal delay); a
    /// disallowed one at once no longer may (`effectiveAt` is then the time of the change).
    event SettlerUpdated(address indexed settler, bool allowed, uint256 effectiveAt);

    /// @notice Emitted when a listener revokes one grant. Vouchers under it settle until `effectiveAt` (the
    /// withdrawal delay later), so what a relay acked before it saw the revocation is still paid.
    event GrantRevoked(address indexed listener, bytes32 indexed grantId, uint256 effectiveAt);

    /// @notice Emitted when a listener revokes every grant with a nonce below `nonceFloor`, from `effectiveAt`.
    event NonceFloorRaised(address indexed listener, uint64 nonceFloor, uint256 effectiveAt);

    /// @notice Emitted when a batch ran low on gas: items from index `processed` on were not looked at (neither
    /// settled nor skipped) and can be sent again.
    event BatchCutShort(uint256 processed, uint256 total);

    /// @notice Emitted when the owner changes the fee recipient.
    event TreasuryUpdated(address indexed treasury);

    /// @notice Emitted when accrued protocol fees are sent to the treasury.
    event FeesCollected(address indexed treasury, uint256 amount);

    /// @notice Emitted when the manager of `node` sets version `version` of the split of the artist (`trackId` 0) or
    /// of one of its tracks. `split` is the version's payee: vouchers and tips naming it pay `recipients` by `shares`
    /// (basis points, in the same order), whenever they settle. The version applies to new plays from now on.
    event SplitSet(
        bytes32 indexed node,
        uint256 indexed trackId,
        address indexed split,
        uint64 version,
        address[] recipients,
        uint16[] shares
    );

    /// @notice Emitted when the manager of `node` stops the current split (`version`, payee `split`) applying to new
    /// plays; plays pay the artist's address record again. What was streamed under it still settles by its shares.
    event SplitCleared(bytes32 indexed node, uint256 indexed trackId, address indexed split, uint64 version);

    /// @notice Emitted right after the {Settled} or {Tipped} event of a settlement whose payee is a split: the
    /// settlement's `amount` after the fee went to the split's recipients, `parts[i]` to recipient `i` of the split's
    /// version (the order of its {SplitSet}). The parts sum to `amount` exactly.
    event SplitPaid(address indexed split, uint256 amount, uint256[] parts);

    /// @notice Emitted when a tip settles: `amount` left the listener's funds (available first, then thawing),
    /// `amount - fee` went to the payee (or its split's recipients) and `fee` to the protocol. `message` is as signed.
    event Tipped(
        bytes32 indexed grantId,
        address indexed listener,
        address indexed payee,
        uint256 tipId,
        uint256 amount,
        uint256 fee,
        string message
    );

    /// @notice Emitted for a tip that did not settle; the rest of the batch goes on.
    event TipSkipped(bytes32 indexed grantId, address indexed payee, uint256 tipId, SkipReason reason);

    /// @notice Emitted when gas ran low before the tips of a `settleBatchWithTips`: tips from index `processed` on
    /// were not looked at and can be sent again.
    event TipsCutShort(uint256 processed, uint256 total);

    /*//////////////////////////////////////////////////////////////
                                 ERRORS
    //////////////////////////////////////////////////////////////*/

    /// @notice Thrown when an amount argument is zero.
    error BeatStreamVault_ZeroAmount();

    /// @notice Thrown when an address argument is the zero address.
    error BeatStreamVault_ZeroAddress();

    /// @notice Thrown when a listener asks to thaw more than is available.
    error BeatStreamVault_InsufficientAvailable(uint256 available, uint256 requested);

    /// @notice Thrown when `withdraw` is called before the delay has passed.
    error BeatStreamVault_WithdrawalNotReady(uint256 thawEnd);

    /// @notice Thrown when there is nothing thawing to withdraw or cancel.
    error BeatStreamVault_NothingThawing();

    /// @notice Thrown when a payee asks for more than its earnings.
    error BeatStreamVault_InsufficientEarnings(uint256 earnings, uint256 requested);

    /// @notice Thrown when a fee above the maximum is set.
    error BeatStreamVault_FeeTooHigh(uint16 feeBps, uint16 maxFeeBps);

    /// @notice Thrown when a deposit would overflow a listener's packed balance.
    error BeatStreamVault_BalanceOverflow();

    /// @notice Thrown when `settleBatch` is called by an address that is not an effective settler.
    error BeatStreamVault_NotSettler(address caller);

    /// @notice Thrown for a withdrawal delay outside [`min`, `max`] seconds.
    error BeatStreamVault_WithdrawalDelayOutOfRange(uint256 withdrawalDelay, uint256 min, uint256 max);

    /// @notice Thrown for a settlement window outside [`min`, `max`] seconds; `min` is the withdrawal delay, so a
    /// voucher acked just before its grant expires can still settle for the whole delay.
    error BeatStreamVault_SettlementWindowOutOfRange(uint256 settlementWindow, uint256 min, uint256 max);

    /// @notice Thrown when a listener revokes a grant it already revoked.
    error BeatStreamVault_GrantAlreadyRevoked(bytes32 grantId, uint256 effectiveAt);

    /// @notice Thrown when a listener's new nonce floor is not above the one it already set.
    error BeatStreamVault_NonceFloorNotRaised(uint64 current, uint64 requested);

    /// @notice Thrown when `caller` neither holds the name token of `node` in the registry nor is approved by its
    /// holder (the registry's manager rule), or `node` is not a registered artist.
    error BeatStreamVault_NotManager(bytes32 node, address caller);

    /// @notice Thrown for a per-track split of a track that is not the artist's (or does not exist).
    error BeatStreamVault_TrackNotOfArtist(bytes32 node, uint256 trackId);

    /// @notice Thrown for a split without recipients.
    error BeatStreamVault_SplitEmpty();

    /// @notice Thrown for a split with more than `max` recipients.
    error BeatStreamVault_SplitTooManyRecipients(uint256 count, uint256 max);

    /// @notice Thrown when a split's recipient and share lists differ in length.
    error BeatStreamVault_SplitLengthMismatch(uint256 recipients, uint256 shares);

    /// @notice Thrown for a split whose recipient at `index` is the zero address.
    error BeatStreamVault_SplitZeroRecipient(uint256 index);

    /// @notice Thrown for a split that names `recipient` twice.
    error BeatStreamVault_SplitDuplicateRecipient(address recipient);

    /// @notice Thrown for a split whose recipient at `index` has a zero share.
    error BeatStreamVault_SplitZeroShare(uint256 index);

    /// @notice Thrown for a split whose shares sum to `total` basis points instead of 10,000.
    error BeatStreamVault_SplitSharesNotTotal(uint256 total);

    /// @notice Thrown for a split whose recipient is itself a split payee (its earnings could never be withdrawn).
    error BeatStreamVault_SplitRecipientIsSplit(address recipient);

    /// @notice Thrown by `clearSplit` when no split applies to (node, trackId).
    error BeatStreamVault_NoSplit(bytes32 node, uint256 trackId);

    /*//////////////////////////////////////////////////////////////
                                LISTENERS
    //////////////////////////////////////////////////////////////*/

    /// @notice Deposits `amount` of the token to the caller's available balance.
    /// @dev Emits {Deposited}.
    function deposit(uint256 amount) external;

    /// @notice Deposits `amount` of the caller's tokens to `listener`'s available balance.
    /// @dev Emits {Deposited}.
    function depositFor(address listener, uint256 amount) external;

    /// @notice Deposits with an EIP-2612 permit instead of a prior approval.
    /// @dev Emits {Deposited}. A permit that was already used (front-run) is tolerated if the allowance suffices.
    function depositWithPermit(uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s) external;

    /// @notice Starts the withdrawal delay for `amount` of the caller's available funds. Adds to any amount
    /// already thawing and restarts the delay for the whole.
    /// @dev Emits {WithdrawalRequested}.
    function requestWithdrawal(uint256 amount) external;

    /// @notice Moves all of the caller's thawing funds back to available.
    /// @dev Emits {WithdrawalCancelled}.
    function cancelWithdrawal() external;

    /// @notice Sends the caller's thawed funds (what settlements left of them) to `to`.
    /// @dev Emits {Withdrawn}.
    function withdraw(address to) external returns (uint256 amount);

    /// @notice Revokes one of the caller's grants, for a lost or leaked session key. Relays refuse its vouchers as
    /// soon as they see this; the vault refuses them from the withdrawal delay on, so vouchers already acked settle.
    /// @dev Emits {GrantRevoked}. Reverts if the grant is already revoked.
    function revokeGrant(bytes32 grantId) external;

    /// @notice Revokes every grant of the caller with a nonce below `nonceFloor` ("sign out everywhere"), effective
    /// on-chain after the withdrawal delay. The floor only rises; a raise while one is pending replaces it, and the
    /// floor in force meanwhile stays the one before.
    /// @dev Emits {NonceFloorRaised}.
    function revokeGrantsBelow(uint64 nonceFloor) external;

    /*//////////////////////////////////////////////////////////////
                               SETTLEMENT
    //////////////////////////////////////////////////////////////*/

    /// @notice Settles vouchers. Only an effective settler (the operator's keeper) may call it: the vouchers it
    /// sends are those its relays acked against the listeners' available funds, and no one else can spend those funds
    /// before the withdrawal delay. Each item either settles or is skipped with a reason.
    /// @dev Emits {Settled} or {SettlementSkipped} per item, {GrantRegistered} for a grant's first settlement, and
    /// {BatchCutShort} if gas ran low before the last item. Take the gas limit from a simulation with ample gas plus a
    /// margin, not from `eth_estimateGas`: a batch short of gas is cut short rather than reverted, so the lowest gas
    /// at which the call succeeds settles almost nothing.
    /// @return settledCount The number of items that settled.
    function settleBatch(SettlementItem[] calldata items) external returns (uint256 settledCount);

    /// @notice Settles vouchers, then tips, in one transaction, under the same rules as `settleBatch` (settlers only).
    /// A tip is a one-off `amount` under a grant, signed by its session key with the EIP-712 `Tip` type: it counts
    /// toward the grant's cap, is debited like a voucher's increase, pays the payee (or its split) after the fee, and
    /// settles at most once per (grant, tipId).
    /// @dev Emits per voucher what `settleBatch` does; per tip {Tipped} (then {SplitPaid} for a split payee) or
    /// {TipSkipped}; {GrantRegistered} for a grant's first settlement; {TipsCutShort} if gas ran low before the last
    /// tip.
    /// @return settledCount The number of vouchers that settled.
    /// @return tipsSettled The number of tips that settled.
    function settleBatchWithTips(SettlementItem[] calldata items, TipItem[] calldata tips)
        external
        returns (uint256 settledCount, uint256 tipsSettled);

    /// @notice Sends `amount` of the caller's earnings to `to`.
    /// @dev Emits {EarningsWithdrawn}.
    function withdrawEarnings(address to, uint256 amount) external;

    /*//////////////////////////////////////////////////////////////
                                 SPLITS
    //////////////////////////////////////////////////////////////*/

    /// @notice Sets a new version of the split of the artist at `node` (`trackId` 0) or of its track `trackId`:
    /// `recipients` share every settlement to the version's payee by `shares` (basis points summing to 10,000, each
    /// non-zero; recipients non-zero and distinct, at most `MAX_SPLIT_RECIPIENTS`). Only the artist's manager in the
    /// registry (the name token's holder, or an address it approved) may call it. The previous version keeps paying
    /// what was streamed under it.
    /// @dev Emits {SplitSet}, and {SplitPaid} if the new payee already held earnings (they go to its recipients).
    /// @return split The version's payee: `splitPayee(node, trackId, version)`.
    /// @return version The new version, one above the previous.
    function setSplit(bytes32 node, uint256 trackId, address[] calldata recipients, uint16[] calldata shares)
        external
        returns (address split, uint64 version);

    /// @notice Stops the current split of (node, trackId) applying to new plays. Manager only.
    /// @dev Emits {SplitCleared}.
    function clearSplit(bytes32 node, uint256 trackId) external;

    /*//////////////////////////////////////////////////////////////
                                  ADMIN
    //////////////////////////////////////////////////////////////*/

    /// @notice Schedules the protocol fee in basis points of each settlement, effective after the withdrawal delay.
    /// Owner only. A schedule replaces one still pending.
    /// @dev Emits {FeeScheduled}.
    function scheduleFee(uint16 feeBps) external;

    /// @notice Allows (from the withdrawal delay on) or disallows (at once) `settler` to call `settleBatch`. Owner
    /// only.
    /// @dev Emits {SettlerUpdated}.
    function setSettler(address settler, bool allowed) external;

    /// @notice Sets where collected fees go. Owner only.
    function setTreasury(address treasury) external;

    /// @notice Sends all accrued fees to the treasury. Anyone may call.
    function collectFees() external returns (uint256 amount);

    /*//////////////////////////////////////////////////////////////
                                  VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @notice The token held and paid, USDC.
    function token() external view returns (IERC20);

    /// @notice How long requested withdrawals thaw, in seconds.
    function withdrawalDelay() external view returns (uint64);

    /// @notice How long after a grant's expiry its vouchers can still settle, in seconds.
    function settlementWindow() external view returns (uint64);

    /// @notice The maximum protocol fee, in basis points.
    function MAX_FEE_BPS() external view returns (uint16);

    /// @notice The protocol fee in force now, in basis points.
    function feeBps() external view returns (uint16);

    /// @notice The scheduled fee and when it takes effect (zero when none is pending).
    function pendingFee() external view returns (uint16 feeBps, uint256 effectiveAt);

    /// @notice The shortest withdrawal delay the vault accepts, in seconds.
    function MIN_WITHDRAWAL_DELAY() external view returns (uint64);

    /// @notice The longest withdrawal delay the vault accepts, in seconds.
    function MAX_WITHDRAWAL_DELAY() external view returns (uint64);

    /// @notice The longest settlement window the vault accepts, in seconds.
    function MAX_SETTLEMENT_WINDOW() external view returns (uint64);

    /// @notice Whether `account` may call `settleBatch` now.
    function isSettler(address account) external view returns (bool);

    /// @notice When `account` may start to settle (zero: never allowed, or disallowed since).
    function settlerFrom(address account) external view returns (uint256);

    /// @notice What the listener's funds can still promise to new vouchers: its available funds. Thawing funds still
    /// settle what was acked before the request, but leave at `thawEnd`, so a relay's guard must not count them.
    function spendableOf(address listener) external view returns (uint256);

    /// @notice When a revocation of `grantId` by `listener` takes effect on-chain (zero: not revoked).
    function grantRevokedAt(address listener, bytes32 grantId) external view returns (uint256);

    /// @notice The listener's nonce floor: grants with a nonce below the floor in force are revoked.
    /// @return floor The newest floor.
    /// @return previous The floor in force until `floorFrom`.
    /// @return floorFrom When `floor` takes effect.
    function nonceFloorOf(address listener)
        external
        view
        returns (uint64 floor, uint64 previous, uint256 floorFrom);

    /// @notice Whether `grant`'s vouchers are refused on-chain now as revoked (by id or by nonce floor).
    function isRevoked(SessionGrant calldata grant) external view returns (bool);

    /// @notice The fee recipient.
    function treasury() external view returns (address);

    /// @notice Fees accrued and not yet collected.
    function accruedFees() external view returns (uint256);

    /// @notice A listener's available funds, thawing funds, and when the thawing funds unlock.
    function accountOf(address listener)
        external
        view
        returns (uint256 available, uint256 thawing, uint256 thawEnd);

    /// @notice A payee's withdrawable earnings.
    function earningsOf(address payee) external view returns (uint256);

    /// @notice The cumulative amount already settled for (grantId, payee).
    function settled(bytes32 grantId, address payee) external view returns (uint256);

    /// @notice The total paid under a grant; non-zero means the grant is registered.
    function grantSpent(bytes32 grantId) external view returns (uint256);

    /// @notice The EIP-712 domain separator of this vault on the current chain.
    function domainSeparator() external view returns (bytes32);

    /// @notice The grant id: the EIP-712 struct hash of `grant`.
    function grantId(SessionGrant calldata grant) external pure returns (bytes32);

    /// @notice The EIP-712 digest the listener signs for `grant`.
    function grantDigest(SessionGrant calldata grant) external view returns (bytes32);

    /// @notice The EIP-712 digest the session key signs for a voucher.
    function voucherDigest(bytes32 grantId, address payee, uint256 cumulative) external view returns (bytes32);

    /// @notice The EIP-712 digest the session key signs for a tip; `messageHash` is `keccak256(bytes(message))`.
    function tipDigest(bytes32 grantId, address payee, uint256 tipId, uint256 amount, bytes32 messageHash)
        external
        view
        returns (bytes32);

    /// @notice Whether the tip `tipId` under `grantId` has settled.
    function isTipSettled(bytes32 grantId, uint256 tipId) external view returns (bool);

    /// @notice The longest tip message accepted, in bytes.
    function MAX_TIP_MESSAGE_BYTES() external view returns (uint256);

    /// @notice The most recipients a split may have.
    function MAX_SPLIT_RECIPIENTS() external view returns (uint256);

    /// @notice The registry whose name tokens decide who manages an artist's splits.
    function registry() external view returns (IBeatStreamRegistry);

    /// @notice The payee of version `version` of the split of (node, trackId): the low 20 bytes of
    /// `keccak256(abi.encode(keccak256("BeatStream split payee"), node, trackId, version))`.
    function splitPayee(bytes32 node, uint256 trackId, uint64 version) external pure returns (address);

    /// @notice The split that applies to new plays of (node, trackId) by itself (no fallback from a track to its
    /// artist): its payee and version, or zero for both when none applies.
    function currentSplit(bytes32 node, uint256 trackId) external view returns (address split, uint64 version);

    /// @notice Whom a new play of `trackId` pays: the payee of the track's split in force, else of its artist's split in
    /// force, else the artist's address record in the registry. Reverts as the registry does for an unknown track.
    function playPayee(uint256 trackId) external view returns (address payee);

    /// @notice The newest split version ever set for (node, trackId) (zero: never), whether or not it applies.
    function splitVersion(bytes32 node, uint256 trackId) external view returns (uint64);

    /// @notice What a split payee stands for and whom it pays; an empty `recipients` for an address that is no split.
    function splitOf(address split)
        external
        view
        returns (
            bytes32 node,
            uint256 trackId,
            uint64 version,
            address[] memory recipients,
            uint16[] memory shares
        );

    /// @notice How `amount` (after the fee) settled to `split` is divided among its recipients, in their order:
    /// largest-remainder rounding of `amount * share / 10,000`, ties to the earlier recipient; the parts sum to
    /// `amount`. Empty for an address that is no split.
    function splitParts(address split, uint256 amount) external view returns (uint256[] memory parts);
}
