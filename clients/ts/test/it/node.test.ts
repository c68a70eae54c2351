// The SDK against the real node: `beatstream dev` (anvil with the contracts, Postgres, indexer, relay, keeper, API and
// studio, and the demo artist's three tracks of audio), driven as a listener's player and an artist's studio would.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  type Address,
  type Chain,
  type Hex,
  type PublicClient,
  type WalletClient,
  createPublicClient,
  createTestClient,
  createWalletClient,
  defineChain,
  http,
  parseEther,
} from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import WebSocket from "ws";
import {
  AudioError,
  ChunkPipeline,
  type ChunkKey,
  GraphQLClient,
  GraphQLRequestError,
  MemoryStorage,
  type PlainChunk,
  RegistryClient,
  RelayClient,
  RelayError,
  type RelayEvent,
  SessionKeyStore,
  type SignedGrant,
  StudioClient,
  StudioError,
  TrackAudio,
  VaultClient,
  type VoucherDomain,
  type WebSocketConstructor,
  gql,
  grantDigest,
  recoverSigner,
  signTip,
  toWireGrant,
  voucherDomain,
} from "../../src/index.js";
import { type DevNode, eventually, startDevNode } from "./devnode.js";
import { CuttableProxy, sineWav } from "./helpers.js";

const WS = WebSocket as unknown as WebSocketConstructor;
const USDC = 1_000_000n;

let node: DevNode;
let chain: Chain;
let publicClient: PublicClient;
let domain: VoucherDomain;
let graphql: GraphQLClient;

/** A fresh account with ETH for gas and `usdc` minted. */
async function freshAccount(usdc: bigint): Promise<{ wallet: WalletClient; address: Address; vault: VaultClient }> {
  const account = privateKeyToAccount(generatePrivateKey());
  const test = createTestClient({ mode: "anvil", chain, transport: http(node.info.rpcUrl) });
  await test.setBalance({ address: account.address, value: parseEther("10") });
  const wallet = createWalletClient({ account, chain, transport: http(node.info.rpcUrl) });
  const vault = new VaultClient(publicClient, node.info.contracts, wallet);
  if (usdc > 0n) await vault.mintTestUsdc(account.address, usdc);
  return { wallet, address: account.address, vault };
}

async function balanceOf(address: Address) {
  const r = await graphql.query(gql.ListenerDocument, { address });
  return r.listener.balance;
}

/** Collects a relay client's events. */
function record(client: RelayClient): RelayEvent[] {
  const events: RelayEvent[] = [];
  client.on((e) => events.push(e));
  return events;
}

/** Sends one signed tip on a raw socket (no SDK checks) and returns the relay's error code, or "tipAck". */
async function rawTipError(grant: SignedGrant, payee: Address, tipId: bigint, amount: bigint, message: string): Promise<string> {
  const ws = new WebSocket(node.info.relayUrl);
  const frames: Array<Record<string, string>> = [];
  ws.on("message", (d) => frames.push(JSON.parse(String(d))));
  await new Promise((r) => ws.once("open", r));
  ws.send(JSON.stringify({ type: "hello", grant: toWireGrant(grant.grant), grantSig: grant.grantSig }));
  await eventually("ready", async () => frames.some((f) => f.type === "ready"), 10_000, 20);
  const sig = await signTip(grant.sessionKey, domain, { grantId: grant.grantId, payee, tipId, amount, message });
  ws.send(JSON.stringify({ type: "tip", grantId: grant.grantId, payee, tipId: tipId.toString(), amount: amount.toString(), message, sig }));
  const answer = await eventually("the tip's answer", async () => frames.find((f) => f.type === "error" || f.type === "tipAck"), 10_000, 20);
  ws.close();
  return answer.type === "tipAck" ? "tipAck" : answer.code;
}

