// docs/vectors/audio.json (written by audio/tests/it/vectors.rs from the Rust audio crate) checked against the SDK.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { type Hex, bytesToHex, hexToBytes, keccak256 } from "viem";
import {
  AudioError,
  CHUNK_KEY_SALT,
  ChunkPipeline,
  TrackAudio,
  be32,
  chunksHash,
  computeRoot,
  decryptChunk,
  deriveChunkKey,
  encryptChunk,
  leafOf,
  verifyChunk,
  verifyManifest,
} from "../../src/index.js";
import { REPO } from "../paths.js";

const v = JSON.parse(readFileSync(join(REPO, "docs", "vectors", "audio.json"), "utf8"));

test("chunk keys are HKDF-SHA256 of the secret, the salt and be32(index)", async () => {
  assert.equal(v.chunkKeySalt, CHUNK_KEY_SALT);
  for (const k of v.chunkKeys) {
    assert.equal(bytesToHex(be32(k.index)), k.info);
    assert.equal(await deriveChunkKey(v.secret as Hex, k.index), k.key, `key ${k.index}`);
  }
});

test("a chunk encrypts to the stored bytes and decrypts only under its key and index", async () => {
  const e = v.encryption;
  const plaintext = hexToBytes(e.plaintext);
  assert.equal(new TextDecoder().decode(plaintext), e.plaintextUtf8);
  const stored = await encryptChunk(e.key, e.index, plaintext);
  assert.equal(bytesToHex(stored), e.stored);
  assert.deepEqual(await decryptChunk(e.key, e.index, hexToBytes(e.stored)), plaintext);
  // Another index (the AAD), another key, or one changed byte: refused.
  await assert.rejects(decryptChunk(e.key, e.index + 1, hexToBytes(e.stored)), (err: AudioError) => err.code === "decrypt_failed");
  await assert.rejects(decryptChunk(v.chunkKeys[0].key, e.index, hexToBytes(e.stored)), (err: AudioError) => err.code === "decrypt_failed");
  const damaged = hexToBytes(e.stored);
  damaged[0] ^= 1;
  await assert.rejects(decryptChunk(e.key, e.index, damaged), (err: AudioError) => err.code === "decrypt_failed");
});

test("leaves, chunksHash and root are the manifest's", async () => {
  const leaves = v.manifestChunks.map((c: { stored: Hex; leaf: Hex }) => {
    assert.equal(leafOf(hexToBytes(c.stored)), c.leaf);
    return c.leaf;
  });
  assert.equal(chunksHash(leaves), v.chunksHash);
  assert.equal(keccak256(v.rootPreimage), v.manifest.root);
  assert.equal(computeRoot(3, 2500, leaves), v.manifest.root);
  const m = verifyManifest(v.manifest, { contentHash: v.manifest.root, duration: 3 });
  assert.equal(m.chunkCount, 3);
  for (const c of v.manifestChunks) {
    assert.ok(verifyChunk(m, c.index, hexToBytes(c.stored)));
    assert.ok(!verifyChunk(m, (c.index + 1) % 3, hexToBytes(c.stored)), "a chunk is not another's");
    const key = await deriveChunkKey(v.secret, c.index);
    assert.equal(new TextDecoder().decode(await decryptChunk(key, c.index, hexToBytes(c.stored))), c.plaintextUtf8);
  }
});

test("a manifest that does not check is refused with a stable code", () => {
  const code = (f: () => unknown, c: string) => assert.throws(f, (e: AudioError) => e instanceof AudioError && e.code === c);
  const m = v.manifest;
  code(() => verifyManifest({ ...m, root: v.chunksHash }), "manifest_invalid");
  code(() => verifyManifest({ ...m, chunks: [m.chunks[1], m.chunks[0], m.chunks[2]] }), "manifest_invalid");
  code(() => verifyManifest({ ...m, durationMs: 3001 }), "manifest_invalid");
  code(() => verifyManifest({ ...m, version: 2 }), "manifest_invalid");
  code(() => verifyManifest({ ...m, extra: 1 }), "manifest_invalid");
  const { sampleRate: _, ...missing } = m;
  code(() => verifyManifest(missing), "manifest_invalid");
  code(() => verifyManifest(m, { contentHash: v.chunksHash, duration: 3 }), "manifest_mismatch");
  code(() => verifyManifest(m, { contentHash: m.root, duration: 4 }), "manifest_mismatch");
});

test("TrackAudio fetches, verifies (refetching a bad chunk) and decrypts; the pipeline delivers in order", async () => {
  const stored = v.manifestChunks.map((c: { stored: Hex }) => hexToBytes(c.stored));
  let served = 0;
  let corruptFirst = true;
  const fetchFn = (async (url: string) => {
    served++;
    if (url.endsWith("/manifest.json")) return new Response(JSON.stringify(v.manifest));
    const i = Number(url.split("/").pop());
    const bytes = stored[i].slice();
    if (i === 1 && corruptFirst) {
      corruptFirst = false;
      bytes[3] ^= 0xff;
    }
    return new Response(bytes);
  }) as typeof fetch;
  const audio = await TrackAudio.open({ apiUrl: "http://node", track: { contentHash: v.manifest.root, duration: 3n }, fetch: fetchFn });
  const got: Array<[number, string]> = [];
  const done = new Promise<void>((resolve, reject) => {
    const p = new ChunkPipeline(
      audio,
      (c) => {
        got.push([c.index, new TextDecoder().decode(c.flac)]);
        if (got.length === 3) resolve();
      },
      reject,
    );
    // Keys out of order: delivery stays in order.
    void (async () => {
      p.addKeys([{ index: 2, key: await deriveChunkKey(v.secret, 2) }]);
      p.addKeys([{ index: 0, key: await deriveChunkKey(v.secret, 0) }, { index: 1, key: await deriveChunkKey(v.secret, 1) }]);
    })();
  });
  await done;
  assert.deepEqual(got, v.manifestChunks.map((c: { index: number; plaintextUtf8: string }) => [c.index, c.plaintextUtf8]));
  assert.equal(served, 1 + 3 + 1, "the damaged chunk was fetched again");
  await assert.rejects(
    TrackAudio.open({ apiUrl: "http://node", track: { contentHash: v.manifest.root, duration: 4 }, fetch: fetchFn }),
    (e: AudioError) => e.code === "manifest_mismatch",
  );
});
