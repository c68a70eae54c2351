#!/usr/bin/env node
// Copies the ABIs of the deployed contracts from forge's artifacts (out/) into primitives/abi/, where the Rust
// bindings (`sol!`) read them. `--check` fails instead when a committed ABI differs from the compiled one, so the
// bindings can never drift from the contracts (run by `make test`).
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const contracts = [
  ["BeatStreamVault.sol", "BeatStreamVault"],
  ["BeatStreamRegistry.sol", "BeatStreamRegistry"],
  ["MockUSDC.sol", "MockUSDC"],
  ["ENSRegistry.sol", "ENSRegistry"],
];
const check = process.argv.includes("--check");
let stale = [];
for (const [file, name] of contracts) {
  const artifact = join(root, "out", file, `${name}.json`);
  if (!existsSync(artifact)) {
    console.error(`missing ${artifact}: run \`forge build\` (make build) first`);
    process.exit(1);
  }
  const abi = JSON.stringify(JSON.parse(readFileSync(artifact, "utf8")).abi, null, 2) + "\n";
  const target = join(root, "primitives", "abi", `${name}.json`);
  const current = existsSync(target) ? readFileSync(target, "utf8") : "";
  if (current === abi) continue;
  if (check) stale.push(target);
  else writeFileSync(target, abi);
}
if (stale.length) {
  console.error(`ABI out of date (run \`make abi\` and commit):\n  ${stale.join("\n  ")}`);
  process.exit(1);
}
