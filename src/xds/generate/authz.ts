// AuthorizationPolicy into Envoy's RBAC filters, as Istio builds them: one RBAC config per action
// (CUSTOM, AUDIT, DENY, ALLOW, in that order), one policy per rule named
// `ns[NS]-policy[NAME]-rule[I]`, a permission per `to` entry and a principal per `from` entry.
// What a target cannot evaluate fails closed: an ALLOW rule using it is left out (it allows
// nothing), a DENY rule drops just that condition (it denies more).
import type { AppliedPolicy } from '../../model/authorization.ts';
import { actionOf } from '../../model/authorization.ts';
import type { Proxy } from '../../model/proxy.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { AuthorizationAction, AuthorizationPolicy, AuthorizationRule } from '../../model/rules.ts';
import { ruleKey } from '../../model/rules.ts';
import type { ConfigRbac_RBAC, HttpFilter, Listener_Filter, Permission, Policy, Principal } from '../envoy-types.generated.ts';
import { RBAC_HTTP_TYPE, RBAC_NETWORK_TYPE } from '../type-urls.ts';
import type { Attribute, RbacFlavour } from './authz-attributes.ts';
import { conditionAttribute, OPERATION_ATTRIBUTES, SOURCE_ATTRIBUTES, Unsupported } from './authz-attributes.ts';
import { typed } from './common.ts';
import type { NoteSink } from './route-match.ts';

export type { RbacFlavour } from './authz-attributes.ts';

export const RBAC_HTTP_FILTER = 'envoy.filters.http.rbac';
export const RBAC_NETWORK_FILTER = 'envoy.filters.network.rbac';
/** Istio's stat prefix for the TCP RBAC filter. */
export const RBAC_TCP_STAT_PREFIX = 'tcp.';

export type RbacAction = 'ALLOW' | 'DENY' | 'LOG';

export interface RbacPolicyOrigin {
  readonly name: string;
  readonly policy: AuthorizationPolicy;
  /** Index in spec.rules; undefined for a policy without rules (it matches nothing). */
  readonly rule: number | undefined;
}

/** One RBAC filter's rules: the action Envoy takes and its policies by name. */
export interface RbacConfig {
  readonly action: RbacAction;
  /** The Istio action these policies came from (CUSTOM is enforced as DENY). */
  readonly from: AuthorizationAction;
  readonly policies: readonly (RbacPolicyOrigin & { readonly json: Policy })[];
}

/** Istio's evaluation order: CUSTOM, AUDIT (logs only), DENY, ALLOW. */
const ACTION_ORDER: readonly [AuthorizationAction, RbacAction][] = [
  ['CUSTOM', 'DENY'],
  ['AUDIT', 'LOG'],
  ['DENY', 'DENY'],
  ['ALLOW', 'ALLOW'],
];

const SOURCE_ORDER = ['principals', 'requestPrincipals', 'namespaces', 'serviceAccounts', 'trustDomains', 'remoteIpBlocks', 'ipBlocks'] as const;
const OPERATION_ORDER = ['hosts', 'methods', 'paths', 'ports'] as const;

/** Istio's name for the RBAC policy of one rule. */
export function rbacPolicyName(policy: AuthorizationPolicy, rule: number): string {
  return `ns[${policy.meta.namespace}]-policy[${policy.meta.name}]-rule[${String(rule)}]`;
}

/** A policy that never matches: what a policy without rules becomes. */
const MATCH_NEVER: Policy = { permissions: [{ not_rule: { any: true } }], principals: [{ not_id: { any: true } }] };

class RuleDropped extends Error {}

interface Keyed {
  readonly attribute: Attribute;
  readonly values: readonly string[] | undefined;
  readonly notValues: readonly string[] | undefined;
  /** Field paths of the values and the not-values, for notes. */
  readonly paths: readonly [string, string];
}

/** One side of a policy: the matchers its attributes build, and how a Permission's rules or a Principal's ids combine. */
interface PolicySide<M> {
  readonly builder: (attribute: Attribute) => ((value: string, flavour: RbacFlavour) => M | Unsupported) | undefined;
  readonly or: (items: M[]) => M;
  readonly not: (item: M) => M;
  /** All of `items`; none is "any". */
  readonly and: (items: M[]) => M;
}

