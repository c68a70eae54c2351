// Small shared pieces: a button that runs an action and shows its failure, notices, and polling.
import { type ReactNode, useCallback, useEffect, useRef, useState } from 'react';
import { describe } from './errors';

/** Runs `action` on click (or Enter/Space, as any button), shows "busy" while it runs and its error after. */
export function ActionButton(props: {
  action: () => Promise<unknown>;
  children: ReactNode;
  busy?: ReactNode;
  disabled?: boolean;
  onError?: (message: string) => void;
  relayUrl?: string;
  testId?: string;
  kind?: 'primary' | 'secondary' | 'danger';
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const run = async () => {
    setBusy(true);
    setError(null);
    try {
      await props.action();
    } catch (e) {
      console.error(e);
      const message = describe(e, { relayUrl: props.relayUrl });
      setError(message);
      props.onError?.(message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <span className="action">
      <button
        type="button"
        className={props.kind ?? 'primary'}
        disabled={busy || props.disabled}
        aria-busy={busy}
        data-testid={props.testId}
        onClick={() => void run()}
      >
        {busy ? (props.busy ?? 'Working…') : props.children}
      </button>
      {error && !props.onError && (
        <span role="alert" className="error">
          {error}
        </span>
      )}
    </span>
  );
}

/** A message box: `alert` for errors (read out at once), `status` otherwise. */
export function Notice({ kind, children, testId }: { kind: 'error' | 'info' | 'warn'; children: ReactNode; testId?: string }) {
  return (
    <div role={kind === 'error' ? 'alert' : 'status'} className={`notice ${kind}`} data-testid={testId}>
      {children}
    </div>
  );
}

/** Calls `load` now and every `ms`, and again whenever `refresh()` is called; keeps the last value and error. */
export function usePoll<T>(load: () => Promise<T>, ms: number, deps: unknown[]): { value: T | null; error: string | null; refresh: () => void } {
  const [value, setValue] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const loadRef = useRef(load);
  loadRef.current = load;
  const tick = useCallback(() => {
    loadRef
      .current()
      .then((v) => {
        setValue(v);
        setError(null);
      })
      .catch((e) => setError(describe(e)));
  }, []);
  useEffect(() => {
    setValue(null);
    tick();
    const t = setInterval(tick, ms);
    return () => clearInterval(t);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  return { value, error, refresh: tick };
}
