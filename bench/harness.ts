// What the benchmark's driver shares with its helpers: waiting for a child's message, percentiles.
import type { ChildProcess } from 'node:child_process';

/** Waits for the next message of `type` from a child; a `failed` message from it is an error. */
export function expect<T extends { type: string }, K extends T['type']>(child: ChildProcess, type: K, timeoutMs = 120_000): Promise<Extract<T, { type: K }>> {
  const awaited = new Promise<Extract<T, { type: K }>>((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      child.off('message', listener);
      child.off('exit', exited);
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no "${type}" from the child within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (message: { type: string; message?: string }): void => {
      if (message.type !== type && message.type !== 'failed') return;
      done();
      if (message.type === 'failed') reject(new Error(message.message ?? 'the child failed'));
      else resolve(message as Extract<T, { type: K }>);
    };
    const exited = (code: number | null, signal: NodeJS.Signals | null): void => {
      done();
      reject(new Error(`the child exited (${String(code ?? signal)}) while "${type}" was awaited`));
    };
    child.on('message', listener);
    child.once('exit', exited);
  });
  // Set up before the step that triggers it, it may fail while the caller awaits another; the caller's own await still sees it.
  awaited.catch(() => undefined);
  return awaited;
}

export interface Convergence {
  p50: number;
  p99: number;
  max: number;
  missing: number;
}

export function percentiles(values: readonly number[], missing: number): Convergence {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN);
  return { p50: at(0.5), p99: at(0.99), max: Math.round(sorted.at(-1) ?? NaN), missing };
}

export const formatConvergence = (x: Convergence): string => `${x.p50}/${x.p99}/${x.max}${x.missing > 0 ? ` (${x.missing} missing)` : ''}`;
