/**
 * The listener's and the artist's transactions: the vault (deposit, with an EIP-2612 permit when the token has one;
 * the two-step withdrawal; grant revocation; the artist's earnings) and the registry (an artist name registered by
 * commit and reveal with its records and rate; tracks published with the studio's root and seconds).
 */
import {
  type Account,
  type Address,
  type Chain,
  type Hash,
  type Hex,
  type PublicClient,
  type Transport,
  type WalletClient,
  encodePacked,
  getAddress,
  keccak256,
  parseEventLogs,
  parseSignature,
  toHex,
} from "viem";
import { registryAbi, usdcAbi, vaultAbi } from "./abi.js";

/** Addresses of the deployed contracts (a deployment file's `contracts`). */
export interface Contracts {
  ensRegistry?: Address;
  registry: Address;
  usdc: Address;
  vault: Address;
}

/** A listener's funds in the vault. */
export interface VaultAccount {
  /** What relays may still promise to artists (`spendableOf`). */
  available: bigint;
  /** Requested for withdrawal, withdrawable from `thawEnd`. */
  thawing: bigint;
  /** Unix seconds; 0 when nothing thaws. */
  thawEnd: bigint;
}

type AnyWallet = WalletClient<Transport, Chain | undefined, Account | undefined>;

async function sender(wallet: AnyWallet): Promise<Account | Address> {
  if (wallet.account) return wallet.account;
  const [a] = await wallet.getAddresses();
  if (!a) throw new Error("the wallet has no account");
  return a;
}

function addressOf(a: Account | Address): Address {
  return typeof a === "string" ? a : a.address;
}

/** Base class: a public client for reads and receipts, and optionally a wallet for transactions. */
abstract class ContractClient {
  constructor(
    readonly publicClient: PublicClient,
    readonly wallet?: AnyWallet,
  ) {}

  protected async send(request: {
    address: Address;
    abi: readonly unknown[];
    functionName: string;
    args?: readonly unknown[];
  }): Promise<Hash> {
    if (!this.wallet) throw new Error("a wallet is needed to send transactions");
    const account = await sender(this.wallet);
    // Simulated first, so a revert comes back decoded (e.g. BeatStreamVault_InsufficientAvailable) before signing.
    const { request: sim } = await this.publicClient.simulateContract({ ...request, account } as never);
    const hash = await this.wallet.writeContract({ ...(sim as object), account, chain: this.wallet.chain ?? null } as never);
    const receipt = await this.publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success") throw new Error(`transaction ${hash} reverted`);
    return hash;
  }

  protected async me(): Promise<Address> {
    if (!this.wallet) throw new Error("a wallet is needed");
    return addressOf(await sender(this.wallet));
  }
}

/** The vault and its token, for a listener (and an artist's earnings). */
export class VaultClient extends ContractClient {
  constructor(
    publicClient: PublicClient,
    readonly contracts: Pick<Contracts, "vault" | "usdc">,
    wallet?: AnyWallet,
  ) {
    super(publicClient, wallet);
  }

  /** A listener's `available`, `thawing` and `thawEnd`. */
  async account(listener: Address): Promise<VaultAccount> {
    const [available, thawing, thawEnd] = await this.publicClient.readContract({
      address: this.contracts.vault,
      abi: vaultAbi,
      functionName: "accountOf",
      args: [listener],
    });
    return { available, thawing, thawEnd };
  }

  /** The token balance of `owner` (USDC base units). */
  tokenBalance(owner: Address): Promise<bigint> {
    return this.publicClient.readContract({ address: this.contracts.usdc, abi: usdcAbi, functionName: "balanceOf", args: [owner] });
  }

  /** The artist's settled earnings not yet withdrawn (`earningsOf`). */
  earnings(payee: Address): Promise<bigint> {
    return this.publicClient.readContract({ address: this.contracts.vault, abi: vaultAbi, functionName: "earningsOf", args: [payee] });
  }

  /**
   * Whom a play of `trackId` pays, and a tip for it should name (contracts v3): the payee of the track's split in
   * force, else of its artist's split in force, else the artist's address record (zero when it has none).
   */
  playPayee(trackId: bigint | number | string): Promise<Address> {
    return this.publicClient.readContract({ address: this.contracts.vault, abi: vaultAbi, functionName: "playPayee", args: [BigInt(trackId)] });
  }

