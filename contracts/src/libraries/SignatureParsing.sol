// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title SignatureParsing
/// @notice Recovers an EOA signer from a 65-byte `r ‖ s ‖ v` signature held in calldata, without copying it to memory.
library SignatureParsing {
    /// @notice The signer of `digest`, or the zero address for a malformed, high-s or otherwise invalid signature.
    function recoverCalldata(bytes32 digest, bytes calldata signature)
        internal
        pure
        returns (address signer)
    {
        if (signature.length != 65) return address(0);
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly ("memory-safe") {
            r := calldataload(signature.offset)
            s := calldataload(add(signature.offset, 0x20))
            v := byte(0, calldataload(add(signature.offset, 0x40)))
        }
        // OpenZeppelin rejects s in the upper half of the curve order, so a signature's malleable twin fails.
        (signer,,) = ECDSA.tryRecover(digest, v, r, s);
    }
}
