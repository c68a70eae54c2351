// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IBeatStreamVault} from "./interfaces/IBeatStreamVault.sol";
import {SignatureParsing} from "./libraries/SignatureParsing.sol";
import {VoucherHashing} from "./libraries/VoucherHashing.sol";
import {Account, GrantState, SessionGrant, SettlementItem, SkipReason} from "./types/DataTypes.sol";

/// @title BeatStreamVault
/// @notice Listeners deposit USDC; their players sign cumulative per-second vouchers under a session grant;
/// anyone settles those vouchers in batches, paying artists' earnings, which artists pull.
/// @dev Invariant: token balance == Σ available + Σ thawing + Σ earnings + accruedFees.
contract BeatStreamVault is IBeatStreamVault, EIP712, Ownable2Step {
    using SafeERC20 for IERC20;

    /// @inheritdoc IBeatStreamVault
    uint16 public constant override MAX_FEE_BPS = 1000;

    uint256 private constant BPS = 10_000;

    /// @dev Gas given to a smart-wallet listener's `isValidSignature`. Bounded so that one hostile wallet cannot burn
    /// the gas of the whole batch (OpenZeppelin's SignatureChecker forwards all of it); ample for multisig checks.
    uint256 private constant ERC1271_GAS = 150_000;

    /// @dev The largest amount a grant can spend; larger caps are clamped to it (see {GrantState}).
    uint256 private constant MAX_GRANT_SPEND = type(uint48).max;

    /// @inheritdoc IBeatStreamVault
    IERC20 public immutable override token;

    /// @inheritdoc IBeatStreamVault
    uint64 public immutable override withdrawalDelay;

    /// @inheritdoc IBeatStreamVault
    uint64 public immutable override settlementWindow;

    /// @inheritdoc IBeatStreamVault
    address public override treasury;

    /// @inheritdoc IBeatStreamVault
    uint16 public override feeBps;

    /// @inheritdoc IBeatStreamVault
    uint256 public override accruedFees;

    /// @inheritdoc IBeatStreamVault
    mapping(address payee => uint256 amount) public override earningsOf;

    mapping(address listener => Account) private _accounts;
    mapping(bytes32 grantId => GrantState) private _grants;
    /// @dev Settled cumulative of every payee of a grant but its first, which lives in {GrantState}.
    mapping(bytes32 grantId => mapping(address payee => uint256 cumulative)) private _settled;

    /// @param token_ The token listeners deposit and artists earn (USDC).
    /// @param withdrawalDelay_ Seconds a withdrawal request thaws; the keeper's time to settle what is owed.
    /// @param settlementWindow_ Seconds after a grant expires during which its vouchers can still settle.
    /// @param owner_ May set the fee and treasury.
    /// @param treasury_ Receives protocol fees.
    /// @param feeBps_ Protocol fee in basis points, at most {MAX_FEE_BPS}.
    constructor(
        IERC20 token_,
        uint64 withdrawalDelay_,
        uint64 settlementWindow_,
        address owner_,
        address treasury_,
        uint16 feeBps_
    ) EIP712("BeatStream", "1") Ownable(owner_) {
        if (address(token_) == address(0) || treasury_ == address(0)) {
            revert BeatStreamVault_ZeroAddress();
        }
        if (feeBps_ > MAX_FEE_BPS) revert BeatStreamVault_FeeTooHigh(feeBps_, MAX_FEE_BPS);
        token = token_;
        withdrawalDelay = withdrawalDelay_;
        settlementWindow = settlementWindow_;
        treasury = treasury_;
        feeBps = feeBps_;
    }

    /*//////////////////////////////////////////////////////////////
                                LISTENERS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IBeatStreamVault
    function deposit(uint256 amount) external override {
        _deposit(msg.sender, amount);
    }

    /// @inheritdoc IBeatStreamVault
    function depositFor(address listener, uint256 amount) external override {
        if (listener == address(0)) revert BeatStreamVault_ZeroAddress();
        _deposit(listener, amount);
    }

    /// @inheritdoc IBeatStreamVault
    function depositWithPermit(uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        override
    {
        // A permit front-run by someone else has already set the allowance; the transfer below decides.
        try IERC20Permit(address(token)).permit(msg.sender, address(this), amount, deadline, v, r, s) {}
            catch {}
        _deposit(msg.sender, amount);
    }

    /// @inheritdoc IBeatStreamVault
    function requestWithdrawal(uint256 amount) external override {
        if (amount == 0) revert BeatStreamVault_ZeroAmount();
        Account memory acc = _accounts[msg.sender];
        if (amount > acc.available) revert BeatStreamVault_InsufficientAvailable(acc.available, amount);
        uint256 thawing = acc.thawing + amount;
        uint256 thawEnd = block.timestamp + withdrawalDelay;
        acc.available -= uint128(amount);
        acc.thawing = SafeCast.toUint88(thawing);
        acc.thawEnd = SafeCast.toUint40(thawEnd);
        _accounts[msg.sender] = acc;
        emit WithdrawalRequested(msg.sender, amount, thawing, thawEnd);
    }

    /// @inheritdoc IBeatStreamVault
    function cancelWithdrawal() external override {
        Account memory acc = _accounts[msg.sender];
        if (acc.thawing == 0) revert BeatStreamVault_NothingThawing();
        uint256 amount = acc.thawing;
        acc.available += uint128(amount);
        acc.thawing = 0;
        acc.thawEnd = 0;
        _accounts[msg.sender] = acc;
        emit WithdrawalCancelled(msg.sender, amount);
    }

    /// @inheritdoc IBeatStreamVault
    function withdraw(address to) external override returns (uint256 amount) {
        if (to == address(0)) revert BeatStreamVault_ZeroAddress();
        Account memory acc = _accounts[msg.sender];
        amount = acc.thawing;
        if (amount == 0) revert BeatStreamVault_NothingThawing();
        if (block.timestamp < acc.thawEnd) revert BeatStreamVault_WithdrawalNotReady(acc.thawEnd);
        acc.thawing = 0;
        acc.thawEnd = 0;
        _accounts[msg.sender] = acc;
        emit Withdrawn(msg.sender, to, amount);
        token.safeTransfer(to, amount);
    }

    /*//////////////////////////////////////////////////////////////
                               SETTLEMENT
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IBeatStreamVault
    function settleBatch(SettlementItem[] calldata items) external override returns (uint256 settledCount) {
        uint256 fee = feeBps;
        uint256 fees;
        uint256 n = items.length;
        for (uint256 i; i < n;) {
            (bool ok, uint256 itemFee) = _settle(items[i], fee);
            if (ok) {
                fees += itemFee;
                ++settledCount;
            }
            unchecked {
                ++i;
            }
        }
        if (fees != 0) accruedFees += fees;
    }

    /// @inheritdoc IBeatStreamVault
    function withdrawEarnings(address to, uint256 amount) external override {
        if (to == address(0)) revert BeatStreamVault_ZeroAddress();
        if (amount == 0) revert BeatStreamVault_ZeroAmount();
        uint256 earnings = earningsOf[msg.sender];
        if (amount > earnings) revert BeatStreamVault_InsufficientEarnings(earnings, amount);
        earningsOf[msg.sender] = earnings - amount;
        emit EarningsWithdrawn(msg.sender, to, amount);
        token.safeTransfer(to, amount);
    }

    /*//////////////////////////////////////////////////////////////
                                  ADMIN
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IBeatStreamVault
    function setFee(uint16 feeBps_) external override onlyOwner {
        if (feeBps_ > MAX_FEE_BPS) revert BeatStreamVault_FeeTooHigh(feeBps_, MAX_FEE_BPS);
        feeBps = feeBps_;
        emit FeeUpdated(feeBps_);
    }

    /// @inheritdoc IBeatStreamVault
    function setTreasury(address treasury_) external override onlyOwner {
        if (treasury_ == address(0)) revert BeatStreamVault_ZeroAddress();
        treasury = treasury_;
        emit TreasuryUpdated(treasury_);
    }

    /// @inheritdoc IBeatStreamVault
    function collectFees() external override returns (uint256 amount) {
        amount = accruedFees;
        if (amount == 0) revert BeatStreamVault_ZeroAmount();
        accruedFees = 0;
        address to = treasury;
        emit FeesCollected(to, amount);
        token.safeTransfer(to, amount);
    }

    /*//////////////////////////////////////////////////////////////
                                  VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IBeatStreamVault
    function accountOf(address listener)
        external
        view
        override
        returns (uint256 available, uint256 thawing, uint256 thawEnd)
    {
        Account memory acc = _accounts[listener];
        return (acc.available, acc.thawing, acc.thawEnd);
    }

    /// @inheritdoc IBeatStreamVault
    function settled(bytes32 grantId_, address payee) external view override returns (uint256) {
        GrantState memory grant = _grants[grantId_];
        if (payee != address(0) && payee == grant.firstPayee) return grant.firstPayeeSettled;
        return _settled[grantId_][payee];
    }

    /// @inheritdoc IBeatStreamVault
    function grantSpent(bytes32 grantId_) external view override returns (uint256) {
        return _grants[grantId_].spent;
    }

    /// @inheritdoc IBeatStreamVault
    function domainSeparator() external view override returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @inheritdoc IBeatStreamVault
    function grantId(SessionGrant calldata grant) external pure override returns (bytes32) {
        return VoucherHashing.grantId(grant);
    }

    /// @inheritdoc IBeatStreamVault
    function grantDigest(SessionGrant calldata grant) external view override returns (bytes32) {
        return _hashTypedDataV4(VoucherHashing.grantId(grant));
    }

    /// @inheritdoc IBeatStreamVault
    function voucherDigest(bytes32 grantId_, address payee, uint256 cumulative)
        external
        view
        override
        returns (bytes32)
    {
        return _hashTypedDataV4(VoucherHashing.voucherHash(grantId_, payee, cumulative));
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNAL
    //////////////////////////////////////////////////////////////*/

    function _deposit(address listener, uint256 amount) private {
        if (amount == 0) revert BeatStreamVault_ZeroAmount();
        Account storage acc = _accounts[listener];
        uint256 available = acc.available + amount;
        if (available > type(uint128).max) revert BeatStreamVault_BalanceOverflow();
        acc.available = uint128(available);
        emit Deposited(listener, msg.sender, amount);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @dev Settles one item or emits why not. Cheap checks come first; the grant signature is verified only the
    /// first time a grant settles (a registered grant's id commits to every field the signature covered).
    function _settle(SettlementItem calldata item, uint256 fee) private returns (bool, uint256) {
        SessionGrant calldata grant = item.grant;
        bytes32 id = VoucherHashing.grantId(grant);
        address payee = item.payee;
        address listener = grant.listener;
        uint256 cumulative = item.cumulative;

        if (payee == address(0) || listener == address(0)) {
            return _skip(id, payee, cumulative, SkipReason.Malformed);
        }
        if (block.timestamp > uint256(grant.expiresAt) + settlementWindow) {
            return _skip(id, payee, cumulative, SkipReason.GrantExpired);
        }
        GrantState memory state = _grants[id];
        bool isNewGrant = state.firstPayee == address(0);
        bool inGrantSlot = isNewGrant || state.firstPayee == payee;
        uint256 prior = inGrantSlot ? state.firstPayeeSettled : _settled[id][payee];
        if (cumulative <= prior) return _skip(id, payee, cumulative, SkipReason.StaleVoucher);
        uint256 amount = cumulative - prior;
        uint256 cap = grant.cap < MAX_GRANT_SPEND ? grant.cap : MAX_GRANT_SPEND;
        // spent <= cap always holds (the id commits to the cap), and this form cannot overflow on a huge cumulative.
        if (amount > cap - state.spent) return _skip(id, payee, cumulative, SkipReason.CapExceeded);

        if (isNewGrant) {
            if (!_isValidGrantSignature(listener, _hashTypedDataV4(id), item.grantSignature)) {
                return _skip(id, payee, cumulative, SkipReason.InvalidGrantSignature);
            }
        }
        bytes32 voucherDigest_ = _hashTypedDataV4(VoucherHashing.voucherHash(id, payee, cumulative));
        address signer = SignatureParsing.recoverCalldata(voucherDigest_, item.voucherSignature);
        if (signer == address(0) || signer != grant.sessionKey) {
            // A session key is an EOA: its signature is 65 bytes. Told apart only here, off the hot path.
            SkipReason reason = item.voucherSignature.length == 65
                ? SkipReason.InvalidVoucherSignature
                : SkipReason.Malformed;
            return _skip(id, payee, cumulative, reason);
        }
        if (!_debit(listener, amount)) return _skip(id, payee, cumulative, SkipReason.InsufficientFunds);

        // Both fit 48 bits: cumulative <= spent + amount <= cap <= MAX_GRANT_SPEND.
        state.spent += uint48(amount);
        if (inGrantSlot) {
            state.firstPayee = payee;
            state.firstPayeeSettled = uint48(cumulative);
        } else {
            _settled[id][payee] = cumulative;
        }
        _grants[id] = state;
        uint256 itemFee = amount * fee / BPS;
        earningsOf[payee] += amount - itemFee;

        if (isNewGrant) _emitGrantRegistered(id, grant);
        emit Settled(id, listener, payee, amount, cumulative, itemFee);
        return (true, itemFee);
    }

    /// @dev An EOA's 65-byte signature (low-s), or else an ERC-1271 wallet's approval under a gas cap, reading only
    /// the 32-byte answer so a wallet cannot make the vault copy a huge return value either.
    function _isValidGrantSignature(address listener, bytes32 digest, bytes calldata signature)
        private
        view
        returns (bool)
    {
        if (signature.length == 65 && SignatureParsing.recoverCalldata(digest, signature) == listener) {
            return true;
        }
        if (listener.code.length == 0) return false;
        bytes memory data = abi.encodeCall(IERC1271.isValidSignature, (digest, signature));
        bool success;
        bytes32 answer;
        uint256 size;
        assembly ("memory-safe") {
            success := staticcall(ERC1271_GAS, listener, add(data, 0x20), mload(data), 0x00, 0x20)
            size := returndatasize()
            answer := mload(0x00)
        }
        return success && size >= 32 && bytes4(answer) == IERC1271.isValidSignature.selector;
    }

    /// @dev Takes `amount` from the listener's available funds first, then from thawing funds; false if short.
    function _debit(address listener, uint256 amount) private returns (bool) {
        Account storage acc = _accounts[listener];
        uint256 available = acc.available;
        if (amount <= available) {
            unchecked {
                acc.available = uint128(available - amount);
            }
            return true;
        }
        uint256 thawing = acc.thawing;
        if (amount > available + thawing) return false;
        unchecked {
            acc.available = 0;
            acc.thawing = uint88(thawing - (amount - available));
        }
        return true;
    }

    function _emitGrantRegistered(bytes32 id, SessionGrant calldata grant) private {
        emit GrantRegistered(id, grant.listener, grant.sessionKey, grant.cap, grant.expiresAt, grant.nonce);
    }

    function _skip(bytes32 id, address payee, uint256 cumulative, SkipReason reason)
        private
        returns (bool, uint256)
    {
        emit SettlementSkipped(id, payee, cumulative, reason);
        return (false, 0);
    }
}
