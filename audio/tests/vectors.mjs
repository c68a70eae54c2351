// Checks docs/vectors/audio.json with what a browser player has: WebCrypto (HKDF, AES-GCM) and a keccak256
// (js-sha3, already in the repository's node_modules). Not part of `cargo test`; run from the repository root:
//   node audio/tests/vectors.mjs
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { keccak_256: keccak256 } = require("js-sha3");
const { subtle } = globalThis.crypto;

const v = JSON.parse(readFileSync(new URL("../../docs/vectors/audio.json", import.meta.url)));
const bytes = (hex) => Uint8Array.from(Buffer.from(hex.slice(2), "hex"));
const hex = (buf) => "0x" + Buffer.from(buf).toString("hex");
const be32 = (i) => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, i); return b; };
let failures = 0;
const check = (what, got, want) => {
  if (got !== want) { failures++; console.log(`FAIL ${what}: ${got} != ${want}`); } else console.log(`ok   ${what}`);
};

async function chunkKey(secret, index) {
  const ikm = await subtle.importKey("raw", secret, "HKDF", false, ["deriveBits"]);
  const salt = new TextEncoder().encode(v.chunkKeySalt);
  return new Uint8Array(await subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info: be32(index) }, ikm, 256));
}

async function decrypt(key, index, stored) {
  const k = await subtle.importKey("raw", key, "AES-GCM", false, ["decrypt"]);
  return new Uint8Array(await subtle.decrypt({ name: "AES-GCM", iv: new Uint8Array(12), additionalData: be32(index) }, k, stored));
}

const secret = bytes(v.secret);
for (const { index, key } of v.chunkKeys) check(`chunk key ${index}`, hex(await chunkKey(secret, index)), key);

const e = v.encryption;
const k = await subtle.importKey("raw", bytes(e.key), "AES-GCM", false, ["encrypt"]);
const stored = await subtle.encrypt({ name: "AES-GCM", iv: bytes(e.nonce), additionalData: bytes(e.aad) }, k, bytes(e.plaintext));
check("encrypt", hex(stored), e.stored);

for (const c of v.manifestChunks) {
  const plain = await decrypt(await chunkKey(secret, c.index), c.index, bytes(c.stored));
  check(`chunk ${c.index} decrypts`, new TextDecoder().decode(plain), c.plaintextUtf8);
  check(`leaf ${c.index}`, "0x" + keccak256(bytes(c.stored)), v.manifest.chunks[c.index]);
}
const m = v.manifest;
const chunksHash = "0x" + keccak256(Buffer.concat(m.chunks.map(bytes)));
check("chunksHash", chunksHash, v.chunksHash);
const word = (n) => { const b = new Uint8Array(32); new DataView(b.buffer).setBigUint64(24, BigInt(n)); return b; };
const preimage = Buffer.concat([word(m.chunkCount), word(m.durationMs), bytes(chunksHash)]);
check("root preimage", hex(preimage), v.rootPreimage);
check("root", "0x" + keccak256(preimage), m.root);
check("chunkCount is the duration in whole seconds", m.chunkCount, Math.ceil(m.durationMs / 1000));
if (failures) { console.log(`${failures} failed`); process.exit(1); }
