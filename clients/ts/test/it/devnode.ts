// Starts the built `beatstream dev` (anvil, contracts, Postgres, indexer, relay, keeper, API, studio and the demo
// artist with three tracks of audio) on free ports, and reads its `--info-file` once it is ready.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DevInfo, parseDevInfo } from "../../src/index.js";
import { REPO } from "../paths.js";

/** A running dev node. */
export interface DevNode {
  info: DevInfo;
  /** Everything it printed, for failure messages. */
  log: () => string;
  stop: () => Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** The binary: `BEATSTREAM_BIN`, else target/debug/beatstream, else target/release/beatstream. */
export function beatstreamBin(): string {
  const candidates = [process.env.BEATSTREAM_BIN, join(REPO, "target", "debug", "beatstream"), join(REPO, "target", "release", "beatstream")];
  for (const c of candidates) if (c && existsSync(c)) return c;
  throw new Error("no beatstream binary: run `cargo build -p beatstream-node --bin beatstream` (make test-sdk does) or set BEATSTREAM_BIN");
}

/** Starts `beatstream dev --listeners 0` and waits (up to `timeoutMs`) for its info file. */
export async function startDevNode(timeoutMs = 300_000): Promise<DevNode> {
  const dir = mkdtempSync(join(tmpdir(), "beatstream-sdk-"));
  const infoFile = join(dir, "info.json");
  const [api, relay] = [await freePort(), await freePort()];
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${join(REPO, "node_modules", ".beatstream", "bin")}:${join(REPO, "node_modules", ".bin")}:${process.env.PATH}` };
  for (const k of Object.keys(env)) if (k.startsWith("BEATSTREAM_")) delete env[k];
  env.RUST_LOG = env.RUST_LOG ?? "warn";
  const child: ChildProcess = spawn(
    beatstreamBin(),
    ["dev", "--listeners", "0", "--api-listen", `127.0.0.1:${api}`, "--relay-listen", `127.0.0.1:${relay}`, "--info-file", infoFile],
    { cwd: REPO, env, stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  child.stdout?.on("data", (d) => (out += d));
  child.stderr?.on("data", (d) => (out += d));
  let exited: number | null = null;
  const exit = new Promise<void>((resolve) => child.on("exit", (code) => ((exited = code ?? -1), resolve())));
  const stop = async () => {
    if (exited === null) {
      child.kill("SIGINT");
      const t = setTimeout(() => child.kill("SIGKILL"), 30_000);
      await exit;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(infoFile)) {
    if (exited !== null) {
      await stop();
      throw new Error(`beatstream dev exited (${exited}) before it was ready:\n${out.slice(-4000)}`);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`beatstream dev was not ready in ${timeoutMs / 1000} s:\n${out.slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return { info: parseDevInfo(JSON.parse(readFileSync(infoFile, "utf8"))), log: () => out, stop };
}

/** Polls `f` until it returns a value other than `undefined`/`false`, or fails after `timeoutMs`. */
export async function eventually<T>(what: string, f: () => Promise<T | undefined | false>, timeoutMs = 60_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s${last ? ` (last error: ${String(last)})` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
