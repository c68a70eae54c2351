// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {TextRecord} from "../src/interfaces/IBeatStreamRegistry.sol";
import {IBeatStreamVault} from "../src/interfaces/IBeatStreamVault.sol";
import {IENS} from "../src/interfaces/IENS.sol";
import {SessionGrant, SettlementItem, SkipReason, TipItem} from "../src/types/DataTypes.sol";
import {IBeatStreamRegistryFull, IBeatStreamVaultFull, IMockUSDC} from "./utils/Interfaces.sol";
import {Test} from "./utils/Test.sol";

/// @notice Deploys the whole system as a dev chain has it and offers signing helpers.
abstract contract Base_Test is Test {
    bytes32 internal constant ETH_NODE = keccak256(abi.encodePacked(bytes32(0), keccak256("eth")));
    bytes32 internal constant ROOT_NODE = keccak256(abi.encodePacked(ETH_NODE, keccak256("beatstream")));

    uint64 internal constant WITHDRAWAL_DELAY = 1 days;
    uint64 internal constant SETTLEMENT_WINDOW = 7 days;
    uint256 internal constant LISTENER_KEY = 0xA11CE;
    uint256 internal constant SESSION_KEY = 0x5E55;
    uint256 internal constant ONE_USDC = 1e6;
    /// @dev The order of the secp256k1 group; private keys lie in [1, n - 1] and low-s signatures have s <= n / 2.
    uint256 internal constant SECP256K1_N =
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    IENS internal ens;
    IBeatStreamRegistryFull internal registry;
    IMockUSDC internal usdc;
    IBeatStreamVaultFull internal vault;

    address internal owner = address(0x0A);
    address internal treasury = address(0x7E);
    address internal artist = address(0xA27);
    /// @dev The operator's keeper: a settler from deployment, as the test contract itself is.
    address internal keeper = address(0x4EE9E2);
    address internal listener;
    address internal sessionKey;

    function setUp() public virtual {
        listener = vm.addr(LISTENER_KEY);
        sessionKey = vm.addr(SESSION_KEY);
        ens = IENS(vm.deployCode("ENSRegistry.sol:ENSRegistry"));
        ens.setSubnodeOwner(bytes32(0), keccak256("eth"), address(this));
        registry = _deployRegistry(ROOT_NODE);
        ens.setSubnodeOwner(ETH_NODE, keccak256("beatstream"), address(registry));
        usdc = IMockUSDC(vm.deployCode("MockUSDC.sol:MockUSDC"));
        vault = _deployVault(usdc, WITHDRAWAL_DELAY, SETTLEMENT_WINDOW, owner, treasury, 0);
        vm.label(address(vault), "vault");
        vm.label(listener, "listener");
        vm.label(sessionKey, "sessionKey");
    }

    /*//////////////////////////////////////////////////////////////
                                HELPERS
    //////////////////////////////////////////////////////////////*/

    /// @dev Deploys a vault from its build artifact, as a deployment would.
    function _deployVault(
        IERC20 token,
        uint64 withdrawalDelay,
        uint64 settlementWindow,
        address owner_,
        address treasury_,
        uint16 feeBps
    ) internal returns (IBeatStreamVaultFull) {
        address[] memory settlers = new address[](2);
        settlers[0] = address(this);
        settlers[1] = keeper;
        return IBeatStreamVaultFull(
            vm.deployCode(
                "BeatStreamVault.sol:BeatStreamVault",
                abi.encode(
                    token, withdrawalDelay, settlementWindow, owner_, treasury_, feeBps, settlers, registry
                )
            )
        );
    }

    /// @dev Deploys a registry for `rootNode` from its build artifact, with a one-second commitment age.
    function _deployRegistry(bytes32 rootNode) internal returns (IBeatStreamRegistryFull) {
        return IBeatStreamRegistryFull(
            vm.deployCode("BeatStreamRegistry.sol:BeatStreamRegistry", abi.encode(ens, rootNode, uint256(1)))
        );
    }

    /// @dev Registers `label` for the caller `who` the way a wallet does: commit, wait the minimum age, reveal.
    function _register(address who, string memory label, uint256 rate, TextRecord[] memory records)
        internal
        returns (bytes32 node)
    {
        bytes32 secret = keccak256(abi.encode("secret", who, label));
        vm.prank(who);
        registry.commit(registry.makeCommitment(label, who, secret));
        vm.warp(block.timestamp + registry.MIN_COMMITMENT_AGE());
        vm.prank(who);
        node = registry.registerArtist(label, rate, records, secret);
    }

    /// @dev Schedules `feeBps` as the owner and waits until it is in force.
    function _setFee(uint16 feeBps) internal {
        vm.prank(owner);
        vault.scheduleFee(feeBps);
        vm.warp(block.timestamp + vault.withdrawalDelay());
    }

    /// @dev Mints `amount` to `who` and deposits it into the vault.
    function _fund(address who, uint256 amount) internal {
        usdc.mint(who, amount);
        vm.startPrank(who);
        usdc.approve(address(vault), amount);
        vault.deposit(amount);
        vm.stopPrank();
    }

    function _grant(address listener_, address sessionKey_, uint256 cap, uint64 nonce)
        internal
        view
        returns (SessionGrant memory)
    {
        return SessionGrant({
            listener: listener_,
            sessionKey: sessionKey_,
            cap: cap,
            expiresAt: uint64(block.timestamp + 1 days),
            nonce: nonce
        });
    }

    function _defaultGrant() internal view returns (SessionGrant memory) {
        return _grant(listener, sessionKey, 1000 * ONE_USDC, 1);
    }

    function _sign(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    function _signGrant(uint256 key, SessionGrant memory grant) internal view returns (bytes memory) {
        return _sign(key, vault.grantDigest(grant));
    }

    function _signVoucher(uint256 key, SessionGrant memory grant, address payee, uint256 cumulative)
        internal
        view
        returns (bytes memory)
    {
        return _sign(key, vault.voucherDigest(vault.grantId(grant), payee, cumulative));
    }

    /// @dev A fully signed item: grant signed by `listenerKey`, voucher by `sessionKey_`.
    function _item(
        uint256 listenerKey,
        uint256 sessionKey_,
        SessionGrant memory grant,
        address payee,
        uint256 cumulative
    ) internal view returns (SettlementItem memory) {
        return SettlementItem({
            grant: grant,
            grantSignature: _signGrant(listenerKey, grant),
            payee: payee,
            cumulative: cumulative,
            voucherSignature: _signVoucher(sessionKey_, grant, payee, cumulative)
        });
    }

    function _defaultItem(uint256 cumulative) internal view returns (SettlementItem memory) {
        return _item(LISTENER_KEY, SESSION_KEY, _defaultGrant(), artist, cumulative);
    }

    function _one(SettlementItem memory item) internal pure returns (SettlementItem[] memory items) {
        items = new SettlementItem[](1);
        items[0] = item;
    }

    function _three(SettlementItem memory a, SettlementItem memory b, SettlementItem memory c)
        internal
        pure
        returns (SettlementItem[] memory items)
    {
        items = new SettlementItem[](3);
        items[0] = a;
        items[1] = b;
        items[2] = c;
    }

    /// @dev The malleable twin of a 65-byte `r ‖ s ‖ v` signature: (r, n - s, v flipped) recovers the same signer.
    function _highS(bytes memory sig) internal pure returns (bytes memory) {
        (bytes32 r, bytes32 s, uint8 v) = _split(sig);
        return abi.encodePacked(r, bytes32(SECP256K1_N - uint256(s)), v == 27 ? uint8(28) : uint8(27));
    }

    function _split(bytes memory sig) internal pure returns (bytes32 r, bytes32 s, uint8 v) {
        require(sig.length == 65, "split: not 65 bytes");
        assembly ("memory-safe") {
            r := mload(add(sig, 0x20))
            s := mload(add(sig, 0x40))
            v := byte(0, mload(add(sig, 0x60)))
        }
    }

    /// @dev A tip under `grant` signed by `sessionKey_`, with the grant signed by `listenerKey` (empty if zero).
    function _tip(
        uint256 listenerKey,
        uint256 sessionKey_,
        SessionGrant memory grant,
        address payee,
        uint256 tipId,
        uint256 amount,
        string memory message
    ) internal view returns (TipItem memory) {
        return TipItem({
            grant: grant,
            grantSignature: listenerKey == 0 ? bytes("") : _signGrant(listenerKey, grant),
            payee: payee,
            tipId: tipId,
            amount: amount,
            message: message,
            tipSignature: _sign(
                sessionKey_,
                vault.tipDigest(vault.grantId(grant), payee, tipId, amount, keccak256(bytes(message)))
            )
        });
    }

    function _oneTip(TipItem memory tip) internal pure returns (TipItem[] memory tips) {
        tips = new TipItem[](1);
        tips[0] = tip;
    }

    function _noItems() internal pure returns (SettlementItem[] memory items) {
        items = new SettlementItem[](0);
    }

    function _expectSettled(
        SessionGrant memory grant,
        address payee,
        uint256 amount,
        uint256 cumulative,
        uint256 fee
    ) internal {
        vm.expectEmit(address(vault));
        emit IBeatStreamVault.Settled(vault.grantId(grant), grant.listener, payee, amount, cumulative, fee);
    }

    function _expectSkipped(SettlementItem memory item, SkipReason reason) internal {
        vm.expectEmit(address(vault));
        emit IBeatStreamVault.SettlementSkipped(
            vault.grantId(item.grant), item.payee, item.cumulative, reason
        );
    }
}
