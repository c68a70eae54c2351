// RelayClient's state machine on a scripted socket (the real relay drives it in test/it): what it sends for each
// frame it gets, in order, and how it closes, goes idle, stops and reconnects.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import {
  MemoryStorage,
  RELAY_ERROR_CODES,
  RelayClient,
  RelayError,
  type RelayEvent,
  SessionKeyStore,
  type SignedGrant,
  type WebSocketLike,
  recoverSigner,
  tipDigest,
  voucherDigest,
  voucherDomain,
} from "../../src/index.js";
import { REPO } from "../paths.js";

const listener = privateKeyToAccount("0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a");
const domain = voucherDomain(31337, "0x5FC8d32690cc91D4c39d9d3abcBD16989F875707");
const PAYEE = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

/** A socket the test plays the relay on. */
class Script implements WebSocketLike {
  static all: Script[] = [];
  readyState = 0;
  sent: Array<Record<string, unknown>> = [];
  closed: [number | undefined, string | undefined] | null = null;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  constructor(readonly url: string) {
    Script.all.push(this);
    setTimeout(() => {
      this.readyState = 1;
      this.onopen?.({});
    }, 0);
  }
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close(code?: number, reason?: string) {
    this.closed = [code, reason];
    this.readyState = 3;
  }
  /** The relay sends a frame. */
  frame(f: Record<string, unknown>) {
    this.onmessage?.({ data: JSON.stringify(f) });
  }
  /** The relay (or the network) closes the socket. */
  drop(code: number, reason = "") {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  async next(type: string, timeoutMs = 2000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = this.sent.find((x) => x.type === type && !(x as { seen?: boolean }).seen);
      if (f) {
        (f as { seen?: boolean }).seen = true;
        return f;
      }
      if (Date.now() > deadline) throw new Error(`no ${type} sent: ${JSON.stringify(this.sent)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

async function grant(cap = 10_000n): Promise<SignedGrant> {
  return new SessionKeyStore(new MemoryStorage()).ensureGrant(listener, domain, listener.address, { cap, nonce: 1n });
}

async function ready(client: RelayClient, available = "5000"): Promise<Script> {
  const connecting = client.connect();
  await new Promise((r) => setTimeout(r, 5));
  const ws = Script.all.at(-1)!;
  const hello = await ws.next("hello");
  ws.frame({ type: "ready", grantId: client.grantId, available });
  assert.equal((await connecting).available, BigInt(available));
  assert.ok(hello.grantSig);
  return ws;
}

async function playing(client: RelayClient, ws: Script, sessionId = "s1", trackId = "1") {
  const p = client.play(trackId);
  await ws.next("play");
  ws.frame({ type: "session", sessionId, trackId, payee: PAYEE.toLowerCase(), ratePerSecond: "100" });
  return p;
}

test("pays each beat with a rising voucher the session key signed; a refused voucher is paid again; the cap holds", async () => {
  const signed = await grant(450n);
  const client = new RelayClient({ url: "ws://relay", domain, grant: signed, WebSocket: Script });
  const events: RelayEvent[] = [];
  client.on((e) => events.push(e));
  const ws = await ready(client);
  const hello = ws.sent[0] as { grant: Record<string, string> };
  assert.deepEqual(hello.grant, { listener: listener.address, sessionKey: signed.sessionKey.address, cap: "450", expiresAt: signed.grant.expiresAt.toString(), nonce: "1" });
  const session = await playing(client, ws);
  assert.equal(session.payee, PAYEE, "checksummed");

  ws.frame({ type: "beat", sessionId: "s1", second: 1, owed: "100" });
  ws.frame({ type: "beat", sessionId: "s1", second: 2, owed: "200" });
  const v1 = await ws.next("voucher");
  const v2 = await ws.next("voucher");
  assert.deepEqual([v1.cumulative, v2.cumulative], ["100", "200"], "in order");
  const digest = voucherDigest(domain, { grantId: signed.grantId, payee: PAYEE, cumulative: 200n });
  assert.equal(await recoverSigner(digest, v2.sig as Hex), signed.sessionKey.address);

  ws.frame({ type: "ack", sessionId: "s1", cumulative: "100", keys: [{ index: 0, key: `0x${"11".repeat(32)}` }] });
  ws.frame({ type: "error", code: "insufficient_funds", message: "no" });
  assert.equal(client.sessions.get("s1")!.paidSeconds, 1);
  assert.equal(client.sessions.get("s1")!.keys.get(0), `0x${"11".repeat(32)}`);
  // 200 was refused, not stored: paying again sends it once more.
  assert.equal(await client.pay("s1"), 200n);
  assert.equal((await ws.next("voucher")).cumulative, "200");
  assert.equal(await client.pay("s1"), null, "nothing new owed");

  // 500 would pass the cap of 450: not signed, said so.
  ws.frame({ type: "beat", sessionId: "s1", second: 3, owed: "300" });
  ws.frame({ type: "beat", sessionId: "s1", second: 4, owed: "400" });
  ws.frame({ type: "beat", sessionId: "s1", second: 5, owed: "500" });
  await ws.next("voucher");
  assert.equal((await ws.next("voucher")).cumulative, "400");
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(events.some((e) => e.type === "error" && e.error.code === "cap_reached"));
  assert.equal(ws.sent.filter((f) => f.type === "voucher").length, 5);
  assert.equal(client.totalSent, 400n);

  const stopped = client.stop("s1");
  assert.deepEqual(await ws.next("stop"), { type: "stop", sessionId: "s1", seen: true });
  ws.frame({ type: "closed", sessionId: "s1", total: "400" });
  assert.equal(await stopped, 400n);
  client.close();
  assert.equal(client.state, "stopped");
});

test("a refused play rejects with its code and leaves the connection ready; a voucher's code does not reject a play", async () => {
  const client = new RelayClient({ url: "ws://relay", domain, grant: await grant(), WebSocket: Script });
  const ws = await ready(client);
  const p = client.play(9);
  await ws.next("play");
  ws.frame({ type: "error", code: "stale_voucher", message: "x" });
  ws.frame({ type: "error", code: "unknown_track", message: "no track 9" });
  await assert.rejects(p, (e: RelayError) => e instanceof RelayError && e.code === "unknown_track");
  assert.equal(client.state, "ready");
  client.close();
});

test("a refused grant stops the client for good; an idle close goes idle and the next play connects again", async () => {
  const revoked = new RelayClient({ url: "ws://relay", domain, grant: await grant(), WebSocket: Script });
  const c = revoked.connect();
  await new Promise((r) => setTimeout(r, 5));
  const ws = Script.all.at(-1)!;
  await ws.next("hello");
  ws.frame({ type: "error", code: "grant_revoked", message: "revoked by id" });
  await assert.rejects(c, (e: RelayError) => e.code === "grant_revoked");
  assert.equal(revoked.state, "stopped");
  await assert.rejects(revoked.play(1), (e: RelayError) => e.code === "closed");

  const idle = new RelayClient({ url: "ws://relay", domain, grant: await grant(), WebSocket: Script });
  const first = await ready(idle);
  first.drop(1000, "idle timeout");
  assert.equal(idle.state, "idle");
  const n = Script.all.length;
  const p = idle.play(1);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(Script.all.length, n + 1, "a new socket");
  const second = Script.all.at(-1)!;
  await second.next("hello");
  second.frame({ type: "ready", grantId: idle.grantId, available: "1" });
  await second.next("play");
  second.frame({ type: "session", sessionId: "s9", trackId: "1", payee: PAYEE, ratePerSecond: "1" });
  assert.equal((await p).sessionId, "s9");
  idle.close();
});

test("a lost connection reconnects with the same grant and plays the live track again from the stored cumulative", async () => {
  const signed = await grant();
  const client = new RelayClient({ url: "ws://relay", domain, grant: signed, WebSocket: Script, reconnect: { initialDelayMs: 5 } });
  const events: RelayEvent[] = [];
  client.on((e) => events.push(e));
  const ws = await ready(client);
  await playing(client, ws, "s1", "7");
  ws.frame({ type: "beat", sessionId: "s1", second: 1, owed: "100" });
  await ws.next("voucher");
  ws.frame({ type: "ack", sessionId: "s1", cumulative: "100" });
  ws.frame({ type: "beat", sessionId: "s1", second: 2, owed: "200" });
  await ws.next("voucher");
  // Gone before 200 was acked.
  ws.drop(1006);
  assert.equal(client.state, "reconnecting");
  await new Promise((r) => setTimeout(r, 30));
  const again = Script.all.at(-1)!;
  assert.notEqual(again, ws);
  const hello = await again.next("hello");
  assert.deepEqual(hello.grant, (ws.sent[0] as { grant: unknown }).grant, "the same grant, no new signature");
  again.frame({ type: "ready", grantId: client.grantId, available: "5000" });
  // Second 1 was paid and heard: the track resumes from second 1, so chunk 0 is not paid for again.
  assert.deepEqual(await again.next("play"), { type: "play", trackId: "7", from: 1, seen: true });
  again.frame({ type: "session", sessionId: "s2", trackId: "7", payee: PAYEE, ratePerSecond: "100" });
  await new Promise((r) => setTimeout(r, 5));
  const resumed = events.find((e) => e.type === "resumed");
  assert.ok(resumed && resumed.type === "resumed" && resumed.previousSessionId === "s1" && resumed.session.sessionId === "s2");
  assert.equal(resumed.session.from, 1);
  // The relay stored 100 (200 was lost): its first beat owes 200 again, which is paid once.
  again.frame({ type: "beat", sessionId: "s2", second: 1, owed: "200" });
  assert.equal((await again.next("voucher")).cumulative, "200");
  assert.equal(client.sessions.get("s2")!.base, 100n);
  client.close();
});

test("a tip is signed by the session key, resolves on its tipAck and counts against the cap with the vouchers", async () => {
  const signed = await grant(1_000n);
  const client = new RelayClient({ url: "ws://relay", domain, grant: signed, WebSocket: Script });
  const events: RelayEvent[] = [];
  client.on((e) => events.push(e));
  const ws = await ready(client);
  const message = "<b>gm</b> ♥";
  const p = client.tip({ payee: PAYEE.toLowerCase(), tipId: 7n, amount: 300n, message });
  const frame = await ws.next("tip");
  assert.deepEqual(
    { ...frame, sig: undefined, seen: undefined },
    { type: "tip", grantId: signed.grantId, payee: PAYEE, tipId: "7", amount: "300", message, sig: undefined, seen: undefined },
  );
  const digest = tipDigest(domain, { grantId: signed.grantId, payee: PAYEE, tipId: 7n, amount: 300n, message });
  assert.equal(await recoverSigner(digest, frame.sig as Hex), signed.sessionKey.address);
  // Another tip's ack does not answer it.
  ws.frame({ type: "tipAck", grantId: signed.grantId, tipId: "8" });
  ws.frame({ type: "tipAck", grantId: signed.grantId, tipId: "7" });
  assert.deepEqual(await p, { grantId: signed.grantId, tipId: 7n, payee: PAYEE, amount: 300n, message });
  assert.equal(client.tipped, 300n);
  assert.ok(events.some((e) => e.type === "tipAck" && e.tipId === 7n));

  // 300 tipped + 800 would pass the cap of 1,000: refused before anything is signed or sent.
  await assert.rejects(client.tip({ payee: PAYEE, tipId: 9n, amount: 800n }), (e: RelayError) => e.code === "cap_reached");
  // The same tip again (a lost tipAck) does not count twice.
  const again = client.tip({ payee: PAYEE, tipId: 7n, amount: 300n, message });
  await ws.next("tip");
  ws.frame({ type: "tipAck", grantId: signed.grantId, tipId: "7" });
  await again;
  assert.equal(client.tipped, 300n);

  // Vouchers see the tips: a beat owing 800 would make 1,100.
  await playing(client, ws);
  ws.frame({ type: "beat", sessionId: "s1", second: 1, owed: "700" });
  assert.equal((await ws.next("voucher")).cumulative, "700");
  ws.frame({ type: "ack", sessionId: "s1", cumulative: "700" });
  ws.frame({ type: "beat", sessionId: "s1", second: 2, owed: "800" });
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(events.some((e) => e.type === "error" && e.error.code === "cap_reached"));
  assert.equal(ws.sent.filter((f) => f.type === "voucher").length, 1);
  assert.ok(ws.sent.filter((f) => f.type === "tip").length === 2);
  client.close();
});

test("a message over 280 bytes of UTF-8 is refused before sending; the relay's tip codes reject the tip", async () => {
  const client = new RelayClient({ url: "ws://relay", domain, grant: await grant(), WebSocket: Script });
  const ws = await ready(client);
  // 140 two-byte characters are 280 bytes: allowed; one more byte is not.
  for (const message of ["é".repeat(140) + "!", "x".repeat(281), "🎶".repeat(71)]) {
    await assert.rejects(client.tip({ payee: PAYEE, amount: 1n, message }), (e: RelayError) => e.code === "message_too_long");
  }
  await assert.rejects(client.tip({ payee: PAYEE, amount: 0n }), (e: RelayError) => e.code === "invalid_field");
  await assert.rejects(client.tip({ payee: "0x1234", amount: 1n }), (e: RelayError) => e.code === "invalid_field");
  assert.equal(ws.sent.filter((f) => f.type === "tip").length, 0);
  assert.equal(client.tipped, 0n);

  const ok = client.tip({ payee: PAYEE, amount: 5n, message: "é".repeat(140) });
  const first = await ws.next("tip");
  assert.match(first.tipId as string, /^[0-9]+$/, "a random id when none is given");
  ws.frame({ type: "tipAck", grantId: client.grantId, tipId: first.tipId });
  await ok;

  for (const code of ["unknown_payee", "duplicate_tip", "insufficient_funds", "cap_exceeded"]) {
    const p = client.tip({ payee: PAYEE, tipId: 1n, amount: 2n });
    await ws.next("tip");
    ws.frame({ type: "error", code, message: code });
    await assert.rejects(p, (e: RelayError) => e instanceof RelayError && e.code === code);
  }
  assert.equal(client.tipped, 5n, "refused tips do not count");
  assert.equal(client.state, "ready");
  client.close();
});

test("a tip waits for the vouchers on the wire, and vouchers wait for the tip, so a shared code is the tip's", async () => {
  const client = new RelayClient({ url: "ws://relay", domain, grant: await grant(), WebSocket: Script });
  const ws = await ready(client);
  await playing(client, ws);
  ws.frame({ type: "beat", sessionId: "s1", second: 1, owed: "100" });
  await ws.next("voucher");
  const p = client.tip({ payee: PAYEE, tipId: 3n, amount: 50n });
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(ws.sent.filter((f) => f.type === "tip").length, 0, "not while voucher 100 is unanswered");
  ws.frame({ type: "ack", sessionId: "s1", cumulative: "100" });
  await ws.next("tip");
  // A beat while the tip waits: its voucher leaves only after the tip's answer.
  ws.frame({ type: "beat", sessionId: "s1", second: 2, owed: "200" });
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(ws.sent.filter((f) => f.type === "voucher").length, 1);
  ws.frame({ type: "error", code: "insufficient_funds", message: "short" });
  await assert.rejects(p, (e: RelayError) => e.code === "insufficient_funds");
  assert.equal((await ws.next("voucher")).cumulative, "200", "the voucher goes once the tip is answered");

  // A lost connection rejects a waiting tip with connection_lost.
  const lost = client.tip({ payee: PAYEE, tipId: 4n, amount: 1n });
  ws.frame({ type: "ack", sessionId: "s1", cumulative: "200" });
  await ws.next("tip");
  ws.drop(1006);
  await assert.rejects(lost, (e: RelayError) => e.code === "connection_lost");
  client.close();
});

test("RELAY_ERROR_CODES are exactly the codes of docs/PROTOCOL.md's table", () => {
  const doc = readFileSync(join(REPO, "docs", "PROTOCOL.md"), "utf8");
  const table = doc.slice(doc.indexOf("## Error codes"));
  const rows = table.slice(0, table.indexOf("\n\n", table.indexOf("|---")));
  const documented = [...rows.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]);
  assert.ok(documented.length > 20, `found ${documented.length} codes in PROTOCOL.md`);
  assert.deepEqual([...RELAY_ERROR_CODES].sort(), documented.sort());
});
