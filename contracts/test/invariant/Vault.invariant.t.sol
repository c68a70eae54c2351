// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Base_Test} from "../Base.t.sol";
import {FuzzSelector} from "../utils/Test.sol";
import {VaultHandler} from "./handlers/VaultHandler.sol";

/// @notice The vault's accounting and settlement invariants under random sequences of every listener, payee, keeper
/// and owner action.
contract Vault_Invariant_Test is Base_Test {
    VaultHandler internal handler;

    function setUp() public override {
        super.setUp();
        handler = new VaultHandler(vault, usdc, owner);
        vm.label(address(handler), "handler");

        bytes4[] memory selectors = new bytes4[](11);
        selectors[0] = VaultHandler.deposit.selector;
        selectors[1] = VaultHandler.depositFor.selector;
        selectors[2] = VaultHandler.requestWithdrawal.selector;
        selectors[3] = VaultHandler.cancelWithdrawal.selector;
        selectors[4] = VaultHandler.withdraw.selector;
        selectors[5] = VaultHandler.warp.selector;
        selectors[6] = VaultHandler.withdrawEarnings.selector;
        selectors[7] = VaultHandler.collectFees.selector;
        selectors[8] = VaultHandler.setFee.selector;
        // Settlement is the heart of it: weight it up.
        selectors[9] = VaultHandler.settleBatch.selector;
        selectors[10] = VaultHandler.settleBatch.selector;
        targetContract(address(handler));
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    /// @dev usdc.balanceOf(vault) == Σ available + Σ thawing + Σ earnings + accruedFees.
    function invariant_TokenBalanceEqualsLiabilities() external view {
        uint256 liabilities = vault.accruedFees();
        for (uint256 i; i < handler.listenerCount(); ++i) {
            (uint256 available, uint256 thawing,) = vault.accountOf(handler.listeners(i));
            liabilities += available + thawing;
        }
        for (uint256 i; i < handler.payeeCount(); ++i) {
            liabilities += vault.earningsOf(handler.payees(i));
        }
        vm.assertEq(
            usdc.balanceOf(address(vault)), liabilities, "balance == available + thawing + earnings + fees"
        );
    }

    /// @dev No (grant, payee) is settled beyond the newest voucher its session key signed.
    function invariant_SettledNeverBeyondNewestSigned() external view {
        for (uint256 g; g < handler.grantCount(); ++g) {
            bytes32 id = handler.grantIds(g);
            for (uint256 p; p < handler.payeeCount(); ++p) {
                address payee = handler.payees(p);
                vm.assertLe(
                    vault.settled(id, payee), handler.newestSigned(id, payee), "settled <= newest signed"
                );
            }
            vm.assertEq(vault.settled(id, address(0)), 0, "the zero payee never settles");
        }
    }

    /// @dev No grant spends beyond its cap (clamped to 2^48 - 1).
    function invariant_GrantSpentNeverBeyondCap() external view {
        for (uint256 g; g < handler.grantCount(); ++g) {
            vm.assertLe(vault.grantSpent(handler.grantIds(g)), handler.effectiveCap(g), "grantSpent <= cap");
        }
    }

    /// @dev A grant's spend is the sum of what its payees settled.
    function invariant_GrantSpentEqualsSumOfSettled() external view {
        for (uint256 g; g < handler.grantCount(); ++g) {
            bytes32 id = handler.grantIds(g);
            uint256 sum;
            for (uint256 p; p < handler.payeeCount(); ++p) {
                sum += vault.settled(id, handler.payees(p));
            }
            vm.assertEq(vault.grantSpent(id), sum, "grantSpent == sum of settled");
        }
    }
}
