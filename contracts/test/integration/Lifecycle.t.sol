// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TextRecord, TrackInput} from "../../src/interfaces/IBeatStreamRegistry.sol";
import {SessionGrant, SettlementItem} from "../../src/types/DataTypes.sol";
import {Base_Test} from "../Base.t.sol";

/// @notice One listener's whole story against the deployed system: two artists register and publish, the listener
/// deposits with a permit, streams a track of each second by second, asks to withdraw mid-stream, the keeper settles
/// batches (also from thawing funds), and everyone takes their money out.
contract Lifecycle_Integration_Test is Base_Test {
    uint256 internal constant DEPOSIT = 10 * ONE_USDC;
    uint256 internal constant FEE_BPS = 500;

    address internal artist2 = address(0xA28);
    uint256 internal t0;
    uint256 internal aliceTrack;
    uint256 internal bobTrack;

    function setUp() public override {
        super.setUp();
        _setFee(uint16(FEE_BPS));

        // Alice prices by her artist rate, Bob by his track's rate.
        TrackInput memory input = TrackInput({
            title: "Song",
            duration: 120,
            ratePerSecond: 0,
            contentHash: keccak256("audio"),
            metadataURI: "ipfs://m"
        });
        bytes32 alice = _register(artist, "alice", 200, new TextRecord[](0));
        vm.prank(artist);
        aliceTrack = registry.publishTrack(alice, input);
        input.ratePerSecond = 1000;
        bytes32 bob = _register(artist2, "bob", 300, new TextRecord[](0));
        vm.prank(artist2);
        bobTrack = registry.publishTrack(bob, input);
        t0 = block.timestamp;
    }

    function _depositWithPermit(uint256 amount, uint256 deadline) internal {
        usdc.mint(listener, amount);
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256(
                    "Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"
                ),
                listener,
                address(vault),
                amount,
                usdc.nonces(listener),
                deadline
            )
        );
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(
            LISTENER_KEY, keccak256(abi.encodePacked("\x19\x01", usdc.DOMAIN_SEPARATOR(), structHash))
        );
        vm.prank(listener);
        vault.depositWithPermit(amount, deadline, v, r, s);
    }

    function _fee(uint256 amount) internal pure returns (uint256) {
        return amount * FEE_BPS / 10_000;
    }

    function test_WhenListenerStreamsTwoArtists_EveryoneIsPaidExactly() external {
        _depositWithPermit(DEPOSIT, t0 + 1 hours);

        // One grant for the session; the player plays alice's track for 90 s, then bob's for 60 s.
        SessionGrant memory grant = _grant(listener, sessionKey, 5 * ONE_USDC, 1);
        (uint256 aliceRate, address alicePayee) = registry.playTerms(aliceTrack);
        (uint256 bobRate, address bobPayee) = registry.playTerms(bobTrack);
        vm.assertEq(aliceRate, 200, "alice's default rate");
        vm.assertEq(bobRate, 1000, "bob's track rate");
        vm.assertEq(alicePayee, artist, "alice's addr record");
        vm.assertEq(bobPayee, artist2, "bob's addr record");

        // Keeper settles alice at 30 s (with grant signature) and 90 s (without).
        // Items are built before the prank: building one calls the vault, which would use the prank up.
        SettlementItem[] memory first = _one(_item(LISTENER_KEY, SESSION_KEY, grant, artist, 30 * 200));
        vm.prank(keeper);
        vault.settleBatch(first);
        SettlementItem memory item = _item(LISTENER_KEY, SESSION_KEY, grant, artist, 90 * 200);
        item.grantSignature = "";
        vm.prank(keeper);
        vault.settleBatch(_one(item));

        // Mid-stream the listener asks to withdraw everything still available.
        (uint256 available,,) = vault.accountOf(listener);
        vm.prank(listener);
        vault.requestWithdrawal(available);

        // Bob's 60 s settle from thawing funds; a stale replay of alice's 30 s voucher changes nothing.
        SettlementItem[] memory batch = new SettlementItem[](2);
        batch[0] = _item(LISTENER_KEY, SESSION_KEY, grant, artist2, 60 * 1000);
        batch[1] = _item(LISTENER_KEY, SESSION_KEY, grant, artist, 30 * 200);
        vm.prank(keeper);
        vm.assertEq(vault.settleBatch(batch), 1, "bob settled, replay skipped");
        vm.assertEq(vault.grantSpent(vault.grantId(grant)), 90 * 200 + 60 * 1000, "grantSpent");

        _everyoneWithdraws(90 * 200 + 60 * 1000);
    }

    function _everyoneWithdraws(uint256 spent) internal {
        vm.warp(t0 + WITHDRAWAL_DELAY);
        vm.prank(listener);
        vm.assertEq(vault.withdraw(listener), DEPOSIT - spent, "listener gets the unspent rest");

        // Fees are per settled increment: alice settled 30 s then 60 s more, bob 60 s at once.
        uint256 aliceNet = 90 * 200 - _fee(30 * 200) - _fee(60 * 200);
        uint256 bobNet = 60 * 1000 - _fee(60 * 1000);
        vm.assertEq(vault.earningsOf(artist), aliceNet, "alice");
        vm.assertEq(vault.earningsOf(artist2), bobNet, "bob");
        vm.prank(artist);
        vault.withdrawEarnings(artist, aliceNet);
        vm.prank(artist2);
        vault.withdrawEarnings(artist2, bobNet);
        vault.collectFees();

        vm.assertEq(usdc.balanceOf(address(vault)), 0, "vault emptied exactly");
        vm.assertEq(
            usdc.balanceOf(listener) + usdc.balanceOf(artist) + usdc.balanceOf(artist2)
                + usdc.balanceOf(treasury),
            DEPOSIT,
            "no token created or lost"
        );
    }
}
