// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TextRecord} from "../../src/interfaces/IBeatStreamRegistry.sol";
import {SessionGrant, SettlementItem, TipItem} from "../../src/types/DataTypes.sol";
import {Base_Test} from "../Base.t.sol";

/// @notice Split rounding over fuzzed amounts, shares, recipient counts and fees: the parts always sum exactly to what
/// was settled to the split after the fee, each part is its exact share rounded down or up, the leftover units go to
/// the largest remainders (earlier recipient first on a tie), and settlement credits exactly those parts per voucher.
contract Splits_Fuzz_Test is Base_Test {
    uint256 internal constant BPS = 10_000;
    uint256 internal constant MAX_SPEND = type(uint48).max;

    bytes32 internal node;

    function setUp() public override {
        super.setUp();
        node = _register(artist, "neon", 100, new TextRecord[](0));
    }

    /// @dev A split of `k` in [1, 20] distinct recipients with random non-zero shares summing to 10,000.
    function _randomSplit(uint256 k, uint256 seed)
        internal
        returns (address split, address[] memory recipients, uint16[] memory shares)
    {
        k = bound(k, 1, 20);
        recipients = new address[](k);
        shares = new uint16[](k);
        uint256 left = BPS - k; // each gets 1, the rest is dealt at random
        for (uint256 i; i < k; ++i) {
            recipients[i] = address(uint160(uint256(keccak256(abi.encode("recipient", seed, i)))));
            uint256 extra = i == k - 1 ? left : uint256(keccak256(abi.encode("share", seed, i))) % (left + 1);
            // Skew: often give one recipient almost everything, to reach remainders near 0 and near 10,000.
            if (seed % 3 == 0 && i != k - 1) extra = extra % 7;
            left -= extra;
            shares[i] = uint16(1 + extra);
        }
        vm.prank(artist);
        (split,) = vault.setSplit(node, 0, recipients, shares);
    }

    function _checkParts(uint256 amount, uint16[] memory shares, uint256[] memory parts) internal pure {
        uint256 sum;
        for (uint256 i; i < shares.length; ++i) {
            uint256 exactFloor = amount * shares[i] / BPS;
            vm.assertGe(parts[i], exactFloor, "part >= floor(amount * bps / 10000)");
            vm.assertLe(parts[i], exactFloor + 1, "part <= floor(amount * bps / 10000) + 1");
            sum += parts[i];
        }
        vm.assertEq(sum, amount, "parts sum exactly to the amount");
        // Largest remainder: a recipient rounded up never has a smaller remainder than one rounded down, nor an equal
        // one if it comes later.
        for (uint256 i; i < shares.length; ++i) {
            bool up = parts[i] != amount * shares[i] / BPS;
            if (!up) continue;
            uint256 ri = amount * shares[i] % BPS;
            for (uint256 j; j < shares.length; ++j) {
                if (parts[j] != amount * shares[j] / BPS) continue;
                uint256 rj = amount * shares[j] % BPS;
                vm.assertTrue(
                    ri > rj || (ri == rj && i < j), "units go to the largest remainders, earlier first"
                );
            }
        }
    }

    function testFuzz_SplitParts_SumExactlyAndRoundByLargestRemainder(uint256 amount, uint256 k, uint256 seed)
        external
    {
        amount = bound(amount, 0, MAX_SPEND);
        (address split,, uint16[] memory shares) = _randomSplit(k, seed);
        _checkParts(amount, shares, vault.splitParts(split, amount));
    }

    address internal _splitPayee;
    address[] internal _splitRecipients;
    uint16[] internal _splitShares;
    SessionGrant internal _fuzzGrant;
    uint256 internal _cumulative;

    /// @dev Several vouchers and a tip to one split under a fuzzed fee: each settlement credits each recipient exactly
    /// its part of that settlement's amount after the fee (never more than its share + 1 unit), and all credits sum
    /// to what was settled to the split minus the fees.
    function testFuzz_Settlement_CreditsEachRecipientItsPartOfEachVoucher(
        uint256 k,
        uint256 seed,
        uint16 feeBps,
        uint256[4] memory increments
    ) external {
        feeBps = uint16(bound(feeBps, 0, vault.MAX_FEE_BPS()));
        _setFee(feeBps);
        (_splitPayee, _splitRecipients, _splitShares) = _randomSplit(k, seed);
        _fund(listener, 1e12 * ONE_USDC);
        _fuzzGrant = _grant(listener, sessionKey, MAX_SPEND, 1);
        uint256 settledToSplit;
        uint256 fees;
        for (uint256 v; v < increments.length + 1; ++v) {
            bool isTip = v == increments.length;
            uint256 amount = bound(isTip ? seed : increments[v], 1, MAX_SPEND / 8);
            fees += _settleAndCheck(amount, feeBps, isTip, seed);
            settledToSplit += amount;
        }
        uint256 credited;
        for (uint256 i; i < _splitRecipients.length; ++i) {
            credited += vault.earningsOf(_splitRecipients[i]);
        }
        vm.assertEq(credited, settledToSplit - fees, "recipients credited == settled to the split - fees");
        vm.assertEq(vault.accruedFees(), fees, "fees taken once per settlement");
        vm.assertEq(vault.earningsOf(_splitPayee), 0, "the split keeps nothing");
    }

    /// @dev Settles `amount` to the split (a voucher raising the cumulative, or a tip) and checks the recipients'
    /// credits against the rounding rule; returns the fee.
    function _settleAndCheck(uint256 amount, uint256 feeBps, bool isTip, uint256 tipId)
        internal
        returns (uint256 fee)
    {
        uint256[] memory before = new uint256[](_splitRecipients.length);
        for (uint256 i; i < _splitRecipients.length; ++i) {
            before[i] = vault.earningsOf(_splitRecipients[i]);
        }
        if (isTip) {
            TipItem memory tip =
                _tip(LISTENER_KEY, SESSION_KEY, _fuzzGrant, _splitPayee, tipId, amount, "fuzz");
            (, uint256 tipsSettled) = vault.settleBatchWithTips(_noItems(), _oneTip(tip));
            vm.assertEq(tipsSettled, 1, "tip settled");
        } else {
            _cumulative += amount;
            SettlementItem memory item =
                _item(LISTENER_KEY, SESSION_KEY, _fuzzGrant, _splitPayee, _cumulative);
            vm.assertEq(vault.settleBatch(_one(item)), 1, "voucher settled");
        }
        fee = amount * feeBps / BPS;
        uint256[] memory parts = new uint256[](_splitRecipients.length);
        for (uint256 i; i < _splitRecipients.length; ++i) {
            parts[i] = vault.earningsOf(_splitRecipients[i]) - before[i];
        }
        _checkParts(amount - fee, _splitShares, parts);
    }
}