const PERMISSIONS: PolicySide<Permission> = {
  builder: (attribute) => (attribute.side === 'permission' ? attribute.build : undefined),
  or: (rules): Permission => ({ or_rules: { rules } }),
  not: (rule): Permission => ({ not_rule: rule }),
  and: (rules): Permission => ({ and_rules: { rules: rules.length > 0 ? rules : [{ any: true }] } }),
};

const PRINCIPALS: PolicySide<Principal> = {
  builder: (attribute) => (attribute.side === 'principal' ? attribute.build : undefined),
  or: (ids): Principal => ({ or_ids: { ids } }),
  not: (id): Principal => ({ not_id: id }),
  and: (ids): Principal => ({ and_ids: { ids: ids.length > 0 ? ids : [{ any: true }] } }),
};

/** One attribute's values ORed and its not-values NOT(ORed), skipping (or, for ALLOW, refusing) what the flavour cannot evaluate; none for an attribute of the other side. */
function matchers<M>(keyed: Keyed, side: PolicySide<M>, flavour: RbacFlavour, allow: boolean, notes: NoteSink): M[] {
  const build = side.builder(keyed.attribute);
  if (!build) return [];
  const out: M[] = [];
  for (const [values, negate, fieldPath] of [
    [keyed.values, false, keyed.paths[0]],
    [keyed.notValues, true, keyed.paths[1]],
  ] as const) {
    const built: M[] = [];
    (values ?? []).forEach((value, index) => {
      const matcher = build(value, flavour);
      if (!(matcher instanceof Unsupported)) {
        built.push(matcher);
        return;
      }
      const path = `${fieldPath}[${String(index)}]`;
      if (allow) {
        notes(path, `${matcher.reason}: this ALLOW rule is left out, so it allows nothing (fails closed)`);
        throw new RuleDropped();
      }
      notes(path, `${matcher.reason}: the condition is ignored, so this rule matches more requests (fails closed)`);
    });
    if (built.length === 0) continue;
    const anyOf = side.or(built);
    out.push(negate ? side.not(anyOf) : anyOf);
  }
  return out;
}

function fieldKeys(fields: Readonly<Record<string, readonly string[] | undefined>>, order: readonly string[], attributes: Readonly<Record<string, Attribute>>, path: string): Keyed[] {
  return order.map((name): Keyed => {
    const not = `not${name[0]?.toUpperCase() ?? ''}${name.slice(1)}`;
    return { attribute: attributes[name] as Attribute, values: fields[name], notValues: fields[not], paths: [`${path}.${name}`, `${path}.${not}`] };
  });
}

/** One rule as an Envoy RBAC Policy (undefined when an ALLOW rule cannot be expressed for this flavour). */
function rulePolicy(rule: AuthorizationRule, path: string, flavour: RbacFlavour, allow: boolean, notes: NoteSink): Policy | undefined {
  try {
    const conditions = (rule.when ?? []).map((condition, index): Keyed => ({
      attribute: conditionAttribute(condition.key),
      values: condition.values,
      notValues: condition.notValues,
      paths: [`${path}.when[${String(index)}].values`, `${path}.when[${String(index)}].notValues`],
    }));
    const side = <M>(wanted: PolicySide<M>, keyed: readonly Keyed[]): M[] => keyed.flatMap((k) => matchers(k, wanted, flavour, allow, notes));
    const permissionConditions = side(PERMISSIONS, conditions);
    const principalConditions = side(PRINCIPALS, conditions);
    const operations = rule.to?.length ? rule.to : [undefined];
    const sources = rule.from?.length ? rule.from : [undefined];
    const permissions = operations.map((to, index) =>
      PERMISSIONS.and([
        ...(to?.operation ? side(PERMISSIONS, fieldKeys(to.operation as Readonly<Record<string, readonly string[]>>, OPERATION_ORDER, OPERATION_ATTRIBUTES, `${path}.to[${String(index)}].operation`)) : []),
        ...permissionConditions,
      ]),
    );
    const principals = sources.map((from, index) =>
      PRINCIPALS.and([
        ...(from?.source ? side(PRINCIPALS, fieldKeys(from.source as Readonly<Record<string, readonly string[]>>, SOURCE_ORDER, SOURCE_ATTRIBUTES, `${path}.from[${String(index)}].source`)) : []),
        ...principalConditions,
      ]),
    );
    return { permissions, principals };
  } catch (error) {
    if (error instanceof RuleDropped) return undefined;
    throw error;
  }
}

