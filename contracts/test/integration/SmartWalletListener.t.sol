// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IBeatStreamVault} from "../../src/interfaces/IBeatStreamVault.sol";
import {SessionGrant, SettlementItem, SkipReason} from "../../src/types/DataTypes.sol";
import {Base_Test} from "../Base.t.sol";
import {EchoWallet, GasBurningWallet, RevertingWallet, SmartWallet} from "../mocks/SmartWallet.sol";

/// @notice Listeners that are ERC-1271 smart wallets: their grant signature is checked by the wallet.
contract SmartWalletListener_Integration_Test is Base_Test {
    uint256 internal constant WALLET_OWNER_KEY = 0x0E0A;
    uint256 internal constant FUNDS = 50 * ONE_USDC;

    SmartWallet internal wallet;
    SessionGrant internal grant;

    function setUp() public override {
        super.setUp();
        wallet = new SmartWallet(vm.addr(WALLET_OWNER_KEY));
        grant = _grant(address(wallet), sessionKey, 1000 * ONE_USDC, 1);
        _fundFor(address(wallet), FUNDS);
        _fund(listener, FUNDS);
    }

    function _fundFor(address who, uint256 amount) internal {
        usdc.mint(address(this), amount);
        usdc.approve(address(vault), amount);
        vault.depositFor(who, amount);
    }

    function test_WhenWalletOwnerSignedGrant_Settles() external {
        bytes32 id = vault.grantId(grant);
        SettlementItem memory item = _item(WALLET_OWNER_KEY, SESSION_KEY, grant, artist, 2 * ONE_USDC);

        vm.expectEmit(address(vault));
        emit IBeatStreamVault.GrantRegistered(id, address(wallet), sessionKey, grant.cap, grant.expiresAt, 1);
        _expectSettled(grant, artist, 2 * ONE_USDC, 2 * ONE_USDC, 0);
        vm.assertEq(vault.settleBatch(_one(item)), 1, "settled");

        (uint256 available,,) = vault.accountOf(address(wallet));
        vm.assertEq(available, FUNDS - 2 * ONE_USDC, "wallet debited");
        vm.assertEq(vault.earningsOf(artist), 2 * ONE_USDC, "artist paid");

        // Registered: later vouchers need no grant signature, and the wallet is not asked again.
        SettlementItem memory next = _item(WALLET_OWNER_KEY, SESSION_KEY, grant, artist, 5 * ONE_USDC);
        next.grantSignature = "";
        vm.assertEq(vault.settleBatch(_one(next)), 1, "settled without grant signature");
        vm.assertEq(vault.settled(id, artist), 5 * ONE_USDC, "settled cumulative");
    }

    function test_WhenWalletFundsItself_Settles() external {
        SmartWallet other = new SmartWallet(vm.addr(WALLET_OWNER_KEY));
        usdc.mint(address(other), ONE_USDC);
        vm.startPrank(address(other));
        usdc.approve(address(vault), ONE_USDC);
        vault.deposit(ONE_USDC);
        vm.stopPrank();
        SessionGrant memory g = _grant(address(other), sessionKey, ONE_USDC, 1);
        vm.assertEq(
            vault.settleBatch(_one(_item(WALLET_OWNER_KEY, SESSION_KEY, g, artist, ONE_USDC))), 1, "ok"
        );
    }

    function test_WhenWalletSignatureFromWrongKey_SkipsInvalidGrantSignature() external {
        // The listener EOA's signature is valid ECDSA, but not from the wallet's owner.
        SettlementItem memory bad = _item(LISTENER_KEY, SESSION_KEY, grant, artist, ONE_USDC);
        SettlementItem memory good = _defaultItem(ONE_USDC);
        _expectSkipped(bad, SkipReason.InvalidGrantSignature);
        _expectSettled(good.grant, artist, ONE_USDC, ONE_USDC, 0);
        vm.assertEq(vault.settleBatch(_twoItems(bad, good)), 1, "only the EOA listener's item");
        (uint256 available,,) = vault.accountOf(address(wallet));
        vm.assertEq(available, FUNDS, "wallet untouched");
    }

    function test_WhenWalletSignatureIsHighSTwin_SkipsInvalidGrantSignature() external {
        SettlementItem memory bad = _item(WALLET_OWNER_KEY, SESSION_KEY, grant, artist, ONE_USDC);
        bad.grantSignature = _highS(bad.grantSignature);
        _expectSkipped(bad, SkipReason.InvalidGrantSignature);
        vm.assertEq(vault.settleBatch(_one(bad)), 0, "skipped");
    }

    function test_WhenWalletReverts_SkipsInvalidGrantSignatureAndBatchGoesOn() external {
        RevertingWallet broken = new RevertingWallet();
        _fundFor(address(broken), FUNDS);
        SessionGrant memory g = _grant(address(broken), sessionKey, 1000 * ONE_USDC, 1);
        SettlementItem memory bad = _item(WALLET_OWNER_KEY, SESSION_KEY, g, artist, ONE_USDC);
        SettlementItem memory good = _defaultItem(ONE_USDC);

        _expectSkipped(bad, SkipReason.InvalidGrantSignature);
        _expectSettled(good.grant, artist, ONE_USDC, ONE_USDC, 0);
        vm.assertEq(vault.settleBatch(_twoItems(bad, good)), 1, "good item settled");
    }

    function test_WhenWalletBurnsAllGas_SkipsInvalidGrantSignatureAndBatchGoesOn() external {
        GasBurningWallet hostile = new GasBurningWallet();
        _fundFor(address(hostile), FUNDS);
        SessionGrant memory bad = _grant(address(hostile), sessionKey, 1000 * ONE_USDC, 1);
        SettlementItem[] memory items = new SettlementItem[](3);
        items[0] = _defaultItem(ONE_USDC);
        items[1] = _item(WALLET_OWNER_KEY, SESSION_KEY, bad, artist, ONE_USDC);
        items[2] = _item(WALLET_OWNER_KEY, SESSION_KEY, grant, artist, 2 * ONE_USDC);

        vm.expectEmit(address(vault));
        emit IBeatStreamVault.SettlementSkipped(
            vault.grantId(bad), artist, ONE_USDC, SkipReason.InvalidGrantSignature
        );
        // A block's worth of gas is far more than the batch needs; the hostile wallet gets at most its cap of it.
        uint256 settledCount = vault.settleBatch{gas: 2_000_000}(items);
        vm.assertEq(settledCount, 2, "the two honest items settle around the hostile one");
        vm.assertEq(vault.settled(vault.grantId(grant), artist), 2 * ONE_USDC, "wallet item settled");
    }

    /// @dev The whole 32-byte answer must be the magic value (v2; v1 read four bytes): a contract echoing its
    /// calldata answers the selector followed by the digest's first 28 bytes, and must not pass.
    function test_WhenWalletEchoesCalldata_SkipsInvalidGrantSignature() external {
        EchoWallet echo = new EchoWallet();
        _fundFor(address(echo), FUNDS);
        SessionGrant memory g = _grant(address(echo), sessionKey, 1000 * ONE_USDC, 1);
        SettlementItem memory bad = _item(WALLET_OWNER_KEY, SESSION_KEY, g, artist, ONE_USDC);
        (bool ok, bytes memory answer) = address(echo)
            .staticcall(abi.encodeWithSelector(0x1626ba7e, vault.grantDigest(g), bad.grantSignature));
        vm.assertTrue(ok, "answers");
        vm.assertEq(bytes32(bytes4(answer)), bytes32(bytes4(0x1626ba7e)), "starts with the magic selector");
        SettlementItem memory good = _defaultItem(ONE_USDC);
        _expectSkipped(bad, SkipReason.InvalidGrantSignature);
        _expectSettled(good.grant, artist, ONE_USDC, ONE_USDC, 0);
        vm.assertEq(vault.settleBatch(_twoItems(bad, good)), 1, "only the honest item");
        (uint256 available,,) = vault.accountOf(address(echo));
        vm.assertEq(available, FUNDS, "echo wallet untouched");
    }

    function test_WhenWalletListenerUnfunded_SkipsInsufficientFunds() external {
        SmartWallet empty = new SmartWallet(vm.addr(WALLET_OWNER_KEY));
        SessionGrant memory g = _grant(address(empty), sessionKey, 1000 * ONE_USDC, 1);
        SettlementItem memory bad = _item(WALLET_OWNER_KEY, SESSION_KEY, g, artist, ONE_USDC);
        _expectSkipped(bad, SkipReason.InsufficientFunds);
        vm.assertEq(vault.settleBatch(_one(bad)), 0, "skipped");
    }

    function _twoItems(SettlementItem memory a, SettlementItem memory b)
        internal
        pure
        returns (SettlementItem[] memory items)
    {
        items = new SettlementItem[](2);
        items[0] = a;
        items[1] = b;
    }
}