  /** The split in force for the artist at `node` (`trackId` 0) or one of its tracks: its payee and version, version 0 when none. */
  async currentSplit(node: Hex, trackId: bigint | number | string = 0n): Promise<{ split: Address; version: bigint }> {
    const [split, version] = await this.publicClient.readContract({
      address: this.contracts.vault,
      abi: vaultAbi,
      functionName: "currentSplit",
      args: [node, BigInt(trackId)],
    });
    return { split, version: BigInt(version) };
  }

  /** Seconds a withdrawal thaws (and a revocation takes to reach the vault). */
  withdrawalDelay(): Promise<bigint> {
    return this.publicClient.readContract({ address: this.contracts.vault, abi: vaultAbi, functionName: "withdrawalDelay" });
  }

  /** The listener's nonce floor: `floor` applies from `floorFrom`, `previous` before. */
  async nonceFloor(listener: Address): Promise<{ floor: bigint; previous: bigint; floorFrom: bigint }> {
    const [floor, previous, floorFrom] = await this.publicClient.readContract({
      address: this.contracts.vault,
      abi: vaultAbi,
      functionName: "nonceFloorOf",
      args: [listener],
    });
    return { floor, previous, floorFrom };
  }

  /** When a revocation of `grantId` takes effect in the vault (0: not revoked by id). */
  grantRevokedAt(listener: Address, grantId: Hex): Promise<bigint> {
    return this.publicClient.readContract({
      address: this.contracts.vault,
      abi: vaultAbi,
      functionName: "grantRevokedAt",
      args: [listener, grantId],
    });
  }

  /** Development chains only: mints MockUSDC (its `mint` is open). */
  mintTestUsdc(to: Address, amount: bigint): Promise<Hash> {
    return this.send({ address: this.contracts.usdc, abi: usdcAbi, functionName: "mint", args: [to, amount] });
  }

  /**
   * Deposits `amount` for the wallet's account. With `permit` (the default; MockUSDC and USDC take EIP-2612) the
   * wallet signs a permit and one transaction (`depositWithPermit`) deposits; without, `approve` then `deposit` (an
   * approval already large enough is not repeated). Returns the deposit's transaction hash.
   */
  async deposit(amount: bigint, options: { permit?: boolean; deadlineSeconds?: number } = {}): Promise<Hash> {
    const owner = await this.me();
    if (options.permit ?? true) {
      const deadline = BigInt(Math.floor(Date.now() / 1000) + (options.deadlineSeconds ?? 3600));
      const sig = await this.signPermit(owner, amount, deadline);
      const { r, s, yParity } = parseSignature(sig);
      return this.send({
        address: this.contracts.vault,
        abi: vaultAbi,
        functionName: "depositWithPermit",
        args: [amount, deadline, 27 + yParity, r, s],
      });
    }
    const allowance = await this.publicClient.readContract({
      address: this.contracts.usdc,
      abi: usdcAbi,
      functionName: "allowance",
      args: [owner, this.contracts.vault],
    });
    if (allowance < amount) {
      await this.send({ address: this.contracts.usdc, abi: usdcAbi, functionName: "approve", args: [this.contracts.vault, amount] });
    }
    return this.send({ address: this.contracts.vault, abi: vaultAbi, functionName: "deposit", args: [amount] });
  }

  /** The wallet's EIP-2612 permit of `amount` to the vault, under the token's own EIP-712 domain (ERC-5267). */
  async signPermit(owner: Address, amount: bigint, deadline: bigint): Promise<Hex> {
    if (!this.wallet) throw new Error("a wallet is needed");
    const [, name, version, chainId, verifyingContract] = await this.publicClient.readContract({
      address: this.contracts.usdc,
      abi: usdcAbi,
      functionName: "eip712Domain",
    });
    const nonce = await this.publicClient.readContract({ address: this.contracts.usdc, abi: usdcAbi, functionName: "nonces", args: [owner] });
    const account = await sender(this.wallet);
    return this.wallet.signTypedData({
      account,
      domain: { name, version, chainId, verifyingContract },
      types: {
        Permit: [
          { name: "owner", type: "address" },
          { name: "spender", type: "address" },
          { name: "value", type: "uint256" },
          { name: "nonce", type: "uint256" },
          { name: "deadline", type: "uint256" },
        ],
      },
      primaryType: "Permit",
      message: { owner, spender: this.contracts.vault, value: amount, nonce, deadline },
    });
  }

