// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IENS} from "./IENS.sol";

/// @notice A text record to set, as `text(node, key) = value`.
struct TextRecord {
    string key;
    string value;
}

/// @notice What an artist publishes about a track.
struct TrackInput {
    /// Display title, non-empty.
    string title;
    /// Length in seconds, non-zero.
    uint32 duration;
    /// Price per second in token base units; zero means the artist's rate at play time.
    uint128 ratePerSecond;
    /// Hash of the audio content (e.g. sha256 of the file, or an IPFS multihash digest).
    bytes32 contentHash;
    /// Where the track's metadata lives (ipfs://, https://, ...).
    string metadataURI;
}

/// @notice A track as stored.
struct Track {
    bytes32 artistNode;
    uint128 ratePerSecond;
    uint32 duration;
    bool published;
    bytes32 contentHash;
    string title;
    string metadataURI;
}

/// @title IBeatStreamRegistry
/// @notice Artist names under `beatstream.eth` (registrar and resolver), artists' rates, and the track catalogue.
/// @dev v2: each artist name is an ERC-721 token of this contract (token id = `uint256(node)`); its holder, or an
/// address the holder approved, manages the artist. The registry keeps the ENS subname itself, so whoever controls
/// `beatstream.eth` in ENS can at most change what ENS resolves, never who manages an artist or whom plays pay.
/// Registration is commit-reveal so a watcher of the mempool cannot take a name first.
interface IBeatStreamRegistry {
    /*//////////////////////////////////////////////////////////////
                                 EVENTS
    //////////////////////////////////////////////////////////////*/

    /// @notice Emitted when `owner` registers `<label>.beatstream.eth`.
    event ArtistRegistered(bytes32 indexed node, address indexed owner, string label, uint256 ratePerSecond);

    /// @notice Emitted when an artist's default per-second rate changes.
    event ArtistRateChanged(bytes32 indexed node, uint256 ratePerSecond);

    /// @notice Emitted when a track is published; `trackId` counts up from 1.
    event TrackPublished(
        uint256 indexed trackId,
        bytes32 indexed artistNode,
        string title,
        uint32 duration,
        uint256 ratePerSecond,
        bytes32 contentHash,
        string metadataURI
    );

    /// @notice Emitted when a published track's details change.
    event TrackUpdated(
        uint256 indexed trackId,
        bytes32 indexed artistNode,
        string title,
        uint32 duration,
        uint256 ratePerSecond,
        bytes32 contentHash,
        string metadataURI
    );

    /// @notice Emitted when a track is withdrawn from the catalogue.
    event TrackUnpublished(uint256 indexed trackId, bytes32 indexed artistNode);

    /// @notice EIP-137 resolver event: the address record of `node` changed.
    event AddrChanged(bytes32 indexed node, address a);

    /// @notice EIP-634 resolver event: the text record `key` of `node` changed to `value`.
    event TextChanged(bytes32 indexed node, string indexed indexedKey, string key, string value);

    /*//////////////////////////////////////////////////////////////
                                 ERRORS
    //////////////////////////////////////////////////////////////*/

    /// @notice Thrown for a label that is not 3 to 63 characters of a-z, 0-9 and hyphen.
    error BeatStreamRegistry_InvalidLabel(string label);

    /// @notice Thrown when `<label>.beatstream.eth` already has an owner.
    error BeatStreamRegistry_LabelTaken(string label);

    /// @notice Thrown when the registry does not own `beatstream.eth` in ENS, so it cannot create names.
    error BeatStreamRegistry_RootNotOwned(bytes32 rootNode);

    /// @notice Thrown when `caller` neither holds the name of `node` nor is approved by its holder.
    error BeatStreamRegistry_Unauthorized(bytes32 node, address caller);

    /// @notice Thrown for a registration without a matching commitment.
    error BeatStreamRegistry_CommitmentNotFound(bytes32 commitment);

    /// @notice Thrown for a registration whose commitment is younger than the minimum age; retry from `readyAt`.
    error BeatStreamRegistry_CommitmentTooNew(bytes32 commitment, uint256 readyAt);

    /// @notice Thrown for a registration whose commitment expired at `expiredAt`; commit again.
    error BeatStreamRegistry_CommitmentExpired(bytes32 commitment, uint256 expiredAt);

    /// @notice Thrown for a commitment that is already pending and not yet expired.
    error BeatStreamRegistry_CommitmentPending(bytes32 commitment);

    /// @notice Thrown for a minimum commitment age outside [1, `max`] seconds.
    error BeatStreamRegistry_CommitmentAgeOutOfRange(uint256 minCommitmentAge, uint256 max);

