/**
 * The EIP-712 types of protocol v1 (docs/PROTOCOL.md), written once for TypeScript: `SessionGrant`, `Voucher` and
 * (contracts v3) `Tip` under the domain `BeatStream`, version `1`, the chain id and the vault address. The Rust side is
 * `primitives/src/eip712.rs`; `docs/vectors/eip712.json` (written by the Rust primitives) is checked by both.
 */
import {
  type Address,
  type Hex,
  type LocalAccount,
  type WalletClient,
  getAddress,
  hashStruct,
  hashTypedData,
  hexToBigInt,
  keccak256,
  recoverAddress,
  size,
  sliceHex,
  stringToBytes,
  toHex,
} from "viem";

/** The EIP-712 domain name of the vault. */
export const DOMAIN_NAME = "BeatStream";
/** The EIP-712 domain version of protocol v1. */
export const DOMAIN_VERSION = "1";

/** The typed-data types, exactly `SessionGrant(...)`, `Voucher(...)` and `Tip(...)` of docs/PROTOCOL.md. */
export const eip712Types = {
  SessionGrant: [
    { name: "listener", type: "address" },
    { name: "sessionKey", type: "address" },
    { name: "cap", type: "uint256" },
    { name: "expiresAt", type: "uint64" },
    { name: "nonce", type: "uint64" },
  ],
  Voucher: [
    { name: "grantId", type: "bytes32" },
    { name: "payee", type: "address" },
    { name: "cumulative", type: "uint256" },
  ],
  Tip: [
    { name: "grantId", type: "bytes32" },
    { name: "payee", type: "address" },
    { name: "tipId", type: "uint256" },
    { name: "amount", type: "uint256" },
    { name: "messageHash", type: "bytes32" },
  ],
} as const;

/** The longest tip message the vault settles and the relay takes, in bytes of UTF-8 (`MAX_TIP_MESSAGE_BYTES`). */
export const MAX_TIP_MESSAGE_BYTES = 280;

/** A listener's authorisation of a player's session key to spend up to `cap` (USDC base units) before `expiresAt`. */
export interface SessionGrant {
  /** The account that pays (EOA or ERC-1271 contract). */
  listener: Address;
  /** The player's key that signs vouchers. */
  sessionKey: Address;
  /** The most all vouchers under the grant may pay, in USDC base units. */
  cap: bigint;
  /** Unix time (seconds) after which no new voucher may be signed. */
  expiresAt: bigint;
  /** Distinguishes grants; `revokeGrantsBelow(n)` revokes every grant with a nonce below `n`. */
  nonce: bigint;
}

/** The cumulative amount owed to `payee` under the grant `grantId`. */
export interface Voucher {
  /** The grant's EIP-712 struct hash. */
  grantId: Hex;
  /** Who is paid: the artist's address record, or the payee of a split in force (the `session`'s `payee`). */
  payee: Address;
  /** Everything owed to `payee` under the grant so far, in USDC base units. */
  cumulative: bigint;
}

/** A one-off amount with a message from the listener to `payee`, signed by the session key (contracts v3). */
export interface Tip {
  /** The grant's EIP-712 struct hash. */
  grantId: Hex;
  /** Whom the tip pays: an artist's address record or the payee of a split in force (a `session`'s `payee`). */
  payee: Address;
  /** The player's choice, unique under the grant: a tip settles at most once per (grant, tipId). */
  tipId: bigint;
  /** The amount, in USDC base units (above 0). */
  amount: bigint;
  /** The message, UTF-8, at most {@link MAX_TIP_MESSAGE_BYTES} bytes; signed, stored and settled exactly as given. */
  message: string;
}

/** The signing domain of one vault on one chain. */
export interface VoucherDomain {
  name: typeof DOMAIN_NAME;
  version: typeof DOMAIN_VERSION;
  chainId: number;
  verifyingContract: Address;
}

/** The domain of `vault` on chain `chainId`. */
export function voucherDomain(chainId: number | bigint, vault: Address): VoucherDomain {
  return { name: DOMAIN_NAME, version: DOMAIN_VERSION, chainId: Number(chainId), verifyingContract: getAddress(vault) };
}

/** The grant id: its EIP-712 struct hash (what `ready.grantId` carries and `revokeGrant` takes). */
export function grantId(grant: SessionGrant): Hex {
  return hashStruct({ data: grant, primaryType: "SessionGrant", types: eip712Types });
}

/** The digest the listener signs for `grant`. */
export function grantDigest(domain: VoucherDomain, grant: SessionGrant): Hex {
  return hashTypedData({ domain, types: eip712Types, primaryType: "SessionGrant", message: grant });
}

/** The digest the session key signs for a voucher. */
export function voucherDigest(domain: VoucherDomain, voucher: Voucher): Hex {
  return hashTypedData({ domain, types: eip712Types, primaryType: "Voucher", message: voucher });
}

/** `keccak256` of the message's UTF-8 bytes: the `messageHash` a tip signs. */
export function tipMessageHash(message: string): Hex {
  return keccak256(stringToBytes(message));
}

