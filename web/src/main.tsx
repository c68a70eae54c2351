// The BeatStream app: `#/` the listener, `#/artist` the artist, `#/artists/<label>` any artist's tips, supporters
// and splits. Served by the node on the API's address.
import { GraphQLClient } from '@beatstream/client';
import { useEffect, useMemo, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { ArtistPage, PublicArtistPage } from './artist';
import { type AppConfig, loadConfig } from './config';
import { describe } from './errors';
import { short } from './format';
import { ListenerPage } from './listener';
import './style.css';
import { ActionButton, Notice } from './ui';
import { type Wallet, connectBurner, connectInjected, hasInjected } from './wallet';

const WALLET_KIND = 'beatstream:wallet';

type Route = { page: 'listen' } | { page: 'artist' } | { page: 'public'; label: string };

function useRoute(): Route {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  const label = /^#\/artists\/([^/?#]+)/.exec(hash)?.[1];
  if (label) return { page: 'public', label: decodeURIComponent(label) };
  return hash.startsWith('#/artist') ? { page: 'artist' } : { page: 'listen' };
}

function App() {
  const [config, setConfig] = useState<AppConfig | null>(null);
  const [configError, setConfigError] = useState<string | null>(null);
  const [wallet, setWallet] = useState<Wallet | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [walletError, setWalletError] = useState<string | null>(null);
  const { page, ...params } = useRoute();
  const route = page;

  useEffect(() => {
    loadConfig().then(setConfig, (e) => setConfigError(describe(e)));
  }, []);
  const graphql = useMemo(() => (config ? new GraphQLClient({ url: config.graphqlUrl, wsUrl: config.graphqlWsUrl }) : null), [config]);

  const connect = async (kind: 'injected' | 'burner') => {
    if (!config) return;
    setWalletError(null);
    try {
      const w = kind === 'burner' ? await connectBurner(config, setStatus) : await connectInjected(config);
      localStorage.setItem(WALLET_KIND, kind);
      setWallet(w);
    } catch (e) {
      setWalletError(describe(e));
      throw e;
    } finally {
      setStatus(null);
    }
  };
  // Reconnect the demo account after a reload; an injected wallet reconnects when its owner clicks.
  useEffect(() => {
    if (config?.faucet && localStorage.getItem(WALLET_KIND) === 'burner') void connect('burner').catch(() => {});
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [config]);
  // An injected wallet that changes account or network: connect again (and say why if the network is wrong).
  useEffect(() => {
    const eth = window.ethereum;
    if (!eth || wallet?.kind !== 'injected') return;
    const again = () => void connect('injected').catch(() => setWallet(null));
    eth.on?.('chainChanged', again);
    eth.on?.('accountsChanged', again);
    return () => {
      eth.removeListener?.('chainChanged', again);
      eth.removeListener?.('accountsChanged', again);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [wallet]);

  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header>
        <span className="brand">BeatStream</span>
        <nav aria-label="Pages">
          <a href="#/" aria-current={route === 'listen' ? 'page' : undefined}>
            Listen
          </a>
          <a href="#/artist" aria-current={route === 'artist' ? 'page' : undefined}>
            Artist
          </a>
          <a href="/graphql">GraphiQL</a>
        </nav>
        <div className="wallet" data-testid="wallet">
          {wallet ? (
            <span title={wallet.address} data-testid="wallet-address" data-address={wallet.address}>
              {wallet.kind === 'burner' ? 'Demo account ' : ''}
              {short(wallet.address)}
            </span>
          ) : config ? (
            <>
              {hasInjected() && (
                <ActionButton action={() => connect('injected')} onError={() => {}} busy="Connecting…">
                  Connect wallet
                </ActionButton>
              )}
              {config.faucet && (
                <ActionButton testId="use-demo-account" action={() => connect('burner')} onError={() => {}} busy={status ?? 'Connecting…'}>
                  Use a demo account
                </ActionButton>
              )}
              {!hasInjected() && !config.faucet && <span className="muted">No browser wallet found.</span>}
            </>
          ) : null}
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {configError && <Notice kind="error">{configError}</Notice>}
        {walletError && <Notice kind="error" testId="wallet-error">{walletError}</Notice>}
        {config && !wallet && route !== 'public' && (
          <section className="card intro">
            <h1>{route === 'artist' ? 'For artists' : 'Listen, pay by the second'}</h1>
            <p>
              {route === 'artist'
                ? 'Register your name, upload tracks, and watch every second listeners pay for arrive.'
                : 'Deposit USDC once; each second you hear pays the artist, signed by this device and settled on-chain.'}
            </p>
            <p>Connect a wallet on chain {config.chainId} to start{config.faucet ? ', or use a demo account funded by the dev node' : ''}.</p>
          </section>
        )}
        {config && wallet && graphql && route === 'listen' && <ListenerPage config={config} wallet={wallet} graphql={graphql} />}
        {config && wallet && graphql && route === 'artist' && <ArtistPage config={config} wallet={wallet} graphql={graphql} />}
        {config && graphql && route === 'public' && 'label' in params && <PublicArtistPage graphql={graphql} label={params.label} />}
      </main>
    </>
  );
}

createRoot(document.getElementById('app')!).render(<App />);