    /// @notice Thrown for a node that is not a registered artist.
    error BeatStreamRegistry_UnknownArtist(bytes32 node);

    /// @notice Thrown for a track id that was never published.
    error BeatStreamRegistry_UnknownTrack(uint256 trackId);

    /// @notice Thrown for an unpublish of a track that is not published.
    error BeatStreamRegistry_TrackNotPublished(uint256 trackId);

    /// @notice Thrown for a per-second rate too large to store.
    error BeatStreamRegistry_RateTooHigh(uint256 ratePerSecond);

    /// @notice Thrown for a track with an empty title or zero duration.
    error BeatStreamRegistry_InvalidTrack();

    /*//////////////////////////////////////////////////////////////
                                 ARTISTS
    //////////////////////////////////////////////////////////////*/

    /// @notice First step of registration: records `commitment = makeCommitment(label, owner, secret)` without
    /// revealing the label. Register between {MIN_COMMITMENT_AGE} and {MAX_COMMITMENT_AGE} seconds later.
    function commit(bytes32 commitment) external;

    /// @notice Registers `<label>.beatstream.eth` to the caller (minting its name token), revealing the commitment
    /// the caller made with `secret`. This contract keeps the ENS subname and resolves it; the caller becomes its
    /// address record, `ratePerSecond` its default rate and `records` its text records.
    /// @dev Emits {ArtistRegistered}, {Transfer}, {AddrChanged} and a {TextChanged} per record.
    function registerArtist(
        string calldata label,
        uint256 ratePerSecond,
        TextRecord[] calldata records,
        bytes32 secret
    ) external returns (bytes32 node);

    /// @notice Sets an artist's default per-second rate.
    /// @dev Emits {ArtistRateChanged}.
    function setRate(bytes32 node, uint256 ratePerSecond) external;

    /// @notice Publishes a track for the artist at `node`.
    /// @dev Emits {TrackPublished}.
    function publishTrack(bytes32 node, TrackInput calldata track) external returns (uint256 trackId);

    /// @notice Replaces a track's details; the track stays with its artist and is published again if it was not.
    /// @dev Emits {TrackUpdated}.
    function updateTrack(uint256 trackId, TrackInput calldata track) external;

    /// @notice Withdraws a track from the catalogue.
    /// @dev Emits {TrackUnpublished}.
    function unpublishTrack(uint256 trackId) external;

    /*//////////////////////////////////////////////////////////////
                                RESOLVER
    //////////////////////////////////////////////////////////////*/

    /// @notice Sets the address record of `node`.
    /// @dev Emits {AddrChanged}.
    function setAddr(bytes32 node, address a) external;

    /// @notice Sets the text record `key` of `node`.
    /// @dev Emits {TextChanged}.
    function setText(bytes32 node, string calldata key, string calldata value) external;

    /// @notice The address record of `node` (EIP-137).
    function addr(bytes32 node) external view returns (address payable);

    /// @notice The text record `key` of `node` (EIP-634).
    function text(bytes32 node, string calldata key) external view returns (string memory);

    /*//////////////////////////////////////////////////////////////
                                  VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @notice The ENS registry.
    function ens() external view returns (IENS);

    /// @notice namehash("beatstream.eth") or whichever parent this registry was deployed for.
    function rootNode() external view returns (bytes32);

    /// @notice The number of tracks ever published; ids run from 1 to this.
    function trackCount() external view returns (uint256);

    /// @notice Whether `node` is a registered artist, and its default rate.
    function artist(bytes32 node) external view returns (bool registered, uint256 ratePerSecond);

    /// @notice A track's stored details.
    function track(uint256 trackId) external view returns (Track memory);

    /// @notice The rate a play of `trackId` costs per second now, and the address that is paid (the artist's
    /// address record).
    function playTerms(uint256 trackId) external view returns (uint256 ratePerSecond, address payee);

    /// @notice Whether `label` is well-formed for registration.
    function isValidLabel(string calldata label) external pure returns (bool);

    /// @notice The commitment `owner` makes before registering `label` with `secret`.
    function makeCommitment(string calldata label, address owner, bytes32 secret)
        external
        pure
        returns (bytes32);

    /// @notice When `commitment` was made (zero: never, or used).
    function commitments(bytes32 commitment) external view returns (uint256);

    /// @notice Seconds a commitment must wait before it can be revealed.
    function MIN_COMMITMENT_AGE() external view returns (uint256);

    /// @notice Seconds after which a commitment can no longer be revealed.
    function MAX_COMMITMENT_AGE() external view returns (uint256);

    /// @notice Who manages the artist at `node`: the holder of its name token (zero if not registered).
    function managerOf(bytes32 node) external view returns (address);
}
