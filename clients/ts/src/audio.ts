/**
 * The audio path of docs/PROTOCOL.md "Audio content": the manifest checked against the on-chain track, chunks
 * fetched and checked against the manifest's leaves, chunk keys derived (HKDF-SHA256) or taken from the relay's acks,
 * and chunks decrypted with WebCrypto's AES-256-GCM (nonce 12 zero bytes, AAD `be32(i)`).
 */
import { type Hex, bytesToHex, encodeAbiParameters, hexToBytes, keccak256 } from "viem";
import { AudioError } from "./errors.js";

/** The salt of the chunk keys' HKDF: its 19 ASCII bytes. */
export const CHUNK_KEY_SALT = "beatstream/audio/v1";

/** A track's manifest (docs/PROTOCOL.md "Manifest"). */
export interface Manifest {
  version: 1;
  chunkSeconds: 1;
  chunkCount: number;
  durationMs: number;
  sampleRate: number;
  channels: number;
  mimeType: string;
  /** `keccak256` of each stored chunk, in order. */
  chunks: Hex[];
  root: Hex;
}

/** What the registry holds for a track: `contentHash` and `duration` (seconds = chunks). */
export interface OnChainTrack {
  contentHash: Hex;
  duration: number | bigint;
}

function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new AudioError("decrypt_failed", "WebCrypto (crypto.subtle) is not available here");
  return s;
}

/** `i` as 4 big-endian bytes. */
export function be32(i: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, i >>> 0, false);
  return b;
}

/** `keccak256(leaf_0 ‖ … ‖ leaf_{n−1})`. */
export function chunksHash(leaves: readonly Hex[]): Hex {
  const buf = new Uint8Array(32 * leaves.length);
  leaves.forEach((l, i) => buf.set(hexToBytes(l), 32 * i));
  return keccak256(buf);
}

/** `keccak256(abi.encode(uint32 chunkCount, uint64 durationMs, bytes32 chunksHash))`. */
export function computeRoot(chunkCount: number, durationMs: number | bigint, leaves: readonly Hex[]): Hex {
  return keccak256(
    encodeAbiParameters(
      [{ type: "uint32" }, { type: "uint64" }, { type: "bytes32" }],
      [chunkCount, BigInt(durationMs), chunksHash(leaves)],
    ),
  );
}

/** The leaf of a stored chunk: `keccak256(bytes)`. */
export function leafOf(stored: Uint8Array): Hex {
  return keccak256(stored);
}

const MANIFEST_FIELDS = ["version", "chunkSeconds", "chunkCount", "durationMs", "sampleRate", "channels", "mimeType", "chunks", "root"];

/**
 * Checks a manifest as a player must (docs/PROTOCOL.md "What a player verifies", step 2): its fields, its root
 * recomputed, and, given the on-chain track, `root = contentHash` and `chunkCount = duration`. Throws
 * {@link AudioError} `manifest_invalid` or `manifest_mismatch`; returns the manifest typed.
 */
export function verifyManifest(json: unknown, onChain?: OnChainTrack): Manifest {
  const bad = (why: string) => new AudioError("manifest_invalid", `manifest: ${why}`);
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw bad("not a JSON object");
  const m = json as Record<string, unknown>;
  for (const k of MANIFEST_FIELDS) if (!(k in m)) throw bad(`missing ${k}`);
  for (const k of Object.keys(m)) if (!MANIFEST_FIELDS.includes(k)) throw bad(`unknown field ${k}`);
  if (m.version !== 1) throw bad("version is not 1");
  if (m.chunkSeconds !== 1) throw bad("chunkSeconds is not 1");
  const n = m.chunkCount;
  if (!Number.isSafeInteger(n) || (n as number) < 1) throw bad("chunkCount is not a positive integer");
  if (!Number.isSafeInteger(m.durationMs) || (m.durationMs as number) < 1) throw bad("durationMs is not a positive integer");
  if (!Array.isArray(m.chunks) || m.chunks.length !== n) throw bad("chunks does not have chunkCount entries");
  const hex32 = /^0x[0-9a-fA-F]{64}$/;
  if (!m.chunks.every((c) => typeof c === "string" && hex32.test(c))) throw bad("a chunk hash is not 32 bytes of hex");
  if (typeof m.root !== "string" || !hex32.test(m.root)) throw bad("root is not 32 bytes of hex");
  if (Math.ceil((m.durationMs as number) / 1000) !== n) throw bad("ceil(durationMs / 1000) is not chunkCount");
  if (m.channels !== 1 && m.channels !== 2) throw bad("channels is not 1 or 2");
  if (!Number.isSafeInteger(m.sampleRate) || (m.sampleRate as number) <= 0) throw bad("sampleRate is not a positive integer");
  const manifest = m as unknown as Manifest;
  const root = computeRoot(manifest.chunkCount, manifest.durationMs, manifest.chunks);
  if (root.toLowerCase() !== manifest.root.toLowerCase()) throw bad(`recomputed root ${root} is not ${manifest.root}`);
  if (onChain) {
    if (onChain.contentHash.toLowerCase() !== root.toLowerCase()) {
      throw new AudioError("manifest_mismatch", `root ${root} is not the track's contentHash ${onChain.contentHash}`);
    }
    if (BigInt(onChain.duration) !== BigInt(manifest.chunkCount)) {
      throw new AudioError("manifest_mismatch", `chunkCount ${manifest.chunkCount} is not the track's duration ${onChain.duration}`);
    }
  }
  return manifest;
}

