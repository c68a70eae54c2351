// GaplessPlayer's schedule, on a stand-in AudioContext that records what is started when (the real decoding and
// output are the browser's; web/'s Chromium test plays through it).
import assert from "node:assert/strict";
import { test } from "node:test";
import { GaplessPlayer, type Manifest } from "../../src/index.js";

class FakeSource {
  buffer: { duration: number } | null = null;
  onended: (() => void) | null = null;
  started: [number, number | undefined] | null = null;
  constructor(private readonly log: FakeSource[]) {}
  connect() {}
  start(when: number, offset?: number) {
    this.started = [when, offset];
    this.log.push(this);
  }
  stop() {}
}

class FakeContext {
  currentTime = 10;
  readonly destination = {};
  readonly started: FakeSource[] = [];
  decoded: number[] = [];
  async decodeAudioData(buf: ArrayBuffer) {
    this.decoded.push(buf.byteLength);
    return { duration: buf.byteLength === 3 ? 0.5 : 1 };
  }
  createBufferSource() {
    return new FakeSource(this.started);
  }
  async suspend() {}
  async resume() {}
  async close() {}
}

const manifest: Manifest = {
  version: 1,
  chunkSeconds: 1,
  chunkCount: 4,
  durationMs: 3500,
  sampleRate: 44_100,
  channels: 2,
  mimeType: "audio/flac",
  chunks: [],
  root: "0x00",
};

test("chunks are scheduled back to back from the first one's start, whatever order they decode in", async () => {
  const ctx = new FakeContext();
  const player = new GaplessPlayer(manifest, { context: ctx as unknown as AudioContext, leadSeconds: 0.25 });
  await player.enqueue({ index: 0, flac: new Uint8Array(2) });
  await player.enqueue({ index: 2, flac: new Uint8Array(2) });
  await player.enqueue({ index: 1, flac: new Uint8Array(2) });
  assert.deepEqual(
    ctx.started.map((s) => s.started),
    [
      [10.25, undefined],
      [12.25, undefined],
      [11.25, undefined],
    ],
  );
  assert.equal(player.buffered, 3.25 - 0);
  ctx.currentTime = 11.75;
  assert.equal(player.position, 1.5);
  // A chunk that arrives after its time plays from where it should be, and the underrun is reported.
  const late: number[] = [];
  player.onUnderrun = (i) => late.push(i);
  ctx.currentTime = 13.5;
  await player.enqueue({ index: 3, flac: new Uint8Array(3) });
  assert.deepEqual(late, [3]);
  assert.deepEqual(ctx.started.at(-1)!.started, [13.5, 0.25]);
  let ended = false;
  player.onEnded = () => (ended = true);
  ctx.started.at(-1)!.onended!();
  assert.ok(ended, "the last chunk's end ends the track");
});

test("a track resumed in the middle starts its first chunk at once and the rest after it", async () => {
  const ctx = new FakeContext();
  const player = new GaplessPlayer(manifest, { context: ctx as unknown as AudioContext, leadSeconds: 0 });
  await player.enqueue({ index: 2, flac: new Uint8Array(2) });
  await player.enqueue({ index: 3, flac: new Uint8Array(3) });
  assert.deepEqual(ctx.started.map((s) => s.started![0]), [10, 11]);
  assert.equal(player.position, 2);
});
