// An edit must not reroute traffic by breaking a reference: a VirtualService edited (or added
// after the first read) to name a subset or port that does not exist is not applied, and its
// last good version stays. A reference broken by another object's change is left to the model,
// where the route fails closed as in Istio.
import { buildPushContext, virtualServiceReferenceIssues } from '../model/push-context.ts';
import type { ValidationIssue, VirtualService } from '../model/rules.ts';
import { isVirtualService } from '../model/rules.ts';
import type { AcceptedObject, ParsedObject } from './parsed-object.ts';
import { assembleObjects } from './kube-objects.ts';

export interface ReferenceGuard {
  /** The version of each object served last (by kind/namespace/name). */
  readonly lastServed: (key: string) => AcceptedObject | undefined;
  /** The first read of a source has no history: what it says is what Istio would apply. */
  readonly firstRead: boolean;
}

function virtualServiceOf(parsed: ParsedObject): VirtualService | undefined {
  return parsed.type === 'rule' && isVirtualService(parsed.rule) ? parsed.rule : undefined;
}

function brokenReferences(issues: readonly ValidationIssue[]): ValidationIssue[] {
  return issues.filter((issue) => issue.code === 'MP_REF_UNKNOWN' && issue.severity === 'error');
}

/** `parsed` with each VirtualService whose edit broke a reference replaced by its last good version (or left out) and reported. */
export function guardReferences(parsed: readonly ParsedObject[], guard: ReferenceGuard): ParsedObject[] {
  if (guard.firstRead || !parsed.some((object) => virtualServiceOf(object) !== undefined)) return [...parsed];
  const push = buildPushContext(assembleObjects(parsed));
  return parsed.flatMap((object): ParsedObject[] => {
    const rule = virtualServiceOf(object);
    if (!rule || object.type !== 'rule') return [object];
    const broken = brokenReferences(virtualServiceReferenceIssues(push, rule));
    if (broken.length === 0) return [object];
    const previous = guard.lastServed(object.key);
    const before = previous ? virtualServiceOf(previous) : undefined;
    if (previous && JSON.stringify(previous) === JSON.stringify(object)) return [object];
    // What was already broken before the edit is another object's doing; only what the edit broke holds it back.
    const brokenBefore = new Set(before ? brokenReferences(virtualServiceReferenceIssues(push, before)).map((issue) => issue.message) : []);
    const introduced = broken.filter((issue) => !brokenBefore.has(issue.message));
    if (introduced.length === 0) return [object];
    const [kind, namespace, name] = [rule.meta.kind, rule.meta.namespace, rule.meta.name];
    const rejected: ParsedObject = {
      type: 'rejected',
      key: object.key,
      source: object.source,
      rejected: { source: object.source, object: `${kind} ${namespace}/${name}`, kind, namespace, name, issues: introduced, keptLastGood: previous !== undefined },
    };
    return previous ? [previous, rejected] : [rejected];
  });
}
