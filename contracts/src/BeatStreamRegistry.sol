// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {IERC721Receiver} from "@openzeppelin/contracts/token/ERC721/IERC721Receiver.sol";

import {IBeatStreamRegistry, TextRecord, Track, TrackInput} from "./interfaces/IBeatStreamRegistry.sol";
import {IENS} from "./interfaces/IENS.sol";

/// @title BeatStreamRegistry
/// @notice Owns `beatstream.eth` in ENS and hands out `<label>.beatstream.eth` to artists as ERC-721 name tokens. It
/// is the resolver of those names (address and text records) and keeps each artist's rate and track catalogue.
/// @dev Authority over an artist is its name token: the holder (or an address it approved) manages records, rate
/// and tracks, and transferring the token transfers the artist. The ENS subname stays owned by this contract, so the
/// ENS parent's owner (who, on a public chain, may be able to `reclaim` or re-register `beatstream.eth`) cannot move
/// an artist or redirect its payments; at most it can point ENS resolution elsewhere. The contract accepts ERC-721
/// tokens sent to it and never sends them on, so the `.eth` registrar token of the parent can be locked here.
contract BeatStreamRegistry is IBeatStreamRegistry, ERC721, IERC721Receiver {
    /// @dev bytes4(keccak256("addr(bytes32)")), EIP-137.
    bytes4 private constant ADDR_INTERFACE_ID = 0x3b3b57de;
    /// @dev bytes4(keccak256("text(bytes32,string)")), EIP-634.
    bytes4 private constant TEXT_INTERFACE_ID = 0x59d1d43c;

    struct ArtistState {
        bool registered;
        uint248 ratePerSecond;
    }

    /// @inheritdoc IBeatStreamRegistry
    uint256 public constant override MAX_COMMITMENT_AGE = 1 days;

    /// @inheritdoc IBeatStreamRegistry
    uint256 public immutable override MIN_COMMITMENT_AGE;

    /// @inheritdoc IBeatStreamRegistry
    mapping(bytes32 commitment => uint256 timestamp) public override commitments;

    /// @inheritdoc IBeatStreamRegistry
    IENS public immutable override ens;

    /// @inheritdoc IBeatStreamRegistry
    bytes32 public immutable override rootNode;

    /// @inheritdoc IBeatStreamRegistry
    uint256 public override trackCount;

    mapping(bytes32 node => ArtistState) private _artists;
    mapping(bytes32 node => address) private _addrs;
    mapping(bytes32 node => mapping(string key => string)) private _texts;
    mapping(uint256 trackId => Track) private _tracks;

    /// @param ens_ The ENS registry.
    /// @param rootNode_ The node under which artist names are created; this contract must own it to register.
    /// @param minCommitmentAge_ Seconds between commit and register (ENS's own controller uses 60; 1 on a dev chain).
    constructor(IENS ens_, bytes32 rootNode_, uint256 minCommitmentAge_)
        ERC721("BeatStream artist name", "BEATSTREAM")
    {
        if (minCommitmentAge_ == 0 || minCommitmentAge_ >= MAX_COMMITMENT_AGE) {
            revert BeatStreamRegistry_CommitmentAgeOutOfRange(minCommitmentAge_, MAX_COMMITMENT_AGE);
        }
        ens = ens_;
        rootNode = rootNode_;
        MIN_COMMITMENT_AGE = minCommitmentAge_;
    }

    modifier onlyNodeManager(bytes32 node) {
        _checkManager(node);
        _;
    }

    /*//////////////////////////////////////////////////////////////
                                 ARTISTS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IBeatStreamRegistry
    function commit(bytes32 commitment) external override {
        uint256 made = commitments[commitment];
        if (made != 0 && block.timestamp <= made + MAX_COMMITMENT_AGE) {
            revert BeatStreamRegistry_CommitmentPending(commitment);
        }
        commitments[commitment] = block.timestamp;
    }

    /// @inheritdoc IBeatStreamRegistry
    function registerArtist(
        string calldata label,
        uint256 ratePerSecond,
        TextRecord[] calldata records,
        bytes32 secret
    ) external override returns (bytes32 node) {
        if (!_isValidLabel(bytes(label))) {
            revert BeatStreamRegistry_InvalidLabel(label);
        }
        _useCommitment(keccak256(abi.encode(label, msg.sender, secret)));
        bytes32 root = rootNode;
        if (ens.owner(root) != address(this)) revert BeatStreamRegistry_RootNotOwned(root);
        bytes32 labelHash = keccak256(bytes(label));
        node = keccak256(abi.encodePacked(root, labelHash));
        if (_artists[node].registered || ens.owner(node) != address(0)) {
            revert BeatStreamRegistry_LabelTaken(label);
        }

        _artists[node] = ArtistState({registered: true, ratePerSecond: _toRate(ratePerSecond)});
        _addrs[node] = msg.sender;
        emit ArtistRegistered(node, msg.sender, label, ratePerSecond);
        // Not _safeMint: the artist is the caller, and a wallet that cannot receive tokens can still be an artist.
        _mint(msg.sender, uint256(node));
        emit AddrChanged(node, msg.sender);
        for (uint256 i; i < records.length; ++i) {
            _setText(node, records[i].key, records[i].value);
        }
        ens.setSubnodeRecord(root, labelHash, address(this), address(this), 0);
    }

    /// @inheritdoc IBeatStreamRegistry
    function setRate(bytes32 node, uint256 ratePerSecond) external override onlyNodeManager(node) {
        _artists[node].ratePerSecond = _toRate(ratePerSecond);
        emit ArtistRateChanged(node, ratePerSecond);
    }

    /// @inheritdoc IBeatStreamRegistry
    function publishTrack(bytes32 node, TrackInput calldata input)
        external
        override
        onlyNodeManager(node)
        returns (uint256 trackId)
    {
        _checkTrack(input);
        trackId = ++trackCount;
        _store(trackId, node, input);
        emit TrackPublished(
            trackId,
            node,
            input.title,
            input.duration,
            input.ratePerSecond,
            input.contentHash,
            input.metadataURI
        );
    }

    /// @inheritdoc IBeatStreamRegistry
    function updateTrack(uint256 trackId, TrackInput calldata input) external override {
        bytes32 node = _trackArtist(trackId);
        _checkManager(node);
        _checkTrack(input);
        _store(trackId, node, input);
        emit TrackUpdated(
            trackId,
            node,
            input.title,
            input.duration,
            input.ratePerSecond,
            input.contentHash,
            input.metadataURI
        );
    }

    /// @inheritdoc IBeatStreamRegistry
    function unpublishTrack(uint256 trackId) external override {
        bytes32 node = _trackArtist(trackId);
        _checkManager(node);
        if (!_tracks[trackId].published) revert BeatStreamRegistry_TrackNotPublished(trackId);
        _tracks[trackId].published = false;
        emit TrackUnpublished(trackId, node);
    }

    /*//////////////////////////////////////////////////////////////
                                RESOLVER
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IBeatStreamRegistry
    function setAddr(bytes32 node, address a) external override onlyNodeManager(node) {
        _addrs[node] = a;
        emit AddrChanged(node, a);
    }

    /// @inheritdoc IBeatStreamRegistry
    function setText(bytes32 node, string calldata key, string calldata value)
        external
        override
        onlyNodeManager(node)
    {
        _setText(node, key, value);
    }

    /// @inheritdoc IBeatStreamRegistry
    function addr(bytes32 node) external view override returns (address payable) {
        return payable(_addrs[node]);
    }

    /// @inheritdoc IBeatStreamRegistry
    function text(bytes32 node, string calldata key) external view override returns (string memory) {
        return _texts[node][key];
    }

    /// @notice ERC-165: ERC-721 (with metadata), and the `addr` and `text` resolver profiles.
    function supportsInterface(bytes4 interfaceId) public view override returns (bool) {
        return interfaceId == ADDR_INTERFACE_ID || interfaceId == TEXT_INTERFACE_ID
            || super.supportsInterface(interfaceId);
    }

    /// @notice Accepts ERC-721 tokens, to hold the `.eth` registrar token of the parent name so no one can reclaim
    /// it; nothing here can send a received token on. Its own name tokens are refused: sent here they would be lost.
    function onERC721Received(address, address, uint256, bytes calldata)
        external
        view
        override
        returns (bytes4)
    {
        if (msg.sender == address(this)) revert ERC721InvalidReceiver(address(this));
        return IERC721Receiver.onERC721Received.selector;
    }

    /*//////////////////////////////////////////////////////////////
                                  VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IBeatStreamRegistry
    function artist(bytes32 node) external view override returns (bool registered, uint256 ratePerSecond) {
        ArtistState memory state = _artists[node];
        return (state.registered, state.ratePerSecond);
    }

    /// @inheritdoc IBeatStreamRegistry
    function track(uint256 trackId) external view override returns (Track memory) {
        _trackArtist(trackId);
        return _tracks[trackId];
    }

    /// @inheritdoc IBeatStreamRegistry
    function playTerms(uint256 trackId)
        external
        view
        override
        returns (uint256 ratePerSecond, address payee)
    {
        bytes32 node = _trackArtist(trackId);
        ratePerSecond = _tracks[trackId].ratePerSecond;
        if (ratePerSecond == 0) ratePerSecond = _artists[node].ratePerSecond;
        payee = _addrs[node];
    }

    /// @inheritdoc IBeatStreamRegistry
    function isValidLabel(string calldata label) external pure override returns (bool) {
        return _isValidLabel(bytes(label));
    }

    /// @inheritdoc IBeatStreamRegistry
    function makeCommitment(string calldata label, address owner, bytes32 secret)
        external
        pure
        override
        returns (bytes32)
    {
        return keccak256(abi.encode(label, owner, secret));
    }

    /// @inheritdoc IBeatStreamRegistry
    function managerOf(bytes32 node) external view override returns (address) {
        return _ownerOf(uint256(node));
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNAL
    //////////////////////////////////////////////////////////////*/

    /// @dev The caller must hold the name token of `node` or be approved by its holder; a node without a token is
    /// no artist (whoever owns it in ENS).
    function _checkManager(bytes32 node) private view {
        uint256 tokenId = uint256(node);
        address owner = _ownerOf(tokenId);
        if (owner == address(0)) revert BeatStreamRegistry_UnknownArtist(node);
        if (!_isAuthorized(owner, msg.sender, tokenId)) {
            revert BeatStreamRegistry_Unauthorized(node, msg.sender);
        }
    }

    /// @dev Name tokens never move to this contract: nothing here could send them on, so the artist would be lost.
    /// (`safeTransferFrom` is refused by {onERC721Received} already; this also covers `transferFrom`.)
    function _update(address to, uint256 tokenId, address auth) internal override returns (address) {
        if (to == address(this)) revert ERC721InvalidReceiver(to);
        return super._update(to, tokenId, auth);
    }

    function _useCommitment(bytes32 commitment) private {
        uint256 made = commitments[commitment];
        if (made == 0) revert BeatStreamRegistry_CommitmentNotFound(commitment);
        if (block.timestamp < made + MIN_COMMITMENT_AGE) {
            revert BeatStreamRegistry_CommitmentTooNew(commitment, made + MIN_COMMITMENT_AGE);
        }
        if (block.timestamp > made + MAX_COMMITMENT_AGE) {
            revert BeatStreamRegistry_CommitmentExpired(commitment, made + MAX_COMMITMENT_AGE);
        }
        delete commitments[commitment];
    }

    function _trackArtist(uint256 trackId) private view returns (bytes32 node) {
        node = _tracks[trackId].artistNode;
        if (node == bytes32(0)) revert BeatStreamRegistry_UnknownTrack(trackId);
    }

    function _checkTrack(TrackInput calldata input) private pure {
        if (bytes(input.title).length == 0 || input.duration == 0) revert BeatStreamRegistry_InvalidTrack();
    }

    function _store(uint256 trackId, bytes32 node, TrackInput calldata input) private {
        _tracks[trackId] = Track({
            artistNode: node,
            ratePerSecond: input.ratePerSecond,
            duration: input.duration,
            published: true,
            contentHash: input.contentHash,
            title: input.title,
            metadataURI: input.metadataURI
        });
    }

    function _setText(bytes32 node, string calldata key, string calldata value) private {
        _texts[node][key] = value;
        emit TextChanged(node, key, key, value);
    }

    function _toRate(uint256 ratePerSecond) private pure returns (uint248) {
        // A rate that does not fit is a mistake, not a price: fail rather than truncate.
        if (ratePerSecond > type(uint248).max) revert BeatStreamRegistry_RateTooHigh(ratePerSecond);
        // Cannot truncate: checked just above: ratePerSecond <= type(uint248).max.
        // forge-lint: disable-next-line(unsafe-typecast)
        return uint248(ratePerSecond);
    }

    /// @dev 3 to 63 bytes, each a-z, 0-9 or '-'. Upper case is rejected rather than folded: the label is what
    /// ENS hashes, and a name must have one spelling.
    function _isValidLabel(bytes memory label) private pure returns (bool) {
        uint256 len = label.length;
        if (len < 3 || len > 63) return false;
        for (uint256 i; i < len; ++i) {
            bytes1 c = label[i];
            if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x2d)) return false;
        }
        return true;
    }
}
