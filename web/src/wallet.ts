// The wallet the page acts with: an injected EIP-1193 wallet (checked to be on the node's chain), or in
// `beatstream dev` a burner account kept in this browser and funded by the dev node's faucet.
import { RegistryClient, SessionKeyStore, VaultClient, voucherDomain, type VoucherDomain } from '@beatstream/client';
import {
  type Address,
  type EIP1193Provider,
  type Hex,
  type PublicClient,
  type WalletClient,
  createPublicClient,
  createWalletClient,
  custom,
  http,
} from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import type { AppConfig } from './config';
import { AppError } from './errors';

/** A connected wallet and the SDK's clients over it. */
export interface Wallet {
  kind: 'injected' | 'burner';
  address: Address;
  client: WalletClient;
  publicClient: PublicClient;
  vault: VaultClient;
  registry: RegistryClient;
  domain: VoucherDomain;
  sessions: SessionKeyStore;
}

declare global {
  interface Window {
    ethereum?: EIP1193Provider;
  }
}

const BURNER_KEY = 'beatstream:burner';

function clients(config: AppConfig, kind: Wallet['kind'], client: WalletClient, address: Address): Wallet {
  const publicClient = createPublicClient({ chain: config.chain, transport: http(config.rpcUrl) }) as PublicClient;
  return {
    kind,
    address,
    client,
    publicClient,
    vault: new VaultClient(publicClient, config.contracts, client),
    registry: new RegistryClient(publicClient, config.contracts.registry, client),
    domain: voucherDomain(config.chainId, config.contracts.vault),
    sessions: new SessionKeyStore(),
  };
}

/** Whether the browser has an injected wallet. */
export function hasInjected(): boolean {
  return typeof window !== 'undefined' && !!window.ethereum;
}

/** Asks the injected wallet for an account and checks its network (offering to switch to the node's chain). */
export async function connectInjected(config: AppConfig): Promise<Wallet> {
  const eth = window.ethereum;
  if (!eth) throw new AppError('no_wallet', 'No browser wallet found: install one, or use the demo account in `beatstream dev`.');
  const [address] = (await eth.request({ method: 'eth_requestAccounts' })) as Address[];
  if (!address) throw new AppError('no_wallet', 'The wallet shared no account.');
  await ensureChain(eth, config);
  const client = createWalletClient({ account: address, chain: config.chain, transport: custom(eth) });
  return clients(config, 'injected', client, address);
}

/** Throws a clear `wrong_network` error unless the wallet is on the node's chain (after offering to switch). */
export async function ensureChain(eth: EIP1193Provider, config: AppConfig): Promise<void> {
  const current = parseInt((await eth.request({ method: 'eth_chainId' })) as string, 16);
  if (current === config.chainId) return;
  const hex = `0x${config.chainId.toString(16)}` as Hex;
  try {
    await eth.request({ method: 'wallet_switchEthereumChain', params: [{ chainId: hex }] });
  } catch {
    try {
      await eth.request({
        method: 'wallet_addEthereumChain',
        params: [{ chainId: hex, chainName: config.chain.name, nativeCurrency: config.chain.nativeCurrency, rpcUrls: [config.rpcUrl] }],
      });
    } catch {
      // Reported below.
    }
  }
  const now = parseInt((await eth.request({ method: 'eth_chainId' })) as string, 16);
  if (now !== config.chainId) {
    throw new AppError(
      'wrong_network',
      `Your wallet is on chain ${now}, this node's contracts are on chain ${config.chainId} (${config.rpcUrl}): switch networks in your wallet.`,
    );
  }
}

/** The dev node's burner account for this browser, made on first use and funded by the faucet when it has no ETH. */
export async function connectBurner(config: AppConfig, onStatus: (s: string) => void = () => {}): Promise<Wallet> {
  if (!config.faucet) throw new AppError('no_wallet', 'Demo accounts exist only on `beatstream dev`.');
  let key = localStorage.getItem(BURNER_KEY) as Hex | null;
  if (!key) {
    key = generatePrivateKey();
    localStorage.setItem(BURNER_KEY, key);
  }
  const account = privateKeyToAccount(key);
  const client = createWalletClient({ account, chain: config.chain, transport: http(config.rpcUrl) });
  const wallet = clients(config, 'burner', client, account.address);
  if ((await wallet.publicClient.getBalance({ address: account.address })) === 0n) {
    onStatus('Funding the demo account from the dev faucet…');
    const res = await fetch(config.faucet, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ address: account.address }),
    });
    if (!res.ok) {
      const body = (await res.json().catch(() => null)) as { error?: { message?: string } } | null;
      throw new AppError('faucet_failed', `The dev faucet failed: ${body?.error?.message ?? res.status}`);
    }
  }
  return wallet;
}
