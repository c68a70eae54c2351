// The artist: sign in to the studio (SIWE), register the name with its records and rate, upload and publish tracks,
// watch earnings arrive live (the artistEarnings subscription) and withdraw them; its tips with their messages, its
// supporters and its splits. `PublicArtistPage` is the last three for any artist, without a wallet.
import { type GraphQLClient, StudioClient, gql } from '@beatstream/client';
import { useEffect, useMemo, useState } from 'react';
import type { Hex } from 'viem';
import type { AppConfig } from './config';
import { describe } from './errors';
import { parseUsdc, short, usdc, when } from './format';
import { ArtistSupport } from './support';
import { ActionButton, Notice, usePoll } from './ui';
import type { Wallet } from './wallet';

type Earnings = gql.ArtistEarningsSubscription['artistEarnings'];

export function ArtistPage({ config, wallet, graphql }: { config: AppConfig; wallet: Wallet; graphql: GraphQLClient }) {
  const artist = usePoll(() => graphql.query(gql.ArtistDocument, { address: wallet.address, first: 10 }), 4000, [wallet.address]);
  const a = artist.value?.artist ?? null;
  const studio = useMemo(() => new StudioClient({ apiUrl: config.apiUrl }), [config.apiUrl]);
  const [signedIn, setSignedIn] = useState(false);

  return (
    <div className="grid">
      <section aria-labelledby="name-h" className="card">
        <h2 id="name-h">Artist name</h2>
        {artist.error && <Notice kind="error">{artist.error}</Notice>}
        {!artist.value && !artist.error && <p>…</p>}
        {artist.value && !a && <Register wallet={wallet} onDone={artist.refresh} />}
        {a && (
          <dl className="figures" data-testid="artist-name">
            <dt>Name</dt>
            <dd>{a.name}</dd>
            <dt>Rate</dt>
            <dd>{usdc(a.ratePerSecond.raw)} USDC per second</dd>
            {a.texts.map((t) => (
              <span key={t.key} style={{ display: 'contents' }}>
                <dt>{t.key}</dt>
                <dd>{t.value}</dd>
              </span>
            ))}
            <dt>Paid to</dt>
            <dd>{a.address ? short(a.address) : '—'}</dd>
          </dl>
        )}
      </section>

      {a && <Earnings config={config} wallet={wallet} graphql={graphql} label={a.label} />}

      {a && <ArtistSupport graphql={graphql} label={a.label} />}

      {a && (
        <section aria-labelledby="studio-h" className="card wide">
          <h2 id="studio-h">Studio</h2>
          {!signedIn ? (
            <p className="row">
              Sign in with your wallet to upload audio.
              <ActionButton
                testId="sign-in"
                action={async () => {
                  await studio.signIn(wallet.client, config.chainId);
                  await studio.me(a.label);
                  setSignedIn(true);
                }}
              >
                Sign in with Ethereum
              </ActionButton>
            </p>
          ) : (
            <Upload wallet={wallet} studio={studio} label={a.label} node={a.node as Hex} onDone={artist.refresh} />
          )}
          <h3>Tracks</h3>
          <table>
            <thead>
              <tr>
                <th>Id</th>
                <th>Title</th>
                <th>Seconds</th>
                <th>Plays</th>
                <th>Revenue (USDC)</th>
                <th>Published</th>
              </tr>
            </thead>
            <tbody data-testid="artist-tracks">
              {a.tracks.edges.map(({ node: t }) => (
                <tr key={t.id}>
                  <td>{t.id}</td>
                  <td>{t.title}</td>
                  <td>{t.duration}</td>
                  <td>{t.stats.streams}</td>
                  <td>{usdc(t.stats.revenue.raw)}</td>
                  <td>{t.published ? when(t.publishedAt) : 'no'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
    </div>
  );
}

/** Any artist's tips, supporters and splits (`#/artists/<label>`). */
export function PublicArtistPage({ graphql, label }: { graphql: GraphQLClient; label: string }) {
  return (
    <div className="grid">
      <section className="card wide">
        <h1 data-testid="public-artist">{label.includes('.') ? label : `${label}.beatstream.eth`}</h1>
      </section>
      <ArtistSupport graphql={graphql} label={label} />
    </div>
  );
}

function Register({ wallet, onDone }: { wallet: Wallet; onDone: () => void }) {
  const [label, setLabel] = useState('');
  const [rate, setRate] = useState('0.001');
  const [description, setDescription] = useState('');
  const [genre, setGenre] = useState('');
  const [progress, setProgress] = useState<string | null>(null);
  return (
    <form className="stack" onSubmit={(e) => e.preventDefault()} aria-label="Register an artist name">
      <p className="muted">Register a name under beatstream.eth: listeners pay your rate for every second they hear.</p>
      <label>
        Name <input data-testid="register-label" value={label} onChange={(e) => setLabel(e.target.value.toLowerCase())} placeholder="alice" required />
        <small>.beatstream.eth</small>
      </label>
      <label>
        Rate (USDC per second) <input data-testid="register-rate" inputMode="decimal" value={rate} onChange={(e) => setRate(e.target.value)} size={8} />
      </label>
      <label>
        Description <input data-testid="register-description" value={description} onChange={(e) => setDescription(e.target.value)} />
      </label>
      <label>
        Genre <input data-testid="register-genre" value={genre} onChange={(e) => setGenre(e.target.value)} />
      </label>
      <ActionButton
        testId="register"
        busy={progress ?? 'Registering…'}
        action={async () => {
          const ratePerSecond = parseUsdc(rate);
          if (!(await wallet.registry.isValidLabel(label))) {
            throw new Error(`"${label}" cannot be a name: 3 to 63 characters of a-z, 0-9 and -.`);
          }
          const records = [
            ...(description ? [{ key: 'description', value: description }] : []),
            ...(genre ? [{ key: 'genre', value: genre }] : []),
          ];
          setProgress('Committing, then registering (two transactions)…');
          try {
            await wallet.registry.register(label, ratePerSecond, records);
          } finally {
            setProgress(null);
          }
          onDone();
        }}
      >
        Register
      </ActionButton>
    </form>
  );
}

function Upload(props: { wallet: Wallet; studio: StudioClient; label: string; node: Hex; onDone: () => void }) {
  const [title, setTitle] = useState('');
  const [file, setFile] = useState<File | null>(null);
  const [done, setDone] = useState<string | null>(null);
  return (
    <form className="stack" onSubmit={(e) => e.preventDefault()} aria-label="Upload a track">
      <label>
        Title <input data-testid="upload-title" value={title} onChange={(e) => setTitle(e.target.value)} required />
      </label>
      <label>
        Audio (MP3, Ogg Opus, FLAC or WAV){' '}
        <input data-testid="upload-file" type="file" accept="audio/*,.wav,.flac,.mp3,.ogg,.opus" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
      </label>
      <ActionButton
        testId="upload"
        disabled={!file || !title}
        busy="Uploading and publishing…"
        action={async () => {
          setDone(null);
          const uploaded = await props.studio.upload(props.label, file!);
          const id = await props.wallet.registry.publishTrack(props.node, {
            title,
            duration: uploaded.duration,
            contentHash: uploaded.root,
          });
          setDone(`Published "${title}" as track ${id} (${uploaded.duration} s, root ${short(uploaded.root)}).`);
          props.onDone();
        }}
      >
        Upload and publish
      </ActionButton>
      {done && <Notice kind="info" testId="upload-done">{done}</Notice>}
    </form>
  );
}

function Earnings({ config, wallet, graphql, label }: { config: AppConfig; wallet: Wallet; graphql: GraphQLClient; label: string }) {
  const [earnings, setEarnings] = useState<Earnings | null>(null);
  const [updates, setUpdates] = useState(0);
  const [error, setError] = useState<string | null>(null);
  useEffect(
    () =>
      graphql.subscribe(gql.ArtistEarningsDocument, { artist: label }, {
        next: (d) => {
          setEarnings(d.artistEarnings);
          setUpdates((n) => n + 1);
          setError(null);
        },
        error: (e) => setError(`Live earnings stopped: ${describe(e)}`),
      }),
    [graphql, label],
  );
  const withdrawable = earnings ? BigInt(earnings.withdrawable.raw) : 0n;
  return (
    <section aria-labelledby="earnings-h" className="card">
      <h2 id="earnings-h">
        Earnings <span className="live" title="Updated live over the artistEarnings subscription">live</span>
      </h2>
      {error && <Notice kind="error">{error}</Notice>}
      <dl className="figures" data-testid="earnings" data-updates={updates}>
        <dt>Pending (vouchers not yet settled)</dt>
        <dd data-testid="earnings-pending" data-raw={earnings?.pending.raw ?? ''}>{earnings ? `${earnings.pending.usdc} USDC` : '…'}</dd>
        <dt>Earned (settled on-chain, after fees)</dt>
        <dd data-testid="earnings-earned" data-raw={earnings?.earned.raw ?? ''}>{earnings ? `${earnings.earned.usdc} USDC` : '…'}</dd>
        <dt>Withdrawable</dt>
        <dd data-testid="earnings-withdrawable" data-raw={earnings?.withdrawable.raw ?? ''}>{earnings ? `${earnings.withdrawable.usdc} USDC` : '…'}</dd>
        <dt>Settlements</dt>
        <dd>{earnings?.settlements ?? '…'}</dd>
      </dl>
      <ActionButton
        testId="withdraw-earnings"
        disabled={withdrawable === 0n}
        relayUrl={config.relayUrl}
        action={() => wallet.vault.withdrawEarnings(withdrawable)}
      >
        Withdraw {usdc(withdrawable)} USDC
      </ActionButton>
    </section>
  );
}
