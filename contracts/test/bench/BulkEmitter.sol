// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IBeatStreamVault} from "../../src/interfaces/IBeatStreamVault.sol";

/// @title BulkEmitter
/// @notice Benchmark helper: emits the vault's own events (same signatures, so the indexer decodes and folds them
/// exactly as the vault's) in bulk, to reach a million events on anvil in seconds. Never deployed outside benchmarks.
contract BulkEmitter {
    /// @notice Emits `n` settlements for listeners `first .. first + n - 1` (each with its own grant), each paying 1
    /// base unit more than its previous one to one of `payees` artists. A listener's first appearance also emits its
    /// deposit and grant registration, as the vault would have before its first settlement.
    function emitRound(uint256 first, uint256 n, uint256 payees, uint256 cumulative) external {
        for (uint256 i = first; i < first + n; ++i) {
            address listener = address(uint160(0x100000 + i));
            bytes32 grantId = bytes32(i + 1);
            if (cumulative == 1) {
                emit IBeatStreamVault.Deposited(listener, listener, 1e12);
                emit IBeatStreamVault.GrantRegistered(
                    grantId, listener, address(uint160(0x200000 + i)), 1e12, type(uint32).max, 0
                );
            }
            emit IBeatStreamVault.Settled(
                grantId, listener, address(uint160(0x300000 + i % payees)), 1, cumulative, 0
            );
        }
    }
}
