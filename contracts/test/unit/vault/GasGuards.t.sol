// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IBeatStreamVault} from "../../../src/interfaces/IBeatStreamVault.sol";
import {SessionGrant, SettlementItem, SkipReason} from "../../../src/types/DataTypes.sol";
import {Base_Test} from "../../Base.t.sol";
import {SmartWallet} from "../../mocks/SmartWallet.sol";
import {Vm} from "../../utils/Vm.sol";

/// @notice The vault's gas guards: a wallet check runs only with its whole allowance left (else InsufficientGas), and
/// a batch stops before an item it may not have the gas for (BatchCutShort), keeping what it settled.
contract GasGuards_Unit_Test is Base_Test {
    uint256 internal constant WALLET_OWNER_KEY = 0x0E0A;
    uint256 internal constant FUNDS = 100 * ONE_USDC;
    /// @dev The vault's ERC1271_GAS + ERC1271_GAS / 63 + ITEM_GAS (150,000 + 2,380 + 80,000).
    uint256 internal constant WALLET_CHECK_GAS = 232_380;

    SmartWallet internal wallet;

    function setUp() public override {
        super.setUp();
        wallet = new SmartWallet(vm.addr(WALLET_OWNER_KEY));
        usdc.mint(address(this), FUNDS);
        usdc.approve(address(vault), FUNDS);
        vault.depositFor(address(wallet), FUNDS);
    }

    function _walletItem(uint256 cumulative) internal view returns (SettlementItem memory) {
        SessionGrant memory grant = _grant(address(wallet), sessionKey, 1000 * ONE_USDC, 1);
        return _item(WALLET_OWNER_KEY, SESSION_KEY, grant, artist, cumulative);
    }

    /// @dev `n` items of `n` funded EOA listeners, each a first settlement.
    function _eoaItems(uint256 n) internal returns (SettlementItem[] memory items) {
        items = new SettlementItem[](n);
        for (uint256 i; i < n; ++i) {
            uint256 key = 0x1000 + i;
            SessionGrant memory grant = _grant(vm.addr(key), sessionKey, 1000 * ONE_USDC, 1);
            _fund(grant.listener, FUNDS);
            items[i] = _item(key, SESSION_KEY, grant, artist, ONE_USDC);
        }
    }

    function _countEvents(Vm.Log[] memory logs, bytes32 topic) internal pure returns (uint256 count) {
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] == topic) ++count;
        }
    }

    function test_WhenTooLittleGasForAWalletCheck_SkipsInsufficientGas() external {
        SettlementItem memory item = _walletItem(ONE_USDC);
        // Enough for any item without a wallet check, not for the wallet's whole allowance.
        _expectSkipped(item, SkipReason.InsufficientGas);
        uint256 count = vault.settleBatch{gas: WALLET_CHECK_GAS - 20_000}(_one(item));
        vm.assertEq(count, 0, "skipped");
        vm.assertEq(vault.grantSpent(vault.grantId(item.grant)), 0, "not registered");
        (uint256 available,,) = vault.accountOf(address(wallet));
        vm.assertEq(available, FUNDS, "wallet not debited");

        // The same item with the allowance available settles: the skip was for gas, not the signature.
        _expectSettled(item.grant, artist, ONE_USDC, ONE_USDC, 0);
        vm.assertEq(vault.settleBatch{gas: WALLET_CHECK_GAS + 50_000}(_one(item)), 1, "settles with gas");
    }

    /// @dev A registered wallet grant is not checked again, so it needs no wallet allowance.
    function test_WhenWalletGrantRegistered_NeedsNoWalletAllowance() external {
        vault.settleBatch(_one(_walletItem(ONE_USDC)));
        SettlementItem memory next = _walletItem(2 * ONE_USDC);
        next.grantSignature = "";
        vm.assertEq(vault.settleBatch{gas: 120_000}(_one(next)), 1, "settles with little gas");
    }

    function test_WhenGasRunsLow_BatchIsCutShortAndKeepsWhatSettled() external {
        SettlementItem[] memory items = _eoaItems(6);
        vm.recordLogs();
        uint256 count = vault.settleBatch{gas: 250_000}(items);
        Vm.Log[] memory logs = vm.getRecordedLogs();

        vm.assertEq(_countEvents(logs, IBeatStreamVault.BatchCutShort.selector), 1, "cut short once");
        uint256 processed;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] == IBeatStreamVault.BatchCutShort.selector) {
                uint256 total;
                (processed, total) = abi.decode(logs[i].data, (uint256, uint256));
                vm.assertEq(total, 6, "total");
            }
        }
        vm.assertGt(processed, 0, "some items processed");
        vm.assertLt(processed, 6, "not all");
        vm.assertEq(count, processed, "every processed item settled");
        vm.assertEq(_countEvents(logs, IBeatStreamVault.SettlementSkipped.selector), 0, "nothing skipped");
        for (uint256 i; i < 6; ++i) {
            uint256 settled = vault.settled(vault.grantId(items[i].grant), artist);
            vm.assertEq(settled, i < processed ? ONE_USDC : 0, "settled exactly the processed items");
        }

        // The rest can be sent again.
        vm.assertEq(vault.settleBatch(items), 6 - processed, "the rest settles");
        vm.assertEq(vault.earningsOf(artist), 6 * ONE_USDC, "each paid once");
    }

    function test_WhenGasAmple_NoBatchCutShort() external {
        SettlementItem[] memory items = _eoaItems(3);
        vm.recordLogs();
        vm.assertEq(vault.settleBatch(items), 3, "all settle");
        vm.assertEq(
            _countEvents(vm.getRecordedLogs(), IBeatStreamVault.BatchCutShort.selector), 0, "no BatchCutShort"
        );
    }
}
