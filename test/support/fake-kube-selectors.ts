// Label and field selectors as the API server parses them for list, watch and deletecollection.
type Labels = Readonly<Record<string, string>>;
type Requirement = (labels: Labels) => boolean;

/** Splits on commas outside parentheses (`app in (a,b),tier=web`). */
function splitTerms(selector: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let current = '';
  for (const char of selector) {
    if (char === '(') depth++;
    if (char === ')') depth--;
    if (char === ',' && depth === 0) {
      terms.push(current.trim());
      current = '';
    } else current += char;
  }
  if (current.trim() !== '') terms.push(current.trim());
  return terms;
}

function requirement(term: string): Requirement {
  const set = /^(\S+)\s+(in|notin)\s+\((.*)\)$/.exec(term);
  if (set) {
    const [, key = '', op, list = ''] = set;
    const values = new Set(list.split(',').map((v) => v.trim()));
    return op === 'in' ? (l) => l[key] !== undefined && values.has(l[key]) : (l) => l[key] === undefined || !values.has(l[key]);
  }
  const compare = /^([^!=\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(term);
  if (compare) {
    const [, key = '', op, value = ''] = compare;
    return op === '!=' ? (l) => l[key] !== value : (l) => l[key] === value;
  }
  if (term.startsWith('!')) return (l) => l[term.slice(1).trim()] === undefined;
  if (/^\S+$/.test(term)) return (l) => l[term] !== undefined;
  throw new Error(`unable to parse requirement: ${term}`);
}

/** A predicate over labels for a `labelSelector` query value; throws on a malformed one (the server's 400). */
export function labelSelector(selector: string | undefined): (labels: Labels) => boolean {
  if (selector === undefined || selector.trim() === '') return () => true;
  const requirements = splitTerms(selector).map(requirement);
  return (labels) => requirements.every((r) => r(labels));
}

/** A `fieldSelector` of `metadata.name` / `metadata.namespace` (what every kind supports) with `=`, `==`, `!=`. */
export function fieldSelector(selector: string | undefined): (object: { metadata?: Record<string, unknown> }) => boolean {
  if (selector === undefined || selector.trim() === '') return () => true;
  const terms = splitTerms(selector).map((term) => {
    const match = /^(metadata\.name|metadata\.namespace)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (!match) throw new Error(`field label not supported: ${term.split(/[!=]/)[0] ?? term}`);
    const [, field = '', op, value = ''] = match;
    const key = field.slice('metadata.'.length);
    return (meta: Record<string, unknown>) => (op === '!=' ? meta[key] !== value : meta[key] === value);
  });
  return (object) => terms.every((t) => t(object.metadata ?? {}));
}
