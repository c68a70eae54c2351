// SPDX-License-Identifier: MIT
pragma solidity 0.7.6;

// Compiles the official ENS registry (npm ensdomains/ens 0.6.2, Solidity ^0.7) with solc 0.7.6 so that dev-chain
// deployments and tests can deploy it from its forge artifact (`ENSRegistry.sol:ENSRegistry`).
import {ENSRegistry} from "@ensdomains/ens/contracts/ENSRegistry.sol";
