// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {BeatStreamRegistry} from "../contracts/src/BeatStreamRegistry.sol";
import {BeatStreamVault} from "../contracts/src/BeatStreamVault.sol";
import {MockUSDC} from "../contracts/src/MockUSDC.sol";
import {IENS} from "../contracts/src/interfaces/IENS.sol";
import {Script} from "../contracts/test/utils/Test.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title Deploy
/// @notice Deploys BeatStream and writes the deployment file the Rust node reads.
///
/// On a dev chain (chain id 31337, or BEATSTREAM_DEV=true) it deploys the official ENS registry, gives the deployer
/// `eth` and the BeatStream registry `beatstream.eth`, and deploys MockUSDC. On any other chain it takes the ENS
/// registry and USDC from BEATSTREAM_ENS_REGISTRY and BEATSTREAM_USDC; if the deployer owns `beatstream.eth` there it
/// hands the name to the new registry, otherwise the name's owner must do so (the file says which node).
///
/// Usage: forge script script/Deploy.s.sol --rpc-url $RPC --private-key $KEY --broadcast
contract Deploy is Script {
    bytes32 internal constant ETH_NODE = keccak256(abi.encodePacked(bytes32(0), keccak256("eth")));
    bytes32 internal constant ROOT_NODE = keccak256(abi.encodePacked(ETH_NODE, keccak256("beatstream")));

    /// @notice The addresses a deployment produced.
    struct Deployment {
        address ensRegistry;
        address registry;
        address usdc;
        address vault;
    }

    /// @notice Deploys and writes `BEATSTREAM_DEPLOYMENT_OUT` (default `deployments/<chainId>.json`).
    function run() external returns (Deployment memory d) {
        bool dev = vm.envOr("BEATSTREAM_DEV", block.chainid == 31_337);
        uint256 deploymentBlock = block.number;

        vm.startBroadcast();
        // The broadcaster: under startBroadcast, this contract's calls are sent from it.
        address deployer = msg.sender;
        address owner = vm.envOr("BEATSTREAM_OWNER", deployer);
        address treasury = vm.envOr("BEATSTREAM_TREASURY", owner);
        uint64 withdrawalDelay = uint64(vm.envOr("BEATSTREAM_WITHDRAWAL_DELAY", uint256(1 days)));
        uint64 settlementWindow = uint64(vm.envOr("BEATSTREAM_SETTLEMENT_WINDOW", uint256(7 days)));
        uint16 feeBps = uint16(vm.envOr("BEATSTREAM_FEE_BPS", uint256(0)));

        IENS ens;
        if (dev) {
            ens = IENS(vm.deployCode("ENSRegistry.sol:ENSRegistry"));
            ens.setSubnodeOwner(bytes32(0), keccak256("eth"), deployer);
            d.usdc = address(new MockUSDC());
        } else {
            ens = IENS(vm.envAddress("BEATSTREAM_ENS_REGISTRY"));
            d.usdc = vm.envAddress("BEATSTREAM_USDC");
        }
        d.ensRegistry = address(ens);
        BeatStreamRegistry registry = new BeatStreamRegistry(ens, ROOT_NODE);
        d.registry = address(registry);
        if (dev) {
            ens.setSubnodeOwner(ETH_NODE, keccak256("beatstream"), d.registry);
        } else if (ens.owner(ROOT_NODE) == deployer) {
            ens.setOwner(ROOT_NODE, d.registry);
        }
        d.vault = address(
            new BeatStreamVault(IERC20(d.usdc), withdrawalDelay, settlementWindow, owner, treasury, feeBps)
        );
        vm.stopBroadcast();

        string memory path = vm.envOr(
            "BEATSTREAM_DEPLOYMENT_OUT", string.concat("deployments/", vm.toString(block.chainid), ".json")
        );
        vm.writeJson(_json(d, deploymentBlock, withdrawalDelay, settlementWindow), path);
    }

    function _json(
        Deployment memory d,
        uint256 deploymentBlock,
        uint64 withdrawalDelay,
        uint64 settlementWindow
    ) internal view returns (string memory) {
        return string.concat(
            "{\"chainId\":",
            vm.toString(block.chainid),
            ",\"deploymentBlock\":",
            vm.toString(deploymentBlock),
            ",\"rootNode\":\"",
            vm.toString(ROOT_NODE),
            "\",\"withdrawalDelay\":",
            vm.toString(uint256(withdrawalDelay)),
            ",\"settlementWindow\":",
            vm.toString(uint256(settlementWindow)),
            ",\"contracts\":{\"ensRegistry\":\"",
            vm.toString(d.ensRegistry),
            "\",\"registry\":\"",
            vm.toString(d.registry),
            "\",\"usdc\":\"",
            vm.toString(d.usdc),
            "\",\"vault\":\"",
            vm.toString(d.vault),
            "\"}}"
        );
    }
}
