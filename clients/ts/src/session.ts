/**
 * The player's session key and the grant that authorises it, kept in the browser's `localStorage` (or any storage
 * with the same three methods; Node uses {@link MemoryStorage}). One key per (chain, vault, listener): a reload
 * reuses the key and its signed grant, so the wallet is asked to sign only when there is no live grant.
 */
import { type Address, type Hex, type LocalAccount, type WalletClient, getAddress } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import {
  type SessionGrant,
  type VoucherDomain,
  type WireGrant,
  fromWireGrant,
  grantId,
  signGrant,
  toWireGrant,
} from "./eip712.js";

/** The part of the Web Storage API the store uses (`window.localStorage` fits). */
export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** Storage in memory, for Node and tests. */
export class MemoryStorage implements KeyValueStorage {
  private readonly map = new Map<string, string>();
  getItem(key: string): string | null {
    return this.map.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.map.set(key, value);
  }
  removeItem(key: string): void {
    this.map.delete(key);
  }
}

/** A session key with the grant the listener signed for it. */
export interface SignedGrant {
  grant: SessionGrant;
  /** The listener's signature of the grant (65 bytes for an EOA). */
  grantSig: Hex;
  /** The grant's id (EIP-712 struct hash). */
  grantId: Hex;
  /** The session key, a local account whose private key stays in the storage. */
  sessionKey: LocalAccount;
}

interface Stored {
  privateKey: Hex;
  grant?: WireGrant;
  grantSig?: Hex;
}

/** Options of {@link SessionKeyStore.ensureGrant}. */
export interface GrantOptions {
  /** The grant's cap in USDC base units (default 10 USDC). */
  cap?: bigint;
  /** Seconds the grant lives (default 7 days). */
  ttlSeconds?: number;
  /** The grant's nonce (default: the current unix time in milliseconds, so nonces rise per device and
   * `revokeGrantsBelow(Date.now())` signs out every earlier device). */
  nonce?: bigint;
  /** Renew when less than this many seconds are left (default 1 hour). */
  renewWithinSeconds?: number;
  /** Sign a new grant even if the stored one is still good: after `cap_reached` or `cap_exceeded` (the stored
   * grant's cap is spent). After `grant_revoked`, {@link SessionKeyStore.forget} first, so the new grant also has a
   * new key. */
  force?: boolean;
  /** The clock, unix seconds (tests). */
  now?: () => number;
}

/** The default cap of a grant: 10 USDC. */
export const DEFAULT_GRANT_CAP = 10_000_000n;
/** The default life of a grant: 7 days. */
export const DEFAULT_GRANT_TTL_SECONDS = 7 * 86_400;

function defaultStorage(): KeyValueStorage {
  const ls = (globalThis as { localStorage?: KeyValueStorage }).localStorage;
  return ls ?? new MemoryStorage();
}

/** Keeps session keys and their grants per (chain, vault, listener). */
export class SessionKeyStore {
  constructor(
    private readonly storage: KeyValueStorage = defaultStorage(),
    private readonly prefix = "beatstream:session:",
  ) {}

  private key(domain: VoucherDomain, listener: Address): string {
    return `${this.prefix}${domain.chainId}:${domain.verifyingContract.toLowerCase()}:${listener.toLowerCase()}`;
  }

  private read(k: string): Stored | null {
    const raw = this.storage.getItem(k);
    if (!raw) return null;
    try {
      return JSON.parse(raw) as Stored;
    } catch {
      return null;
    }
  }

  /** The session key of `listener` on this domain, generated (from WebCrypto's generator) and stored if missing. */
  sessionKey(domain: VoucherDomain, listener: Address): LocalAccount {
    const k = this.key(domain, listener);
    let stored = this.read(k);
    if (!stored) {
      stored = { privateKey: generatePrivateKey() };
      this.storage.setItem(k, JSON.stringify(stored));
    }
    return privateKeyToAccount(stored.privateKey);
  }

  /** The stored grant of `listener` with its key, if one was signed and stored. */
  signedGrant(domain: VoucherDomain, listener: Address): SignedGrant | null {
    const stored = this.read(this.key(domain, listener));
    if (!stored?.grant || !stored.grantSig) return null;
    const grant = fromWireGrant(stored.grant);
    const sessionKey = privateKeyToAccount(stored.privateKey);
    if (getAddress(grant.sessionKey) !== sessionKey.address) return null;
    return { grant, grantSig: stored.grantSig, grantId: grantId(grant), sessionKey };
  }

  /** Stores a grant the listener signed for this store's session key. */
  saveGrant(domain: VoucherDomain, grant: SessionGrant, grantSig: Hex): SignedGrant {
    const k = this.key(domain, grant.listener);
    const stored = this.read(k);
    if (!stored) throw new Error("no session key stored for this listener: call sessionKey() first");
    const sessionKey = privateKeyToAccount(stored.privateKey);
    if (getAddress(grant.sessionKey) !== sessionKey.address) {
      throw new Error("the grant is for another session key");
    }
    this.storage.setItem(k, JSON.stringify({ ...stored, grant: toWireGrant(grant), grantSig }));
    return { grant, grantSig, grantId: grantId(grant), sessionKey };
  }

  /**
   * The stored grant while it has more than `renewWithinSeconds` left, else a new one the wallet signs (one
   * `eth_signTypedData_v4` prompt) for this device's session key, stored for the next load.
   */
  async ensureGrant(
    wallet: WalletClient | LocalAccount,
    domain: VoucherDomain,
    listener: Address,
    options: GrantOptions = {},
  ): Promise<SignedGrant> {
    const now = options.now ?? (() => Math.floor(Date.now() / 1000));
    const existing = this.signedGrant(domain, listener);
    const renewWithin = BigInt(options.renewWithinSeconds ?? 3600);
    if (!options.force && existing && existing.grant.expiresAt > BigInt(now()) + renewWithin && (options.cap === undefined || existing.grant.cap === options.cap)) {
      return existing;
    }
    const sessionKey = this.sessionKey(domain, listener);
    const grant: SessionGrant = {
      listener: getAddress(listener),
      sessionKey: sessionKey.address,
      cap: options.cap ?? DEFAULT_GRANT_CAP,
      expiresAt: BigInt(now() + (options.ttlSeconds ?? DEFAULT_GRANT_TTL_SECONDS)),
      nonce: options.nonce ?? BigInt(Date.now()),
    };
    const sig = await signGrant(wallet, domain, grant);
    return this.saveGrant(domain, grant, sig);
  }

  /** Forgets the key and grant of `listener` (after revoking it, or to sign out this device). */
  forget(domain: VoucherDomain, listener: Address): void {
    this.storage.removeItem(this.key(domain, listener));
  }
}
