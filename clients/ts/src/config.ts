/** Where a node's services and contracts are: what the SDK's clients need to be made. */
import { type Address, type Hex, getAddress } from "viem";
import type { Contracts } from "./contracts.js";

/** A node's addresses and its deployment. */
export interface NodeConfig {
  chainId: number;
  /** Ethereum JSON-RPC (the dev node's anvil). */
  rpcUrl?: string;
  /** The API's base, also the studio's and the audio's: `http://127.0.0.1:8080`. */
  apiUrl: string;
  /** `http://…/graphql`. */
  graphqlUrl: string;
  /** `ws://…/graphql/ws`. */
  graphqlWsUrl: string;
  /** The relay's WebSocket: `ws://…/ws/stream`. */
  relayUrl: string;
  contracts: Contracts;
  /** namehash of `beatstream.eth`. */
  rootNode: Hex;
  /** Seconds a withdrawal thaws. */
  withdrawalDelay: number;
}

/** The demo `beatstream dev` seeds (its info file's `demo`). */
export interface DevDemo {
  artist: { label: string; name: string; address: Address; node: Hex; privateKey: Hex };
  listener: { address: Address; privateKey: Hex };
  tracks: Array<{ id: string; title: string; root: Hex; duration: number; manifestUrl: string }>;
}

/** The JSON `beatstream dev --info-file PATH` writes once the node is ready (docs/CONFIGURATION.md). */
export interface DevInfo extends NodeConfig {
  deployment: {
    chainId: number;
    deploymentBlock: number;
    rootNode: Hex;
    withdrawalDelay: number;
    settlementWindow: number;
    contracts: Contracts;
  };
  demo: DevDemo;
}

/** Reads a dev info file's JSON (checksumming its addresses). */
export function parseDevInfo(json: unknown): DevInfo {
  const info = json as DevInfo;
  if (!info || typeof info !== "object" || !info.contracts || !info.relayUrl) throw new Error("not a beatstream dev info file");
  const c = info.contracts;
  info.contracts = {
    registry: getAddress(c.registry),
    usdc: getAddress(c.usdc),
    vault: getAddress(c.vault),
    ...(c.ensRegistry ? { ensRegistry: getAddress(c.ensRegistry) } : {}),
  };
  if (info.demo) {
    info.demo.artist.address = getAddress(info.demo.artist.address);
    info.demo.listener.address = getAddress(info.demo.listener.address);
  }
  return info;
}