/** The RBAC configs for a set of policies, in evaluation order; an action no policy takes has none. */
export function buildRbacConfigs(policies: readonly AuthorizationPolicy[], flavour: RbacFlavour, notes: NoteSink): RbacConfig[] {
  const out: RbacConfig[] = [];
  for (const [from, action] of ACTION_ORDER) {
    const chosen = policies.filter((policy) => actionOf(policy) === from);
    if (chosen.length === 0) continue;
    if (action === 'LOG' && flavour === 'grpc') {
      for (const _policy of chosen) notes('spec.action', 'gRPC servers do not implement the RBAC LOG action: AUDIT policies are not logged (no request is denied by them)');
      continue;
    }
    const entries: (RbacPolicyOrigin & { json: Policy })[] = [];
    for (const policy of chosen) {
      const rules = policy.spec.rules ?? [];
      if (rules.length === 0) entries.push({ name: rbacPolicyName(policy, 0), policy, rule: undefined, json: MATCH_NEVER });
      rules.forEach((rule, index) => {
        const json = rulePolicy(rule, `spec.rules[${String(index)}]`, flavour, action === 'ALLOW', notes);
        if (json) entries.push({ name: rbacPolicyName(policy, index), policy, rule: index, json });
      });
    }
    out.push({ action, from, policies: entries });
  }
  return out;
}

function rbacRules(config: RbacConfig): ConfigRbac_RBAC {
  return { action: config.action, policies: Object.fromEntries(config.policies.map((entry) => [entry.name, entry.json])) };
}

function policiesOf(push: PushContext, proxy: Proxy): readonly AuthorizationPolicy[] {
  return push.authorizationPoliciesFor(proxy).map((applied: AppliedPolicy) => applied.policy);
}

/** A key naming the set of policies that apply to `proxy`: proxies with the same key get the same filters. */
export function authorizationKey(push: PushContext, proxy: Proxy): string {
  return policiesOf(push, proxy).map((policy) => ruleKey(policy.meta)).join(',');
}

function memoConfigs(push: PushContext, proxy: Proxy, flavour: RbacFlavour): RbacConfig[] {
  const policies = policiesOf(push, proxy);
  if (policies.length === 0) return [];
  return push.memo(`authz:${flavour}:${authorizationKey(push, proxy)}`, () => buildRbacConfigs(policies, flavour, () => undefined));
}

/** The RBAC HTTP filters of a sidecar's inbound HTTP connection manager, to go before the router. */
export function authorizationHttpFilters(push: PushContext, proxy: Proxy): HttpFilter[] {
  return memoConfigs(push, proxy, 'http').map((config): HttpFilter => ({ name: RBAC_HTTP_FILTER, typed_config: typed(RBAC_HTTP_TYPE, { rules: rbacRules(config) }) }));
}

/** The RBAC network filters of a sidecar's inbound TCP chains, to go before tcp_proxy. */
export function authorizationNetworkFilters(push: PushContext, proxy: Proxy): Listener_Filter[] {
  return memoConfigs(push, proxy, 'tcp').map((config): Listener_Filter => ({
    name: RBAC_NETWORK_FILTER,
    typed_config: typed(RBAC_NETWORK_TYPE, { rules: rbacRules(config), stat_prefix: RBAC_TCP_STAT_PREFIX }),
  }));
}

/**
 * The RBAC HTTP filters of a proxyless gRPC server's inbound listener (gRFC A41): the same rules,
 * restricted to what gRPC evaluates; what it cannot fails closed (see grpc-degradation.ts).
 */
export function grpcAuthorizationHttpFilters(push: PushContext, proxy: Proxy): HttpFilter[] {
  return memoConfigs(push, proxy, 'grpc').map((config): HttpFilter => ({ name: grpcRbacFilterName(config.from), typed_config: typed(RBAC_HTTP_TYPE, { rules: rbacRules(config) }) }));
}

/** gRPC NACKs an HTTP filter name used twice (gRFC A39), so each action's filter has its own (Istio's: `...rbac.DENY`). */
function grpcRbacFilterName(from: AuthorizationAction): string {
  return from === 'ALLOW' ? RBAC_HTTP_FILTER : `${RBAC_HTTP_FILTER}.${from}`;
}

/** What each flavour makes of one policy's rules (MP_GRPC_DEGRADED for gRPC; what Envoy's TCP chains ignore). */
export function authorizationNotes(policy: AuthorizationPolicy, flavour: RbacFlavour, notes: NoteSink): void {
  buildRbacConfigs([policy], flavour, notes);
}
