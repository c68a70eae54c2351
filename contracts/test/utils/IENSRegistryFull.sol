// SPDX-License-Identifier: MIT
pragma solidity >=0.8.0;

import {IENS} from "../../src/interfaces/IENS.sol";

/// @notice The parts of the official ENS registry that tests use beyond {IENS}: its events and operator approvals.
interface IENSRegistryFull is IENS {
    event NewOwner(bytes32 indexed node, bytes32 indexed label, address owner);
    event Transfer(bytes32 indexed node, address owner);
    event NewResolver(bytes32 indexed node, address resolver);
    event ApprovalForAll(address indexed owner, address indexed operator, bool approved);

    function setApprovalForAll(address operator, bool approved) external;
}
