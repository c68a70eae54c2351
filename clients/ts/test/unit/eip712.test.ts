// docs/vectors/eip712.json (written by primitives/tests/it/vectors.rs from the Rust primitives) checked against the
// SDK: the same type strings, grant ids, digests and signatures.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { type Address, type Hex, keccak256, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import {
  DOMAIN_NAME,
  DOMAIN_VERSION,
  type SessionGrant,
  eip712Types,
  fromWireGrant,
  grantDigest,
  grantId,
  MAX_TIP_MESSAGE_BYTES,
  normalizeSignature,
  recoverSigner,
  signGrant,
  signTip,
  signVoucher,
  tipDigest,
  tipMessageBytes,
  tipMessageHash,
  toWireGrant,
  voucherDigest,
  voucherDomain,
} from "../../src/index.js";
import { REPO } from "../paths.js";

const v = JSON.parse(readFileSync(join(REPO, "docs", "vectors", "eip712.json"), "utf8"));

function encodeType(name: keyof typeof eip712Types): string {
  return `${name}(${eip712Types[name].map((f) => `${f.type} ${f.name}`).join(",")})`;
}

test("the type strings are the protocol's", () => {
  assert.equal(encodeType("SessionGrant"), v.types.SessionGrant);
  assert.equal(encodeType("Voucher"), v.types.Voucher);
  assert.equal(encodeType("Tip"), v.types.Tip);
  assert.equal(keccak256(toHex(encodeType("Tip"))), v.types.tipTypehash);
  assert.equal(keccak256(toHex(encodeType("SessionGrant"))), v.types.sessionGrantTypehash);
  assert.equal(keccak256(toHex(encodeType("Voucher"))), v.types.voucherTypehash);
});

test("grant ids, digests and listener signatures equal the Rust primitives'", async () => {
  const listener = privateKeyToAccount(v.listenerKey);
  assert.equal(listener.address, v.listener);
  assert.ok(v.cases.length >= 3);
  for (const c of v.cases) {
    assert.equal(c.domain.name, DOMAIN_NAME);
    assert.equal(c.domain.version, DOMAIN_VERSION);
    const domain = voucherDomain(c.domain.chainId, c.domain.verifyingContract);
    for (const g of c.grants) {
      const grant: SessionGrant = fromWireGrant(g.grant);
      assert.deepEqual(toWireGrant(grant), g.grant);
      assert.equal(grantId(grant), g.grantId);
      assert.equal(grantDigest(domain, grant), g.digest);
      assert.equal(await signGrant(listener, domain, grant), g.signature);
      assert.equal(await recoverSigner(g.digest, g.signature), v.listener);
    }
  }
});

test("voucher digests and session-key signatures equal the Rust primitives'", async () => {
  const session = privateKeyToAccount(v.sessionKey);
  assert.equal(session.address, v.sessionKeyAddress);
  let n = 0;
  for (const c of v.cases) {
    const domain = voucherDomain(c.domain.chainId, c.domain.verifyingContract);
    for (const x of c.vouchers) {
      const voucher = { grantId: x.voucher.grantId as Hex, payee: x.voucher.payee as Address, cumulative: BigInt(x.voucher.cumulative) };
      assert.equal(voucherDigest(domain, voucher), x.digest);
      assert.equal(await signVoucher(session, domain, voucher), x.signature);
      n++;
    }
  }
  assert.ok(n >= 24);
});

test("tip message hashes, digests and session-key signatures equal the Rust primitives'", async () => {
  const session = privateKeyToAccount(v.sessionKey);
  let n = 0;
  let longest = 0;
  for (const c of v.cases) {
    const domain = voucherDomain(c.domain.chainId, c.domain.verifyingContract);
    for (const x of c.tips) {
      const tip = {
        grantId: x.tip.grantId as Hex,
        payee: x.tip.payee as Address,
        tipId: BigInt(x.tip.tipId),
        amount: BigInt(x.tip.amount),
        message: x.tip.message as string,
      };
      assert.equal(tipMessageHash(tip.message), x.messageHash);
      assert.equal(tipDigest(domain, tip), x.digest);
      assert.equal(await signTip(session, domain, tip), x.signature);
      assert.equal(await recoverSigner(x.digest, x.signature), v.sessionKeyAddress);
      // The message is signed as given: one character more is another digest.
      assert.notEqual(tipDigest(domain, { ...tip, message: `${tip.message} ` }), x.digest);
      longest = Math.max(longest, tipMessageBytes(tip.message));
      n++;
    }
  }
  assert.ok(n >= 15);
  // The vectors include a message of exactly the limit (multi-byte characters: bytes, not characters, count).
  assert.equal(longest, MAX_TIP_MESSAGE_BYTES);
  assert.equal(tipMessageBytes("é".repeat(140)), 280);
  assert.equal(tipMessageBytes("🎶"), 4);
});

test("the domain binds chain and vault; a signature of another domain recovers someone else", async () => {
  const [a, b] = v.cases;
  assert.notEqual(a.domain.separator, b.domain.separator);
  assert.notEqual(a.grants[0].digest, b.grants[0].digest);
  assert.notEqual(await recoverSigner(b.grants[0].digest, a.grants[0].signature), v.listener);
});

test("signatures are normalised to v 27/28 and low s; a high-s twin does not recover under the vault's rules", async () => {
  const sig = v.cases[0].grants[0].signature as Hex;
  const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
  const s = BigInt(`0x${sig.slice(66, 130)}`);
  const v27 = parseInt(sig.slice(130), 16);
  const twin = `${sig.slice(0, 66)}${(n - s).toString(16).padStart(64, "0")}${(v27 === 27 ? 28 : 27).toString(16)}` as Hex;
  assert.equal(await recoverSigner(v.cases[0].grants[0].digest, twin), null);
  assert.equal(normalizeSignature(twin), sig);
  const v01 = `${sig.slice(0, 130)}${(v27 - 27).toString(16).padStart(2, "0")}` as Hex;
  assert.equal(normalizeSignature(v01), sig);
});
