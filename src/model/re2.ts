// Whether a pattern compiles as RE2, the engine Istio and Envoy use. JS RegExp (unicode mode) is
// the approximation: RE2 syntax JS lacks is rewritten first, and what RE2 refuses is refused.

/** RE2's limit on a repetition count, `{n}` and `{n,m}`, also on nested ones multiplied. */
const RE2_MAX_REPEAT = 1000;

/**
 * The largest product of nested repetition counts in `pattern` (`(a{10}){20}` is 200), or the
 * first count above RE2's limit. Escapes and character classes are skipped.
 */
function largestRepeat(pattern: string): number {
  // For each open group: the largest repeat seen inside it so far.
  const groups: number[] = [0];
  let lastAtom = 0;
  let largest = 0;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      i++;
      lastAtom = 0;
    } else if (c === '[') {
      const close = /^\[\^?\]?(?:\[:[^\]]*:\]|\\.|[^\]])*\]/.exec(pattern.slice(i));
      i += (close?.[0].length ?? 1) - 1;
      lastAtom = 0;
    } else if (c === '(') {
      groups.push(0);
    } else if (c === ')') {
      lastAtom = groups.pop() ?? 0;
      groups[groups.length - 1] = Math.max(groups.at(-1) ?? 0, lastAtom);
    } else if (c === '{') {
      const repeat = /^\{(\d+)(?:,(\d*))?\}/.exec(pattern.slice(i));
      if (!repeat) continue;
      const count = Math.max(Number(repeat[1]), Number(repeat[2] || 0));
      const total = Math.max(1, lastAtom) * count;
      largest = Math.max(largest, total);
      groups[groups.length - 1] = Math.max(groups.at(-1) ?? 0, total);
      i += repeat[0].length - 1;
    } else {
      lastAtom = 0;
    }
  }
  return largest;
}

/** RE2-only syntax rewritten into what JS RegExp accepts, for a compile check only. */
function asJsPattern(pattern: string): string {
  return pattern
    .replace(/\(\?P</g, '(?<')
    .replace(/\(\?[imsU]+\)/g, '')
    .replace(/\(\?[imsU-]+:/g, '(?:')
    .replace(/\\[Az]/g, '')
    // POSIX classes inside brackets: `[[:alpha:]]`; any one character stands in for the check.
    .replace(/\[:\^?(alnum|alpha|ascii|blank|cntrl|digit|graph|lower|print|punct|space|upper|word|xdigit):\]/g, 'a')
    // One-letter Unicode classes `\pN`, and scripts `\p{Greek}`, as JS spells them.
    .replace(/\\([pP])([A-Z])/g, '\\$1{$2}')
    .replace(/\\([pP])\{\^?([A-Z][a-z]+(?:_[A-Z][a-z]+)*)\}/g, (_m, p: string, name: string) => (name === 'Any' ? `\\${p}{Any}` : `\\${p}{Script=${name}}`));
}

/** Why `pattern` does not compile as RE2, or undefined when it does. */
export function checkRe2Regex(pattern: string): string | undefined {
  if (/\(\?<?[=!]/.test(pattern)) return 'RE2 has no lookahead or lookbehind';
  if (/\\[1-9]/.test(pattern)) return 'RE2 has no backreferences';
  const repeat = largestRepeat(pattern);
  if (repeat > RE2_MAX_REPEAT) return `a repetition of ${repeat} exceeds RE2's limit of ${RE2_MAX_REPEAT}`;
  try {
    new RegExp(asJsPattern(pattern), 'u');
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message.replace(/^Invalid regular expression: /, '') : String(error);
  }
}
