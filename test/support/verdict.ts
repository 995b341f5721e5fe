// What `meshpilot analyze` concludes about one object among others, as a verdict a table can
// compare with Istio's: valid, invalid (code and field), warning (code and field), unsupported.
import { analyzeObjects, type Finding } from '../../src/commands/analyze.ts';
import type { ErrorCode } from '../../src/errors.ts';
import type { SourcedObject } from '../../src/sources/parsed-object.ts';
import { convertObjects } from '../../src/sources/kube-objects.ts';

export type Verdict =
  | { readonly verdict: 'valid' }
  | { readonly verdict: 'invalid' | 'warning'; readonly code: ErrorCode; readonly path: string }
  | { readonly verdict: 'unsupported'; readonly path: string };

/** What Istio's validation says: an error, only warnings, or nothing. */
export type IstioVerdict = 'valid' | 'invalid' | 'warning';

export const VALID: Verdict = { verdict: 'valid' };
export const invalid = (path: string, code: ErrorCode = 'MP_RULE_INVALID'): Verdict => ({ verdict: 'invalid', code, path });
export const warning = (path: string, code: ErrorCode): Verdict => ({ verdict: 'warning', code, path });
export const unsupported = (path: string): Verdict => ({ verdict: 'unsupported', path });

/** The first error decides; without one, Istio's own warnings, then meshpilot's others, then MP_UNSUPPORTED. */
export function verdictOf(findings: readonly Finding[]): Verdict {
  const error = findings.find((f) => f.severity === 'error');
  if (error) return invalid(error.path, error.code);
  const other = findings.find((f) => f.code === 'MP_RULE_WARNING') ?? findings.find((f) => f.code !== 'MP_UNSUPPORTED');
  if (other) return warning(other.path, other.code);
  const [first] = findings;
  return first ? unsupported(first.path) : VALID;
}

const CASE_LOCATION = 'case.yaml';

/** The findings for `object` when read with `context` (read from elsewhere) through analyze's own path. */
export function findingsFor(object: unknown, context: readonly unknown[] = []): Finding[] {
  const sourced = (value: unknown, location: string, index: number): SourcedObject => ({ object: value, source: { origin: 'file', location }, position: `document ${index + 1}` });
  const all = [...context.map((o, i) => sourced(o, 'context.yaml', i)), sourced(object, CASE_LOCATION, 0)];
  return analyzeObjects(convertObjects(all)).filter((f) => f.file === CASE_LOCATION);
}

const istioWarning = (verdict: Verdict): boolean => verdict.verdict === 'warning' && verdict.code === 'MP_RULE_WARNING';

/** Whether meshpilot's verdict says what Istio's says; meshpilot's own notes (unsupported, ineffective) do not make a valid rule invalid. */
export function agreesWithIstio(verdict: Verdict, istio: IstioVerdict): boolean {
  if (istio === 'invalid') return verdict.verdict === 'invalid';
  if (istio === 'warning') return istioWarning(verdict);
  return verdict.verdict !== 'invalid' && !istioWarning(verdict);
}