/** The length of `message` in bytes of UTF-8 (what {@link MAX_TIP_MESSAGE_BYTES} limits). */
export function tipMessageBytes(message: string): number {
  return stringToBytes(message).length;
}

function tipStruct(tip: Tip) {
  return {
    grantId: tip.grantId,
    payee: tip.payee,
    tipId: tip.tipId,
    amount: tip.amount,
    messageHash: tipMessageHash(tip.message),
  };
}

/** The digest the session key signs for a tip (the vault's `tipDigest`). */
export function tipDigest(domain: VoucherDomain, tip: Tip): Hex {
  return hashTypedData({ domain, types: eip712Types, primaryType: "Tip", message: tipStruct(tip) });
}

/** secp256k1 group order / 2: a signature with a larger `s` is refused by the vault and the relay. */
const SECP256K1N_HALF = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;
const SECP256K1N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/**
 * The vault's 65-byte `r ‖ s ‖ v` layout with `v` 27 or 28 and low `s`: a wallet that answers `v` 0/1 or a high
 * `s` (its malleable twin, same signer) is normalised. Other lengths (a contract wallet's ERC-1271 bytes) pass as
 * they are.
 */
export function normalizeSignature(signature: Hex): Hex {
  if (size(signature) !== 65) return signature;
  const r = sliceHex(signature, 0, 32);
  let s = hexToBigInt(sliceHex(signature, 32, 64));
  let v = Number(hexToBigInt(sliceHex(signature, 64, 65)));
  if (v < 27) v += 27;
  if (s > SECP256K1N_HALF) {
    s = SECP256K1N - s;
    v = v === 27 ? 28 : 27;
  }
  return `${r}${toHex(s, { size: 32 }).slice(2)}${toHex(v, { size: 1 }).slice(2)}` as Hex;
}

/**
 * Has the listener's wallet (any EIP-1193 wallet behind a viem `WalletClient`, or a local account) sign `grant`
 * with `eth_signTypedData_v4`. Returns the signature in the vault's layout.
 */
export async function signGrant(
  wallet: WalletClient | LocalAccount,
  domain: VoucherDomain,
  grant: SessionGrant,
): Promise<Hex> {
  const typed = { domain, types: eip712Types, primaryType: "SessionGrant" as const, message: grant };
  let sig: Hex;
  if ("type" in wallet && wallet.type === "local") {
    sig = await (wallet as LocalAccount).signTypedData(typed);
  } else {
    const client = wallet as WalletClient;
    const account = client.account ?? (await client.getAddresses())[0];
    if (!account) throw new Error("the wallet has no account");
    sig = await client.signTypedData({ ...typed, account });
  }
  return normalizeSignature(sig);
}

/** Signs a voucher with the session key (a local account: the key never leaves the player). */
export async function signVoucher(sessionKey: LocalAccount, domain: VoucherDomain, voucher: Voucher): Promise<Hex> {
  const sig = await sessionKey.signTypedData({ domain, types: eip712Types, primaryType: "Voucher", message: voucher });
  return normalizeSignature(sig);
}

/** Signs a tip with the session key: `Tip(grantId, payee, tipId, amount, keccak256(message))`. */
export async function signTip(sessionKey: LocalAccount, domain: VoucherDomain, tip: Tip): Promise<Hex> {
  const sig = await sessionKey.signTypedData({ domain, types: eip712Types, primaryType: "Tip", message: tipStruct(tip) });
  return normalizeSignature(sig);
}

/** The EOA that signed `digest` under the vault's rules (65 bytes, `v` 27/28, low `s`), or `null`. */
export async function recoverSigner(digest: Hex, signature: Hex): Promise<Address | null> {
  if (size(signature) !== 65) return null;
  const v = Number(hexToBigInt(sliceHex(signature, 64, 65)));
  const s = hexToBigInt(sliceHex(signature, 32, 64));
  if ((v !== 27 && v !== 28) || s > SECP256K1N_HALF) return null;
  try {
    return await recoverAddress({ hash: digest, signature });
  } catch {
    return null;
  }
}

/** A grant as the relay's `hello` frame carries it: amounts and `uint64`s as decimal strings. */
export interface WireGrant {
  listener: Address;
  sessionKey: Address;
  cap: string;
  expiresAt: string;
  nonce: string;
}

/** The wire form of `grant`. */
export function toWireGrant(grant: SessionGrant): WireGrant {
  return {
    listener: getAddress(grant.listener),
    sessionKey: getAddress(grant.sessionKey),
    cap: grant.cap.toString(),
    expiresAt: grant.expiresAt.toString(),
    nonce: grant.nonce.toString(),
  };
}

/** The grant of a wire form (as stored by `SessionKeyStore`). */
export function fromWireGrant(wire: WireGrant): SessionGrant {
  return {
    listener: getAddress(wire.listener),
    sessionKey: getAddress(wire.sessionKey),
    cap: BigInt(wire.cap),
    expiresAt: BigInt(wire.expiresAt),
    nonce: BigInt(wire.nonce),
  };
}
