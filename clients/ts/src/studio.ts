/**
 * The studio (docs/STUDIO.md): Sign-In with Ethereum for a bearer token, who manages an artist name, and audio
 * uploads whose `root` and `duration` the artist's wallet then publishes with {@link RegistryClient.publishTrack}.
 */
import { type Account, type Address, type Chain, type Hex, type Transport, type WalletClient, getAddress } from "viem";
import { createSiweMessage } from "viem/siwe";
import type { Fetch } from "./audio.js";
import { StudioError } from "./errors.js";

/** A studio session. */
export interface StudioSession {
  /** The bearer token (64 hex digits), shown once. */
  token: string;
  /** The signed-in address, checksummed. */
  address: Address;
  /** Unix seconds. */
  expiresAt: number;
}

/** `GET /studio/me`: the address may act for the name. */
export interface StudioMe {
  address: Address;
  label: string;
  /** The artist's node (namehash). */
  node: Hex;
}

/** `POST /studio/artists/{label}/tracks`'s answer. */
export interface UploadedTrack {
  /** The root over the stored chunks: the `contentHash` to publish. */
  root: Hex;
  chunkCount: number;
  durationMs: number;
  /** Seconds to publish (= `chunkCount`). */
  duration: number;
  sampleRate: number;
  channels: number;
  mimeType: string;
  /** Relative to the node. */
  manifestUrl: string;
}

/** Options of {@link StudioClient}. */
export interface StudioClientOptions {
  /** The node's API address, e.g. `http://127.0.0.1:8080`. */
  apiUrl: string;
  /** The authority SIWE messages name: the node's `--studio-domain` (default: the host of `apiUrl`). */
  domain?: string;
  fetch?: Fetch;
  /** The statement of the SIWE message (default "Sign in to the BeatStream studio."). */
  statement?: string;
}

type AnyWallet = WalletClient<Transport, Chain | undefined, Account | undefined>;

/** A client of one node's studio. */
export class StudioClient {
  private readonly fetchFn: Fetch;
  private readonly base: string;
  /** The session after {@link signIn} (or set from storage). */
  session: StudioSession | null = null;

  constructor(readonly options: StudioClientOptions) {
    this.fetchFn = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.base = options.apiUrl.replace(/\/$/, "");
  }

  private async call<T>(method: string, path: string, body?: BodyInit, headers: Record<string, string> = {}): Promise<T> {
    const res = await this.fetchFn(`${this.base}${path}`, { method, body, headers });
    const text = await res.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      // Not JSON: reported below.
    }
    if (!res.ok) {
      const err = (json as { error?: { code?: string; message?: string } } | null)?.error;
      throw new StudioError(err?.code ?? "http_error", err?.message ?? `${method} ${path}: ${res.status} ${text.slice(0, 200)}`, res.status);
    }
    return json as T;
  }

  private auth(): Record<string, string> {
    if (!this.session) throw new StudioError("unauthorized", "sign in first", 401);
    return { authorization: `Bearer ${this.session.token}` };
  }

  /**
   * Signs in: asks for a nonce, has the wallet `personal_sign` the EIP-4361 message (domain, chain id, nonce) and
   * trades it for a bearer token kept in {@link session}.
   */
  async signIn(wallet: AnyWallet, chainId: number): Promise<StudioSession> {
    const { nonce } = await this.call<{ nonce: string; expiresAt: number }>("POST", "/studio/siwe/nonce");
    const account = wallet.account ?? (await wallet.getAddresses())[0];
    if (!account) throw new Error("the wallet has no account");
    // EIP-4361 wants the EIP-55 form; a wallet may answer in lower case.
    const address = getAddress(typeof account === "string" ? account : account.address);
    const domain = this.options.domain ?? new URL(this.base).host;
    const message = createSiweMessage({
      domain,
      address,
      statement: this.options.statement ?? "Sign in to the BeatStream studio.",
      uri: `${this.base}/studio`,
      version: "1",
      chainId,
      nonce,
      issuedAt: new Date(),
    });
    const signature = await wallet.signMessage({ account, message });
    this.session = await this.call<StudioSession>(
      "POST",
      "/studio/siwe/verify",
      JSON.stringify({ message, signature }),
      { "content-type": "application/json" },
    );
    return this.session;
  }

  /** Whether the signed-in address manages `<label>.beatstream.eth` now (else `StudioError` `not_manager`). */
  async me(label: string): Promise<StudioMe> {
    return this.call<StudioMe>("GET", `/studio/me?label=${encodeURIComponent(label)}`, undefined, this.auth());
  }

  /** Uploads an audio file (MP3, Ogg Opus, FLAC or WAV) for the artist name; the node cuts, encrypts and stores it. */
  async upload(label: string, file: Blob | ArrayBuffer | Uint8Array): Promise<UploadedTrack> {
    const body = file instanceof Uint8Array ? new Blob([file as BlobPart]) : (file as BodyInit);
    return this.call<UploadedTrack>("POST", `/studio/artists/${encodeURIComponent(label)}/tracks`, body, {
      ...this.auth(),
      "content-type": "application/octet-stream",
    });
  }
}
