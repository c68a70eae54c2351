// A Tip button for an artist or a track: an amount and a message (at most 280 bytes of UTF-8, counted as typed),
// sent through the relay signed by this device's session key; the keeper settles it with its next batch.
import { MAX_TIP_MESSAGE_BYTES, tipMessageBytes } from '@beatstream/client';
import { useState } from 'react';
import type { AppConfig } from './config';
import { parseUsdc, usdc } from './format';
import { type TipTarget, sendTip } from './tips';
import { ActionButton, Notice } from './ui';
import type { Wallet } from './wallet';

export function TipButton(props: { config: AppConfig; wallet: Wallet; target: TipTarget; name: string; testId: string; onSent?: () => void }) {
  const [open, setOpen] = useState(false);
  const [amount, setAmount] = useState('0.1');
  const [message, setMessage] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [sent, setSent] = useState<string | null>(null);
  const bytes = tipMessageBytes(message);
  const over = bytes > MAX_TIP_MESSAGE_BYTES;
  const id = props.testId;
  if (!open) {
    return (
      <button type="button" className="secondary" data-testid={id} onClick={() => setOpen(true)}>
        Tip <span className="sr-only">{props.name}</span>
      </button>
    );
  }
  return (
    <form className="tip stack" onSubmit={(e) => e.preventDefault()} aria-label={`Tip ${props.name}`} data-testid={`${id}-form`}>
      <label>
        Amount (USDC) <input data-testid={`${id}-amount`} inputMode="decimal" value={amount} onChange={(e) => setAmount(e.target.value)} size={8} />
      </label>
      <label>
        Message (optional, shown on the artist's page)
        <textarea
          data-testid={`${id}-message`}
          value={message}
          rows={2}
          aria-invalid={over}
          aria-describedby={`${id}-bytes`}
          onChange={(e) => setMessage(e.target.value)}
        />
        <small id={`${id}-bytes`} data-testid={`${id}-bytes`} data-bytes={bytes} className={over ? 'error' : 'muted'}>
          {bytes}/{MAX_TIP_MESSAGE_BYTES} bytes{over ? ': too long, shorten it to send' : ''}
        </small>
      </label>
      <p className="row">
        <ActionButton
          testId={`${id}-send`}
          disabled={over}
          busy="Sending…"
          relayUrl={props.config.relayUrl}
          action={async () => {
            setError(null);
            setSent(null);
            let value: bigint;
            try {
              value = parseUsdc(amount);
            } catch (e) {
              setError((e as Error).message);
              return;
            }
            const receipt = await sendTip(props.config, props.wallet, props.target, value, message);
            setSent(`Sent ${usdc(receipt.amount)} USDC to ${props.name}: it settles with the next batch.`);
            setMessage('');
            props.onSent?.();
          }}
        >
          Send tip
        </ActionButton>
        <button type="button" className="secondary" onClick={() => setOpen(false)}>
          Close
        </button>
      </p>
      {error && <span role="alert" className="error">{error}</span>}
      {sent && <Notice kind="info" testId={`${id}-done`}>{sent}</Notice>}
    </form>
  );
}
