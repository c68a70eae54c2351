import { createPublicClient, createWalletClient, custom, http, type EIP1193Provider } from "viem";
import {
  ChunkPipeline, GaplessPlayer, RegistryClient, RelayClient, SessionKeyStore, TrackAudio, voucherDomain,
  type NodeConfig,
} from "@beatstream/client";

/** Plays `trackId` from the node `config` with the browser's wallet; returns a function that stops it. */
export async function play(config: NodeConfig, trackId: bigint, ethereum: EIP1193Provider) {
  const wallet = createWalletClient({ transport: custom(ethereum) });
  const [listener] = await wallet.requestAddresses();
  const domain = voucherDomain(config.chainId, config.contracts.vault);
  // One wallet signature per device and week: the session key and its grant stay in localStorage.
  const grant = await new SessionKeyStore().ensureGrant(wallet, domain, listener, { cap: 5_000_000n });

  // The track's audio, checked against its on-chain root and length before anything plays.
  const chain = createPublicClient({ transport: http(config.rpcUrl) });
  const track = await new RegistryClient(chain, config.contracts.registry).track(trackId);
  const audio = await TrackAudio.open({ apiUrl: config.apiUrl, track });
  const player = new GaplessPlayer(audio.manifest);
  const chunks = new ChunkPipeline(audio, (chunk) => void player.enqueue(chunk), (e) => console.error(e));

  // Each beat is paid with a voucher; each ack releases the keys of the seconds paid.
  const relay = new RelayClient({ url: config.relayUrl, domain, grant });
  relay.on((event) => {
    if (event.type === "ack") chunks.addKeys(event.keys);
    if (event.type === "paused") console.warn("paused: the vouchers are behind (funds or cap)");
    if (event.type === "error") console.warn(`relay refused: ${event.error.code}`);
  });
  const session = await relay.play(trackId);
  await player.resume(); // call play() from a click: browsers start audio only after a user gesture

  return async () => {
    await relay.stop(session.sessionId);
    relay.close();
    chunks.stop();
    await player.close();
  };
}
