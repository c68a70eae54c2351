/**
 * A gapless player for the browser: each decrypted chunk (a standalone FLAC file of one second) is decoded with
 * WebAudio's `decodeAudioData` and scheduled to start exactly `index` seconds after the track's start, so the chunks
 * play back to back (docs/PROTOCOL.md "Chunks"). The `AudioContext` is created at the manifest's sample rate so no
 * chunk is resampled on its own.
 */
import type { Manifest, PlainChunk } from "./audio.js";

/** Options of {@link GaplessPlayer}. */
export interface GaplessPlayerOptions {
  /** An existing context (e.g. with a custom destination); default: a new `AudioContext` at the track's rate. */
  context?: AudioContext;
  /** Where the audio goes (default `context.destination`). */
  destination?: AudioNode;
  /** Seconds of lead before the first chunk plays (default 0.1). */
  leadSeconds?: number;
}

/** Plays a track's chunks back to back as they arrive. */
export class GaplessPlayer {
  readonly context: AudioContext;
  private readonly destination: AudioNode;
  private readonly lead: number;
  /** Context time at which chunk 0 starts (set by the first chunk scheduled). */
  private startAt: number | null = null;
  private readonly sources = new Map<number, AudioBufferSourceNode>();
  private scheduledUntil = 0;
  /** Called when a chunk is scheduled too late to play whole (its start time had passed): the audio ran dry. */
  onUnderrun: ((index: number) => void) | null = null;
  /** Called after the last chunk ends. */
  onEnded: (() => void) | null = null;

  constructor(
    readonly manifest: Manifest,
    options: GaplessPlayerOptions = {},
  ) {
    this.context = options.context ?? new AudioContext({ sampleRate: manifest.sampleRate });
    this.destination = options.destination ?? this.context.destination;
    this.lead = options.leadSeconds ?? 0.1;
  }

  /**
   * Decodes chunk `index` and schedules it at `start + index` seconds. The first chunk given fixes the start;
   * a chunk given after its time has passed plays from where it should be (the part already due is skipped).
   */
  async enqueue(chunk: PlainChunk): Promise<void> {
    // decodeAudioData detaches its buffer: hand it a copy.
    const buffer = await this.context.decodeAudioData(chunk.flac.slice().buffer as ArrayBuffer);
    if (this.startAt === null) this.startAt = this.context.currentTime + this.lead - chunk.index;
    const when = this.startAt + chunk.index;
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.destination);
    const now = this.context.currentTime;
    if (when >= now) {
      source.start(when);
    } else {
      this.onUnderrun?.(chunk.index);
      const offset = now - when;
      if (offset >= buffer.duration) return;
      source.start(now, offset);
    }
    this.sources.set(chunk.index, source);
    this.scheduledUntil = Math.max(this.scheduledUntil, when + buffer.duration);
    source.onended = () => {
      this.sources.delete(chunk.index);
      if (chunk.index === this.manifest.chunkCount - 1) this.onEnded?.();
    };
  }

  /** Seconds into the track now (0 before the first chunk). */
  get position(): number {
    if (this.startAt === null) return 0;
    return Math.max(0, Math.min(this.context.currentTime - this.startAt, this.manifest.durationMs / 1000));
  }

  /** Seconds of audio scheduled ahead of now. */
  get buffered(): number {
    return Math.max(0, this.scheduledUntil - this.context.currentTime);
  }

  /** Pauses output (the context's clock stops, so the schedule holds). */
  async pause(): Promise<void> {
    await this.context.suspend();
  }

  /** Resumes output; browsers need a user gesture before the first call. */
  async resume(): Promise<void> {
    await this.context.resume();
  }

  /** Stops every scheduled chunk. */
  stop(): void {
    for (const s of this.sources.values()) {
      try {
        s.stop();
      } catch {
        // Already stopped.
      }
    }
    this.sources.clear();
  }

  /** Stops and closes the context (when this player created it). */
  async close(): Promise<void> {
    this.stop();
    await this.context.close();
  }
}
