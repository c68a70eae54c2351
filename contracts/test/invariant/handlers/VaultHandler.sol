// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SessionGrant, SettlementItem} from "../../../src/types/DataTypes.sol";
import {IBeatStreamVaultFull, IMockUSDC} from "../../utils/Interfaces.sol";
import {VM, Vm} from "../../utils/Vm.sol";

/// @notice Drives the vault the way the world does: listeners deposit, thaw, cancel and withdraw; time passes; artists
/// pull earnings; anyone collects fees; keepers settle batches of vouchers, good ones mixed with stale, over-cap,
/// unfunded, expired and wrongly signed ones. Every input is bounded so that no call reverts.
/// @dev Tracks the actor sets the invariants sum over, and for each (grant, payee) the newest cumulative a session key
/// actually signed.
contract VaultHandler {
    Vm internal constant vm = VM;

    uint256 internal constant ONE_USDC = 1e6;
    uint256 internal constant LISTENERS = 3;
    uint256 internal constant PAYEES = 3;
    uint256 internal constant GRANTS = 6;
    uint256 internal constant MAX_BATCH = 6;
    uint256 internal constant MAX_SPEND = type(uint48).max;

    IBeatStreamVaultFull public immutable vault;
    IMockUSDC public immutable usdc;
    address public immutable owner;

    uint256[] internal _listenerKeys;
    address[] public listeners;
    address[] public payees;
    SessionGrant[] internal _grants;
    bytes32[] public grantIds;
    uint256[] internal _grantListenerKey;
    uint256[] internal _grantSessionKey;

    /// @notice The newest cumulative a grant's session key signed for a payee.
    mapping(bytes32 grantId => mapping(address payee => uint256)) public newestSigned;

    /// @notice How often each handler function ran, and how many items settled or were skipped.
    mapping(string name => uint256) public calls;
    uint256 public itemsSettled;
    uint256 public itemsSkipped;

    constructor(IBeatStreamVaultFull vault_, IMockUSDC usdc_, address owner_) {
        vault = vault_;
        usdc = usdc_;
        owner = owner_;
        uint256 now_ = vm.getBlockTimestamp();
        for (uint256 i; i < LISTENERS; ++i) {
            uint256 key = 0x1157E + i;
            _listenerKeys.push(key);
            listeners.push(vm.addr(key));
        }
        for (uint256 i; i < PAYEES; ++i) {
            payees.push(address(uint160(0xA27157 + i)));
        }
        // Caps from tiny to clamped, expiries from soon to far, so every skip reason comes up.
        uint256[GRANTS] memory caps =
            [5 * ONE_USDC, 50 * ONE_USDC, 500 * ONE_USDC, MAX_SPEND, type(uint256).max, 20 * ONE_USDC];
        uint256[GRANTS] memory lifetimes = [uint256(1 days), 3 days, 30 days, 365 days, 10 days, 60 days];
        for (uint256 g; g < GRANTS; ++g) {
            uint256 listenerIndex = g % LISTENERS;
            uint256 sessionKey = 0x5E5510 + g;
            SessionGrant memory grant = SessionGrant({
                listener: listeners[listenerIndex],
                sessionKey: vm.addr(sessionKey),
                cap: caps[g],
                expiresAt: uint64(now_ + lifetimes[g]),
                nonce: uint64(g)
            });
            _grants.push(grant);
            grantIds.push(vault.grantId(grant));
            _grantListenerKey.push(_listenerKeys[listenerIndex]);
            _grantSessionKey.push(sessionKey);
        }
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    function listenerCount() external view returns (uint256) {
        return listeners.length;
    }

    function payeeCount() external view returns (uint256) {
        return payees.length;
    }

    function grantCount() external view returns (uint256) {
        return _grants.length;
    }

    /// @notice The most a grant may spend: its cap, clamped to 2^48 - 1.
    function effectiveCap(uint256 g) external view returns (uint256) {
        uint256 cap = _grants[g].cap;
        return cap < MAX_SPEND ? cap : MAX_SPEND;
    }

    /*//////////////////////////////////////////////////////////////
                               LISTENERS
    //////////////////////////////////////////////////////////////*/

    function deposit(uint256 listenerSeed, uint256 amount) external {
        calls["deposit"]++;
        address who = listeners[listenerSeed % LISTENERS];
        amount = _bound(amount, 1, 200 * ONE_USDC);
        usdc.mint(who, amount);
        vm.startPrank(who);
        usdc.approve(address(vault), amount);
        vault.deposit(amount);
        vm.stopPrank();
    }

    function depositFor(uint256 listenerSeed, uint256 amount) external {
        calls["depositFor"]++;
        address who = listeners[listenerSeed % LISTENERS];
        amount = _bound(amount, 1, 200 * ONE_USDC);
        usdc.mint(address(this), amount);
        usdc.approve(address(vault), amount);
        vault.depositFor(who, amount);
    }

    function requestWithdrawal(uint256 listenerSeed, uint256 amount) external {
        address who = listeners[listenerSeed % LISTENERS];
        (uint256 available,,) = vault.accountOf(who);
        if (available == 0) return;
        calls["requestWithdrawal"]++;
        amount = _bound(amount, 1, available);
        vm.prank(who);
        vault.requestWithdrawal(amount);
    }

    function cancelWithdrawal(uint256 listenerSeed) external {
        address who = listeners[listenerSeed % LISTENERS];
        (, uint256 thawing,) = vault.accountOf(who);
        if (thawing == 0) return;
        calls["cancelWithdrawal"]++;
        vm.prank(who);
        vault.cancelWithdrawal();
    }

    /// @dev Waits out the delay first if need be, as a listener would.
    function withdraw(uint256 listenerSeed, uint256 toSeed) external {
        address who = listeners[listenerSeed % LISTENERS];
        (, uint256 thawing, uint256 thawEnd) = vault.accountOf(who);
        if (thawing == 0) return;
        calls["withdraw"]++;
        if (vm.getBlockTimestamp() < thawEnd) vm.warp(thawEnd);
        vm.prank(who);
        vault.withdraw(_sink(toSeed));
    }

    function warp(uint256 seconds_) external {
        calls["warp"]++;
        vm.warp(vm.getBlockTimestamp() + _bound(seconds_, 1, 3 days));
    }

    /*//////////////////////////////////////////////////////////////
                            PAYEES, TREASURY
    //////////////////////////////////////////////////////////////*/

    function withdrawEarnings(uint256 payeeSeed, uint256 amount, uint256 toSeed) external {
        address payee = payees[payeeSeed % PAYEES];
        uint256 earnings = vault.earningsOf(payee);
        if (earnings == 0) return;
        calls["withdrawEarnings"]++;
        amount = _bound(amount, 1, earnings);
        vm.prank(payee);
        vault.withdrawEarnings(_sink(toSeed), amount);
    }

    function collectFees() external {
        if (vault.accruedFees() == 0) return;
        calls["collectFees"]++;
        vault.collectFees();
    }

    function setFee(uint256 fee) external {
        calls["setFee"]++;
        fee = _bound(fee, 0, vault.MAX_FEE_BPS());
        vm.prank(owner);
        vault.scheduleFee(uint16(fee));
    }

    /*//////////////////////////////////////////////////////////////
                               SETTLEMENT
    //////////////////////////////////////////////////////////////*/

    /// @dev Builds up to {MAX_BATCH} items from `seed`, each a random (grant, payee) and one of: the next voucher, a
    /// stale or equal one, one past the cap, a huge one, one signed by the wrong key, one for the zero payee.
    function settleBatch(uint256 seed, uint256 count) external {
        calls["settleBatch"]++;
        count = _bound(count, 1, MAX_BATCH);
        SettlementItem[] memory items = new SettlementItem[](count);
        for (uint256 k; k < count; ++k) {
            items[k] = _randomItem(uint256(keccak256(abi.encode(seed, k))));
        }
        uint256[] memory before = new uint256[](count);
        for (uint256 k; k < count; ++k) {
            before[k] = vault.settled(vault.grantId(items[k].grant), items[k].payee);
        }

        uint256 settledCount = vault.settleBatch(items);

        itemsSettled += settledCount;
        itemsSkipped += count - settledCount;
        // Settled amounts never go down (checked here, where the old value is known).
        for (uint256 k; k < count; ++k) {
            uint256 after_ = vault.settled(vault.grantId(items[k].grant), items[k].payee);
            if (after_ < before[k]) revert("settled went down");
        }
    }

    function _randomItem(uint256 r) internal returns (SettlementItem memory item) {
        uint256 g = r % GRANTS;
        uint256 noise = r >> 24;
        item.grant = _grants[g];
        item.payee = payees[(r >> 8) % PAYEES];
        uint256 signingKey;
        (item.payee, item.cumulative, signingKey) = _pickVoucher(g, item.payee, (r >> 16) % 10, noise);

        bytes32 id = grantIds[g];
        if (
            signingKey == _grantSessionKey[g] && item.payee != address(0)
                && item.cumulative > newestSigned[id][item.payee]
        ) {
            newestSigned[id][item.payee] = item.cumulative;
        }
        // A registered grant mostly goes without its signature; some new grants get a signature by the wrong key.
        if (vault.grantSpent(id) == 0 || noise % 2 == 0) {
            uint256 grantKey = noise % 7 == 0 ? _grantSessionKey[g] : _grantListenerKey[g];
            item.grantSignature = _sign(grantKey, vault.grantDigest(item.grant));
        }
        item.voucherSignature = _sign(signingKey, vault.voucherDigest(id, item.payee, item.cumulative));
    }

    /// @dev One of: the next voucher (half the time), a stale or equal one, one past the cap, a huge one, one signed
    /// by the wrong key, one for the zero payee.
    function _pickVoucher(uint256 g, address payee_, uint256 mode, uint256 noise)
        internal
        view
        returns (address payee, uint256 cumulative, uint256 signingKey)
    {
        payee = payee_;
        signingKey = _grantSessionKey[g];
        uint256 prior = vault.settled(grantIds[g], payee);
        if (mode < 5) {
            // A few seconds to a few minutes more.
            cumulative = prior + 1 + noise % (5 * ONE_USDC);
        } else if (mode == 5) {
            cumulative = noise % (prior + 1); // stale or equal
        } else if (mode == 6) {
            uint256 cap = _grants[g].cap < MAX_SPEND ? _grants[g].cap : MAX_SPEND;
            cumulative = prior + cap + 1 + noise % 1000; // past the cap
        } else if (mode == 7) {
            cumulative = type(uint256).max - noise % 3; // huge
        } else if (mode == 8) {
            cumulative = prior + 1 + noise % ONE_USDC;
            signingKey = _grantListenerKey[g]; // the wrong key: never counts as signed
        } else {
            cumulative = prior + 1 + noise % ONE_USDC;
            payee = address(0); // malformed
        }
    }

    /*//////////////////////////////////////////////////////////////
                                HELPERS
    //////////////////////////////////////////////////////////////*/

    function _sign(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    /// @dev Where withdrawals go: never the vault itself, whose balance the invariants account for.
    function _sink(uint256 seed) internal pure returns (address) {
        return address(uint160(0x51E4 + seed % 3));
    }

    function _bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        if (x >= min && x <= max) return x;
        return min + x % (max - min + 1);
    }
}
