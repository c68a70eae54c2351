// SPDX-License-Identifier: MIT
pragma solidity >=0.8.0;

import {IERC5267} from "@openzeppelin/contracts/interfaces/IERC5267.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {IERC721Receiver} from "@openzeppelin/contracts/token/ERC721/IERC721Receiver.sol";
import {IERC721Metadata} from "@openzeppelin/contracts/token/ERC721/extensions/IERC721Metadata.sol";

import {IBeatStreamRegistry} from "../../src/interfaces/IBeatStreamRegistry.sol";
import {IBeatStreamVault} from "../../src/interfaces/IBeatStreamVault.sol";

// Tests reach the deployed contracts through these interfaces and deploy them from their compiled artifacts
// (`vm.deployCode`), never with `new`: a test then runs the very bytecode `forge build` produced for deployment, and
// changing a contract does not recompile every test that uses it.

/// @notice What Ownable2Step adds to the vault.
interface IOwnable2Step {
    function owner() external view returns (address);
    function pendingOwner() external view returns (address);
    function transferOwnership(address newOwner) external;
    function acceptOwnership() external;
    function renounceOwnership() external;
}

/// @notice The vault's whole external surface: its own interface, EIP-5267 and two-step ownership.
interface IBeatStreamVaultFull is IBeatStreamVault, IERC5267, IOwnable2Step {}

/// @notice The registry's whole external surface: its own interface, the ERC-721 name tokens and the receiver hook.
interface IBeatStreamRegistryFull is IBeatStreamRegistry, IERC721Metadata, IERC721Receiver {}

/// @notice MockUSDC: an ERC-20 with EIP-2612 permit and an open mint.
interface IMockUSDC is IERC20Metadata, IERC20Permit {
    function mint(address to, uint256 amount) external;
}
