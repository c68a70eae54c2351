// Where the node's services are. The node that serves this page also serves /app/config.json (chain, contracts,
// relay, RPC; `beatstream dev` adds its faucet); the API, studio and audio are this page's own origin.
import type { NodeConfig } from '@beatstream/client';
import { type Address, type Chain, type Hex, defineChain, getAddress } from 'viem';

/** The node's config with what the dev node adds. */
export interface AppConfig extends NodeConfig {
  rpcUrl: string;
  chain: Chain;
  /** `beatstream dev` only: a faucet for the burner account the page makes. */
  faucet: string | null;
}

interface Served {
  chainId: number;
  rpcUrl: string;
  relayUrl: string;
  deployment: {
    rootNode: Hex;
    withdrawalDelay: number;
    contracts: { registry: Address; usdc: Address; vault: Address; ensRegistry?: Address };
  };
  dev?: { faucet?: string };
}

/** Loads the node's config; a node that publishes none gets a message saying so. */
export async function loadConfig(origin = location.origin): Promise<AppConfig> {
  let served: Served;
  try {
    const res = await fetch(`${origin}/app/config.json`);
    if (!res.ok) throw new Error(`${res.status}`);
    served = (await res.json()) as Served;
  } catch (e) {
    throw new Error(
      `This node publishes no app settings at /app/config.json (${(e as Error).message}): its operator sets --api-app-relay-url and --api-app-rpc-url (\`beatstream dev\` does it for you).`,
    );
  }
  const c = served.deployment.contracts;
  const ws = origin.replace(/^http/, 'ws');
  const chain = defineChain({
    id: served.chainId,
    name: served.chainId === 31337 ? 'BeatStream dev (anvil)' : `Chain ${served.chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [served.rpcUrl] } },
  });
  return {
    chainId: served.chainId,
    rpcUrl: served.rpcUrl,
    apiUrl: origin,
    graphqlUrl: `${origin}/graphql`,
    graphqlWsUrl: `${ws}/graphql/ws`,
    relayUrl: served.relayUrl,
    contracts: { registry: getAddress(c.registry), usdc: getAddress(c.usdc), vault: getAddress(c.vault) },
    rootNode: served.deployment.rootNode,
    withdrawalDelay: served.deployment.withdrawalDelay,
    chain,
    faucet: served.dev?.faucet ?? null,
  };
}
