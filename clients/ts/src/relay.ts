/**
 * The relay protocol of docs/PROTOCOL.md as a state machine: `hello` → `ready`, `play` → `session`, each `beat` paid
 * with a `voucher` signed by the session key, `ack` (with the chunk keys it releases), `paused`, `closed`, errors by
 * their stable codes, reconnection and resumption.
 *
 * Paying never repeats: vouchers are cumulative per (grant, payee), the client signs a cumulative only when it is
 * above every one it sent for the pair, and after a reconnection the relay starts the new session from the pair's
 * stored cumulative (`base`), so what an ack confirmed is never owed again. Nor is a second heard: after a
 * reconnection {@link RelayClient} plays each live track again `from` the first second it had not paid (`play`'s
 * `from`, docs/PROTOCOL.md), so the new session releases the next chunk's key first. It does so only when `resume` is
 * on (the default), and reports it with a `resumed` event.
 *
 * Tips (`tip` → `tipAck`) are signed by the same session key. The relay's `error` frames do not say which frame they
 * answer, so a tip is sent only once every voucher on the wire has been answered, and vouchers wait until the tip is:
 * an error that comes meanwhile is the tip's.
 */
import { type Address, type Hex, getAddress } from "viem";
import {
  MAX_TIP_MESSAGE_BYTES,
  type VoucherDomain,
  signTip,
  signVoucher,
  tipMessageBytes,
  toWireGrant,
} from "./eip712.js";
import { FATAL_GRANT_CODES, RelayError, TIP_CODES, TIP_SHARED_CODES, VOUCHER_CODES } from "./errors.js";
import type { SignedGrant } from "./session.js";

/** The subset of the WebSocket API the client uses (the browser's `WebSocket` and the `ws` package's fit). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

/** A WebSocket constructor. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** A chunk key released by an `ack`: `K_i` of docs/PROTOCOL.md "Keys and encryption". */
export interface ChunkKey {
  index: number;
  /** 32 bytes as 0x hex. */
  key: Hex;
}

/** A live session. */
export interface SessionInfo {
  sessionId: string;
  trackId: string;
  /**
   * Whom the vouchers pay: the vault's `playPayee` (the payee of the track's or its artist's split in force, else
   * the artist's address record). Tip this address to tip the track's split.
   */
  payee: Address;
  ratePerSecond: bigint;
  /** Seconds released so far (the newest beat's `second`). */
  second: number;
  /** The cumulative the next voucher must reach (the newest beat's `owed`). */
  owed: bigint;
  /** The newest acked cumulative for this session's pair. */
  acked: bigint;
  /**
   * The pair's cumulative when the session started (the relay's `base`: what earlier sessions under the grant, on
   * any connection, had stored for this artist). Known from the first beat (`owed − rate × second`); until then the
   * newest cumulative this client saw acked for the pair.
   */
  base: bigint;
  /** What this session has paid so far: `acked − base`. */
  paid: bigint;
  /** The second the session started at (`play`'s `from`, 0 from the start): its first beat pays chunk `from`. */
  from: number;
  /** Seconds this session has paid: `floor(paid / ratePerSecond)`; chunk `i` is paid when `i < from + paidSeconds`. */
  paidSeconds: number;
  /** Whether the relay paused the session (`vouchers_behind` or `node_unreachable`). */
  paused: boolean;
  /** Chunk keys released in this session, by index. */
  keys: Map<number, Hex>;
}

/** What a {@link RelayClient} reports, in the order it happens. */
export type RelayEvent =
  | { type: "state"; state: RelayState }
  | { type: "ready"; grantId: Hex; available: bigint }
  | { type: "session"; session: SessionInfo }
  | { type: "beat"; sessionId: string; second: number; owed: bigint }
  | { type: "voucher"; sessionId: string; payee: Address; cumulative: bigint }
  | { type: "ack"; sessionId: string; cumulative: bigint; keys: ChunkKey[] }
  | { type: "paused"; sessionId: string; reason: string }
  | { type: "closed"; sessionId: string; total: bigint }
  | { type: "resumed"; previousSessionId: string; session: SessionInfo }
  | { type: "tip"; tipId: bigint; payee: Address; amount: bigint }
  | { type: "tipAck"; tipId: bigint }
  | { type: "error"; error: RelayError }
  | { type: "reconnecting"; attempt: number; delayMs: number };

