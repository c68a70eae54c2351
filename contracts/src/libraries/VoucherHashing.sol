// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SessionGrant} from "../types/DataTypes.sol";

/// @title VoucherHashing
/// @notice EIP-712 struct hashes of the BeatStream protocol (v1) types. The Rust side writes the same types once
/// in `primitives/src/eip712.rs`; a test on anvil checks that both agree.
library VoucherHashing {
    /// @dev keccak256("SessionGrant(address listener,address sessionKey,uint256 cap,uint64 expiresAt,uint64 nonce)")
    bytes32 internal constant SESSION_GRANT_TYPEHASH = keccak256(
        "SessionGrant(address listener,address sessionKey,uint256 cap,uint64 expiresAt,uint64 nonce)"
    );

    /// @dev keccak256("Voucher(bytes32 grantId,address payee,uint256 cumulative)")
    bytes32 internal constant VOUCHER_TYPEHASH =
        keccak256("Voucher(bytes32 grantId,address payee,uint256 cumulative)");

    /// @dev keccak256("Tip(bytes32 grantId,address payee,uint256 tipId,uint256 amount,bytes32 messageHash)")
    bytes32 internal constant TIP_TYPEHASH =
        keccak256("Tip(bytes32 grantId,address payee,uint256 tipId,uint256 amount,bytes32 messageHash)");

    /// @notice The grant's struct hash, which is also its id.
    function grantId(SessionGrant calldata grant) internal pure returns (bytes32 id) {
        // A calldata SessionGrant is five static words laid out exactly as abi.encode would write them, so the
        // struct hash is keccak(typehash ‖ those words). Solidity validates the address fields when the vault
        // reads them, so a dirty-bits grant cannot settle under a hash that differs from the signed one.
        bytes32 typehash = SESSION_GRANT_TYPEHASH;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, typehash)
            calldatacopy(add(ptr, 0x20), grant, 0xa0)
            id := keccak256(ptr, 0xc0)
        }
    }

    /// @notice The struct hash of `Voucher(grantId, payee, cumulative)`.
    function voucherHash(bytes32 grantId_, address payee, uint256 cumulative)
        internal
        pure
        returns (bytes32 h)
    {
        bytes32 typehash = VOUCHER_TYPEHASH;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, typehash)
            mstore(add(ptr, 0x20), grantId_)
            mstore(add(ptr, 0x40), and(payee, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(add(ptr, 0x60), cumulative)
            h := keccak256(ptr, 0x80)
        }
    }

    /// @notice The struct hash of `Tip(grantId, payee, tipId, amount, messageHash)`.
    function tipHash(bytes32 grantId_, address payee, uint256 tipId, uint256 amount, bytes32 messageHash)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(TIP_TYPEHASH, grantId_, payee, tipId, amount, messageHash));
    }
}
