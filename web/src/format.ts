// USDC amounts (6 decimals) and times, as the page shows them.

/** `1500000n` → `"1.500000"`. */
export function usdc(raw: bigint | string | number): string {
  const v = BigInt(raw);
  const neg = v < 0n;
  const a = neg ? -v : v;
  const s = `${a / 1_000_000n}.${(a % 1_000_000n).toString().padStart(6, '0')}`;
  return neg ? `-${s}` : s;
}

/** `"1.5"` → `1500000n`; throws a message for anything that is not a positive amount with at most 6 decimals. */
export function parseUsdc(text: string): bigint {
  const t = text.trim();
  if (!/^\d+(\.\d{1,6})?$/.test(t)) throw new Error(`"${text}" is not an amount of USDC (e.g. 5 or 0.25)`);
  const [whole, frac = ''] = t.split('.');
  const v = BigInt(whole) * 1_000_000n + BigInt(frac.padEnd(6, '0'));
  if (v === 0n) throw new Error('the amount must be above zero');
  return v;
}

/** Unix seconds → local date and time. */
export function when(unix: number | bigint | null | undefined): string {
  if (!unix) return '—';
  return new Date(Number(unix) * 1000).toLocaleString();
}

/** `0x1234…abcd`. */
export function short(hex: string): string {
  return hex.length > 12 ? `${hex.slice(0, 6)}…${hex.slice(-4)}` : hex;
}
