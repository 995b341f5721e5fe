// Istio durations are Go durations ("1.5s", "100ms", "1h30m"); Envoy's JSON wants seconds ("1.500s").

const UNIT_NANOS: Readonly<Record<string, bigint>> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

/** Nanoseconds of a Go-style duration, or undefined when it is not one (negative ones included). */
export function parseDuration(text: string): bigint | undefined {
  if (text === '0') return 0n;
  const part = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/y;
  let total = 0n;
  let index = 0;
  while (index < text.length) {
    part.lastIndex = index;
    const found = part.exec(text);
    if (!found?.[1] || !found[2]) return undefined;
    const [whole = '0', fraction = ''] = found[1].split('.');
    const unit = UNIT_NANOS[found[2]] ?? 1n;
    const digits = fraction.slice(0, 9);
    const fractionNanos = digits === '' ? 0n : (BigInt(digits) * unit) / 10n ** BigInt(digits.length);
    total += BigInt(whole === '' ? '0' : whole) * unit + fractionNanos;
    index = part.lastIndex;
  }
  return index === 0 ? undefined : total;
}

/** proto3 JSON Duration text: `7s`, `0.500s`, `0.000001s`. */
export function durationJson(nanos: bigint): string {
  const seconds = nanos / 1_000_000_000n;
  const rest = nanos % 1_000_000_000n;
  if (rest === 0n) return `${seconds}s`;
  const fraction = String(rest).padStart(9, '0').replace(/(\d{3})(\d{3})(\d{3})$/, (_m, a: string, b: string, c: string) =>
    c !== '000' ? `${a}${b}${c}` : b !== '000' ? `${a}${b}` : a,
  );
  return `${seconds}.${fraction}s`;
}

/** Converts a duration the validator already accepted; unparsable text becomes 0s. */
export function toDurationJson(text: string): string {
  return durationJson(parseDuration(text) ?? 0n);
}
