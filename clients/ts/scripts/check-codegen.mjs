#!/usr/bin/env node
// Fails when src/graphql/generated.ts is not what graphql-codegen writes from docs/schema.graphql and
// src/graphql/operations.graphql now (the schema changed, or an operation was edited without `npm run gen`).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const dir = mkdtempSync(join(tmpdir(), "beatstream-codegen-"));
const out = join(dir, "generated.ts");
try {
  execFileSync(join(pkg, "node_modules", ".bin", "graphql-codegen"), ["--config", "codegen.ts"], {
    cwd: pkg,
    env: { ...process.env, BEATSTREAM_CODEGEN_OUT: out },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const fresh = readFileSync(out, "utf8");
  const committed = readFileSync(join(pkg, "src", "graphql", "generated.ts"), "utf8");
  if (fresh !== committed) {
    console.error("clients/ts/src/graphql/generated.ts is stale: run `npm run gen` in clients/ts and commit it");
    process.exit(1);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
