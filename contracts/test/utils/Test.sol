// SPDX-License-Identifier: MIT
pragma solidity >=0.8.0;

import {VM, Vm, console} from "./Vm.sol";

/// @notice What forge's invariant runner reads from `targetSelectors()`.
struct FuzzSelector {
    address addr;
    bytes4[] selectors;
}

/// @title Test
/// @notice A minimal test base: the cheatcodes as `vm`, `bound` for fuzz inputs, and the invariant target hooks that
/// forge's runner queries. Assertions are the cheatcode assertions (`vm.assertEq`, ...), which print both sides.
abstract contract Test {
    /// @dev Forge reads this to recognise a test contract.
    bool public IS_TEST = true;

    Vm internal constant vm = VM;

    address[] private _targetContracts;
    FuzzSelector[] private _targetSelectors;
    address[] private _targetSenders;

    /// @dev Maps `x` into [min, max] uniformly enough for fuzzing, keeping small values as they are.
    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        require(min <= max, "bound: min > max");
        if (x >= min && x <= max) return x;
        uint256 size = max - min;
        if (size == type(uint256).max) return x;
        return min + (x % (size + 1));
    }

    /// @dev Restricts the invariant runner to calling `target`.
    function targetContract(address target) internal {
        _targetContracts.push(target);
    }

    /// @dev Restricts the invariant runner to these functions of `target`.
    function targetSelector(FuzzSelector memory selector) internal {
        _targetSelectors.push(selector);
    }

    /// @dev Restricts the invariant runner to calling from `sender`.
    function targetSender(address sender) internal {
        _targetSenders.push(sender);
    }

    /// @notice Read by forge's invariant runner.
    function targetContracts() public view returns (address[] memory) {
        return _targetContracts;
    }

    /// @notice Read by forge's invariant runner.
    function targetSelectors() public view returns (FuzzSelector[] memory) {
        return _targetSelectors;
    }

    /// @notice Read by forge's invariant runner.
    function targetSenders() public view returns (address[] memory) {
        return _targetSenders;
    }
}

/// @title Script
/// @notice The base forge scripts run on.
abstract contract Script {
    /// @dev Forge reads this to recognise a script.
    bool public IS_SCRIPT = true;

    Vm internal constant vm = VM;
}
