import assert from "node:assert/strict";
import { test } from "node:test";
import { privateKeyToAccount } from "viem/accounts";
import { MemoryStorage, SessionKeyStore, grantDigest, recoverSigner, voucherDomain } from "../../src/index.js";

const listener = privateKeyToAccount("0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a");
const domain = voucherDomain(31337, "0x5FC8d32690cc91D4c39d9d3abcBD16989F875707");

test("a session key is made once per listener and kept in the storage with its grant", async () => {
  const storage = new MemoryStorage();
  const store = new SessionKeyStore(storage);
  const now = () => 1_000_000;
  const first = await store.ensureGrant(listener, domain, listener.address, { cap: 5_000_000n, ttlSeconds: 86_400, nonce: 3n, now });
  assert.equal(first.grant.listener, listener.address);
  assert.equal(first.grant.cap, 5_000_000n);
  assert.equal(first.grant.expiresAt, 1_086_400n);
  assert.equal(await recoverSigner(grantDigest(domain, first.grant), first.grantSig), listener.address);

  // Another store on the same storage (a reload) finds the key and grant: no new signature.
  const again = await new SessionKeyStore(storage).ensureGrant(
    { ...listener, signTypedData: () => Promise.reject(new Error("asked to sign again")) } as typeof listener,
    domain,
    listener.address,
    { now },
  );
  assert.equal(again.grantId, first.grantId);
  assert.equal(again.sessionKey.address, first.sessionKey.address);

  // Near its expiry, a new grant for the same key.
  const renewed = await store.ensureGrant(listener, domain, listener.address, { now: () => 1_086_000, nonce: 4n });
  assert.notEqual(renewed.grantId, first.grantId);
  assert.equal(renewed.sessionKey.address, first.sessionKey.address);

  // A spent cap: forced, a new grant (a new nonce) for the same key.
  const forced = await store.ensureGrant(listener, domain, listener.address, { now: () => 1_086_000, nonce: 5n, force: true });
  assert.notEqual(forced.grantId, renewed.grantId);
  assert.equal(forced.grant.nonce, 5n);
  assert.equal(forced.sessionKey.address, first.sessionKey.address);
  assert.equal(store.signedGrant(domain, listener.address)?.grantId, forced.grantId);

  // Another chain or vault is another key; forgetting makes a new key.
  assert.notEqual(store.sessionKey(voucherDomain(1, domain.verifyingContract), listener.address).address, first.sessionKey.address);
  store.forget(domain, listener.address);
  assert.equal(store.signedGrant(domain, listener.address), null);
  assert.notEqual(store.sessionKey(domain, listener.address).address, first.sessionKey.address);
});
