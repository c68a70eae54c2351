// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TextRecord, TrackInput} from "../../../src/interfaces/IBeatStreamRegistry.sol";
import {Base_Test} from "../../Base.t.sol";

/// @notice Shared fixture of the registry unit tests: helpers to build labels, records and tracks.
abstract contract Registry_Unit_Test is Base_Test {
    uint256 internal constant RATE = 100;

    address internal stranger = address(0x5742);
    address internal operator = address(0x0BE7);

    function _node(string memory label) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(ROOT_NODE, keccak256(bytes(label))));
    }

    function _noRecords() internal pure returns (TextRecord[] memory) {
        return new TextRecord[](0);
    }

    /// @dev Registers `label` for `who` at {RATE} with no records: commit, wait, reveal.
    function _register(address who, string memory label) internal returns (bytes32 node) {
        node = _register(who, label, RATE, _noRecords());
    }

    /// @dev The secret {_commitAndWait} commits with.
    function _secret(address who, string memory label) internal pure returns (bytes32) {
        return keccak256(abi.encode("test secret", who, label));
    }

    /// @dev Commits to registering `label` for `who` and waits until the commitment can be revealed, so a test can
    /// make the reveal itself (with `_secret(who, label)`) and expect what it does.
    function _commitAndWait(address who, string memory label) internal returns (bytes32 secret) {
        secret = _secret(who, label);
        vm.prank(who);
        registry.commit(registry.makeCommitment(label, who, secret));
        vm.warp(vm.getBlockTimestamp() + registry.MIN_COMMITMENT_AGE());
    }

    function _trackInput(string memory title, uint128 rate) internal pure returns (TrackInput memory) {
        return TrackInput({
            title: title,
            duration: 180,
            ratePerSecond: rate,
            contentHash: keccak256(bytes(title)),
            metadataURI: string.concat("ipfs://", title)
        });
    }
}
