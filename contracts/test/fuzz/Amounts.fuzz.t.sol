// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IBeatStreamVault} from "../../src/interfaces/IBeatStreamVault.sol";
import {SessionGrant} from "../../src/types/DataTypes.sol";
import {Base_Test} from "../Base.t.sol";

/// @notice Deposits, withdrawals, settlements and earnings over fuzzed amounts.
contract Amounts_Fuzz_Test is Base_Test {
    /// @dev 281 million USDC: the most one grant can spend.
    uint256 internal constant MAX_SPEND = type(uint48).max;

    function testFuzz_Deposit(uint256 first, uint256 second) external {
        first = bound(first, 1, type(uint120).max / 2);
        second = bound(second, 1, type(uint120).max / 2);
        _fund(listener, first);
        _fund(listener, second);
        (uint256 available, uint256 thawing,) = vault.accountOf(listener);
        vm.assertEq(available, first + second, "available");
        vm.assertEq(thawing, 0, "thawing");
        vm.assertEq(usdc.balanceOf(address(vault)), first + second, "vault balance");
    }

    function testFuzz_RequestAndWithdraw(uint256 deposit, uint256 request, uint256 wait) external {
        uint256 t0 = vm.getBlockTimestamp(); // Not block.timestamp: via-IR may re-read it after a warp.
        deposit = bound(deposit, 1, 1e12 * ONE_USDC);
        request = bound(request, 1, deposit);
        wait = bound(wait, 0, 3 * WITHDRAWAL_DELAY);
        _fund(listener, deposit);

        vm.prank(listener);
        vault.requestWithdrawal(request);
        vm.warp(t0 + wait);
        vm.prank(listener);
        if (wait < WITHDRAWAL_DELAY) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IBeatStreamVault.BeatStreamVault_WithdrawalNotReady.selector, t0 + WITHDRAWAL_DELAY
                )
            );
            vault.withdraw(listener);
            (uint256 a, uint256 th,) = vault.accountOf(listener);
            vm.assertEq(a + th, deposit, "nothing moved");
        } else {
            vm.assertEq(vault.withdraw(listener), request, "withdrawn");
            vm.assertEq(usdc.balanceOf(listener), request, "listener paid");
            (uint256 a, uint256 th,) = vault.accountOf(listener);
            vm.assertEq(a, deposit - request, "available left");
            vm.assertEq(th, 0, "thawing cleared");
        }
    }

    function testFuzz_RequestThenCancel(uint256 deposit, uint256 request) external {
        deposit = bound(deposit, 1, type(uint88).max);
        request = bound(request, 1, deposit);
        _fund(listener, deposit);
        vm.startPrank(listener);
        vault.requestWithdrawal(request);
        vault.cancelWithdrawal();
        vm.stopPrank();
        (uint256 available, uint256 thawing, uint256 thawEnd) = vault.accountOf(listener);
        vm.assertEq(available, deposit, "all back");
        vm.assertEq(thawing + thawEnd, 0, "nothing thawing");
    }

    function testFuzz_Settle(uint256 funds, uint256 cumulative, uint16 fee) external {
        funds = bound(funds, 1, MAX_SPEND);
        cumulative = bound(cumulative, 1, MAX_SPEND);
        fee = uint16(bound(fee, 0, vault.MAX_FEE_BPS()));
        _setFee(fee);
        _fund(listener, funds);
        SessionGrant memory grant = _grant(listener, sessionKey, MAX_SPEND, 1);

        uint256 count = vault.settleBatch(_one(_item(LISTENER_KEY, SESSION_KEY, grant, artist, cumulative)));

        (uint256 available,,) = vault.accountOf(listener);
        if (cumulative <= funds) {
            uint256 feeAmount = cumulative * fee / 10_000;
            vm.assertEq(count, 1, "settled");
            vm.assertEq(available, funds - cumulative, "listener debited");
            vm.assertEq(vault.earningsOf(artist), cumulative - feeAmount, "earnings net of fee");
            vm.assertEq(vault.accruedFees(), feeAmount, "fee");
            vm.assertEq(vault.grantSpent(vault.grantId(grant)), cumulative, "grantSpent");
        } else {
            vm.assertEq(count, 0, "unfunded");
            vm.assertEq(available, funds, "untouched");
            vm.assertEq(vault.earningsOf(artist) + vault.accruedFees(), 0, "nothing paid");
        }
        vm.assertEq(
            usdc.balanceOf(address(vault)),
            available + vault.earningsOf(artist) + vault.accruedFees(),
            "solvent"
        );
    }

    function testFuzz_SettleDrawsAvailableThenThawing(uint256 funds, uint256 thaw, uint256 cumulative)
        external
    {
        funds = bound(funds, 1, MAX_SPEND);
        thaw = bound(thaw, 1, funds);
        cumulative = bound(cumulative, 1, funds);
        _fund(listener, funds);
        vm.prank(listener);
        vault.requestWithdrawal(thaw);

        vm.assertEq(
            vault.settleBatch(
                _one(
                    _item(
                        LISTENER_KEY,
                        SESSION_KEY,
                        _grant(listener, sessionKey, MAX_SPEND, 1),
                        artist,
                        cumulative
                    )
                )
            ),
            1,
            "settled"
        );

        (uint256 available, uint256 thawing,) = vault.accountOf(listener);
        uint256 availableBefore = funds - thaw;
        if (cumulative <= availableBefore) {
            vm.assertEq(available, availableBefore - cumulative, "from available");
            vm.assertEq(thawing, thaw, "thawing untouched");
        } else {
            vm.assertEq(available, 0, "available used up");
            vm.assertEq(thawing, thaw - (cumulative - availableBefore), "rest from thawing");
        }
    }

    function testFuzz_WithdrawEarnings(uint256 earned, uint256 amount, address to) external {
        vm.assume(to != address(0) && to != address(vault) && to != artist);
        earned = bound(earned, 1, MAX_SPEND);
        amount = bound(amount, 1, earned);
        _fund(listener, earned);
        vault.settleBatch(
            _one(_item(LISTENER_KEY, SESSION_KEY, _grant(listener, sessionKey, MAX_SPEND, 1), artist, earned))
        );

        uint256 before = usdc.balanceOf(to);
        vm.prank(artist);
        vault.withdrawEarnings(to, amount);
        vm.assertEq(usdc.balanceOf(to) - before, amount, "paid to any address");
        vm.assertEq(vault.earningsOf(artist), earned - amount, "earnings left");
    }
}
