// What listeners gave an artist beyond its streams, and whom its streams pay: its tips with their messages, its
// supporters, and its splits (each version's recipients and shares, and which is in force).
//
// A tip's message is stored exactly as the listener signed it (docs/schema.graphql, `Tip.message`): it is only
// ever rendered as a React text child, which escapes it, so `<b>gm</b>` shows as those characters and makes no
// element. Never put it in `dangerouslySetInnerHTML`.
import { type GraphQLClient, gql } from '@beatstream/client';
import { short, usdc, when } from './format';
import { Notice, usePoll } from './ui';

type Support = NonNullable<gql.ArtistSupportQuery['artist']>;
type Split = Support['splits']['nodes'][number];

/** The artist named `label` (or at `address`): its tips, supporters and splits, polled every few seconds. */
export function ArtistSupport({ graphql, label, address }: { graphql: GraphQLClient; label?: string; address?: string }) {
  const support = usePoll(() => graphql.query(gql.ArtistSupportDocument, { name: label ?? null, address: address ?? null, first: 20 }), 4000, [label, address]);
  const a = support.value?.artist ?? null;
  return (
    <>
      <section aria-labelledby="tips-h" className="card wide">
        <h2 id="tips-h">Tips{a ? <small className="muted"> {a.tips.totalCount}</small> : null}</h2>
        {support.error && <Notice kind="error">{support.error}</Notice>}
        {support.value && !a && <p className="muted">No such artist.</p>}
        {a && a.tips.nodes.length === 0 && <p className="muted">No tips settled yet.</p>}
        {a && a.tips.nodes.length > 0 && <Tips tips={a.tips.nodes} />}
      </section>
      <section aria-labelledby="supporters-h" className="card">
        <h2 id="supporters-h">Supporters</h2>
        {a && a.supporters.nodes.length === 0 && <p className="muted">No listener has paid this artist yet.</p>}
        {a && a.supporters.nodes.length > 0 && (
          <table>
            <thead>
              <tr>
                <th>Listener</th>
                <th>Streamed</th>
                <th>Tipped</th>
                <th>Total (USDC)</th>
              </tr>
            </thead>
            <tbody data-testid="supporters">
              {a.supporters.nodes.map((s) => (
                <tr key={s.listener} data-listener={s.listener.toLowerCase()}>
                  <td title={s.listener}>{short(s.listener)}</td>
                  <td>{usdc(s.streamed.raw)}</td>
                  <td>
                    {usdc(s.tipped.raw)}
                    {s.tips > 0 && <small className="muted"> ({s.tips} {s.tips === 1 ? 'tip' : 'tips'})</small>}
                  </td>
                  <td data-raw={s.total.raw}>{usdc(s.total.raw)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section aria-labelledby="splits-h" className="card">
        <h2 id="splits-h">Splits</h2>
        {a && a.splits.nodes.length === 0 && <p className="muted">No split: every second and tip pays the artist's address.</p>}
        {a && a.splits.nodes.length > 0 && <Splits splits={a.splits.nodes} />}
      </section>
    </>
  );
}

function Tips({ tips }: { tips: Support['tips']['nodes'] }) {
  return (
    <table>
      <thead>
        <tr>
          <th>When</th>
          <th>From</th>
          <th>Amount (USDC)</th>
          <th>Message</th>
        </tr>
      </thead>
      <tbody data-testid="tips">
        {tips.map((t) => (
          <tr key={`${t.txHash}-${t.logIndex}`} data-tip-id={t.tipId}>
            <td>{when(t.blockTime)}</td>
            <td title={t.listener}>{short(t.listener)}</td>
            <td data-raw={t.amount.raw}>{usdc(t.amount.raw)}</td>
            {/* Text, escaped by React: the message is shown exactly as written and never parsed as markup. */}
            <td className="message" data-testid="tip-message">
              {t.messageUtf8 ? t.message : `(not UTF-8: ${t.messageHex})`}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Splits({ splits }: { splits: Split[] }) {
  // By track (the artist's own split first), newest version first.
  const sorted = [...splits].sort((x, y) => Number(BigInt(x.trackId) - BigInt(y.trackId)) || y.version - x.version);
  return (
    <div className="splits" data-testid="splits">
      {sorted.map((s) => (
        <article key={s.payee} className="split" data-track={s.trackId} data-version={s.version} data-in-force={s.inForce}>
          <h3>
            {s.trackId === '0' ? 'All tracks' : `Track ${s.trackId}${s.track ? `: ${s.track.title}` : ''}`} · version {s.version}{' '}
            {s.inForce ? (
              <span className="badge in-force">in force</span>
            ) : (
              <span className="badge">{s.clearedAt ? `cleared ${when(s.clearedAt)}` : 'replaced'}</span>
            )}
          </h3>
          <p className="muted">
            Set {when(s.setAt)} · pays through <span title={s.payee}>{short(s.payee)}</span>
          </p>
          <table>
            <thead>
              <tr>
                <th>Recipient</th>
                <th>Share</th>
                <th>Earned (USDC)</th>
              </tr>
            </thead>
            <tbody>
              {s.recipients.map((r) => (
                <tr key={r.address}>
                  <td title={r.address}>{short(r.address)}</td>
                  <td data-share={r.share}>{(r.share / 100).toFixed(2)} %</td>
                  <td data-raw={r.earned.raw}>
                    {usdc(r.earned.raw)}
                    {BigInt(r.fromTips.raw) > 0n && <small className="muted"> ({usdc(r.fromTips.raw)} from tips)</small>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </article>
      ))}
    </div>
  );
}
