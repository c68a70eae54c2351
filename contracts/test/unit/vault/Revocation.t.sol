// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IBeatStreamVault} from "../../../src/interfaces/IBeatStreamVault.sol";
import {SessionGrant, SettlementItem, SkipReason} from "../../../src/types/DataTypes.sol";
import {Base_Test} from "../../Base.t.sol";

/// @notice revokeGrant and revokeGrantsBelow, their views (grantRevokedAt, nonceFloorOf, isRevoked), and how
/// settlement treats a revoked grant: vouchers settle until the withdrawal delay after the revocation, then are skipped
/// with GrantRevoked.
contract Revocation_Unit_Test is Base_Test {
    uint256 internal constant FUNDS = 100 * ONE_USDC;
    uint256 internal t0;

    function setUp() public override {
        super.setUp();
        t0 = block.timestamp;
        _fund(listener, FUNDS);
    }

    /// @dev A grant of the default listener and session key with `nonce`, expiring far out.
    function _grantWithNonce(uint64 nonce) internal view returns (SessionGrant memory grant) {
        grant = _grant(listener, sessionKey, 1000 * ONE_USDC, nonce);
        grant.expiresAt = uint64(t0 + 365 days);
    }

    function _itemOf(SessionGrant memory grant, uint256 cumulative)
        internal
        view
        returns (SettlementItem memory)
    {
        return _item(LISTENER_KEY, SESSION_KEY, grant, artist, cumulative);
    }

    function _assertSettles(SessionGrant memory grant, uint256 cumulative, string memory what) internal {
        vm.assertEq(vault.settleBatch(_one(_itemOf(grant, cumulative))), 1, what);
        vm.assertEq(vault.settled(vault.grantId(grant), artist), cumulative, what);
    }

    function _assertSkippedRevoked(SessionGrant memory grant, uint256 cumulative, string memory what)
        internal
    {
        SettlementItem memory item = _itemOf(grant, cumulative);
        uint256 settledBefore = vault.settled(vault.grantId(grant), artist);
        (uint256 availableBefore,,) = vault.accountOf(listener);
        _expectSkipped(item, SkipReason.GrantRevoked);
        vm.assertEq(vault.settleBatch(_one(item)), 0, what);
        vm.assertEq(vault.settled(vault.grantId(grant), artist), settledBefore, "settled unchanged");
        (uint256 available,,) = vault.accountOf(listener);
        vm.assertEq(available, availableBefore, "listener not debited");
    }

    /*//////////////////////////////////////////////////////////////
                              REVOKE GRANT
    //////////////////////////////////////////////////////////////*/

    function test_WhenListenerRevokesGrant_VouchersSettleUntilTheDelay() external {
        SessionGrant memory grant = _grantWithNonce(1);
        bytes32 id = vault.grantId(grant);
        _assertSettles(grant, ONE_USDC, "registered before the revocation");

        vm.expectEmit(address(vault));
        emit IBeatStreamVault.GrantRevoked(listener, id, t0 + WITHDRAWAL_DELAY);
        vm.prank(listener);
        vault.revokeGrant(id);

        vm.assertEq(vault.grantRevokedAt(listener, id), t0 + WITHDRAWAL_DELAY, "grantRevokedAt");
        vm.assertFalse(vault.isRevoked(grant), "not revoked on-chain yet");
        _assertSettles(grant, 2 * ONE_USDC, "right after the revocation");
        vm.warp(t0 + WITHDRAWAL_DELAY - 1);
        _assertSettles(grant, 3 * ONE_USDC, "the last second of the delay");

        vm.warp(t0 + WITHDRAWAL_DELAY);
        vm.assertTrue(vault.isRevoked(grant), "revoked from the delay on");
        _assertSkippedRevoked(grant, 4 * ONE_USDC, "skipped from the delay on");
        vm.warp(t0 + 30 days);
        _assertSkippedRevoked(grant, 4 * ONE_USDC, "and for good");
    }

    function test_WhenUnregisteredGrantRevoked_ItsFirstVoucherIsSkippedAfterTheDelay() external {
        SessionGrant memory grant = _grantWithNonce(1);
        bytes32 id = vault.grantId(grant);
        vm.prank(listener);
        vault.revokeGrant(id);
        vm.warp(t0 + WITHDRAWAL_DELAY);
        _assertSkippedRevoked(grant, ONE_USDC, "skipped");
        vm.assertEq(vault.grantSpent(vault.grantId(grant)), 0, "never registered");
    }

    function test_WhenOneGrantRevoked_OtherGrantsOfTheListenerSettle() external {
        SessionGrant memory revoked = _grantWithNonce(1);
        SessionGrant memory other = _grantWithNonce(2);
        bytes32 id = vault.grantId(revoked);
        vm.prank(listener);
        vault.revokeGrant(id);
        vm.warp(t0 + WITHDRAWAL_DELAY);
        _assertSkippedRevoked(revoked, ONE_USDC, "revoked");
        _assertSettles(other, ONE_USDC, "another grant of the same listener");
        vm.assertFalse(vault.isRevoked(other), "other grant not revoked");
    }

    function test_WhenSomeoneElseRevokesTheGrantId_ListenerGrantUnaffected() external {
        SessionGrant memory grant = _grantWithNonce(1);
        bytes32 id = vault.grantId(grant);
        address stranger = address(0x5742);
        vm.prank(stranger);
        vault.revokeGrant(id);
        vm.assertEq(vault.grantRevokedAt(stranger, id), t0 + WITHDRAWAL_DELAY, "recorded as the stranger's");
        vm.assertEq(vault.grantRevokedAt(listener, id), 0, "not the listener's");
        vm.warp(t0 + WITHDRAWAL_DELAY);
        vm.assertFalse(vault.isRevoked(grant), "not revoked");
        _assertSettles(grant, ONE_USDC, "settles");
    }

    function test_RevertWhen_GrantAlreadyRevoked() external {
        bytes32 id = vault.grantId(_grantWithNonce(1));
        vm.prank(listener);
        vault.revokeGrant(id);
        vm.warp(t0 + 1 hours);
        // A second revocation would push the date out (or forward): refused, pending or in force.
        vm.prank(listener);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBeatStreamVault.BeatStreamVault_GrantAlreadyRevoked.selector, id, t0 + WITHDRAWAL_DELAY
            )
        );
        vault.revokeGrant(id);
        vm.warp(t0 + 2 * WITHDRAWAL_DELAY);
        vm.prank(listener);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBeatStreamVault.BeatStreamVault_GrantAlreadyRevoked.selector, id, t0 + WITHDRAWAL_DELAY
            )
        );
        vault.revokeGrant(id);
    }

    function test_WhenNothingRevoked_ViewsAreZero() external view {
        SessionGrant memory grant = _grantWithNonce(0);
        vm.assertEq(vault.grantRevokedAt(listener, vault.grantId(grant)), 0, "grantRevokedAt");
        (uint64 floor, uint64 previous, uint256 floorFrom) = vault.nonceFloorOf(listener);
        vm.assertEq(uint256(floor) + uint256(previous) + floorFrom, 0, "no floor");
        vm.assertFalse(vault.isRevoked(grant), "nonce 0 is not below a zero floor");
    }

    /*//////////////////////////////////////////////////////////////
                          REVOKE GRANTS BELOW
    //////////////////////////////////////////////////////////////*/

    function test_WhenListenerRaisesNonceFloor_GrantsBelowAreRevokedAfterTheDelay() external {
        SessionGrant memory below = _grantWithNonce(4);
        SessionGrant memory atFloor = _grantWithNonce(5);

        vm.expectEmit(address(vault));
        emit IBeatStreamVault.NonceFloorRaised(listener, 5, t0 + WITHDRAWAL_DELAY);
        vm.prank(listener);
        vault.revokeGrantsBelow(5);
        (uint64 floor, uint64 previous, uint256 floorFrom) = vault.nonceFloorOf(listener);
        vm.assertEq(uint256(floor), 5, "floor");
        vm.assertEq(uint256(previous), 0, "previous floor");
        vm.assertEq(floorFrom, t0 + WITHDRAWAL_DELAY, "floorFrom");

        vm.assertFalse(vault.isRevoked(below), "not yet");
        vm.warp(t0 + WITHDRAWAL_DELAY - 1);
        _assertSettles(below, ONE_USDC, "below the floor, before the delay");

        vm.warp(t0 + WITHDRAWAL_DELAY);
        vm.assertTrue(vault.isRevoked(below), "below the floor");
        vm.assertFalse(vault.isRevoked(atFloor), "at the floor");
        _assertSkippedRevoked(below, 2 * ONE_USDC, "below the floor, from the delay on");
        _assertSettles(atFloor, ONE_USDC, "at the floor");
    }

    function test_RevertWhen_NonceFloorNotRaised() external {
        vm.prank(listener);
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_NonceFloorNotRaised.selector, 0, 0)
        );
        vault.revokeGrantsBelow(0);

        vm.prank(listener);
        vault.revokeGrantsBelow(5);
        vm.prank(listener);
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_NonceFloorNotRaised.selector, 5, 5)
        );
        vault.revokeGrantsBelow(5);
        vm.prank(listener);
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamVault.BeatStreamVault_NonceFloorNotRaised.selector, 5, 4)
        );
        vault.revokeGrantsBelow(4);
    }

    /// @dev A raise while another is pending replaces it, and the floor in force stays the one before both until the
    /// delay after the new raise: a raise never takes effect sooner than the delay after it was asked for.
    function test_WhenFloorRaisedWhilePending_PendingRaiseIsReplaced() external {
        SessionGrant memory four = _grantWithNonce(4);
        SessionGrant memory nine = _grantWithNonce(9);
        vm.prank(listener);
        vault.revokeGrantsBelow(5);

        uint256 t1 = t0 + WITHDRAWAL_DELAY / 2;
        vm.warp(t1);
        vm.expectEmit(address(vault));
        emit IBeatStreamVault.NonceFloorRaised(listener, 10, t1 + WITHDRAWAL_DELAY);
        vm.prank(listener);
        vault.revokeGrantsBelow(10);
        (uint64 floor, uint64 previous, uint256 floorFrom) = vault.nonceFloorOf(listener);
        vm.assertEq(uint256(floor), 10, "floor");
        vm.assertEq(uint256(previous), 0, "the floor in force is still the one before the first raise");
        vm.assertEq(floorFrom, t1 + WITHDRAWAL_DELAY, "floorFrom");

        // When the first raise would have applied, the previous floor (0) is still in force.
        vm.warp(t0 + WITHDRAWAL_DELAY);
        vm.assertFalse(vault.isRevoked(four), "replaced raise never applied");
        _assertSettles(four, ONE_USDC, "nonce 4 still settles");

        vm.warp(t1 + WITHDRAWAL_DELAY);
        _assertSkippedRevoked(four, 2 * ONE_USDC, "nonce 4 below the new floor");
        _assertSkippedRevoked(nine, ONE_USDC, "nonce 9 below the new floor");
    }

    function test_WhenFloorRaisedAfterTheLastWasInForce_PreviousFloorStaysInForce() external {
        SessionGrant memory four = _grantWithNonce(4);
        SessionGrant memory seven = _grantWithNonce(7);
        vm.prank(listener);
        vault.revokeGrantsBelow(5);
        uint256 t1 = t0 + WITHDRAWAL_DELAY;
        vm.warp(t1);
        vm.prank(listener);
        vault.revokeGrantsBelow(10);
        (uint64 floor, uint64 previous, uint256 floorFrom) = vault.nonceFloorOf(listener);
        vm.assertEq(uint256(floor), 10, "floor");
        vm.assertEq(uint256(previous), 5, "the floor in force");
        vm.assertEq(floorFrom, t1 + WITHDRAWAL_DELAY, "floorFrom");

        _assertSkippedRevoked(four, ONE_USDC, "below the floor in force");
        _assertSettles(seven, ONE_USDC, "above the floor in force, below the pending one");
        vm.warp(t1 + WITHDRAWAL_DELAY);
        _assertSkippedRevoked(seven, 2 * ONE_USDC, "below the new floor once in force");
    }

    function test_WhenGrantRevokedByIdAndFloor_RevokedByWhicheverComesFirst() external {
        SessionGrant memory grant = _grantWithNonce(3);
        vm.prank(listener);
        vault.revokeGrantsBelow(4);
        vm.warp(t0 + 1 hours);
        bytes32 id = vault.grantId(grant);
        vm.prank(listener);
        vault.revokeGrant(id);
        vm.warp(t0 + WITHDRAWAL_DELAY);
        vm.assertTrue(vault.isRevoked(grant), "by the floor");
        _assertSkippedRevoked(grant, ONE_USDC, "skipped");
    }

    /// @dev The revocation read happens only for listeners who revoked something, and stays correct for the others.
    function test_WhenAnotherListenerRevoked_ThisListenerUnaffected() external {
        address other = address(0xB0B);
        vm.prank(other);
        vault.revokeGrantsBelow(type(uint64).max);
        vm.warp(t0 + WITHDRAWAL_DELAY);
        _assertSettles(_grantWithNonce(1), ONE_USDC, "a listener who never revoked");
    }
}
