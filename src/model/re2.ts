// Regular expressions as Envoy and Istio run them: RE2 syntax and linear-time matching (re2js,
// a port of RE2), never JavaScript's backtracking engine, so a user's pattern cannot stall us.
import { RE2JS } from 're2js';

/**
 * The largest compiled program Envoy accepts; Istio's bootstrap raises Envoy's default of 100 to
 * this (runtime `re2.max_program_size.error_level`), and so does `meshpilot bootstrap`.
 */
export const RE2_MAX_PROGRAM_SIZE = 32_768;

type Compiled = { readonly regex: RE2JS } | { readonly error: string };

const cache = new Map<string, Compiled>();
/** Patterns come from users' rules; the cache must not grow without bound. */
const CACHE_LIMIT = 4096;

function compile(pattern: string): Compiled {
  const cached = cache.get(pattern);
  if (cached) return cached;
  let compiled: Compiled;
  try {
    const regex = RE2JS.compile(pattern);
    const size = regex.programSize();
    compiled = size > RE2_MAX_PROGRAM_SIZE ? { error: `its compiled program is about ${size} instructions, over the ${RE2_MAX_PROGRAM_SIZE} Envoy accepts: simplify it` } : { regex };
  } catch (error) {
    compiled = { error: error instanceof Error ? error.message.replace(/^error parsing regexp: /, '') : String(error) };
  }
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(pattern, compiled);
  return compiled;
}

/** Why RE2 (as Envoy configures it) refuses `pattern`, or undefined when it compiles. */
export function checkRe2Regex(pattern: string): string | undefined {
  const compiled = compile(pattern);
  return 'error' in compiled ? compiled.error : undefined;
}

/** Envoy's `safe_regex` match: the whole value, in linear time; false for a pattern RE2 refuses. */
export function re2FullMatch(pattern: string, value: string): boolean {
  const compiled = compile(pattern);
  return 'regex' in compiled && compiled.regex.matches(value);
}
