// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @notice A listener's authorisation of an ephemeral session key, signed once per device session.
/// @dev EIP-712 type `SessionGrant(address listener,address sessionKey,uint256 cap,uint64 expiresAt,uint64 nonce)`.
/// Its struct hash is the grant id.
struct SessionGrant {
    /// The account whose vault balance pays; an EOA or an ERC-1271 contract.
    address listener;
    /// The player's ephemeral EOA that signs vouchers under this grant.
    address sessionKey;
    /// The most that all vouchers under this grant may pay in total, in token base units.
    uint256 cap;
    /// Unix time after which the session key may not sign new vouchers.
    uint64 expiresAt;
    /// Lets one listener issue distinct grants for the same key.
    uint64 nonce;
}

/// @notice One voucher to settle: the grant, its signature, and the newest cumulative voucher for one payee.
/// @dev `grantSignature` may be empty when the grant is already registered in the vault (saves calldata).
struct SettlementItem {
    SessionGrant grant;
    bytes grantSignature;
    address payee;
    uint256 cumulative;
    bytes voucherSignature;
}

/// @notice One tip to settle: the grant, its signature, and a one-off amount with a message for one payee, signed by
/// the grant's session key.
/// @dev EIP-712 type `Tip(bytes32 grantId,address payee,uint256 tipId,uint256 amount,bytes32 messageHash)` with
/// `messageHash = keccak256(bytes(message))`. `grantSignature` may be empty when the grant is already registered.
struct TipItem {
    SessionGrant grant;
    bytes grantSignature;
    address payee;
    /// Chosen by the player; each (grant, tipId) settles at most once.
    uint256 tipId;
    /// What the tip pays, in token base units; counts toward the grant's cap like a voucher's increase.
    uint256 amount;
    /// At most `MAX_TIP_MESSAGE_BYTES` bytes, carried as given in the `Tipped` event.
    string message;
    bytes tipSignature;
}

/// @notice One recipient of a split and its share, in one slot.
struct SplitShare {
    address recipient;
    /// Basis points of each settlement to the split; a split's shares sum to 10,000.
    uint16 bps;
}

/// @notice The current split version of an artist (`trackId` 0) or of one of its tracks.
struct SplitHead {
    /// The newest version set; versions count up from 1 per (node, trackId).
    uint64 version;
    /// Whether that version applies to new plays (false after `clearSplit`).
    bool active;
}

/// @notice What a split payee stands for.
struct SplitInfo {
    bytes32 node;
    uint256 trackId;
    uint64 version;
}

/// @notice A listener's vault account, packed into one slot.
struct Account {
    /// Funds available to settle and to request for withdrawal: what the relay's guard may promise to artists.
    uint120 available;
    /// Funds requested for withdrawal and waiting out the delay; still settleable until `thawEnd`.
    uint88 thawing;
    /// When the thawing funds become withdrawable.
    uint40 thawEnd;
    /// Whether the listener ever revoked a grant or raised its nonce floor. Only such listeners' items pay for
    /// reading their revocations, so revocation costs the common settlement nothing.
    bool hasRevocations;
}

/// @notice A listener's nonce floor: grants with a nonce below the floor are revoked. A raised floor takes effect
/// after the withdrawal delay; until then the previous floor applies.
struct NonceFloor {
    /// The newest floor asked for.
    uint64 floor;
    /// The floor in force until `floorFrom`.
    uint64 previous;
    /// When `floor` takes effect.
    uint40 floorFrom;
}

/// @notice The protocol fee, with a scheduled change that takes effect after the withdrawal delay.
struct FeeSchedule {
    /// The fee in force until `nextFrom`, in basis points.
    uint16 current;
    /// The scheduled fee, in basis points.
    uint16 next;
    /// When `next` takes effect; zero when no change is scheduled.
    uint40 nextFrom;
}

/// @notice Per-grant state in one slot. The grant's first payee keeps its settled amount here rather than in its own
/// slot: a grant's first settlement then writes one new slot instead of two, which is most of its gas.
/// @dev A zero `firstPayee` means the grant is not registered (its signature has not been verified yet). Amounts are
/// 48 bits (2^48 - 1 base units is 281 million USDC): a grant's cap is clamped to that, which only ever restricts.
struct GrantState {
    /// The payee of the grant's first settlement.
    address firstPayee;
    /// Total paid under the grant across all payees.
    uint48 spent;
    /// The cumulative settled for `firstPayee`.
    uint48 firstPayeeSettled;
}

/// @notice Why an item of a batch was skipped instead of settled.
enum SkipReason {
    /// Zero address payee or listener, a zero tip, or a voucher or tip signature that is not 65 bytes (`r ‖ s ‖ v`). The signature
    /// length is judged where the voucher signature is checked, so an item failing an earlier check reports that.
    Malformed,
    /// The grant signature is not the listener's (EOA or ERC-1271), is high-s, has the wrong length for an EOA, or
    /// is for another domain.
    InvalidGrantSignature,
    /// The voucher (or tip) signature is not the session key's, or is high-s, or is for another domain.
    InvalidVoucherSignature,
    /// The settlement window after the grant's expiry has passed.
    GrantExpired,
    /// The voucher's cumulative is not above what is already settled for the pair.
    StaleVoucher,
    /// Settling would take the grant's total past its cap.
    CapExceeded,
    /// The listener's available plus thawing funds do not cover the amount due.
    InsufficientFunds,
    /// The grant was revoked by its listener (by id or by nonce floor) and the withdrawal delay since has passed.
    GrantRevoked,
    /// Too little gas was left to give a smart-wallet listener's `isValidSignature` its full allowance, or to credit
    /// every recipient of a split payee.
    InsufficientGas,
    /// A tip whose (grant, tipId) already settled.
    TipAlreadySettled,
    /// A tip whose message is longer than `MAX_TIP_MESSAGE_BYTES` bytes.
    MessageTooLong
}
