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

/// @notice A wallet that is honest while it is watched: its owner's signature is valid and cheap to check, until
/// `armed` is set (by its owner between a keeper's simulation and the block, or by a test writing the slot), when
/// `isValidSignature` burns every unit of gas it is given. Slot 0 holds `armed`.
contract TwoFacedWallet is IERC1271 {
    bool public armed;
    address public immutable owner;

    error TwoFacedWallet_NotOwner();

    constructor(address owner_) {
        owner = owner_;
    }

    /// @notice Sets whether `isValidSignature` burns its gas.
    function arm(bool on) external {
        if (msg.sender != owner) revert TwoFacedWallet_NotOwner();
        armed = on;
    }

    /// @notice Lets the owner act as the wallet (approve and deposit into the vault).
    function execute(address target, bytes calldata data) external returns (bytes memory) {
        if (msg.sender != owner) revert TwoFacedWallet_NotOwner();
        (bool ok, bytes memory ret) = target.call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 0x20), mload(ret))
            }
        }
        return ret;
    }

    function isValidSignature(bytes32 hash, bytes calldata signature)
        external
        view
        override
        returns (bytes4)
    {
        if (armed) {
            uint256 x;
            while (true) {
                x = uint256(keccak256(abi.encode(x)));
            }
        }
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, signature);
        return
            err == ECDSA.RecoverError.NoError && signer == owner
                ? IERC1271.isValidSignature.selector
                : bytes4(0);
    }
}

/// @notice A contract whose fallback answers any call with its own calldata: asked `isValidSignature(digest, sig)`,
/// it returns the selector in the first four bytes followed by the digest. v1 read only those four bytes.
contract EchoWallet {
    fallback() external {
        assembly ("memory-safe") {
            calldatacopy(0, 0, calldatasize())
            return(0, calldatasize())
        }
    }
}