describe("the SDK on a beatstream dev node", { timeout: 900_000 }, () => {
  before(async () => {
    node = await startDevNode();
    const { info } = node;
    chain = defineChain({
      id: info.chainId,
      name: "beatstream dev",
      nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
      rpcUrls: { default: { http: [info.rpcUrl!] } },
    });
    publicClient = createPublicClient({ chain, transport: http(info.rpcUrl) }) as PublicClient;
    domain = voucherDomain(info.chainId, info.contracts.vault);
    graphql = new GraphQLClient({ url: info.graphqlUrl, wsUrl: info.graphqlWsUrl, webSocketImpl: WebSocket });
  });

  after(async () => {
    await graphql?.close();
    await node?.stop();
  });

  let listener: Awaited<ReturnType<typeof freshAccount>>;
  let signed: SignedGrant;
  let paidSession = { total: 0n, sessionId: "" };
  const liveSettlements: gql.SettlementsSubscription["settlements"][] = [];
  const liveEarnings: bigint[] = [];
  const stopLive: Array<() => void> = [];
  after(() => stopLive.forEach((stop) => stop()));

  it("deposits with a permit (one transaction) and with approve + deposit, and the API mirrors both", async () => {
    listener = await freshAccount(10n * USDC);
    const before = await listener.vault.tokenBalance(listener.address);
    await listener.vault.deposit(4n * USDC);
    // No allowance was left behind by the permit path: the permit covered exactly the deposit.
    await listener.vault.deposit(1n * USDC, { permit: false });
    assert.equal(await listener.vault.tokenBalance(listener.address), before - 5n * USDC);
    assert.deepEqual(await listener.vault.account(listener.address), { available: 5n * USDC, thawing: 0n, thawEnd: 0n });
    const balance = await eventually("the deposits indexed", async () => {
      const b = await balanceOf(listener.address);
      return b && b.available.raw === (5n * USDC).toString() ? b : undefined;
    });
    assert.equal(balance.deposited.raw, (5n * USDC).toString());
  });

  it("signs a grant with the wallet once and keeps the session key", async () => {
    const store = new SessionKeyStore(new MemoryStorage());
    signed = await store.ensureGrant(listener.wallet, domain, listener.address, { cap: 2n * USDC });
    const again = await store.ensureGrant(listener.wallet, domain, listener.address, { cap: 2n * USDC });
    assert.equal(again.grantId, signed.grantId);
  });

  it("plays a demo track: pays each beat, gets exactly the paid chunks' keys, fetches, verifies and decrypts them", async () => {
    const { info } = node;
    const track = info.demo.tracks[0];
    const registry = new RegistryClient(publicClient, info.contracts.registry);
    const onChain = await registry.track(track.id);
    assert.equal(onChain.contentHash, track.root);
    const audio = await TrackAudio.open({ apiUrl: info.apiUrl, track: onChain });
    assert.equal(audio.manifest.chunkCount, track.duration);

    // The artist's dashboard and the listener's history, live: subscribed before anything is paid.
    stopLive.push(
      graphql.subscribe(gql.SettlementsDocument, { listener: listener.address }, { next: (d) => liveSettlements.push(d.settlements) }),
      graphql.subscribe(gql.ArtistEarningsDocument, { artist: info.demo.artist.label }, { next: (d) => liveEarnings.push(BigInt(d.artistEarnings.earned.raw)) }),
    );

    const relay = new RelayClient({ url: info.relayUrl, domain, grant: signed, WebSocket: WS });
    const events = record(relay);
    const ready = await relay.connect();
    assert.equal(ready.grantId, signed.grantId);
    assert.equal(ready.available, 5n * USDC);

    const chunks: PlainChunk[] = [];
    const pipeline = new ChunkPipeline(audio, (c) => chunks.push(c), (e) => assert.fail(e));
    relay.on((e) => {
      if (e.type === "ack") pipeline.addKeys(e.keys);
    });
    const session = await relay.play(track.id);
    assert.equal(session.payee, info.demo.artist.address);
    const rate = session.ratePerSecond;
    assert.ok(rate > 0n);

    // Live updates of the session over the API's subscription, while it plays.
    const beats: number[] = [];
    const unsubscribe = graphql.subscribe(gql.SessionBeatsDocument, { id: session.sessionId }, { next: (d) => beats.push(d.sessionBeats.seconds) });

    await eventually("four chunks decrypted", async () => chunks.length >= 4, 30_000);
    const live = relay.sessions.get(session.sessionId)!;
    assert.equal(live.base, 0n);
    assert.ok(live.paidSeconds >= 4 && live.paid === live.acked);
    const total = await relay.stop(session.sessionId);
    unsubscribe();

    const acks = events.filter((e): e is Extract<RelayEvent, { type: "ack" }> => e.type === "ack");
    const vouchers = events.filter((e) => e.type === "voucher");
    assert.ok(vouchers.length >= 4, "a voucher per beat");
    assert.equal(total, acks.at(-1)!.cumulative, "closed.total is what the vouchers paid (base 0)");
    assert.equal(total % rate, 0n);
    // Keys follow payment: every key released by an ack is of a second that ack's cumulative pays.
    const released: ChunkKey[] = [];
    for (const a of acks) {
      for (const k of a.keys) assert.ok(BigInt(k.index) < a.cumulative / rate, `key ${k.index} released by an ack paying ${a.cumulative}`);
      released.push(...a.keys);
    }
    assert.deepEqual(released.map((k) => k.index), [...Array(released.length).keys()], "each key once, in order");
    // Each decrypted chunk is a FLAC file, in order.
    chunks.forEach((c, i) => {
      assert.equal(c.index, i);
      assert.equal(new TextDecoder().decode(c.flac.slice(0, 4)), "fLaC");
    });
    assert.ok(!events.some((e) => e.type === "error"), JSON.stringify(events.filter((e) => e.type === "error")));
    assert.ok(beats.length > 0 && Math.max(...beats) > 0, "the sessionBeats subscription moved");
    paidSession = { total, sessionId: session.sessionId };
    relay.close();
  });

  it("sees the session, the grant and the settlement through GraphQL, and the balance drop by what was paid", async () => {
    const s = await graphql.query(gql.SessionDocument, { id: paidSession.sessionId });
    assert.equal(s.session?.amount.raw, paidSession.total.toString());
    assert.equal(s.session?.status, "CLOSED");
    // The keeper settles the artist's vouchers (every 0.01 USDC or 15 s on the dev node).
    const settled = await eventually(
      "the listener's vouchers settled",
      async () => {
        const b = await balanceOf(listener.address);
        return b && BigInt(b.spent.raw) === paidSession.total ? b : undefined;
      },
      90_000,
      1000,
    );
    assert.equal(BigInt(settled.available.raw), 5n * USDC - paidSession.total);
    assert.equal((await listener.vault.account(listener.address)).available, 5n * USDC - paidSession.total);
    const l = await graphql.query(gql.ListenerDocument, { address: listener.address });
    assert.ok(l.listener.grants.some((g) => g.id === signed.grantId && !g.revoked));
    const artist = await graphql.query(gql.ArtistDocument, { name: node.info.demo.artist.label });
    assert.ok(BigInt(artist.artist!.earnings!.earned.raw) >= paidSession.total);
    // The catalogue query, with its defaults, is within the API's complexity limit and lists the demo's tracks.
    const catalogue = await graphql.query(gql.ArtistsDocument, {});
    const demo = catalogue.artists.edges.find((e) => e.node.label === node.info.demo.artist.label);
    assert.ok(demo && demo.node.tracks.edges.length === node.info.demo.tracks.length, JSON.stringify(catalogue));
    // The subscriptions delivered the settlement and the artist's earnings rising, without a query.
    const mine = await eventually("the settlements over the subscription", async () => {
      const list = liveSettlements.filter((x) => x.listener === listener.address);
      return list.reduce((sum, x) => sum + BigInt(x.amount.raw), 0n) === paidSession.total ? list : undefined;
    });
    assert.ok(mine.every((x) => x.artist?.name === node.info.demo.artist.name && x.grantId === signed.grantId));
    assert.ok(liveEarnings.length >= 2 && liveEarnings.at(-1)! > liveEarnings[0], `earnings over the subscription: ${liveEarnings.join(", ")}`);
  });

  it("refuses by stable codes: an unknown track, a forged grant, a bad GraphQL argument", async () => {
    const relay = new RelayClient({ url: node.info.relayUrl, domain, grant: signed, WebSocket: WS });
    await relay.connect();
    await assert.rejects(relay.play(999_999), (e: RelayError) => e instanceof RelayError && e.code === "unknown_track");
    // The connection survives a refused frame.
    assert.equal(relay.state, "ready");
    relay.close();

    const forged = new RelayClient({
      url: node.info.relayUrl,
      domain,
      grant: { ...signed, grant: { ...signed.grant, cap: signed.grant.cap + 1n } },
      WebSocket: WS,
    });
    await assert.rejects(forged.connect(), (e: RelayError) => e.code === "bad_grant_signature");
    assert.equal(forged.state, "stopped");

    await assert.rejects(graphql.query(gql.ListenerDocument, { address: "0x12" }), (e: GraphQLRequestError) => e.code === "BAD_USER_INPUT");
  });

  it("reconnects after a lost connection and resumes without paying a cumulative twice", async () => {
    const url = new URL(node.info.relayUrl);
    const proxy = await new CuttableProxy({ host: url.hostname, port: Number(url.port) }).start();
    try {
      const relay = new RelayClient({
        url: `ws://127.0.0.1:${proxy.port}${url.pathname}`,
        domain,
        grant: signed,
        WebSocket: WS,
        reconnect: { initialDelayMs: 200 },
      });
      const events = record(relay);
      await relay.connect();
      const first = await relay.play(node.info.demo.tracks[1].id);
      await eventually("two acks", async () => events.filter((e) => e.type === "ack").length >= 2, 20_000);
      const ackedBefore = relay.sessions.get(first.sessionId)!.acked;
      assert.ok(proxy.cut() > 0);
      const resumed = await eventually(
        "resumed",
        async () => events.find((e): e is Extract<RelayEvent, { type: "resumed" }> => e.type === "resumed"),
        20_000,
      );
      assert.equal(resumed.previousSessionId, first.sessionId);
      assert.ok(events.some((e) => e.type === "reconnecting"));
      const n = events.length;
      await eventually("acks after the resumption", async () => events.slice(n).filter((e) => e.type === "ack").length >= 2, 20_000);
      // The new session starts from the pair's stored cumulative: its vouchers only go up from what was acked.
      const sent = events.filter((e): e is Extract<RelayEvent, { type: "voucher" }> => e.type === "voucher").map((e) => e.cumulative);
      for (let i = 1; i < sent.length; i++) assert.ok(sent[i] > sent[i - 1], `vouchers rise: ${sent.join(", ")}`);
      assert.ok(sent.at(-1)! > ackedBefore);
      // A fresh client learns the pair's stored cumulative as the new session's base from its first beat.
      assert.ok(relay.sessions.get(resumed.session.sessionId)!.base >= ackedBefore);
      // Nothing heard is paid again: the track resumes at the first second the cut session had not paid, and the
      // new session's first key is that chunk's.
      const keysOf = (id: string) =>
        events.filter((e): e is Extract<RelayEvent, { type: "ack" }> => e.type === "ack" && e.sessionId === id).flatMap((e) => e.keys.map((k) => k.index));
      const heard = keysOf(first.sessionId);
      assert.ok(heard.length >= 2);
      assert.equal(resumed.session.from, Math.max(...heard) + 1);
      await eventually("a key after the resumption", async () => keysOf(resumed.session.sessionId).length > 0, 20_000);
      assert.equal(keysOf(resumed.session.sessionId)[0], resumed.session.from);
      const codes = events.filter((e): e is Extract<RelayEvent, { type: "error" }> => e.type === "error").map((e) => e.error.code);
      assert.deepEqual(codes.filter((c) => c !== "connection_lost"), [], "no stale or refused voucher");
      await relay.stop(resumed.session.sessionId);
      relay.close();
    } finally {
      await proxy.close();
    }
  });

  it("revokes the grant: the open connection's next voucher and a new hello are refused grant_revoked", async () => {
    const relay = new RelayClient({ url: node.info.relayUrl, domain, grant: signed, WebSocket: WS });
    const events = record(relay);
    await relay.connect();
    const s3 = await relay.play(node.info.demo.tracks[2].id);
    await eventually("an ack", async () => events.some((e) => e.type === "ack"), 20_000);
    // A new connection under the same grant (a reload) starts from what the pair had stored: nothing paid again.
    const firstVoucher = events.find((e): e is Extract<RelayEvent, { type: "voucher" }> => e.type === "voucher")!;
    assert.ok(relay.sessions.get(s3.sessionId)!.base >= paidSession.total);
    assert.equal(firstVoucher.cumulative, relay.sessions.get(s3.sessionId)!.base + s3.ratePerSecond);
    await listener.vault.revokeGrant(signed.grantId);
    assert.ok((await listener.vault.grantRevokedAt(listener.address, signed.grantId)) > 0n);
    const err = await eventually(
      "grant_revoked at a voucher",
      async () => events.find((e): e is Extract<RelayEvent, { type: "error" }> => e.type === "error" && e.error.code === "grant_revoked"),
      30_000,
    );
    assert.equal(err.error.code, "grant_revoked");
    assert.equal(relay.state, "stopped");
    const again = new RelayClient({ url: node.info.relayUrl, domain, grant: signed, WebSocket: WS });
    await assert.rejects(again.connect(), (e: RelayError) => e.code === "grant_revoked");
    const l = await eventually("the revocation indexed", async () => {
      const r = await graphql.query(gql.ListenerDocument, { address: listener.address });
      return r.listener.grants.find((g) => g.id === signed.grantId && g.revoked);
    });
    assert.ok(l.revokedAt);
    // "Sign out everywhere": the nonce floor rises past the grant's nonce.
    await listener.vault.revokeGrantsBelow(signed.grant.nonce + 1n);
    assert.equal((await listener.vault.nonceFloor(listener.address)).floor, signed.grant.nonce + 1n);
  });

  it("an artist registers a name with records and rate, signs in, uploads, publishes, and the track plays verified", async () => {
    const { info } = node;
    const artist = await freshAccount(0n);
    const label = `sdk${Date.now().toString(36)}`;
    const registry = new RegistryClient(publicClient, info.contracts.registry, artist.wallet);
    const nodeHash = await registry.register(label, 2_000n, [{ key: "description", value: "made by the SDK test" }]);
    assert.equal(await registry.managerOf(nodeHash), artist.address);

    const studio = new StudioClient({ apiUrl: info.apiUrl });
    await assert.rejects(studio.me(label), (e: StudioError) => e.code === "unauthorized");
    const session = await studio.signIn(artist.wallet, info.chainId);
    assert.equal(session.address, artist.address);
    assert.equal((await studio.me(label)).node, nodeHash);
    await assert.rejects(studio.me(info.demo.artist.label), (e: StudioError) => e.code === "not_manager" && e.status === 403);
    await assert.rejects(studio.upload(label, new TextEncoder().encode("not audio")), (e: StudioError) => e.code === "audio_unsupported");

    const uploaded = await studio.upload(label, sineWav(2.5));
    assert.equal(uploaded.chunkCount, 3);
    assert.equal(uploaded.duration, 3);
    const trackId = await registry.publishTrack(nodeHash, { title: "SDK sine", duration: uploaded.duration, contentHash: uploaded.root as Hex });
    const audio = await TrackAudio.open({ apiUrl: info.apiUrl, track: await registry.track(trackId) });
    assert.equal(audio.root, uploaded.root);
    // Another track's on-chain root does not verify against this manifest.
    await assert.rejects(
      TrackAudio.open({ apiUrl: info.apiUrl, track: { contentHash: uploaded.root as Hex, duration: 4 } }),
      (e: AudioError) => e.code === "manifest_mismatch",
    );
    const found = await eventually("the artist indexed", async () => (await graphql.query(gql.ArtistDocument, { name: label })).artist ?? undefined);
    assert.equal(found.ratePerSecond.raw, "2000");
    assert.ok(found.texts.some((t) => t.key === "description" && t.value === "made by the SDK test"));
  });

  it("an EIP-1193 wallet (anvil's unlocked accounts over JSON-RPC) signs the grant, the permit and the SIWE message", async () => {
    const { info } = node;
    // No key in this process: every signature and transaction is the node's eth_signTypedData_v4, personal_sign and
    // eth_sendTransaction, as an injected browser wallet would answer them.
    const wallet = createWalletClient({ account: info.demo.listener.address, chain, transport: http(info.rpcUrl) });
    const store = new SessionKeyStore(new MemoryStorage());
    const grant = await store.ensureGrant(wallet, domain, info.demo.listener.address, { cap: 1n * USDC });
    assert.equal(await recoverSigner(grantDigest(domain, grant.grant), grant.grantSig), info.demo.listener.address);
    const relay = new RelayClient({ url: info.relayUrl, domain, grant, WebSocket: WS });
    assert.equal((await relay.connect()).grantId, grant.grantId);
    relay.close();

    const vault = new VaultClient(publicClient, info.contracts, wallet);
    const before = await vault.account(info.demo.listener.address);
    await vault.mintTestUsdc(info.demo.listener.address, 2n * USDC);
    await vault.deposit(2n * USDC);
    assert.equal((await vault.account(info.demo.listener.address)).available, before.available + 2n * USDC);

    const artistWallet = createWalletClient({ account: info.demo.artist.address, chain, transport: http(info.rpcUrl) });
    const studio = new StudioClient({ apiUrl: info.apiUrl });
    assert.equal((await studio.signIn(artistWallet, info.chainId)).address, info.demo.artist.address);
    assert.equal((await studio.me(info.demo.artist.label)).node, info.demo.artist.node);
  });

  it("pauses when the funds or the grant's cap run out, with the code saying which, and resumes once paid", async () => {
    const poor = await freshAccount(1n * USDC);
    await poor.vault.deposit(3_000n);
    await eventually("the deposit indexed", async () => (await balanceOf(poor.address))?.available.raw === "3000");
    const store = new SessionKeyStore(new MemoryStorage());
    const grant = await store.ensureGrant(poor.wallet, domain, poor.address, { cap: 1n * USDC });
    const relay = new RelayClient({ url: node.info.relayUrl, domain, grant, WebSocket: WS });
    const events = record(relay);
    assert.equal((await relay.connect()).available, 3_000n);
    const session = await relay.play(node.info.demo.tracks[0].id);
    const refused = await eventually(
      "insufficient_funds",
      async () => events.find((e): e is Extract<RelayEvent, { type: "error" }> => e.type === "error" && e.error.code === "insufficient_funds"),
      20_000,
    );
    assert.ok(refused);
    await eventually("paused", async () => events.find((e) => e.type === "paused" && e.reason === "vouchers_behind"), 20_000);
    assert.equal(relay.sessions.get(session.sessionId)?.paused, true);
    const acked = relay.sessions.get(session.sessionId)!.acked;
    assert.equal(acked, 3_000n, "acked up to the funds and no further");

    // Funds arrive: paying the newest owed ends the pause and the beats go on.
    await poor.vault.deposit(100_000n);
    // (`deposited` counts every deposit; `available` may already have lost the 3,000 to a settlement.)
    await eventually("the deposit indexed", async () => (await balanceOf(poor.address))?.deposited.raw === "103000");
    const n = events.length;
    assert.ok((await relay.pay(session.sessionId))! > acked);
    await eventually("beats again", async () => events.slice(n).filter((e) => e.type === "beat").length >= 2, 20_000);
    assert.ok(relay.sessions.get(session.sessionId)!.acked > acked);
    await relay.stop(session.sessionId);
    relay.close();

    // A grant whose cap is two seconds: the SDK signs no voucher past it and says so; the relay pauses.
    const small = await new SessionKeyStore(new MemoryStorage()).ensureGrant(poor.wallet, domain, poor.address, { cap: 2_000n });
    const capped = new RelayClient({ url: node.info.relayUrl, domain, grant: small, WebSocket: WS });
    const cappedEvents = record(capped);
    const s2 = await capped.play(node.info.demo.tracks[0].id);
    await eventually("cap_reached", async () => cappedEvents.find((e) => e.type === "error" && e.error.code === "cap_reached"), 20_000);
    await eventually("paused", async () => cappedEvents.find((e) => e.type === "paused"), 20_000);
    assert.equal(capped.totalSent, 2_000n);
    await capped.stop(s2.sessionId);
    capped.close();
  });

  it("tips the artist with a message: tipAck once stored; message_too_long, unknown_payee and duplicate_tip refused", async () => {
    const { info } = node;
    const fan = await freshAccount(2n * USDC);
    await fan.vault.deposit(1n * USDC);
    await eventually("the deposit indexed", async () => (await balanceOf(fan.address))?.available.raw === (1n * USDC).toString());
    const grant = await new SessionKeyStore(new MemoryStorage()).ensureGrant(fan.wallet, domain, fan.address, { cap: 400_000n });
    const relay = new RelayClient({ url: info.relayUrl, domain, grant, WebSocket: WS });
    const events = record(relay);
    // During a play: the session names the payee its seconds pay, which a tip may name too.
    const session = await relay.play(info.demo.tracks[0].id);
    await eventually("an ack", async () => events.some((e) => e.type === "ack"), 20_000);
    const message = "<b>gm</b> from the SDK ♥";
    const receipt = await relay.tip({ payee: session.payee, tipId: 1n, amount: 120_000n, message });
    assert.deepEqual(receipt, { grantId: grant.grantId, tipId: 1n, payee: session.payee, amount: 120_000n, message });
    assert.ok(events.some((e) => e.type === "tipAck" && e.tipId === 1n));
    // Outside a play, to the artist's address record; the same tip again (a lost tipAck) is acked again.
    await relay.stop(session.sessionId);
    await relay.tip({ payee: info.demo.artist.address, tipId: 2n, amount: 30_000n });
    await relay.tip({ payee: info.demo.artist.address, tipId: 2n, amount: 30_000n });
    assert.equal(relay.tipped, 150_000n);
    // The demo's split track ("Gas Lights"): a tip names its split payee, as a play of it would.
    const splitPayee = await fan.vault.playPayee(info.demo.tracks[1].id);
    assert.notEqual(splitPayee, info.demo.artist.address);
    assert.equal((await fan.vault.currentSplit(info.demo.artist.node, info.demo.tracks[1].id)).split, splitPayee);
    await relay.tip({ payee: splitPayee, tipId: 7n, amount: 10n, message: "for the vocalist and the producer too" });

    // 281 bytes: the SDK refuses before sending, with the relay's code...
    await assert.rejects(relay.tip({ payee: info.demo.artist.address, tipId: 3n, amount: 1n, message: "x".repeat(281) }), (e: RelayError) => e.code === "message_too_long");
    await assert.rejects(relay.tip({ payee: info.demo.artist.address, tipId: 3n, amount: 1n, message: `${"é".repeat(140)}!` }), (e: RelayError) => e.code === "message_too_long");
    // ...which is what the relay answers when a properly signed 281-byte tip reaches it.
    assert.equal(await rawTipError(grant, info.demo.artist.address, 3n, 1n, "x".repeat(281)), "message_too_long");
    // 280 bytes exactly (multi-byte characters) pass.
    await relay.tip({ payee: info.demo.artist.address, tipId: 4n, amount: 1n, message: "é".repeat(140) });
    // A payee that is no artist and no split, another tip under a used id, more than the cap: refused by the relay.
    await assert.rejects(relay.tip({ payee: privateKeyToAccount(generatePrivateKey()).address, tipId: 5n, amount: 1n }), (e: RelayError) => e.code === "unknown_payee");
    await assert.rejects(relay.tip({ payee: info.demo.artist.address, tipId: 2n, amount: 31_000n }), (e: RelayError) => e.code === "duplicate_tip");
    // The funds (1 USDC) cover it, the cap (0.4 USDC, with the tips and vouchers before it) does not.
    assert.equal(await rawTipError(grant, info.demo.artist.address, 6n, 390_000n, ""), "cap_exceeded");
    assert.equal(relay.state, "ready");
    relay.close();

    // The keeper settles the four stored tips with its next batch; the API shows them with their messages as sent.
    const support = await eventually(
      "the tips settled and indexed",
      async () => {
        const r = await graphql.query(gql.ArtistSupportDocument, { name: info.demo.artist.label, first: 50 });
        const mine = r.artist?.tips.nodes.filter((t) => t.grantId === grant.grantId) ?? [];
        return mine.length === 4 ? { artist: r.artist!, mine } : undefined;
      },
      120_000,
      1000,
    );
    const byId = new Map(support.mine.map((t) => [t.tipId, t]));
    assert.equal(byId.get("1")?.message, message);
    assert.equal(byId.get("1")?.amount.raw, "120000");
    assert.equal(byId.get("1")?.listener.toLowerCase(), fan.address.toLowerCase());
    assert.equal(byId.get("2")?.message, "");
    assert.equal(byId.get("4")?.message, "é".repeat(140));
    assert.equal(byId.get("7")?.payee, splitPayee);
    const supporter = support.artist.supporters.nodes.find((s) => s.listener.toLowerCase() === fan.address.toLowerCase());
    assert.equal(supporter?.tipped.raw, "150011");
    assert.equal(supporter?.tips, 4);
    // The vault took the tips from the fan's funds, with what its vouchers paid (the streams may settle later).
    await eventually("the fan's balance settled", async () => {
      const r = await graphql.query(gql.ArtistSupportDocument, { name: info.demo.artist.label, first: 50 });
      const s = r.artist?.supporters.nodes.find((x) => x.listener.toLowerCase() === fan.address.toLowerCase());
      const streamed = BigInt(s?.streamed.raw ?? "0");
      return streamed > 0n && (await fan.vault.account(fan.address)).available === 1n * USDC - 150_011n - streamed;
    });
  });

  it("withdraws in two steps: request, not before thawEnd, then withdraw", async () => {
    const { vault, address } = listener;
    const acc = await vault.account(address);
    await vault.requestWithdrawal(1n * USDC);
    const thawing = await vault.account(address);
    assert.equal(thawing.thawing, 1n * USDC);
    assert.equal(thawing.available, acc.available - 1n * USDC);
    assert.ok(thawing.thawEnd > 0n);
    await assert.rejects(vault.withdraw(), /WithdrawalNotReady/);
    await vault.cancelWithdrawal();
    assert.equal((await vault.account(address)).available, acc.available);
    await vault.requestWithdrawal(1n * USDC);
    const test = createTestClient({ mode: "anvil", chain, transport: http(node.info.rpcUrl) });
    await test.increaseTime({ seconds: Number(await vault.withdrawalDelay()) + 1 });
    await test.mine({ blocks: 1 });
    const before = await vault.tokenBalance(address);
    await vault.withdraw();
    assert.equal(await vault.tokenBalance(address), before + 1n * USDC);
    assert.deepEqual(await vault.account(address), { available: acc.available - 1n * USDC, thawing: 0n, thawEnd: 0n });
  });
});
