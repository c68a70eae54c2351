// Every failure the page shows, in words a listener or an artist can act on.
import { AudioError, RelayError, StudioError } from '@beatstream/client';

/** A failure the page explains itself. */
export class AppError extends Error {
  constructor(
    readonly code: 'no_wallet' | 'wrong_network' | 'relay_unreachable' | 'faucet_failed' | 'bad_input',
    message: string,
  ) {
    super(message);
  }
}

const RELAY_MESSAGES: Record<string, string> = {
  insufficient_funds: 'Your vault balance has run out: deposit more USDC to keep listening.',
  cap_reached: "This device's grant has reached its cap: play again to sign a new grant.",
  cap_exceeded: "This device's grant has reached its cap: play again to sign a new grant.",
  grant_expired: "This device's grant has expired: play again to sign a new one.",
  grant_revoked: "This device's grant was revoked: play again to sign a new one.",
  invalid_grant: 'The relay refused the grant.',
  bad_grant_signature: 'The relay refused the grant: its signature does not check.',
  unknown_track: 'The relay does not know this track (is it published?).',
  audio_unavailable: 'The node has no audio for this track.',
  audio_mismatch: "The node's audio is not the track published on-chain.",
  too_many_sessions: 'Too many sessions are playing on this grant.',
  chain_unavailable: 'The relay cannot reach the chain right now; try again shortly.',
  rate_limited: 'The relay is limiting this connection; try again shortly.',
  message_too_long: 'The message is too long: at most 280 bytes (fewer characters when they are accented or emoji).',
  duplicate_tip: 'Another tip was already sent under this id: send it again as a new tip.',
  unknown_payee: 'The relay does not know this payee: it is no artist address or split in force (yet).',
};

/** What went wrong, for the page. */
export function describe(e: unknown, context: { relayUrl?: string } = {}): string {
  const err = e as { code?: unknown; name?: string; message?: string; shortMessage?: string; cause?: unknown };
  // A wallet's refusal: EIP-1193 code 4001, which viem wraps as UserRejectedRequestError.
  if (err?.code === 4001 || err?.name === 'UserRejectedRequestError' || hasRejectedCause(err)) {
    return 'You rejected the request in your wallet: nothing was signed or sent.';
  }
  if (err?.name === 'ChainMismatchError' || (e instanceof AppError && e.code === 'wrong_network')) {
    return e instanceof AppError ? e.message : 'Your wallet is on another network: switch it to the node\'s chain.';
  }
  if (e instanceof RelayError) {
    if (e.code === 'connection_lost' || e.code === 'timeout') {
      return `The relay${context.relayUrl ? ` at ${context.relayUrl}` : ''} is unreachable (${e.message}).`;
    }
    return RELAY_MESSAGES[e.code] ?? `The relay refused: ${e.code} (${e.message}).`;
  }
  if (e instanceof StudioError) {
    if (e.code === 'not_manager') return 'Your address does not manage this artist name.';
    if (e.code === 'unauthorized' || e.status === 401) return 'Sign in to the studio first (your session may have expired).';
    return `The studio refused: ${e.code} (${e.message}).`;
  }
  if (e instanceof AudioError) return `The audio did not verify: ${e.code} (${e.message}).`;
  if (e instanceof AppError) return e.message;
  return err?.shortMessage ?? err?.message ?? String(e);
}

function hasRejectedCause(err: { cause?: unknown } | undefined, depth = 0): boolean {
  const cause = err?.cause as { code?: unknown; name?: string; cause?: unknown } | undefined;
  if (!cause || depth > 4) return false;
  return cause.code === 4001 || cause.name === 'UserRejectedRequestError' || hasRejectedCause(cause, depth + 1);
}
