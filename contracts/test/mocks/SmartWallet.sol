// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @notice A minimal ERC-1271 smart wallet: a signature is valid when its owner EOA signed the hash.
contract SmartWallet is IERC1271 {
    address public immutable owner;

    constructor(address owner_) {
        owner = owner_;
    }

    function isValidSignature(bytes32 hash, bytes calldata signature)
        external
        view
        override
        returns (bytes4)
    {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, signature);
        return
            err == ECDSA.RecoverError.NoError && signer == owner
                ? IERC1271.isValidSignature.selector
                : bytes4(0);
    }
}

/// @notice A broken ERC-1271 wallet whose `isValidSignature` always reverts.
contract RevertingWallet is IERC1271 {
    error RevertingWallet_NoSignatures();

    function isValidSignature(bytes32, bytes calldata) external pure override returns (bytes4) {
        revert RevertingWallet_NoSignatures();
    }
}

/// @notice A hostile ERC-1271 wallet whose `isValidSignature` burns all the gas it is given, then answers a huge
/// return value, hoping to sink the batch that checks it.
contract GasBurningWallet is IERC1271 {
    function isValidSignature(bytes32, bytes calldata) external view override returns (bytes4) {
        uint256 x;
        while (gasleft() > 1000) {
            x = uint256(keccak256(abi.encode(x)));
        }
        assembly ("memory-safe") {
            return(0, 0x100000)
        }
    }
}
