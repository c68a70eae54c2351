// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SessionGrant} from "../../../src/types/DataTypes.sol";
import {Base_Test} from "../../Base.t.sol";
import {IBeatStreamVaultFull} from "../../utils/Interfaces.sol";

/// @notice The vault's views, and its EIP-712 hashes checked against the protocol written out by hand.
contract Views_Unit_Test is Base_Test {
    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant GRANT_TYPEHASH = keccak256(
        "SessionGrant(address listener,address sessionKey,uint256 cap,uint64 expiresAt,uint64 nonce)"
    );
    bytes32 internal constant VOUCHER_TYPEHASH =
        keccak256("Voucher(bytes32 grantId,address payee,uint256 cumulative)");

    address internal artist2 = address(0xA28);

    function _domainByHand(address verifyingContract) internal view returns (bytes32) {
        return keccak256(
            abi.encode(
                DOMAIN_TYPEHASH, keccak256("BeatStream"), keccak256("1"), block.chainid, verifyingContract
            )
        );
    }

    function _grantIdByHand(SessionGrant memory g) internal pure returns (bytes32) {
        return keccak256(abi.encode(GRANT_TYPEHASH, g.listener, g.sessionKey, g.cap, g.expiresAt, g.nonce));
    }

    /*//////////////////////////////////////////////////////////////
                                EIP-712
    //////////////////////////////////////////////////////////////*/

    function test_WhenReadingDomainSeparator_EqualsHandComputedDomain() external view {
        vm.assertEq(vault.domainSeparator(), _domainByHand(address(vault)), "domain separator");
    }

    function test_WhenChainIdChanges_DomainSeparatorFollows() external {
        bytes32 before = vault.domainSeparator();
        vm.chainId(8453);
        bytes32 expected = keccak256(
            abi.encode(
                DOMAIN_TYPEHASH, keccak256("BeatStream"), keccak256("1"), uint256(8453), address(vault)
            )
        );
        vm.assertEq(vault.domainSeparator(), expected, "domain separator on the new chain");
        vm.assertTrue(vault.domainSeparator() != before, "differs from the old chain's");
    }

    function test_WhenReadingEip712Domain() external view {
        (
            bytes1 fields,
            string memory name,
            string memory version,
            uint256 chainId,
            address verifyingContract,
            bytes32 salt,
            uint256[] memory extensions
        ) = vault.eip712Domain();
        vm.assertEq(uint256(uint8(fields)), 0x0f, "name, version, chainId, verifyingContract");
        vm.assertEq(name, "BeatStream", "name");
        vm.assertEq(version, "1", "version");
        vm.assertEq(chainId, block.chainid, "chainId");
        vm.assertEq(verifyingContract, address(vault), "verifyingContract");
        vm.assertEq(salt, bytes32(0), "salt");
        vm.assertEq(extensions.length, 0, "extensions");
    }

    function test_WhenReadingGrantId_EqualsHandComputedStructHash() external view {
        SessionGrant memory g = _defaultGrant();
        vm.assertEq(vault.grantId(g), _grantIdByHand(g), "grant id");
    }

    function test_WhenGrantFieldsAreExtreme_GrantIdEqualsHandComputedStructHash() external view {
        SessionGrant memory g = SessionGrant({
            listener: address(type(uint160).max),
            sessionKey: address(1),
            cap: type(uint256).max,
            expiresAt: type(uint64).max,
            nonce: type(uint64).max
        });
        vm.assertEq(vault.grantId(g), _grantIdByHand(g), "grant id");
    }

    function test_WhenReadingGrantDigest() external view {
        SessionGrant memory g = _defaultGrant();
        bytes32 expected =
            keccak256(abi.encodePacked("\x19\x01", _domainByHand(address(vault)), _grantIdByHand(g)));
        vm.assertEq(vault.grantDigest(g), expected, "grant digest");
    }

    function test_WhenReadingVoucherDigest() external view {
        bytes32 id = _grantIdByHand(_defaultGrant());
        bytes32 structHash = keccak256(abi.encode(VOUCHER_TYPEHASH, id, artist, uint256(1234)));
        bytes32 expected = keccak256(abi.encodePacked("\x19\x01", _domainByHand(address(vault)), structHash));
        vm.assertEq(vault.voucherDigest(id, artist, 1234), expected, "voucher digest");
    }

    function test_WhenTwoVaults_DigestsDiffer() external {
        IBeatStreamVaultFull other =
            _deployVault(usdc, WITHDRAWAL_DELAY, SETTLEMENT_WINDOW, owner, treasury, 0);
        SessionGrant memory g = _defaultGrant();
        vm.assertEq(other.domainSeparator(), _domainByHand(address(other)), "other domain");
        vm.assertEq(other.grantId(g), vault.grantId(g), "grant id is domain-free");
        vm.assertTrue(other.grantDigest(g) != vault.grantDigest(g), "grant digests differ");
        vm.assertTrue(
            other.voucherDigest(bytes32(0), artist, 1) != vault.voucherDigest(bytes32(0), artist, 1),
            "voucher digests differ"
        );
    }

    /*//////////////////////////////////////////////////////////////
                                 STATE
    //////////////////////////////////////////////////////////////*/

    function test_WhenNothingHappened_ViewsAreZero() external view {
        (uint256 available, uint256 thawing, uint256 thawEnd) = vault.accountOf(listener);
        vm.assertEq(available + thawing + thawEnd, 0, "empty account");
        bytes32 id = vault.grantId(_defaultGrant());
        vm.assertEq(vault.settled(id, artist), 0, "settled");
        vm.assertEq(vault.settled(id, address(0)), 0, "settled for zero payee");
        vm.assertEq(vault.grantSpent(id), 0, "grantSpent");
        vm.assertEq(vault.earningsOf(artist), 0, "earnings");
    }

    function test_WhenGrantSettledForTwoPayees_ViewsReportEach() external {
        _fund(listener, 100 * ONE_USDC);
        SessionGrant memory g = _defaultGrant();
        bytes32 id = vault.grantId(g);
        vault.settleBatch(_one(_item(LISTENER_KEY, SESSION_KEY, g, artist, 3 * ONE_USDC)));
        vault.settleBatch(_one(_item(LISTENER_KEY, SESSION_KEY, g, artist2, 5 * ONE_USDC)));

        vm.assertEq(vault.settled(id, artist), 3 * ONE_USDC, "first payee (in the grant slot)");
        vm.assertEq(vault.settled(id, artist2), 5 * ONE_USDC, "second payee (own slot)");
        vm.assertEq(vault.settled(id, address(0)), 0, "zero payee");
        vm.assertEq(vault.settled(id, listener), 0, "non-payee");
        vm.assertEq(vault.grantSpent(id), 8 * ONE_USDC, "grantSpent");
        vm.assertEq(vault.earningsOf(artist), 3 * ONE_USDC, "earnings artist");
        vm.assertEq(vault.earningsOf(artist2), 5 * ONE_USDC, "earnings artist2");
        (uint256 available,,) = vault.accountOf(listener);
        vm.assertEq(available, 92 * ONE_USDC, "listener debited");
    }

    /// @dev What a relay's guard may promise: available funds only, never thawing ones (v1's guard counted both).
    function test_WhenReadingSpendable_ItIsAvailableFundsOnly() external {
        vm.assertEq(vault.spendableOf(listener), 0, "nothing deposited");
        _fund(listener, 100 * ONE_USDC);
        vm.assertEq(vault.spendableOf(listener), 100 * ONE_USDC, "deposit");
        vm.prank(listener);
        vault.requestWithdrawal(30 * ONE_USDC);
        vm.assertEq(vault.spendableOf(listener), 70 * ONE_USDC, "thawing funds are not spendable");
        vault.settleBatch(_one(_defaultItem(20 * ONE_USDC)));
        vm.assertEq(vault.spendableOf(listener), 50 * ONE_USDC, "settlement spends it");
        vault.settleBatch(_one(_defaultItem(80 * ONE_USDC)));
        (, uint256 thawing,) = vault.accountOf(listener);
        vm.assertEq(vault.spendableOf(listener), 0, "then thawing funds settle what was acked before");
        vm.assertEq(thawing, 20 * ONE_USDC, "thawing drawn on");
        vm.prank(listener);
        vault.cancelWithdrawal();
        vm.assertEq(vault.spendableOf(listener), 20 * ONE_USDC, "cancelled: spendable again");
    }
}
