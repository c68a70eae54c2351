// One track playing: the relay session paid beat by beat (the SDK's RelayClient signs each voucher with this
// device's session key), each second's chunk fetched, checked against the on-chain root, decrypted with the key
// the ack releases and scheduled gaplessly. The output goes through an AnalyserNode the page exposes
// (`window.beatstream`), so a test can hear it.
import {
  ChunkPipeline,
  GaplessPlayer,
  RelayClient,
  type RelayEvent,
  RelayError,
  TrackAudio,
} from '@beatstream/client';
import type { Hex } from 'viem';
import type { AppConfig } from './config';
import { describe } from './errors';
import type { Wallet } from './wallet';

/** The track to play. */
export interface PlayableTrack {
  id: string;
  title: string;
  artist: string;
  contentHash: Hex;
  duration: number;
  ratePerSecond: bigint;
}

/** What the page shows of a play. */
export interface PlayState {
  track: PlayableTrack;
  status: 'starting' | 'playing' | 'paused' | 'stopped' | 'ended' | 'failed';
  /** Seconds the relay has billed. */
  second: number;
  /** Paid in this session: the newest acked cumulative above the session's start. */
  paid: bigint;
  /** Cost per second. */
  ratePerSecond: bigint;
  /** Seconds of audio heard (the player's clock). */
  position: number;
  /** Why it paused or stopped, in words. */
  message: string | null;
  /** The relay error code behind `message`, if any. */
  code: string | null;
}

/** What the page exposes for tests: the live output and its clock. */
export interface AudioProbe {
  context: AudioContext;
  analyser: AnalyserNode;
  /** Root mean square of the output's last 2048 samples. */
  rms(): number;
  position(): number;
}

declare global {
  interface Window {
    beatstream?: { audio: AudioProbe | null; state: PlayState | null };
  }
}

const PAUSE_REASONS: Record<string, string> = {
  vouchers_behind: 'Paused: the relay is waiting for this device to pay the last second.',
  node_unreachable: 'Paused: the relay lost its payment channel node.',
  insufficient_funds: 'Paused: your vault balance has run out. Deposit to keep listening.',
};