/** Checks a fetched chunk against its leaf (step 3): `keccak256(bytes) = chunks[i]`. */
export function verifyChunk(manifest: Manifest, index: number, stored: Uint8Array): boolean {
  const leaf = manifest.chunks[index];
  return leaf !== undefined && leafOf(stored).toLowerCase() === leaf.toLowerCase();
}

function toBytes(k: Uint8Array | Hex): Uint8Array {
  return typeof k === "string" ? hexToBytes(k) : k;
}

/** `K_i = HKDF-SHA256(IKM = secret, salt = "beatstream/audio/v1", info = be32(i), L = 32)`. */
export async function deriveChunkKey(secret: Uint8Array | Hex, index: number): Promise<Hex> {
  const ikm = await subtle().importKey("raw", toBytes(secret) as BufferSource, "HKDF", false, ["deriveBits"]);
  const bits = await subtle().deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: new TextEncoder().encode(CHUNK_KEY_SALT), info: be32(index) as BufferSource },
    ikm,
    256,
  );
  return bytesToHex(new Uint8Array(bits));
}

async function aesKey(key: Uint8Array | Hex, usage: "encrypt" | "decrypt"): Promise<CryptoKey> {
  const raw = toBytes(key);
  if (raw.length !== 32) throw new AudioError("decrypt_failed", "a chunk key is 32 bytes");
  return subtle().importKey("raw", raw as BufferSource, "AES-GCM", false, [usage]);
}

/** `AES-256-GCM(K_i, nonce = 12 zero bytes, AAD = be32(i), chunk)`: ciphertext ‖ 16-byte tag. */
export async function encryptChunk(key: Uint8Array | Hex, index: number, plaintext: Uint8Array): Promise<Uint8Array> {
  const k = await aesKey(key, "encrypt");
  const out = await subtle().encrypt(
    { name: "AES-GCM", iv: new Uint8Array(12), additionalData: be32(index) as BufferSource },
    k,
    plaintext as BufferSource,
  );
  return new Uint8Array(out);
}

/** Decrypts stored chunk `index` with `K_i`; {@link AudioError} `decrypt_failed` for another key, index or byte. */
export async function decryptChunk(key: Uint8Array | Hex, index: number, stored: Uint8Array): Promise<Uint8Array> {
  const k = await aesKey(key, "decrypt");
  try {
    const out = await subtle().decrypt(
      { name: "AES-GCM", iv: new Uint8Array(12), additionalData: be32(index) as BufferSource },
      k,
      stored as BufferSource,
    );
    return new Uint8Array(out);
  } catch {
    throw new AudioError("decrypt_failed", `chunk ${index} does not open under its key`);
  }
}

/** The fetch function (default `globalThis.fetch`). */
export type Fetch = typeof globalThis.fetch;

/** `{apiUrl}/audio/{root}/manifest.json`. */
export function manifestUrl(apiUrl: string, root: Hex): string {
  return `${apiUrl.replace(/\/$/, "")}/audio/${root.toLowerCase()}/manifest.json`;
}

/** `{apiUrl}/audio/{root}/{index}`. */
export function chunkUrl(apiUrl: string, root: Hex, index: number): string {
  return `${apiUrl.replace(/\/$/, "")}/audio/${root.toLowerCase()}/${index}`;
}

/** Options of {@link TrackAudio.open}. */
export interface TrackAudioOptions {
  /** The node serving the audio (the API's address), e.g. `http://127.0.0.1:8080`. */
  apiUrl: string;
  /** The on-chain track (`contentHash`, `duration`), e.g. from {@link RegistryClient.track}. */
  track: OnChainTrack;
  fetch?: Fetch;
  /** Fetch attempts per chunk when a fetched chunk does not verify or the request fails (default 3). */
  attempts?: number;
}

/** A track's verified manifest, and its chunks fetched, verified and decrypted on demand. */
export class TrackAudio {
  private readonly fetchFn: Fetch;
  private readonly stored = new Map<number, Promise<Uint8Array>>();

