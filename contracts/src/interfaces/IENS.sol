// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IENS
/// @notice The parts of the ENS registry (EIP-137) the BeatStream registry uses. The registry itself is the official
/// `ENSRegistry` from the npm package ensdomains/ens 0.6.2, compiled with solc 0.7.6, so it cannot be imported from 0.8 code.
interface IENS {
    /// @notice The owner of `node`.
    function owner(bytes32 node) external view returns (address);

    /// @notice The resolver of `node`.
    function resolver(bytes32 node) external view returns (address);

    /// @notice Whether `operator` may manage all of `owner`'s names.
    function isApprovedForAll(address owner, address operator) external view returns (bool);

    /// @notice Creates or reassigns `label` under `node`, setting owner, resolver and TTL. Caller must own `node`.
    function setSubnodeRecord(bytes32 node, bytes32 label, address owner, address resolver, uint64 ttl)
        external;

    /// @notice Creates or reassigns `label` under `node` to `owner`. Caller must own `node`.
    function setSubnodeOwner(bytes32 node, bytes32 label, address owner) external returns (bytes32);

    /// @notice Sets the resolver of `node`. Caller must own `node`.
    function setResolver(bytes32 node, address resolver) external;

    /// @notice Sets the owner of `node`. Caller must own `node`.
    function setOwner(bytes32 node, address owner) external;
}