/**
 * `idle` (no socket; the next request connects), `connecting`, `hello` (waiting for `ready`), `ready`,
 * `reconnecting` (backing off after a lost connection), `stopped` (after {@link RelayClient.close} or a fatal grant
 * error: the grant is revoked, expired or refused).
 */
export type RelayState = "idle" | "connecting" | "hello" | "ready" | "reconnecting" | "stopped";

/** Whether to pay a beat (the default pays every beat). */
export type PayPolicy = (beat: { sessionId: string; second: number; owed: bigint; payee: Address }) => boolean;

/** Options of {@link RelayClient}. */
export interface RelayClientOptions {
  /** `ws://host:port/ws/stream`. */
  url: string;
  /** The vault's domain (chain id and vault address). */
  domain: VoucherDomain;
  /** The grant, its signature and the session key ({@link SessionKeyStore.ensureGrant}). */
  grant: SignedGrant;
  /** The WebSocket constructor (default `globalThis.WebSocket`; in Node 20, the `ws` package's). */
  WebSocket?: WebSocketConstructor;
  /** Pay each beat automatically (default), never (`false`), or as the function decides. */
  autoPay?: boolean | PayPolicy;
  /** Reconnect after a lost connection (default on: 0.5 s, doubling to 10 s, at most 10 attempts in a row). */
  reconnect?: false | { initialDelayMs?: number; maxDelayMs?: number; maxAttempts?: number };
  /** After a reconnection, play again the tracks whose sessions were live (default `true`). */
  resume?: boolean;
  /** How long `connect`, `play`, `stop` and `tip` wait for their answer (default 15 s). */
  timeoutMs?: number;
}

/** A tip to send with {@link RelayClient.tip}. */
export interface TipRequest {
  /** An artist's address record, or the payee of a split in force (a session's `payee` for its track). */
  payee: Address | string;
  /** USDC base units, above 0; counts against the grant's cap with its vouchers. */
  amount: bigint;
  /** At most {@link MAX_TIP_MESSAGE_BYTES} bytes of UTF-8 (default empty); sent, signed and stored as given. */
  message?: string;
  /**
   * Unique under the grant (default {@link newTipId}). Sending the same tip again under its id (after a lost
   * `tipAck`) is acked again and settles once; another tip under a used id is refused with `duplicate_tip`.
   */
  tipId?: bigint;
}

/** A tip the relay stored (its `tipAck`): the keeper settles it with its next batch. */
export interface TipReceipt {
  grantId: Hex;
  tipId: bigint;
  payee: Address;
  amount: bigint;
  message: string;
}

/** A random 64-bit tip id (WebCrypto): unique under a grant without keeping a counter. */
export function newTipId(): bigint {
  const words = globalThis.crypto.getRandomValues(new Uint32Array(2));
  return (BigInt(words[0]) << 32n) | BigInt(words[1]);
}

const UINT256_MAX = (1n << 256n) - 1n;

type Pending<T> = { resolve: (v: T) => void; reject: (e: RelayError) => void; timer: ReturnType<typeof setTimeout> };

interface Frame {
  type: string;
  [k: string]: unknown;
}

/** The relay connection of one listener's grant. */
export class RelayClient {
  private ws: WebSocketLike | null = null;
  private _state: RelayState = "idle";
  private readonly listeners = new Set<(e: RelayEvent) => void>();
  /** Live sessions by id. */
  readonly sessions = new Map<string, SessionInfo>();
  /** Per payee: the highest cumulative sent, and the highest acked. */
  private readonly sent = new Map<Address, bigint>();
  private readonly acked = new Map<Address, bigint>();
  /** Per payee: the highest cumulative whose voucher frame went out; above `acked` while the relay has not answered. */
  private readonly onWire = new Map<Address, bigint>();
  /** Every session's payee by id, to credit an ack that comes after its session ended. */
  private readonly payeeOf = new Map<string, Address>();
  /** Tips sent (or being sent) under the grant by id, with their amounts: they count against the cap. */
  private readonly tips = new Map<string, bigint>();
  /** The tip waiting for its `tipAck` (one at a time). */
  private tipWait: (Pending<void> & { tipId: string }) | null = null;
  /** Woken on every answer or close: a tip waits for the vouchers on the wire to be answered. */
  private wakers: Array<() => void> = [];
  private readyWait: Pending<{ grantId: Hex; available: bigint }> | null = null;
  private readyPromise: Promise<{ grantId: Hex; available: bigint }> | null = null;
  private readonly playWaits: Array<Pending<SessionInfo> & { trackId: string; from: number }> = [];
  private readonly stopWaits = new Map<string, Pending<bigint>>();
  private attempt = 0;
  /** The tail of the vouchers being signed and sent, in order. */
  private sending: Promise<void> = Promise.resolve();
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  /** Tracks to play again after a reconnection, by the session id they had. */
  private toResume: Array<{ previousSessionId: string; trackId: string; from: number }> = [];
  private readonly opts: Required<Pick<RelayClientOptions, "resume" | "timeoutMs">> & RelayClientOptions;