/** A play of one track; `onChange` gets every new state. */
export class Playback {
  state: PlayState;
  private relay: RelayClient | null = null;
  private player: GaplessPlayer | null = null;
  private pipeline: ChunkPipeline | null = null;
  private sessionId: string | null = null;
  private base = 0n;
  private off: (() => void) | null = null;
  private ticker: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly config: AppConfig,
    private readonly wallet: Wallet,
    track: PlayableTrack,
    private readonly onChange: (s: PlayState) => void,
  ) {
    this.state = { track, status: 'starting', second: 0, paid: 0n, ratePerSecond: track.ratePerSecond, position: 0, message: null, code: null };
  }

  private set(patch: Partial<PlayState>): void {
    this.state = { ...this.state, ...patch };
    window.beatstream = { ...(window.beatstream ?? { audio: null }), state: this.state };
    this.onChange(this.state);
  }

  /** Signs a grant if this device has none (one wallet prompt), opens the audio and starts the session. */
  async start(): Promise<void> {
    const { wallet, config, state } = this;
    // The context is made now, inside the click's task, so the browser lets it play.
    const context = new AudioContext();
    const analyser = context.createAnalyser();
    analyser.fftSize = 2048;
    analyser.connect(context.destination);
    const samples = new Float32Array(analyser.fftSize);
    window.beatstream = {
      state: this.state,
      audio: {
        context,
        analyser,
        rms: () => {
          analyser.getFloatTimeDomainData(samples);
          let sum = 0;
          for (const s of samples) sum += s * s;
          return Math.sqrt(sum / samples.length);
        },
        position: () => this.player?.position ?? 0,
      },
    };
    try {
      const audio = await TrackAudio.open({ apiUrl: config.apiUrl, track: { contentHash: state.track.contentHash, duration: state.track.duration } });
      const grant = await wallet.sessions.ensureGrant(wallet.client, wallet.domain, wallet.address);
      // A second of lead: each key comes with the beat that pays its second, so a key a little late still plays whole.
      this.player = new GaplessPlayer(audio.manifest, { context, destination: analyser, leadSeconds: 1 });
      this.player.onEnded = () => this.finish('ended', 'The track ended.');
      this.pipeline = new ChunkPipeline(
        audio,
        (chunk) => void this.player?.enqueue(chunk).catch((e) => this.fail(e)),
        (e) => this.fail(e),
      );
      this.relay = new RelayClient({ url: config.relayUrl, domain: wallet.domain, grant, reconnect: { maxAttempts: 3 } });
      this.off = this.relay.on((e) => this.onEvent(e));
      await this.relay.connect();
      const session = await this.relay.play(state.track.id);
      this.sessionId = session.sessionId;
      this.base = session.acked;
      this.set({ status: 'playing', ratePerSecond: session.ratePerSecond });
      this.ticker = setInterval(() => this.set({ position: this.player?.position ?? 0 }), 250);
    } catch (e) {
      this.fail(e);
      throw e;
    }
  }

  private onEvent(e: RelayEvent): void {
    switch (e.type) {
      case 'session':
        if (e.session.trackId === this.state.track.id) this.sessionId = e.session.sessionId;
        return;
      case 'beat':
        if (e.sessionId === this.sessionId) this.set({ second: e.second, status: 'playing', message: null, code: null });
        return;
      case 'ack':
        if (e.sessionId !== this.sessionId) return;
        this.pipeline?.addKeys(e.keys);
        this.set({ paid: e.cumulative - this.base });
        return;
      case 'paused':
        if (e.sessionId !== this.sessionId) return;
        void this.player?.pause();
        this.set({ status: 'paused', message: PAUSE_REASONS[e.reason] ?? `Paused by the relay: ${e.reason}.`, code: e.reason });
        return;
      case 'closed':
        if (e.sessionId === this.sessionId && this.state.status !== 'stopped') this.finish('stopped', null);
        return;
      case 'resumed':
        if (e.previousSessionId === this.sessionId) this.sessionId = e.session.sessionId;
        return;
      case 'error':
        this.fail(e.error);
        return;
      default:
        return;
    }
  }

  /** Resumes output after a pause the relay lifted (a new beat), or after a deposit paid what was owed. */
  async resume(): Promise<void> {
    if (!this.relay || !this.sessionId) return;
    await this.relay.pay(this.sessionId).catch(() => null);
    await this.player?.resume();
  }

  /** Stops the session; resolves with what it paid. */
  async stop(): Promise<bigint> {
    const id = this.sessionId;
    let total = this.state.paid;
    if (this.relay && id) {
      try {
        total = (await this.relay.stop(id)) - this.base;
      } catch {
        // The relay closes the session on its own when the socket goes.
      }
    }
    this.finish('stopped', null, total);
    return total;
  }

  private fail(e: unknown): void {
    const code = e instanceof RelayError ? e.code : ((e as { code?: string })?.code ?? null);
    if (this.state.status === 'stopped' || this.state.status === 'ended') return;
    // Funds or the grant ran out: the session holds, and a deposit (or a new grant) lets it go on.
    const fundsOut = code === 'insufficient_funds' || code === 'cap_reached' || code === 'cap_exceeded';
    void this.player?.pause();
    this.set({ status: fundsOut ? 'paused' : 'failed', message: describe(e, { relayUrl: this.config.relayUrl }), code: typeof code === 'string' ? code : null });
    if (!fundsOut) this.teardown();
  }

  private finish(status: 'stopped' | 'ended', message: string | null, paid = this.state.paid): void {
    this.set({ status, message, paid, position: this.player?.position ?? this.state.position });
    this.teardown();
  }

  private teardown(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
    this.pipeline?.stop();
    this.off?.();
    this.relay?.close();
    this.relay = null;
    const player = this.player;
    this.player = null;
    void player?.close().catch(() => {});
  }
}
