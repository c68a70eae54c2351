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
 */
import { type Address, type Hex, getAddress } from "viem";
import { type VoucherDomain, signVoucher, toWireGrant } from "./eip712.js";
import { FATAL_GRANT_CODES, RelayError, VOUCHER_CODES } from "./errors.js";
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
  /** The artist's address record: whom the vouchers pay. */
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
  /** How long `connect`, `play` and `stop` wait for their answer (default 15 s). */
  timeoutMs?: number;
}

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

  /** Everything sent under the grant so far, over all payees (what counts against its cap). */
  get totalSent(): bigint {
    let t = 0n;
    for (const v of this.sent.values()) t += v;
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
    const total = this.totalSent - sent + owed;
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
      this.emit({ type: "voucher", sessionId: s.sessionId, payee: s.payee, cumulative: owed });
    });
    this.sending = send.catch(() => {});
    await send;
    return owed;
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
        if (s) {
          if (cumulative > (this.acked.get(s.payee) ?? 0n)) this.acked.set(s.payee, cumulative);
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
      case "error": {
        this.onError(new RelayError(String(f.code), String(f.message)));
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
    if (VOUCHER_CODES.has(err.code)) {
      // The refused voucher was not stored: the next one may carry the same cumulative again.
      for (const [payee, sent] of this.sent) {
        const acked = this.acked.get(payee) ?? 0n;
        if (sent > acked) this.sent.set(payee, acked);
      }
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
