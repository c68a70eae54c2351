// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SessionGrant, SettlementItem} from "../../src/types/DataTypes.sol";
import {Base_Test} from "../Base.t.sol";

/// @notice Any valid key pair settles; anything that is not a valid signature by the right key never does, and never
/// reverts the batch.
contract Signatures_Fuzz_Test is Base_Test {
    function _boundKey(uint256 key) internal pure returns (uint256) {
        return bound(key, 1, SECP256K1_N - 1);
    }

    function testFuzz_AnyKeysSignGrantAndVoucher(uint256 listenerKey, uint256 sessionKey_, uint256 cumulative)
        external
    {
        listenerKey = _boundKey(listenerKey);
        sessionKey_ = _boundKey(sessionKey_);
        cumulative = bound(cumulative, 1, 1000 * ONE_USDC);
        address who = vm.addr(listenerKey);
        vm.assume(who.code.length == 0 && who != address(vault));
        _fund(who, cumulative);
        SessionGrant memory grant = _grant(who, vm.addr(sessionKey_), cumulative, 1);

        vm.assertEq(
            vault.settleBatch(_one(_item(listenerKey, sessionKey_, grant, artist, cumulative))), 1, "settled"
        );
        vm.assertEq(vault.settled(vault.grantId(grant), artist), cumulative, "settled cumulative");
        vm.assertEq(vault.earningsOf(artist), cumulative, "paid");
    }

    function testFuzz_WrongSessionKeyNeverSettles(uint256 wrongKey) external {
        wrongKey = _boundKey(wrongKey);
        vm.assume(wrongKey != SESSION_KEY);
        _fund(listener, ONE_USDC);
        SettlementItem memory item = _defaultItem(ONE_USDC);
        item.voucherSignature = _signVoucher(wrongKey, item.grant, artist, ONE_USDC);
        vm.assertEq(vault.settleBatch(_one(item)), 0, "not the session key");
    }

    function testFuzz_WrongListenerKeyNeverSettles(uint256 wrongKey) external {
        wrongKey = _boundKey(wrongKey);
        vm.assume(wrongKey != LISTENER_KEY);
        _fund(listener, ONE_USDC);
        SettlementItem memory item = _defaultItem(ONE_USDC);
        item.grantSignature = _signGrant(wrongKey, item.grant);
        vm.assertEq(vault.settleBatch(_one(item)), 0, "not the listener");
    }

    function testFuzz_RandomBytesNeverSettle(
        bytes memory grantSig,
        bytes memory voucherSig,
        uint256 cumulative
    ) external {
        cumulative = bound(cumulative, 1, ONE_USDC);
        _fund(listener, 2 * ONE_USDC);
        SessionGrant memory grant = _defaultGrant();

        // A new grant with random bytes as its signature.
        SettlementItem memory item = _item(LISTENER_KEY, SESSION_KEY, grant, artist, cumulative);
        item.grantSignature = grantSig;
        vm.assertEq(vault.settleBatch(_one(item)), 0, "random grant signature");

        // A registered grant with random bytes as the voucher signature.
        vault.settleBatch(_one(_item(LISTENER_KEY, SESSION_KEY, grant, artist2(), ONE_USDC)));
        item = _item(LISTENER_KEY, SESSION_KEY, grant, artist, cumulative);
        item.grantSignature = "";
        item.voucherSignature = voucherSig;
        vm.assertEq(vault.settleBatch(_one(item)), 0, "random voucher signature");

        vm.assertEq(vault.settled(vault.grantId(grant), artist), 0, "nothing settled");
        vm.assertEq(vault.earningsOf(artist), 0, "nothing paid");
    }

    function testFuzz_RandomSignatureWordsNeverSettle(bytes32 r, bytes32 s, uint8 v) external {
        _fund(listener, ONE_USDC);
        SettlementItem memory item = _defaultItem(ONE_USDC);
        item.voucherSignature = abi.encodePacked(r, s, v);
        vm.assertEq(vault.settleBatch(_one(item)), 0, "random voucher words");
        item = _defaultItem(ONE_USDC);
        item.grantSignature = abi.encodePacked(r, s, v);
        vm.assertEq(vault.settleBatch(_one(item)), 0, "random grant words");
        vm.assertEq(vault.earningsOf(artist), 0, "nothing paid");
    }

    function testFuzz_GrantIdIsEip712StructHash(SessionGrant memory grant) external view {
        bytes32 expected = keccak256(
            abi.encode(
                keccak256(
                    "SessionGrant(address listener,address sessionKey,uint256 cap,uint64 expiresAt,uint64 nonce)"
                ),
                grant.listener,
                grant.sessionKey,
                grant.cap,
                grant.expiresAt,
                grant.nonce
            )
        );
        vm.assertEq(vault.grantId(grant), expected, "grant id");
    }

    function artist2() internal pure returns (address) {
        return address(0xA28);
    }
}
