// The README's minimal player is examples/minimal-player.ts verbatim (which `tsc -p tsconfig.test.json` typechecks
// against the SDK's source before any test runs), and is under 50 lines.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { PKG } from "../paths.js";

test("the README's minimal player is the typechecked example, under 50 lines", () => {
  const readme = readFileSync(join(PKG, "README.md"), "utf8");
  const example = readFileSync(join(PKG, "examples", "minimal-player.ts"), "utf8");
  const section = readme.split("## A minimal player")[1];
  assert.ok(section, "README has a 'A minimal player' section");
  const block = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  assert.equal(block, example);
  assert.ok(example.trimEnd().split("\n").length < 50);
});
