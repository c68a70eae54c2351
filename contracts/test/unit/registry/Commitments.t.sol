// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IBeatStreamRegistry} from "../../../src/interfaces/IBeatStreamRegistry.sol";
import {IBeatStreamRegistryFull} from "../../utils/Interfaces.sol";
import {Registry_Unit_Test} from "./Registry.t.sol";

/// @notice Commit-reveal registration: commit, makeCommitment, and every way a reveal is refused. Uses a registry
/// with ENS's own 60-second minimum age, so "too new" spans more than one second.
contract Commitments_Unit_Test is Registry_Unit_Test {
    uint256 internal constant MIN_AGE = 60;

    IBeatStreamRegistryFull internal reg;
    bytes32 internal secret = keccak256("a secret");
    uint256 internal t0;

    function setUp() public override {
        super.setUp();
        reg = IBeatStreamRegistryFull(
            vm.deployCode("BeatStreamRegistry.sol:BeatStreamRegistry", abi.encode(ens, ROOT_NODE, MIN_AGE))
        );
        // The test owns eth.: hand beatstream.eth to the new registry.
        ens.setSubnodeOwner(ETH_NODE, keccak256("beatstream"), address(reg));
        t0 = block.timestamp;
    }

    function _commitment(string memory label, address who) internal view returns (bytes32) {
        return reg.makeCommitment(label, who, secret);
    }

    function _commit(string memory label, address who) internal returns (bytes32 commitment) {
        commitment = _commitment(label, who);
        vm.prank(who);
        reg.commit(commitment);
    }

    function _reveal(string memory label, address who) internal returns (bytes32) {
        vm.prank(who);
        return reg.registerArtist(label, RATE, _noRecords(), secret);
    }

    function test_WhenReadingCommitmentAges() external view {
        vm.assertEq(reg.MIN_COMMITMENT_AGE(), MIN_AGE, "MIN_COMMITMENT_AGE");
        vm.assertEq(reg.MAX_COMMITMENT_AGE(), 1 days, "MAX_COMMITMENT_AGE");
        vm.assertEq(registry.MIN_COMMITMENT_AGE(), 1, "the dev registry's");
    }

    function test_WhenMakingCommitment_ItHashesLabelOwnerAndSecret() external view {
        vm.assertEq(
            reg.makeCommitment("alice", artist, secret),
            keccak256(abi.encode("alice", artist, secret)),
            "hash"
        );
        vm.assertTrue(
            reg.makeCommitment("alice", artist, secret) != reg.makeCommitment("alice", stranger, secret),
            "binds the owner"
        );
    }

    function test_WhenCommitted_RegistersBetweenMinAndMaxAge() external {
        bytes32 c = _commit("alice", artist);
        vm.assertEq(reg.commitments(c), t0, "recorded");
        vm.warp(t0 + MIN_AGE);
        bytes32 node = _reveal("alice", artist);
        vm.assertEq(reg.managerOf(node), artist, "registered");
        vm.assertEq(reg.commitments(c), 0, "used up");
    }

    function test_WhenRevealedAtTheMaxAge_Registers() external {
        _commit("alice", artist);
        vm.warp(t0 + 1 days);
        vm.assertEq(reg.managerOf(_reveal("alice", artist)), artist, "registered");
    }

    function test_RevertWhen_NoCommitment() external {
        bytes32 c = _commitment("alice", artist);
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamRegistry.BeatStreamRegistry_CommitmentNotFound.selector, c)
        );
        _reveal("alice", artist);
    }

    function test_RevertWhen_CommitmentTooNew() external {
        bytes32 c = _commit("alice", artist);
        vm.warp(t0 + MIN_AGE - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBeatStreamRegistry.BeatStreamRegistry_CommitmentTooNew.selector, c, t0 + MIN_AGE
            )
        );
        _reveal("alice", artist);
    }

    function test_RevertWhen_CommitmentRevealedInTheSameBlock() external {
        bytes32 c = _commit("alice", artist);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBeatStreamRegistry.BeatStreamRegistry_CommitmentTooNew.selector, c, t0 + MIN_AGE
            )
        );
        _reveal("alice", artist);
    }

    function test_RevertWhen_CommitmentExpired() external {
        bytes32 c = _commit("alice", artist);
        vm.warp(t0 + 1 days + 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBeatStreamRegistry.BeatStreamRegistry_CommitmentExpired.selector, c, t0 + 1 days
            )
        );
        _reveal("alice", artist);
    }

    function test_RevertWhen_CommitmentAlreadyUsed() external {
        bytes32 c = _commit("alice", artist);
        vm.warp(t0 + MIN_AGE);
        _reveal("alice", artist);
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamRegistry.BeatStreamRegistry_CommitmentNotFound.selector, c)
        );
        _reveal("alice", artist);
    }

    function test_RevertWhen_RevealedWithAnotherSecret() external {
        _commit("alice", artist);
        vm.warp(t0 + MIN_AGE);
        bytes32 other = keccak256("another secret");
        bytes32 c = reg.makeCommitment("alice", artist, other);
        vm.prank(artist);
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamRegistry.BeatStreamRegistry_CommitmentNotFound.selector, c)
        );
        reg.registerArtist("alice", RATE, _noRecords(), other);
    }

    function test_RevertWhen_RevealedForAnotherLabel() external {
        _commit("alice", artist);
        vm.warp(t0 + MIN_AGE);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBeatStreamRegistry.BeatStreamRegistry_CommitmentNotFound.selector,
                _commitment("alicia", artist)
            )
        );
        _reveal("alicia", artist);
    }

    function test_RevertWhen_CommitmentPending() external {
        bytes32 c = _commit("alice", artist);
        vm.warp(t0 + 1 days);
        vm.prank(stranger);
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamRegistry.BeatStreamRegistry_CommitmentPending.selector, c)
        );
        reg.commit(c);
        vm.assertEq(reg.commitments(c), t0, "the first commitment stands");
    }

    function test_WhenCommitmentExpired_ItCanBeMadeAgain() external {
        bytes32 c = _commit("alice", artist);
        vm.warp(t0 + 1 days + 1);
        vm.prank(artist);
        reg.commit(c);
        vm.assertEq(reg.commitments(c), t0 + 1 days + 1, "renewed");
        vm.warp(t0 + 1 days + 1 + MIN_AGE);
        vm.assertEq(reg.managerOf(_reveal("alice", artist)), artist, "registered");
    }

    function test_RevertWhen_MinCommitmentAgeZero() external {
        vm.expectRevert(
            abi.encodeWithSelector(
                IBeatStreamRegistry.BeatStreamRegistry_CommitmentAgeOutOfRange.selector, 0, 1 days
            )
        );
        vm.deployCode("BeatStreamRegistry.sol:BeatStreamRegistry", abi.encode(ens, ROOT_NODE, uint256(0)));
    }

    function test_RevertWhen_MinCommitmentAgeNotBelowMax() external {
        vm.expectRevert(
            abi.encodeWithSelector(
                IBeatStreamRegistry.BeatStreamRegistry_CommitmentAgeOutOfRange.selector, 1 days, 1 days
            )
        );
        vm.deployCode(
            "BeatStreamRegistry.sol:BeatStreamRegistry", abi.encode(ens, ROOT_NODE, uint256(1 days))
        );
    }
}
