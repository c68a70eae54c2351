// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";

import {IBeatStreamRegistry, TextRecord} from "../../../src/interfaces/IBeatStreamRegistry.sol";
import {IENSRegistryFull} from "../../utils/IENSRegistryFull.sol";
import {IBeatStreamRegistryFull} from "../../utils/Interfaces.sol";
import {Registry_Unit_Test} from "./Registry.t.sol";

contract RegisterArtist_Unit_Test is Registry_Unit_Test {
    function _records() internal pure returns (TextRecord[] memory records) {
        records = new TextRecord[](3);
        records[0] = TextRecord({key: "avatar", value: "ipfs://avatar"});
        records[1] = TextRecord({key: "description", value: "Lo-fi beats"});
        records[2] = TextRecord({key: "genre", value: "lofi"});
    }

    function _expectInvalid(string memory label) internal {
        vm.assertFalse(registry.isValidLabel(label), "isValidLabel");
        vm.prank(artist);
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamRegistry.BeatStreamRegistry_InvalidLabel.selector, label)
        );
        registry.registerArtist(label, RATE, _noRecords(), bytes32(0));
    }

    function _expectValid(string memory label) internal {
        vm.assertTrue(registry.isValidLabel(label), "isValidLabel");
        bytes32 node = _register(artist, label);
        vm.assertEq(node, _node(label), "node");
        vm.assertEq(registry.managerOf(node), artist, "registered to the caller");
        vm.assertEq(ens.owner(node), address(registry), "the registry keeps the ENS name");
    }

    /*//////////////////////////////////////////////////////////////
                                SUCCESS
    //////////////////////////////////////////////////////////////*/

    function test_WhenLabelValid_RegistersArtist() external {
        bytes32 node = _node("alice");
        TextRecord[] memory records = _records();
        bytes32 secret = _commitAndWait(artist, "alice");

        vm.expectEmit(address(registry));
        emit IBeatStreamRegistry.ArtistRegistered(node, artist, "alice", RATE);
        vm.expectEmit(address(registry));
        emit IERC721.Transfer(address(0), artist, uint256(node));
        vm.expectEmit(address(registry));
        emit IBeatStreamRegistry.AddrChanged(node, artist);
        for (uint256 i; i < records.length; ++i) {
            vm.expectEmit(address(registry));
            emit IBeatStreamRegistry.TextChanged(node, records[i].key, records[i].key, records[i].value);
        }
        vm.expectEmit(address(ens));
        emit IENSRegistryFull.NewOwner(ROOT_NODE, keccak256("alice"), address(registry));
        vm.expectEmit(address(ens));
        emit IENSRegistryFull.NewResolver(node, address(registry));

        vm.prank(artist);
        bytes32 returned = registry.registerArtist("alice", RATE, records, secret);

        vm.assertEq(returned, node, "returns namehash(alice.beatstream.eth)");
        vm.assertEq(registry.ownerOf(uint256(node)), artist, "caller holds the name token");
        vm.assertEq(registry.managerOf(node), artist, "caller manages the artist");
        vm.assertEq(registry.balanceOf(artist), 1, "one name token");
        vm.assertEq(ens.owner(node), address(registry), "the registry keeps the name in ENS");
        vm.assertEq(ens.resolver(node), address(registry), "registry is the resolver");
        vm.assertEq(registry.addr(node), artist, "addr record is the caller");
        vm.assertEq(registry.text(node, "avatar"), "ipfs://avatar", "avatar");
        vm.assertEq(registry.text(node, "description"), "Lo-fi beats", "description");
        vm.assertEq(registry.text(node, "genre"), "lofi", "genre");
        (bool registered, uint256 rate) = registry.artist(node);
        vm.assertTrue(registered, "registered");
        vm.assertEq(rate, RATE, "rate");
        vm.assertEq(ens.owner(ROOT_NODE), address(registry), "registry keeps the root");
    }

    function test_WhenNoRecords_RegistersArtist() external {
        bytes32 node = _register(artist, "bob");
        vm.assertEq(registry.text(node, "avatar"), "", "no avatar");
        vm.assertEq(registry.addr(node), artist, "addr record");
    }

    function test_WhenLabelHasThreeChars() external {
        _expectValid("abc");
    }

    function test_WhenLabelHasSixtyThreeChars() external {
        _expectValid("abcdefghijklmnopqrstuvwxyz0123456789-abcdefghijklmnopqrstuvwxyz");
    }

    function test_WhenLabelHasDigitsAndHyphens() external {
        _expectValid("dj-2k-9");
        _expectValid("---");
        _expectValid("909");
    }

    /*//////////////////////////////////////////////////////////////
                                REVERTS
    //////////////////////////////////////////////////////////////*/

    function test_RevertWhen_LabelEmpty() external {
        _expectInvalid("");
    }

    function test_RevertWhen_LabelTooShort() external {
        _expectInvalid("ab");
    }

    function test_RevertWhen_LabelTooLong() external {
        _expectInvalid("abcdefghijklmnopqrstuvwxyz0123456789-abcdefghijklmnopqrstuvwxyz0");
    }

    function test_RevertWhen_LabelHasUppercase() external {
        _expectInvalid("Alice");
        _expectInvalid("aliCe");
    }

    function test_RevertWhen_LabelHasDot() external {
        _expectInvalid("dj.alice");
    }

    function test_RevertWhen_LabelHasSpace() external {
        _expectInvalid("dj alice");
    }

    function test_RevertWhen_LabelHasUnderscoreOrSymbol() external {
        _expectInvalid("dj_alice");
        _expectInvalid("alice!");
        _expectInvalid("al/ce");
    }

    function test_RevertWhen_LabelHasUnicodeBytes() external {
        _expectInvalid(unicode"café");
        _expectInvalid(unicode"bëat");
        _expectInvalid(unicode"🎵🎵🎵");
        // Three UTF-8 bytes that look like one character.
        _expectInvalid(unicode"€");
    }

    function test_RevertWhen_LabelHasNulByte() external {
        _expectInvalid(string(abi.encodePacked("ab", bytes1(0x00), "c")));
    }

    function test_RevertWhen_LabelTaken() external {
        _register(artist, "alice");
        bytes32 secret = _commitAndWait(stranger, "alice");
        vm.prank(stranger);
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamRegistry.BeatStreamRegistry_LabelTaken.selector, "alice")
        );
        registry.registerArtist("alice", RATE, _noRecords(), secret);
    }

    function test_RevertWhen_LabelTakenBySameCaller() external {
        _register(artist, "alice");
        bytes32 secret = _commitAndWait(artist, "alice");
        vm.prank(artist);
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamRegistry.BeatStreamRegistry_LabelTaken.selector, "alice")
        );
        registry.registerArtist("alice", RATE, _noRecords(), secret);
    }

    function test_RevertWhen_LabelOwnedInEnsOutsideTheRegistry() external {
        // The parent's owner (this test) takes the root back, creates the name directly in ENS, and returns the root.
        ens.setSubnodeOwner(ETH_NODE, keccak256("beatstream"), address(this));
        ens.setSubnodeOwner(ROOT_NODE, keccak256("squat"), stranger);
        ens.setSubnodeOwner(ETH_NODE, keccak256("beatstream"), address(registry));

        bytes32 secret = _commitAndWait(artist, "squat");
        vm.prank(artist);
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamRegistry.BeatStreamRegistry_LabelTaken.selector, "squat")
        );
        registry.registerArtist("squat", RATE, _noRecords(), secret);
    }

    /// @dev v1 tested an artist burning its own ENS name (it owned it); in v2 the registry owns the ENS name, so the
    /// one who can clear it is the parent's owner. The label stays taken: the registry remembers its artists.
    function test_RevertWhen_RegisteredNameWasClearedInEns() external {
        bytes32 node = _register(artist, "alice");
        ens.setSubnodeOwner(ETH_NODE, keccak256("beatstream"), address(this));
        ens.setSubnodeOwner(ROOT_NODE, keccak256("alice"), address(0));
        ens.setSubnodeOwner(ETH_NODE, keccak256("beatstream"), address(registry));
        vm.assertEq(ens.owner(node), address(0), "cleared in ENS");

        bytes32 secret = _commitAndWait(stranger, "alice");
        vm.prank(stranger);
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamRegistry.BeatStreamRegistry_LabelTaken.selector, "alice")
        );
        registry.registerArtist("alice", RATE, _noRecords(), secret);
        vm.assertEq(registry.managerOf(node), artist, "still the artist's");
    }

    function test_RevertWhen_RootNotOwned() external {
        ens.setSubnodeOwner(ETH_NODE, keccak256("beatstream"), address(this));
        bytes32 secret = _commitAndWait(artist, "alice");
        vm.prank(artist);
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamRegistry.BeatStreamRegistry_RootNotOwned.selector, ROOT_NODE)
        );
        registry.registerArtist("alice", RATE, _noRecords(), secret);
    }

    function test_RevertWhen_RegistryDeployedForAnotherRoot() external {
        bytes32 otherRoot = keccak256(abi.encodePacked(ETH_NODE, keccak256("other")));
        IBeatStreamRegistryFull other = _deployRegistry(otherRoot);
        vm.assertEq(other.rootNode(), otherRoot, "rootNode");
        vm.assertEq(address(other.ens()), address(ens), "ens");
        bytes32 secret = _secret(artist, "alice");
        vm.prank(artist);
        other.commit(other.makeCommitment("alice", artist, secret));
        vm.warp(block.timestamp + other.MIN_COMMITMENT_AGE());
        vm.prank(artist);
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamRegistry.BeatStreamRegistry_RootNotOwned.selector, otherRoot)
        );
        other.registerArtist("alice", RATE, _noRecords(), secret);
    }

    function test_RevertWhen_RegisterRateTooHigh() external {
        uint256 rate = uint256(type(uint248).max) + 1;
        bytes32 secret = _commitAndWait(artist, "alice");
        vm.prank(artist);
        vm.expectRevert(
            abi.encodeWithSelector(IBeatStreamRegistry.BeatStreamRegistry_RateTooHigh.selector, rate)
        );
        registry.registerArtist("alice", rate, _noRecords(), secret);
    }

    function test_WhenRateIsMaxUint248_Registers() external {
        bytes32 node = _register(artist, "alice", type(uint248).max, _noRecords());
        (, uint256 rate) = registry.artist(node);
        vm.assertEq(rate, type(uint248).max, "rate");
    }
}
