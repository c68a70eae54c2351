// The built package (dist/, what `file:../clients/ts` dependents import) loads in Node and exports the public API.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { PKG } from "../paths.js";

test("dist/index.js loads and exports the SDK", async () => {
  const sdk = await import(pathToFileURL(join(PKG, "dist", "index.js")).href);
  for (const name of [
    "RelayClient", "SessionKeyStore", "MemoryStorage", "signGrant", "signVoucher", "signTip", "tipDigest", "newTipId", "grantId", "voucherDomain",
    "TrackAudio", "ChunkPipeline", "GaplessPlayer", "VaultClient", "RegistryClient", "StudioClient", "GraphQLClient",
    "RelayError", "StudioError", "AudioError", "GraphQLRequestError", "vaultAbi", "registryAbi", "usdcAbi", "parseDevInfo",
  ]) {
    assert.ok(name in sdk, `exports ${name}`);
  }
  assert.ok("ListenerDocument" in sdk.gql && "SessionBeatsDocument" in sdk.gql);
});
