// The listener: vault balance and thawing funds, deposits and withdrawals, artists and their tracks, the player
// (cost per second live, a clear message when funds or the grant run out), history and this wallet's devices.
import { type GraphQLClient, gql } from '@beatstream/client';
import { useEffect, useRef, useState } from 'react';
import type { Address, Hex } from 'viem';
import type { AppConfig } from './config';
import { parseUsdc, short, usdc, when } from './format';
import { Playback, type PlayState, type PlayableTrack } from './playback';
import { CatalogueDocument } from './queries';
import { TipButton } from './tipform';
import { ActionButton, Notice, usePoll } from './ui';
import type { Wallet } from './wallet';

export function ListenerPage({ config, wallet, graphql }: { config: AppConfig; wallet: Wallet; graphql: GraphQLClient }) {
  const vault = usePoll(
    async () => {
      const [account, token] = await Promise.all([wallet.vault.account(wallet.address), wallet.vault.tokenBalance(wallet.address)]);
      return { ...account, token };
    },
    2000,
    [wallet.address],
  );
  const listener = usePoll(() => graphql.query(gql.ListenerDocument, { address: wallet.address, first: 10 }), 4000, [wallet.address]);
  const artists = usePoll(() => graphql.query(CatalogueDocument, {}), 5000, []);
  const [play, setPlay] = useState<PlayState | null>(null);
  const playback = useRef<Playback | null>(null);

  const start = async (track: PlayableTrack) => {
    if (playback.current) await playback.current.stop();
    const p = new Playback(config, wallet, track, (s) => setPlay(s));
    playback.current = p;
    setPlay(p.state);
    await p.start();
  };
  useEffect(() => () => void playback.current?.stop(), []);

  const v = vault.value;
  const now = Math.floor(Date.now() / 1000);
  return (
    <div className="grid">
      <section aria-labelledby="balance-h" className="card">
        <h2 id="balance-h">Balance</h2>
        {vault.error && <Notice kind="error">{vault.error}</Notice>}
        <dl className="figures">
          <dt>In the vault, available</dt>
          <dd data-testid="vault-available" data-raw={v?.available.toString() ?? ''}>
            {v ? `${usdc(v.available)} USDC` : '…'}
          </dd>
          <dt>Thawing (withdrawal requested)</dt>
          <dd data-testid="vault-thawing" data-raw={v?.thawing.toString() ?? ''}>
            {v ? `${usdc(v.thawing)} USDC` : '…'}
            {v && v.thawing > 0n && <small> withdrawable {when(v.thawEnd)}</small>}
          </dd>
          <dt>In your wallet</dt>
          <dd data-testid="wallet-usdc">{v ? `${usdc(v.token)} USDC` : '…'}</dd>
        </dl>
        <AmountForm
          label="Deposit (USDC)"
          initial="5"
          button="Deposit"
          testId="deposit"
          run={async (amount) => {
            await wallet.vault.deposit(amount);
            vault.refresh();
            listener.refresh();
            if (playback.current?.state.status === 'paused') await playback.current.resume();
          }}
        />
        <AmountForm
          label="Withdraw (USDC)"
          initial="1"
          button="Request withdrawal"
          testId="request-withdrawal"
          run={async (amount) => {
            await wallet.vault.requestWithdrawal(amount);
            vault.refresh();
          }}
        />
        {v && v.thawing > 0n && (
          <p className="row">
            <ActionButton
              action={async () => {
                await wallet.vault.withdraw();
                vault.refresh();
              }}
              disabled={BigInt(now) < v.thawEnd}
            >
              Withdraw {usdc(v.thawing)} USDC{BigInt(now) < v.thawEnd ? ` (from ${when(v.thawEnd)})` : ''}
            </ActionButton>
            <ActionButton kind="secondary" action={async () => { await wallet.vault.cancelWithdrawal(); vault.refresh(); }}>
              Cancel withdrawal
            </ActionButton>
          </p>
        )}
      </section>

      <section aria-labelledby="player-h" className="card">
        <h2 id="player-h">Player</h2>
        <Player state={play} onStop={() => playback.current?.stop().then(() => { vault.refresh(); listener.refresh(); })} onResume={() => playback.current?.resume()} />
      </section>

      <section aria-labelledby="browse-h" className="card wide">
        <h2 id="browse-h">Artists and tracks</h2>
        {artists.error && <Notice kind="error">{artists.error}</Notice>}
        {artists.value?.artists.edges.length === 0 && <p>No artist has registered yet.</p>}
        {artists.value?.artists.edges.map(({ node: a }) => (
          <article key={a.name} className="artist" aria-label={a.name}>
            <h3>
              <a href={`#/artists/${a.label}`}>{a.name}</a> <small>{usdc(a.ratePerSecond.raw)} USDC/s</small>
            </h3>
            <TipButton
              config={config}
              wallet={wallet}
              target={{ kind: 'artist', node: a.node as Hex, address: a.address as Address | null }}
              name={a.name}
              testId={`tip-artist-${a.label}`}
              onSent={() => vault.refresh()}
            />
            {a.texts.find((t) => t.key === 'description') && <p>{a.texts.find((t) => t.key === 'description')!.value}</p>}
            <ul className="tracks">
              {a.tracks.edges
                .filter(({ node: t }) => t.published)
                .map(({ node: t }) => (
                  <li key={t.id}>
                    <ActionButton
                      kind="secondary"
                      testId={`play-${t.id}`}
                      relayUrl={config.relayUrl}
                      action={() =>
                        start({
                          id: t.id,
                          title: t.title,
                          artist: a.name,
                          contentHash: t.contentHash as Hex,
                          duration: t.duration,
                          ratePerSecond: BigInt(t.ratePerSecond.raw),
                        })
                      }
                      busy="Starting…"
                    >
                      <span aria-hidden="true">▶ </span>Play <span className="sr-only">{t.title}</span>
                    </ActionButton>
                    <span className="title">{t.title}</span>
                    <span className="muted">
                      {t.duration} s · {usdc(t.ratePerSecond.raw)} USDC/s · {t.stats.streams} plays
                    </span>
                    <TipButton
                      config={config}
                      wallet={wallet}
                      target={{ kind: 'track', trackId: t.id }}
                      name={`${t.title} by ${a.name}`}
                      testId={`tip-track-${t.id}`}
                      onSent={() => vault.refresh()}
                    />
                  </li>
                ))}
            </ul>
          </article>
        ))}
      </section>

      <section aria-labelledby="history-h" className="card wide">
        <h2 id="history-h">History</h2>
        <table>
          <thead>
            <tr>
              <th>Started</th>
              <th>Track</th>
              <th>Artist</th>
              <th>Seconds</th>
              <th>Paid (USDC)</th>
              <th>Status</th>
            </tr>
          </thead>
          <tbody data-testid="history">
            {listener.value?.listener.sessions.edges.map(({ node: s }) => (
              <tr key={s.id}>
                <td>{when(s.startedAt)}</td>
                <td>{s.track?.title ?? s.trackId}</td>
                <td>{s.artist?.name ?? short(s.payee)}</td>
                <td>{s.seconds}</td>
                <td>{usdc(s.amount.raw)}</td>
                <td>{s.status.toLowerCase()}{s.closeReason ? ` (${s.closeReason})` : ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {listener.value && listener.value.listener.sessions.edges.length === 0 && <p className="muted">Nothing played yet.</p>}
      </section>

      <section aria-labelledby="devices-h" className="card wide">
        <h2 id="devices-h">Devices</h2>
        <p className="muted">
          Each device plays under a grant you signed for its own session key. Revoking one stops relays from taking its
          vouchers; the vault refuses them after the withdrawal delay ({config.withdrawalDelay} s).
        </p>
        <Devices wallet={wallet} grants={listener.value?.listener.grants ?? []} refresh={listener.refresh} />
      </section>
    </div>
  );
}

function AmountForm(props: { label: string; initial: string; button: string; testId: string; run: (amount: bigint) => Promise<void> }) {
  const [text, setText] = useState(props.initial);
  const [error, setError] = useState<string | null>(null);
  const id = `${props.testId}-amount`;
  return (
    <form className="row" onSubmit={(e) => e.preventDefault()}>
      <label htmlFor={id}>{props.label}</label>
      <input id={id} data-testid={id} inputMode="decimal" value={text} onChange={(e) => setText(e.target.value)} size={8} />
      <ActionButton
        testId={props.testId}
        action={async () => {
          setError(null);
          let amount: bigint;
          try {
            amount = parseUsdc(text);
          } catch (e) {
            setError((e as Error).message);
            return;
          }
          await props.run(amount);
        }}
      >
        {props.button}
      </ActionButton>
      {error && <span role="alert" className="error">{error}</span>}
    </form>
  );
}

function Player({ state, onStop, onResume }: { state: PlayState | null; onStop: () => void; onResume: () => void }) {
  if (!state) return <p className="muted">Pick a track below. Each second you hear is paid from your vault as it plays.</p>;
  const live = state.status === 'playing' || state.status === 'paused' || state.status === 'starting';
  return (
    <div data-testid="player" data-status={state.status}>
      <p className="now">
        <strong>{state.track.title}</strong> · {state.track.artist}
      </p>
      <dl className="figures">
        <dt>Cost</dt>
        <dd data-testid="player-rate">{usdc(state.ratePerSecond)} USDC per second</dd>
        <dt>Heard</dt>
        <dd data-testid="player-position">
          {state.position.toFixed(1)} s of {state.track.duration} s
        </dd>
        <dt>Paid this play</dt>
        <dd data-testid="player-paid" data-raw={state.paid.toString()}>
          {usdc(state.paid)} USDC ({state.second} s billed)
        </dd>
        <dt>Status</dt>
        <dd data-testid="player-status">{state.status}</dd>
      </dl>
      <progress max={state.track.duration} value={state.position} aria-label="Position in the track" />
      {state.message && (
        <Notice kind={state.status === 'failed' ? 'error' : 'warn'} testId="player-message">
          {state.message}
        </Notice>
      )}
      <p className="row">
        {live && (
          <button type="button" className="secondary" data-testid="stop" onClick={onStop}>
            ■ Stop
          </button>
        )}
        {state.status === 'paused' && (
          <button type="button" onClick={onResume}>
            Resume
          </button>
        )}
      </p>
    </div>
  );
}

type Grant = gql.ListenerQuery['listener']['grants'][number];

function Devices({ wallet, grants, refresh }: { wallet: Wallet; grants: Grant[]; refresh: () => void }) {
  const mine = wallet.sessions.signedGrant(wallet.domain, wallet.address)?.grantId.toLowerCase();
  if (grants.length === 0) return <p className="muted">No device has played yet.</p>;
  return (
    <table>
      <thead>
        <tr>
          <th>Grant</th>
          <th>Session key</th>
          <th>Cap</th>
          <th>Promised</th>
          <th>Expires</th>
          <th />
        </tr>
      </thead>
      <tbody data-testid="devices">
        {grants.map((g) => (
          <tr key={g.id}>
            <td>
              {short(g.id)} {g.id.toLowerCase() === mine && <span className="badge">this device</span>}
            </td>
            <td>{short(g.sessionKey)}</td>
            <td>{usdc(g.cap.raw)}</td>
            <td>{usdc(g.vouched.raw)}</td>
            <td>{when(g.expiresAt)}</td>
            <td>
              {g.revoked ? (
                <span className="muted">revoked {when(g.revokedAt)}</span>
              ) : (
                <ActionButton
                  kind="danger"
                  action={async () => {
                    await wallet.vault.revokeGrant(g.id as Hex);
                    if (g.id.toLowerCase() === mine) wallet.sessions.forget(wallet.domain, wallet.address);
                    refresh();
                  }}
                >
                  Revoke <span className="sr-only">grant {short(g.id)}</span>
                </ActionButton>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