  constructor(options: RelayClientOptions) {
    this.opts = { resume: true, timeoutMs: 15_000, ...options };
  }

  /** The connection's state. */
  get state(): RelayState {
    return this._state;
  }

  /** The grant's id. */
  get grantId(): Hex {
    return this.opts.grant.grantId;
  }

  /** What vouchers sent under the grant so far pay, over all payees (with {@link tipped}, what counts against its cap). */
  get totalSent(): bigint {
    let t = 0n;
    for (const v of this.sent.values()) t += v;
    return t;
  }

  /** What the tips sent under the grant by this client pay (acked, or not refused yet). */
  get tipped(): bigint {
    let t = 0n;
    for (const v of this.tips.values()) t += v;
    return t;
  }

  /** Subscribes to events; returns the unsubscribe function. */
  on(listener: (e: RelayEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(e: RelayEvent): void {
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch {
        // A listener's failure is its own.
      }
    }
  }

  private setState(state: RelayState): void {
    if (this._state === state) return;
    this._state = state;
    this.emit({ type: "state", state });
  }

  /** Opens the socket and presents the grant; resolves with `ready`'s grant id and `available` funds. */
  connect(): Promise<{ grantId: Hex; available: bigint }> {
    if (this._state === "stopped") return Promise.reject(new RelayError("closed", "the relay client is closed"));
    if (this.readyPromise && (this._state === "ready" || this._state === "hello" || this._state === "connecting")) {
      return this.readyPromise;
    }
    this.readyPromise = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.readyWait = null;
        reject(new RelayError("timeout", "no ready from the relay in time"));
        this.ws?.close(1000, "timeout");
      }, this.opts.timeoutMs);
      this.readyWait = { resolve, reject, timer };
    });
    this.readyPromise.catch(() => {});
    this.open();
    return this.readyPromise;
  }

  private open(): void {
    const Ctor = this.opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!Ctor) throw new RelayError("connection_lost", "no WebSocket implementation: pass options.WebSocket");
    this.setState("connecting");
    const ws = new Ctor(this.opts.url);
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.setState("hello");
      const { grant, grantSig } = this.opts.grant;
      this.sendFrame({ type: "hello", grant: toWireGrant(grant), grantSig });
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      const text = typeof ev.data === "string" ? ev.data : String(ev.data);
      let frame: Frame;
      try {
        frame = JSON.parse(text) as Frame;
      } catch {
        return;
      }
      this.onFrame(frame);
    };
    ws.onerror = () => {};
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.onClose(ev.code, ev.reason);
    };
  }

  private sendFrame(frame: object): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== 1) throw new RelayError("connection_lost", "the relay connection is not open");
    ws.send(JSON.stringify(frame));
  }

  /**
   * Starts a session for `trackId`, at second `options.from` (default 0: the start); resolves with it once the relay
   * answers `session`. A `from` at or past the track's end is refused with `invalid_field`.
   */
  async play(trackId: bigint | number | string, options: { from?: number } = {}): Promise<SessionInfo> {
    await this.connect();
    const id = BigInt(trackId).toString();
    const from = options.from ?? 0;
    if (!Number.isInteger(from) || from < 0) throw new RelayError("invalid_field", `from must be a second, got ${from}`);
    const p = new Promise<SessionInfo>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.playWaits.findIndex((w) => w.timer === timer);
        if (i >= 0) this.playWaits.splice(i, 1);
        reject(new RelayError("timeout", `no session for track ${id} in time`));
      }, this.opts.timeoutMs);
      this.playWaits.push({ resolve, reject, timer, trackId: id, from });
    });
    this.sendFrame(from > 0 ? { type: "play", trackId: id, from } : { type: "play", trackId: id });
    return p;
  }

  /** Ends a session; resolves with its `closed` total. */
  stop(sessionId: string): Promise<bigint> {
    const p = new Promise<bigint>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.stopWaits.delete(sessionId);
        reject(new RelayError("timeout", `no closed for ${sessionId} in time`));
      }, this.opts.timeoutMs);
      this.stopWaits.set(sessionId, { resolve, reject, timer });
    });
    this.toResume = this.toResume.filter((r) => r.previousSessionId !== sessionId);
    this.sendFrame({ type: "stop", sessionId });
    return p;
  }

  /**
   * Signs and sends the voucher for a session's newest `owed`, whatever `autoPay` says: after a deposit ends an
   * `insufficient_funds` pause, or with `autoPay: false` to pay when the app decides. Returns the cumulative sent,
   * or `null` when nothing new is owed.
   */
  async pay(sessionId: string): Promise<bigint | null> {
    const s = this.sessions.get(sessionId);
    if (!s) throw new RelayError("unknown_session", `no live session ${sessionId}`);
    return this.payOwed(s, true);
  }

  private async payOwed(s: SessionInfo, force: boolean): Promise<bigint | null> {
    const owed = s.owed;
    const sent = this.sent.get(s.payee) ?? 0n;
    if (owed <= sent) return null;
    if (!force) {
      const policy = this.opts.autoPay ?? true;
      const ok = typeof policy === "function" ? policy({ sessionId: s.sessionId, second: s.second, owed, payee: s.payee }) : policy;
      if (!ok) return null;
    }
    const total = this.totalSent - sent + owed + this.tipped;
    if (total > this.opts.grant.grant.cap) {
      this.emit({
        type: "error",
        error: new RelayError("cap_reached", `paying ${owed} to ${s.payee} would take the grant past its cap ${this.opts.grant.grant.cap}`),
      });
      return null;
    }
    this.sent.set(s.payee, owed);
    // Signed and sent one after another, so vouchers leave in the order they were decided (a later, higher one
    // overtaking an earlier one would make the earlier one stale).
    const send = this.sending.then(async () => {
      const sig = await signVoucher(this.opts.grant.sessionKey, this.opts.domain, {
        grantId: this.grantId,
        payee: s.payee,
        cumulative: owed,
      });
      try {
        this.sendFrame({ type: "voucher", grantId: this.grantId, payee: s.payee, cumulative: owed.toString(), sig });
      } catch (e) {
        if (this.sent.get(s.payee) === owed) this.sent.set(s.payee, sent);
        throw e;
      }
      if (owed > (this.onWire.get(s.payee) ?? 0n)) this.onWire.set(s.payee, owed);
      this.emit({ type: "voucher", sessionId: s.sessionId, payee: s.payee, cumulative: owed });
    });
    this.sending = send.catch(() => {});
    await send;
    return owed;
  }

  /**
   * Sends a tip signed by the session key (EIP-712 `Tip`, docs/PROTOCOL.md "`tip`") and resolves once the relay
   * stored it (`tipAck`). Rejects with the relay's code (`message_too_long`, `duplicate_tip`, `unknown_payee`,
   * `cap_exceeded`, `insufficient_funds`, `wrong_signer`, ...), or before sending anything: `message_too_long` for a
   * message over 280 bytes of UTF-8, `invalid_field` for an amount of 0 or a payee that is no address, `cap_reached`
   * when the grant's vouchers and tips with this one would pass its cap. After `connection_lost` or `timeout` the
   * tip may have been stored: send it again with the same `tipId` (it is acked again and settles once).
   */
  async tip(request: TipRequest): Promise<TipReceipt> {
    const message = request.message ?? "";
    const bytes = tipMessageBytes(message);
    if (bytes > MAX_TIP_MESSAGE_BYTES) {
      throw new RelayError("message_too_long", `tip message of ${bytes} bytes exceeds the limit of ${MAX_TIP_MESSAGE_BYTES}`);
    }
    let payee: Address;
    try {
      payee = getAddress(request.payee);
    } catch {
      throw new RelayError("invalid_field", `payee: not an address: ${request.payee}`);
    }
    const { amount } = request;
    if (amount <= 0n || amount > UINT256_MAX) throw new RelayError("invalid_field", `amount: a tip is more than 0, got ${amount}`);
    const tipId = request.tipId ?? newTipId();
    if (tipId < 0n || tipId > UINT256_MAX) throw new RelayError("invalid_field", `tipId: not a uint256: ${tipId}`);
    const key = tipId.toString();
    const before = this.tips.get(key);
    const cap = this.opts.grant.grant.cap;
    if (this.totalSent + this.tipped - (before ?? 0n) + amount > cap) {
      throw new RelayError("cap_reached", `a tip of ${amount} would take the grant past its cap ${cap}`);
    }
    await this.connect();
    this.tips.set(key, amount);
    const grantId = this.grantId;
    let onWire = false;
    // In the voucher queue: no voucher leaves while the tip waits, so an error meanwhile is the tip's.
    const send = this.sending.then(async () => {
      await this.vouchersAnswered();
      const sig = await signTip(this.opts.grant.sessionKey, this.opts.domain, { grantId, payee, tipId, amount, message });
      const answer = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          if (this.tipWait?.timer === timer) this.tipWait = null;
          reject(new RelayError("timeout", `no tipAck for tip ${key} in time`));
        }, this.opts.timeoutMs);
        this.tipWait = { resolve, reject, timer, tipId: key };
      });
      try {
        this.sendFrame({ type: "tip", grantId, payee, tipId: key, amount: amount.toString(), message, sig });
      } catch (e) {
        if (this.tipWait) clearTimeout(this.tipWait.timer);
        this.tipWait = null;
        throw e;
      }
      onWire = true;
      this.emit({ type: "tip", tipId, payee, amount });
      await answer;
    });
    this.sending = send.catch(() => {});
    try {
      await send;
    } catch (e) {
      const lost = onWire && e instanceof RelayError && (e.code === "connection_lost" || e.code === "timeout");
      // A refused or unsent tip was not stored (unless an earlier send of it was); one whose answer was lost may
      // have been, so it still counts.
      if (!lost && this.tips.get(key) === amount) {
        if (before === undefined) this.tips.delete(key);
        else this.tips.set(key, before);
      }
      throw e;
    }
    return { grantId, tipId, payee, amount, message };
  }

  /** Resolves once the relay answered every voucher sent (acked or refused). */
  private async vouchersAnswered(): Promise<void> {
    const deadline = Date.now() + this.opts.timeoutMs;
    while ([...this.onWire].some(([payee, c]) => c > (this.acked.get(payee) ?? 0n))) {
      if (!this.ws) throw new RelayError("connection_lost", "the relay connection closed before the tip was sent");
      if (Date.now() > deadline) throw new RelayError("timeout", "the vouchers before the tip were not answered in time");
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.wakers.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  private wake(): void {
    for (const w of this.wakers.splice(0)) w();
  }

  /** Closes the connection for good: stops every session (the relay closes them as `disconnected`). */
  close(): void {
    this.setState("stopped");
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const ws = this.ws;
    this.ws = null;
    this.failWaits(new RelayError("closed", "the relay client was closed"));
    this.sessions.clear();
    ws?.close(1000, "bye");
  }

  private failWaits(err: RelayError): void {
    if (this.readyWait) {
      clearTimeout(this.readyWait.timer);
      this.readyWait.reject(err);
      this.readyWait = null;
    }
    for (const w of this.playWaits.splice(0)) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    for (const [id, w] of this.stopWaits) {
      clearTimeout(w.timer);
      w.reject(err);
      this.stopWaits.delete(id);
    }
    if (this.tipWait) {
      clearTimeout(this.tipWait.timer);
      this.tipWait.reject(err);
      this.tipWait = null;
    }
  }

  private onClose(code: number, reason: string): void {
    this.ws = null;
    this.readyPromise = null;
    if (this._state === "stopped") return;
    const live = [...this.sessions.values()];
    this.sessions.clear();
    this.failWaits(new RelayError("connection_lost", `the relay connection closed (${code} ${reason})`));
    // The relay closed the sessions as `disconnected`; what was sent but not acked was not stored.
    for (const [payee, acked] of this.acked) this.sent.set(payee, acked);
    for (const s of this.sent.keys()) if (!this.acked.has(s)) this.sent.set(s, 0n);
    this.onWire.clear();
    this.wake();
    const idle = code === 1000 && live.length === 0;
    const reconnect = this.opts.reconnect ?? {};
    if (idle || reconnect === false) {
      this.setState(idle ? "idle" : "stopped");
      return;
    }
    if (this.opts.resume) {
      // Each track again from its first second not paid for (a free track: not yet released).
      this.toResume.push(
        ...live.map((s) => ({
          previousSessionId: s.sessionId,
          trackId: s.trackId,
          from: s.from + (s.ratePerSecond > 0n ? s.paidSeconds : s.second),
        })),
      );
    }
    const max = reconnect.maxAttempts ?? 10;
    if (this.attempt >= max) {
      this.setState("stopped");
      this.emit({ type: "error", error: new RelayError("connection_lost", `gave up after ${max} reconnections`) });
      return;
    }
    const delayMs = Math.min((reconnect.initialDelayMs ?? 500) * 2 ** this.attempt, reconnect.maxDelayMs ?? 10_000);
    this.attempt += 1;
    this.setState("reconnecting");
    this.emit({ type: "reconnecting", attempt: this.attempt, delayMs });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this._state !== "reconnecting") return;
      this.connect().then(
        () => this.resumeSessions(),
        () => {},
      );
    }, delayMs);
  }

  private async resumeSessions(): Promise<void> {
    const todo = this.toResume.splice(0);
    for (const r of todo) {
      try {
        const session = await this.play(r.trackId, { from: r.from });
        this.emit({ type: "resumed", previousSessionId: r.previousSessionId, session });
      } catch (e) {
        // Every second was paid and heard before the drop: the track is over, nothing to resume.
        if (e instanceof RelayError && e.code === "invalid_field" && r.from > 0) continue;
        this.emit({ type: "error", error: e instanceof RelayError ? e : new RelayError("connection_lost", String(e)) });
      }
    }
  }

  private onFrame(f: Frame): void {
    switch (f.type) {
      case "ready": {
        const grantId = f.grantId as Hex;
        const available = BigInt(f.available as string);
        this.attempt = 0;
        this.setState("ready");
        this.emit({ type: "ready", grantId, available });
        if (this.readyWait) {
          clearTimeout(this.readyWait.timer);
          this.readyWait.resolve({ grantId, available });
          this.readyWait = null;
        }
        return;
      }
      case "session": {
        const payee = getAddress(f.payee as string);
        const i = this.playWaits.findIndex((w) => w.trackId === String(f.trackId));
        const s: SessionInfo = {
          sessionId: f.sessionId as string,
          trackId: String(f.trackId),
          payee,
          ratePerSecond: BigInt(f.ratePerSecond as string),
          second: 0,
          owed: this.acked.get(payee) ?? 0n,
          acked: this.acked.get(payee) ?? 0n,
          base: this.acked.get(payee) ?? 0n,
          paid: 0n,
          from: i >= 0 ? this.playWaits[i].from : 0,
          paidSeconds: 0,
          paused: false,
          keys: new Map(),
        };
        // One live session per (grant, payee): a play of another track of the same artist supersedes the old one.
        for (const [id, old] of this.sessions) if (old.payee === payee) this.sessions.delete(id);
        this.sessions.set(s.sessionId, s);
        this.payeeOf.set(s.sessionId, payee);
        this.emit({ type: "session", session: s });
        if (i >= 0) {
          const [w] = this.playWaits.splice(i, 1);
          clearTimeout(w.timer);
          w.resolve(s);
        }
        return;
      }
      case "beat": {
        const s = this.sessions.get(f.sessionId as string);
        const owed = BigInt(f.owed as string);
        const second = Number(f.second);
        if (s) {
          if (s.second === 0) {
            s.base = owed - s.ratePerSecond * BigInt(second);
            s.paid = s.acked > s.base ? s.acked - s.base : 0n;
          }
          s.second = second;
          s.owed = owed;
          s.paused = false;
        }
        this.emit({ type: "beat", sessionId: f.sessionId as string, second, owed });
        if (s) {
          this.payOwed(s, false).catch((e) =>
            this.emit({ type: "error", error: e instanceof RelayError ? e : new RelayError("connection_lost", String(e)) }),
          );
        }
        return;
      }
      case "ack": {
        const sessionId = f.sessionId as string;
        const cumulative = BigInt(f.cumulative as string);
        const keys = ((f.keys as Array<{ index: number; key: Hex }> | undefined) ?? []).map((k) => ({
          index: Number(k.index),
          key: k.key,
        }));
        const s = this.sessions.get(sessionId);
        const payee = s?.payee ?? this.payeeOf.get(sessionId);
        if (payee && cumulative > (this.acked.get(payee) ?? 0n)) this.acked.set(payee, cumulative);
        this.wake();
        if (s) {
          s.acked = cumulative;
          s.paid = cumulative > s.base ? cumulative - s.base : 0n;
          s.paidSeconds = s.ratePerSecond > 0n ? Number(s.paid / s.ratePerSecond) : 0;
          for (const k of keys) s.keys.set(k.index, k.key);
        }
        this.emit({ type: "ack", sessionId, cumulative, keys });
        return;
      }
      case "paused": {
        const s = this.sessions.get(f.sessionId as string);
        if (s) s.paused = true;
        this.emit({ type: "paused", sessionId: f.sessionId as string, reason: String(f.reason) });
        return;
      }
      case "closed": {
        const sessionId = f.sessionId as string;
        const total = BigInt(f.total as string);
        this.sessions.delete(sessionId);
        this.emit({ type: "closed", sessionId, total });
        const w = this.stopWaits.get(sessionId);
        if (w) {
          clearTimeout(w.timer);
          this.stopWaits.delete(sessionId);
          w.resolve(total);
        }
        return;
      }
      case "tipAck": {
        const tipId = String(f.tipId);
        this.emit({ type: "tipAck", tipId: BigInt(tipId) });
        const w = this.tipWait;
        if (w && w.tipId === tipId && String(f.grantId).toLowerCase() === this.grantId.toLowerCase()) {
          clearTimeout(w.timer);
          this.tipWait = null;
          w.resolve();
        }
        return;
      }
      case "error": {
        this.onError(new RelayError(String(f.code), String(f.message)));
        this.wake();
        return;
      }
      default:
        return;
    }
  }

  private onError(err: RelayError): void {
    this.emit({ type: "error", error: err });
    if (this._state === "hello" && this.readyWait) {
      clearTimeout(this.readyWait.timer);
      this.readyWait.reject(err);
      this.readyWait = null;
      this.readyPromise = null;
      if (FATAL_GRANT_CODES.has(err.code) || err.code === "insufficient_funds") {
        // The relay keeps no grant after a refused hello; without a grant there is nothing to do on this socket.
        const ws = this.ws;
        this.ws = null;
        this.setState(FATAL_GRANT_CODES.has(err.code) ? "stopped" : "idle");
        ws?.close(1000, "hello refused");
      }
      return;
    }
    const tipWait = this.tipWait;
    // No voucher is on the wire while a tip waits: its codes are the tip's (a waiting play's `invalid_field` is the play's).
    if (tipWait && (TIP_CODES.has(err.code) || (TIP_SHARED_CODES.has(err.code) && !(err.code === "invalid_field" && this.playWaits.length > 0)))) {
      clearTimeout(tipWait.timer);
      this.tipWait = null;
      tipWait.reject(err);
      if (err.code !== "grant_revoked" && err.code !== "grant_expired") return;
    } else if (VOUCHER_CODES.has(err.code)) {
      // The refused voucher was not stored: the next one may carry the same cumulative again.
      for (const [payee, sent] of this.sent) {
        const acked = this.acked.get(payee) ?? 0n;
        if (sent > acked) this.sent.set(payee, acked);
      }
      for (const payee of this.onWire.keys()) this.onWire.set(payee, this.acked.get(payee) ?? 0n);
    } else if (err.code === "unknown_session" && this.stopWaits.size > 0) {
      const [id, w] = this.stopWaits.entries().next().value as [string, Pending<bigint>];
      clearTimeout(w.timer);
      this.stopWaits.delete(id);
      w.reject(err);
      return;
    } else if (this.playWaits.length > 0) {
      const w = this.playWaits.shift()!;
      clearTimeout(w.timer);
      w.reject(err);
    }
    if (err.code === "grant_revoked" || err.code === "grant_expired") {
      // Every session under the grant is closed by the relay; no further play or voucher can succeed.
      this.setState("stopped");
      this.toResume = [];
      const ws = this.ws;
      this.ws = null;
      this.failWaits(err);
      this.sessions.clear();
      ws?.close(1000, err.code);
    }
  }
}