  /** Step 1 of a withdrawal: moves `amount` from `available` to `thawing` until the withdrawal delay has passed. */
  requestWithdrawal(amount: bigint): Promise<Hash> {
    return this.send({ address: this.contracts.vault, abi: vaultAbi, functionName: "requestWithdrawal", args: [amount] });
  }

  /** Puts the thawing funds back to `available`. */
  cancelWithdrawal(): Promise<Hash> {
    return this.send({ address: this.contracts.vault, abi: vaultAbi, functionName: "cancelWithdrawal" });
  }

  /** Step 2, from `thawEnd`: sends the thawing funds to `to` (default the wallet's account). */
  async withdraw(to?: Address): Promise<Hash> {
    return this.send({ address: this.contracts.vault, abi: vaultAbi, functionName: "withdraw", args: [to ?? (await this.me())] });
  }

  /** Revokes one grant (a lost device): relays refuse it once indexed; the vault from the withdrawal delay on. */
  revokeGrant(grantId: Hex): Promise<Hash> {
    return this.send({ address: this.contracts.vault, abi: vaultAbi, functionName: "revokeGrant", args: [grantId] });
  }

  /** Revokes every grant with a nonce below `nonce` ("sign out everywhere"); the floor only rises. */
  revokeGrantsBelow(nonce: bigint): Promise<Hash> {
    return this.send({ address: this.contracts.vault, abi: vaultAbi, functionName: "revokeGrantsBelow", args: [nonce] });
  }

  /** An artist withdraws `amount` of settled earnings to `to` (default the wallet's account). */
  async withdrawEarnings(amount: bigint, to?: Address): Promise<Hash> {
    return this.send({ address: this.contracts.vault, abi: vaultAbi, functionName: "withdrawEarnings", args: [to ?? (await this.me()), amount] });
  }
}

/** A track as the registry stores it. */
export interface RegistryTrack {
  artistNode: Hex;
  ratePerSecond: bigint;
  /** Seconds, = the audio's chunk count. */
  duration: number;
  published: boolean;
  /** The audio's root. */
  contentHash: Hex;
  title: string;
  metadataURI: string;
}

/** What `publishTrack` takes. */
export interface TrackInput {
  title: string;
  /** Seconds: the studio upload's `duration`. */
  duration: number;
  /** 0: the artist's rate at play time. */
  ratePerSecond?: bigint;
  /** The studio upload's `root`. */
  contentHash: Hex;
  metadataURI?: string;
}

/** A text record (`avatar`, `description`, `url`, ...). */
export interface TextRecord {
  key: string;
  value: string;
}

/** `namehash(<label>.beatstream.eth) = keccak256(rootNode ‖ keccak256(label))`. */
export function artistNode(rootNode: Hex, label: string): Hex {
  return keccak256(encodePacked(["bytes32", "bytes32"], [rootNode, keccak256(toHex(label))]));
}

/** The registry: artist names (ENS subnames of `beatstream.eth`), their records, rates and tracks. */
export class RegistryClient extends ContractClient {
  constructor(
    publicClient: PublicClient,
    readonly address: Address,
    wallet?: AnyWallet,
  ) {
    super(publicClient, wallet);
  }

  /** `rootNode`, the namehash of `beatstream.eth`. */
  rootNode(): Promise<Hex> {
    return this.publicClient.readContract({ address: this.address, abi: registryAbi, functionName: "rootNode" });
  }

  /** The track `trackId` as stored (throws for an unknown id). */
  async track(trackId: bigint | number | string): Promise<RegistryTrack> {
    const t = await this.publicClient.readContract({ address: this.address, abi: registryAbi, functionName: "track", args: [BigInt(trackId)] });
    return { ...t, duration: Number(t.duration) };
  }

  /** What a play costs and whom it pays: the track's rate (or the artist's) and the artist's address record. */
  async playTerms(trackId: bigint | number | string): Promise<{ ratePerSecond: bigint; payee: Address }> {
    const [ratePerSecond, payee] = await this.publicClient.readContract({
      address: this.address,
      abi: registryAbi,
      functionName: "playTerms",
      args: [BigInt(trackId)],
    });
    return { ratePerSecond, payee };
  }