  private constructor(
    readonly manifest: Manifest,
    private readonly apiUrl: string,
    fetchFn: Fetch,
    private readonly attempts: number,
  ) {
    this.fetchFn = fetchFn;
  }

  /** Fetches the manifest of the on-chain track's `contentHash` and checks it against the chain. */
  static async open(options: TrackAudioOptions): Promise<TrackAudio> {
    const fetchFn = options.fetch ?? globalThis.fetch.bind(globalThis);
    const url = manifestUrl(options.apiUrl, options.track.contentHash);
    const res = await fetchFn(url);
    if (!res.ok) throw new AudioError("fetch_failed", `GET ${url}: ${res.status}`);
    const manifest = verifyManifest(await res.json(), options.track);
    return new TrackAudio(manifest, options.apiUrl, fetchFn, options.attempts ?? 3);
  }

  /** The root (= on-chain `contentHash`). */
  get root(): Hex {
    return this.manifest.root;
  }

  /** Stored chunk `index`, fetched once and verified against its leaf (fetched again when it does not verify). */
  fetchChunk(index: number): Promise<Uint8Array> {
    if (!Number.isInteger(index) || index < 0 || index >= this.manifest.chunkCount) {
      return Promise.reject(new AudioError("chunk_mismatch", `no chunk ${index} in a ${this.manifest.chunkCount}-chunk track`));
    }
    let p = this.stored.get(index);
    if (!p) {
      p = this.fetchVerified(index);
      this.stored.set(index, p);
      p.catch(() => this.stored.delete(index));
    }
    return p;
  }

  private async fetchVerified(index: number): Promise<Uint8Array> {
    const url = chunkUrl(this.apiUrl, this.manifest.root, index);
    let last: AudioError | null = null;
    for (let attempt = 0; attempt < this.attempts; attempt++) {
      try {
        const res = await this.fetchFn(url);
        if (!res.ok) {
          last = new AudioError("fetch_failed", `GET ${url}: ${res.status}`);
          continue;
        }
        const bytes = new Uint8Array(await res.arrayBuffer());
        if (verifyChunk(this.manifest, index, bytes)) return bytes;
        last = new AudioError("chunk_mismatch", `chunk ${index} is not the manifest's ${this.manifest.chunks[index]}`);
      } catch (e) {
        last = new AudioError("fetch_failed", `GET ${url}: ${(e as Error).message}`);
      }
    }
    throw last ?? new AudioError("fetch_failed", `GET ${url}`);
  }

  /** Chunk `index` fetched, verified and decrypted with `K_i` (from an ack's `keys`): the FLAC file's bytes. */
  async decrypt(index: number, key: Hex | Uint8Array): Promise<Uint8Array> {
    return decryptChunk(key, index, await this.fetchChunk(index));
  }
}

/** A decrypted chunk: FLAC bytes to decode and schedule at `index` seconds. */
export interface PlainChunk {
  index: number;
  flac: Uint8Array;
}

/**
 * Feeds chunk keys as they arrive (from `ack` frames) and calls `onChunk` with each chunk decrypted, in index order
 * (a chunk whose key comes early waits for the ones before it). Errors go to `onError` and stop the pipeline.
 */
export class ChunkPipeline {
  private readonly pending = new Map<number, Promise<Uint8Array>>();
  private next = 0;
  private stopped = false;
  private draining = false;

  constructor(
    readonly audio: TrackAudio,
    private readonly onChunk: (c: PlainChunk) => void,
    private readonly onError: (e: Error) => void = () => {},
    /** The first index to deliver (after a resumption, the first not yet heard). */
    start = 0,
  ) {
    this.next = start;
  }

  /** The next index the pipeline will deliver. */
  get nextIndex(): number {
    return this.next;
  }

  /** Whether every chunk was delivered. */
  get done(): boolean {
    return this.next >= this.audio.manifest.chunkCount;
  }

  /** Gives released keys; decryption starts at once, delivery stays in order. */
  addKeys(keys: Iterable<{ index: number; key: Hex }>): void {
    for (const { index, key } of keys) {
      if (this.stopped || index < this.next || this.pending.has(index)) continue;
      const p = this.audio.decrypt(index, key);
      p.catch(() => {});
      this.pending.set(index, p);
    }
    void this.drain();
  }

  /** Stops delivering. */
  stop(): void {
    this.stopped = true;
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (!this.stopped) {
        const p = this.pending.get(this.next);
        if (!p) break;
        let flac: Uint8Array;
        try {
          flac = await p;
        } catch (e) {
          this.stopped = true;
          this.onError(e as Error);
          break;
        }
        this.pending.delete(this.next);
        if (this.stopped) break;
        this.onChunk({ index: this.next, flac });
        this.next += 1;
      }
    } finally {
      this.draining = false;
    }
  }
}
