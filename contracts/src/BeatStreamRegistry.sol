// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";

import {IBeatStreamRegistry, TextRecord, Track, TrackInput} from "./interfaces/IBeatStreamRegistry.sol";
import {IENS} from "./interfaces/IENS.sol";

/// @title BeatStreamRegistry
/// @notice Owns `beatstream.eth` in ENS and hands out `<label>.beatstream.eth` to artists, owned by them. It is the
/// resolver of those names (address and text records) and keeps each artist's rate and track catalogue.
/// @dev Authority over an artist is authority over its ENS name: whoever owns the node in the ENS registry (or an
/// operator they approved there) manages records, rate and tracks. Transferring the name transfers the artist.
contract BeatStreamRegistry is IBeatStreamRegistry, IERC165 {
    /// @dev bytes4(keccak256("addr(bytes32)")), EIP-137.
    bytes4 private constant ADDR_INTERFACE_ID = 0x3b3b57de;
    /// @dev bytes4(keccak256("text(bytes32,string)")), EIP-634.
    bytes4 private constant TEXT_INTERFACE_ID = 0x59d1d43c;

    struct ArtistState {
        bool registered;
        uint248 ratePerSecond;
    }

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
    constructor(IENS ens_, bytes32 rootNode_) {
        ens = ens_;
        rootNode = rootNode_;
    }

    modifier onlyNodeManager(bytes32 node) {
        _checkManager(node);
        _;
    }

    /*//////////////////////////////////////////////////////////////
                                 ARTISTS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IBeatStreamRegistry
    function registerArtist(string calldata label, uint256 ratePerSecond, TextRecord[] calldata records)
        external
        override
        returns (bytes32 node)
    {
        if (!_isValidLabel(bytes(label))) revert BeatStreamRegistry_InvalidLabel(label);
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
        emit AddrChanged(node, msg.sender);
        for (uint256 i; i < records.length; ++i) {
            _setText(node, records[i].key, records[i].value);
        }
        ens.setSubnodeRecord(root, labelHash, msg.sender, address(this), 0);
    }

    /// @inheritdoc IBeatStreamRegistry
    function setRate(bytes32 node, uint256 ratePerSecond) external override onlyNodeManager(node) {
        _requireArtist(node);
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
        _requireArtist(node);
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

    /// @inheritdoc IERC165
    function supportsInterface(bytes4 interfaceId) external pure override returns (bool) {
        return interfaceId == type(IERC165).interfaceId || interfaceId == ADDR_INTERFACE_ID
            || interfaceId == TEXT_INTERFACE_ID;
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

    /*//////////////////////////////////////////////////////////////
                                INTERNAL
    //////////////////////////////////////////////////////////////*/

    function _checkManager(bytes32 node) private view {
        address owner = ens.owner(node);
        if (owner != msg.sender && !ens.isApprovedForAll(owner, msg.sender)) {
            revert BeatStreamRegistry_Unauthorized(node, msg.sender);
        }
    }

    function _requireArtist(bytes32 node) private view {
        if (!_artists[node].registered) revert BeatStreamRegistry_UnknownArtist(node);
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
