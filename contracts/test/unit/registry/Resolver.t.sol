// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IBeatStreamRegistry} from "../../../src/interfaces/IBeatStreamRegistry.sol";
import {Registry_Unit_Test} from "./Registry.t.sol";

/// @notice The registry as ENS resolver of its subnames: addr and text records, ERC-165.
contract Resolver_Unit_Test is Registry_Unit_Test {
    bytes32 internal node;

    function setUp() public override {
        super.setUp();
        node = _register(artist, "alice");
    }

    function test_WhenOwnerSetsAddr() external {
        address wallet = address(0x3A11E7);
        vm.expectEmit(address(registry));
        emit IBeatStreamRegistry.AddrChanged(node, wallet);
        vm.prank(artist);
        registry.setAddr(node, wallet);
        vm.assertEq(registry.addr(node), wallet, "addr");
    }

    function test_WhenOperatorSetsAddr() external {
        vm.prank(artist);
        registry.setApprovalForAll(operator, true);
        vm.prank(operator);
        registry.setAddr(node, operator);
        vm.assertEq(registry.addr(node), operator, "addr");
    }

    function test_RevertWhen_StrangerSetsAddr() external {
        vm.prank(stranger);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBeatStreamRegistry.BeatStreamRegistry_Unauthorized.selector, node, stranger
            )
        );
        registry.setAddr(node, stranger);
    }

    function test_WhenOwnerSetsText() external {
        vm.expectEmit(address(registry));
        emit IBeatStreamRegistry.TextChanged(node, "genre", "genre", "jazz");
        vm.prank(artist);
        registry.setText(node, "genre", "jazz");
        vm.assertEq(registry.text(node, "genre"), "jazz", "text");

        vm.prank(artist);
        registry.setText(node, "genre", "");
        vm.assertEq(registry.text(node, "genre"), "", "cleared");
    }

    function test_RevertWhen_StrangerSetsText() external {
        vm.prank(stranger);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBeatStreamRegistry.BeatStreamRegistry_Unauthorized.selector, node, stranger
            )
        );
        registry.setText(node, "genre", "spam");
    }

    function test_WhenNodeUnknown_RecordsAreEmpty() external view {
        bytes32 unknown = _node("nobody");
        vm.assertEq(registry.addr(unknown), address(0), "addr");
        vm.assertEq(registry.text(unknown, "avatar"), "", "text");
    }

    function test_WhenQueryingSupportedInterfaces() external view {
        vm.assertTrue(registry.supportsInterface(0x01ffc9a7), "ERC-165");
        vm.assertTrue(registry.supportsInterface(0x3b3b57de), "addr(bytes32)");
        vm.assertTrue(registry.supportsInterface(0x59d1d43c), "text(bytes32,string)");
        vm.assertFalse(registry.supportsInterface(0xffffffff), "0xffffffff must be false (ERC-165)");
        vm.assertFalse(registry.supportsInterface(0xf1cb7e06), "multicoin addr(bytes32,uint256) not served");
        vm.assertEq(bytes32(bytes4(keccak256("addr(bytes32)"))), bytes32(bytes4(0x3b3b57de)), "addr selector");
        vm.assertEq(
            bytes32(bytes4(keccak256("text(bytes32,string)"))), bytes32(bytes4(0x59d1d43c)), "text selector"
        );
    }
}
