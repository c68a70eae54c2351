// Tips from the listener's page: whom a tip pays (the split in force, else the artist's address, as the vault's
// `playPayee` rule says) and sending it over its own relay connection, signed by this device's session key.
import { DEFAULT_GRANT_CAP, RelayClient, RelayError, type TipReceipt } from '@beatstream/client';
import type { Address, Hex } from 'viem';
import { zeroAddress } from 'viem';
import type { AppConfig } from './config';
import { AppError } from './errors';
import type { Wallet } from './wallet';

/** What a tip is for: a track (paid as a play of it would be) or an artist (its own split, else its address). */
export type TipTarget = { kind: 'track'; trackId: string } | { kind: 'artist'; node: Hex; address: Address | null };

/** The payee a tip to `target` names: the payee of the split in force, else the artist's address record. */
export async function tipPayee(wallet: Wallet, target: TipTarget): Promise<Address> {
  let payee: Address | null;
  if (target.kind === 'track') {
    payee = await wallet.vault.playPayee(target.trackId);
  } else {
    const { split, version } = await wallet.vault.currentSplit(target.node, 0n);
    payee = version > 0n ? split : target.address;
  }
  if (!payee || payee === zeroAddress) throw new AppError('bad_input', 'This artist has no address to pay yet.');
  return payee;
}

/**
 * Sends a tip of `amount` with `message` and resolves once the relay stored it (the keeper settles it with its next
 * batch). A grant whose cap the tip would pass is replaced by a new one (one more wallet signature) once.
 */
export async function sendTip(config: AppConfig, wallet: Wallet, target: TipTarget, amount: bigint, message: string): Promise<TipReceipt> {
  const payee = await tipPayee(wallet, target);
  let force = false;
  for (;;) {
    const stored = wallet.sessions.signedGrant(wallet.domain, wallet.address);
    const tooSmall = (stored?.grant.cap ?? DEFAULT_GRANT_CAP) < amount;
    const grant = await wallet.sessions.ensureGrant(
      wallet.client,
      wallet.domain,
      wallet.address,
      force || tooSmall ? { force, cap: amount > DEFAULT_GRANT_CAP ? amount : DEFAULT_GRANT_CAP } : {},
    );
    const relay = new RelayClient({ url: config.relayUrl, domain: wallet.domain, grant, reconnect: false });
    try {
      return await relay.tip({ payee, amount, message });
    } catch (e) {
      const capSpent = e instanceof RelayError && (e.code === 'cap_reached' || e.code === 'cap_exceeded');
      if (!capSpent || force) throw e;
      force = true;
    } finally {
      relay.close();
    }
  }
}
