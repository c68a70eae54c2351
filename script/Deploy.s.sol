// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {BeatStreamRegistry} from "../contracts/src/BeatStreamRegistry.sol";
import {BeatStreamVault} from "../contracts/src/BeatStreamVault.sol";
import {MockUSDC} from "../contracts/src/MockUSDC.sol";
import {IENS} from "../contracts/src/interfaces/IENS.sol";
import {Script, console} from "../contracts/test/utils/Test.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title Deploy
/// @notice Deploys BeatStream and writes the deployment file the Rust node reads.
///
/// On a dev chain (chain id 31337, or BEATSTREAM_DEV=true) it deploys the official ENS registry, gives the deployer
/// `eth` and the BeatStream registry `beatstream.eth`, and deploys MockUSDC. On any other chain it takes the ENS
/// registry and USDC from BEATSTREAM_ENS_REGISTRY and BEATSTREAM_USDC; if the deployer owns `beatstream.eth` there it
/// hands the name to the new registry, otherwise the name's owner must do so (the file says which node).
///
/// Settlers (BEATSTREAM_SETTLERS, comma-separated addresses) may call `settleBatch` from the start: the keeper's
/// accounts. On a dev chain they default to anvil's ten well-known accounts, so tests and `beatstream dev` can settle
/// from any of them; elsewhere the variable is required.
///
/// The parent name: on a public chain whoever holds the `.eth` registrar token of `beatstream.eth` can `reclaim` the
/// name in ENS, and a lapsed name can be registered by anyone. The registry's own state (who manages an artist, whom
/// plays pay) does not depend on ENS, but ENS resolution of artist names does. With BEATSTREAM_ENS_BASE_REGISTRAR
/// set, the script refuses to finish unless the token is held by the registry (send it there: the registry accepts
/// and can never move it) and expires more than a year from now, unless BEATSTREAM_ALLOW_RECLAIMABLE_ROOT=true, which
/// prints a loud warning instead. Without BEATSTREAM_ENS_BASE_REGISTRAR on a public chain it always warns.
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
        // ENS's own controller waits 60 s; a dev chain mines a block a second, so one second there.
        uint256 minCommitmentAge = vm.envOr("BEATSTREAM_MIN_COMMITMENT_AGE", dev ? uint256(1) : uint256(60));
        address[] memory settlers = dev
            ? vm.envOr("BEATSTREAM_SETTLERS", ",", _anvilAccounts())
            : vm.envAddress("BEATSTREAM_SETTLERS", ",");

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
        BeatStreamRegistry registry = new BeatStreamRegistry(ens, ROOT_NODE, minCommitmentAge);
        d.registry = address(registry);
        if (dev) {
            ens.setSubnodeOwner(ETH_NODE, keccak256("beatstream"), d.registry);
        } else if (ens.owner(ROOT_NODE) == deployer) {
            ens.setOwner(ROOT_NODE, d.registry);
        }
        d.vault = address(
            new BeatStreamVault(
                IERC20(d.usdc), withdrawalDelay, settlementWindow, owner, treasury, feeBps, settlers, registry
            )
        );
        vm.stopBroadcast();
        if (!dev) _checkRootLocked(d.registry);

        string memory path = vm.envOr(
            "BEATSTREAM_DEPLOYMENT_OUT", string.concat("deployments/", vm.toString(block.chainid), ".json")
        );
        vm.writeJson(_json(d, deploymentBlock, withdrawalDelay, settlementWindow), path);
    }

    /// @dev anvil's ten accounts of its default mnemonic ("test test ... junk").
    function _anvilAccounts() internal pure returns (address[] memory accounts) {
        accounts = new address[](10);
        accounts[0] = 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266;
        accounts[1] = 0x70997970C51812dc3A010C7d01b50e0d17dc79C8;
        accounts[2] = 0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC;
        accounts[3] = 0x90F79bf6EB2c4f870365E785982E1f101E93b906;
        accounts[4] = 0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65;
        accounts[5] = 0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc;
        accounts[6] = 0x976EA74026E726554dB657fA54763abd0C3a0aa9;
        accounts[7] = 0x14dC79964da2C08b23698B3D3cc7Ca32193d9955;
        accounts[8] = 0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f;
        accounts[9] = 0xa0Ee7A142d267C1f36714E4a8F75612F20a79720;
    }

    /// @dev Refuses (or warns) unless the `.eth` registrar token of the parent name is locked in the registry.
    function _checkRootLocked(address registry) internal view {
        bool allow = vm.envOr("BEATSTREAM_ALLOW_RECLAIMABLE_ROOT", false);
        address baseRegistrar = vm.envOr("BEATSTREAM_ENS_BASE_REGISTRAR", address(0));
        string memory problem;
        if (baseRegistrar == address(0)) {
            problem =
                "BEATSTREAM_ENS_BASE_REGISTRAR is not set, so the script cannot check who can reclaim the parent";
        } else {
            uint256 tokenId = uint256(keccak256("beatstream"));
            (bool okOwner, bytes memory owner) =
                baseRegistrar.staticcall(abi.encodeWithSignature("ownerOf(uint256)", tokenId));
            (bool okExpiry, bytes memory expiry) =
                baseRegistrar.staticcall(abi.encodeWithSignature("nameExpires(uint256)", tokenId));
            if (!okOwner || abi.decode(owner, (address)) != registry) {
                problem =
                    "the .eth registrar token of the parent is not held by the registry: its holder can reclaim it";
            } else if (!okExpiry || abi.decode(expiry, (uint256)) < block.timestamp + 365 days) {
                problem =
                    "the parent name expires within a year: renew it for many years, a lapsed name is anyone's";
            }
        }
        if (bytes(problem).length == 0) return;
        if (!allow) {
            revert(string.concat("Deploy: ", problem, " (BEATSTREAM_ALLOW_RECLAIMABLE_ROOT=true to go on)"));
        }
        console.log("WARNING: ENS parent name not locked:", problem);
        console.log(
            "WARNING:",
            "artist names still pay and are managed through the registry, but ENS may resolve them elsewhere"
        );
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