  /** The holder of the name token of `node` (zero: no artist). */
  managerOf(node: Hex): Promise<Address> {
    return this.publicClient.readContract({ address: this.address, abi: registryAbi, functionName: "managerOf", args: [node] });
  }

  /** Whether `label` can be an artist name (3 to 63 bytes of `a-z`, `0-9`, `-`). */
  isValidLabel(label: string): Promise<boolean> {
    return this.publicClient.readContract({ address: this.address, abi: registryAbi, functionName: "isValidLabel", args: [label] });
  }

  /**
   * Registers `<label>.beatstream.eth` for the wallet's account with its rate (USDC base units a second) and text
   * records: commits to a random secret, waits out `MIN_COMMITMENT_AGE` (plus a block), then reveals. Returns the
   * artist's node. Two transactions; the label stays hidden until the second.
   */
  async register(label: string, ratePerSecond: bigint, records: TextRecord[] = [], options: { pollMs?: number } = {}): Promise<Hex> {
    const owner = await this.me();
    const secret = toHex(crypto.getRandomValues(new Uint8Array(32)));
    const commitment = await this.publicClient.readContract({
      address: this.address,
      abi: registryAbi,
      functionName: "makeCommitment",
      args: [label, owner, secret],
    });
    await this.send({ address: this.address, abi: registryAbi, functionName: "commit", args: [commitment] });
    const committedAt = await this.publicClient.readContract({ address: this.address, abi: registryAbi, functionName: "commitments", args: [commitment] });
    const minAge = await this.publicClient.readContract({ address: this.address, abi: registryAbi, functionName: "MIN_COMMITMENT_AGE" });
    // Reveal once the next block's timestamp is old enough: wait for a block at least minAge after the commit.
    const poll = options.pollMs ?? 500;
    for (;;) {
      const block = await this.publicClient.getBlock();
      if (block.timestamp >= committedAt + minAge) break;
      await new Promise((r) => setTimeout(r, poll));
    }
    await this.send({
      address: this.address,
      abi: registryAbi,
      functionName: "registerArtist",
      args: [label, ratePerSecond, records, secret],
    });
    return artistNode(await this.rootNode(), label);
  }

  /** Sets the artist's rate (USDC base units a second). */
  setRate(node: Hex, ratePerSecond: bigint): Promise<Hash> {
    return this.send({ address: this.address, abi: registryAbi, functionName: "setRate", args: [node, ratePerSecond] });
  }

  /** Sets a text record. */
  setText(node: Hex, key: string, value: string): Promise<Hash> {
    return this.send({ address: this.address, abi: registryAbi, functionName: "setText", args: [node, key, value] });
  }

  /** Sets the address plays pay. */
  setAddr(node: Hex, address: Address): Promise<Hash> {
    return this.send({ address: this.address, abi: registryAbi, functionName: "setAddr", args: [node, getAddress(address)] });
  }

  /** Publishes a track (with the studio upload's `root` and `duration`); returns its id. */
  async publishTrack(node: Hex, input: TrackInput): Promise<bigint> {
    const full = {
      title: input.title,
      duration: input.duration,
      ratePerSecond: input.ratePerSecond ?? 0n,
      contentHash: input.contentHash,
      metadataURI: input.metadataURI ?? "",
    };
    if (!this.wallet) throw new Error("a wallet is needed to send transactions");
    const account = await sender(this.wallet);
    const { request } = await this.publicClient.simulateContract({
      address: this.address,
      abi: registryAbi,
      functionName: "publishTrack",
      args: [node, full],
      account,
    });
    const hash = await this.wallet.writeContract({ ...request, account, chain: this.wallet.chain ?? null } as never);
    const receipt = await this.publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success") throw new Error(`publishTrack ${hash} reverted`);
    // The id from the transaction's own event: another publish between simulation and inclusion moves it.
    const [published] = parseEventLogs({ abi: registryAbi, eventName: "TrackPublished", logs: receipt.logs });
    if (!published) throw new Error(`publishTrack ${hash} emitted no TrackPublished`);
    return published.args.trackId;
  }
}
