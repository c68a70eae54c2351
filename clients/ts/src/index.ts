/**
 * `@beatstream/client`: the BeatStream protocol for wallets and frontends, on viem.
 *
 * - `eip712`: grant and voucher types, ids, digests and signatures;
 * - `session`: the session key and signed grant kept in the browser;
 * - `relay`: the relay protocol as a state machine that pays each beat;
 * - `audio` and `player`: verified, encrypted chunks decrypted with WebCrypto and played gaplessly;
 * - `contracts`: deposits (with permit), withdrawals, revocation, artist names and tracks;
 * - `studio`: SIWE sign-in and uploads; `graphql`: typed queries and subscriptions.
 */
export * from "./eip712.js";
export * from "./errors.js";
export * from "./session.js";
export * from "./relay.js";
export * from "./audio.js";
export * from "./player.js";
export * from "./contracts.js";
export * from "./studio.js";
export * from "./config.js";
export * from "./graphql/client.js";
export * as gql from "./graphql/generated.js";
export { vaultAbi, registryAbi, usdcAbi } from "./abi.js";
