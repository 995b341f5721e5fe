// The immutable snapshot every generator reads: services, endpoints and rules with their
// indexes, short hosts resolved as Istio resolves them, and each rule's problems.
import type { MeshConfig } from './mesh-config.ts';
import { DEFAULT_MESH_CONFIG } from './mesh-config.ts';
import type { RejectedObject, SourceSnapshot } from './store.ts';
import type {
  Destination,
  DestinationRule,
  HttpRoute,
  Rule,
  Subset,
  ValidationIssue,
  VirtualService,
} from './rules.ts';
import { isDestinationRule, isVirtualService, ruleKey } from './rules.ts';
import type { Endpoint, Service } from './service.ts';
import { resolveShortName } from './service.ts';

export interface ResolvedDestination extends Destination {
  /** FQDN of the destination host. */
  readonly host: string;
}

export interface ResolvedVirtualService {
  readonly rule: VirtualService;
  /** Hosts with short names qualified in the rule's namespace. */
  readonly hosts: readonly string[];
  readonly http: readonly HttpRoute[];
}

export interface RuleStatus {
  readonly rule: Rule;
  readonly issues: readonly ValidationIssue[];
  /** False when a conflict or error keeps the rule from being applied. */
  readonly applied: boolean;
}

export interface PushContext {
  /** Monotonic build number within this process (not a content version). */
  readonly sequence: number;
  readonly builtAt: Date;
  readonly services: readonly Service[];
  readonly serviceByHost: ReadonlyMap<string, Service>;
  /** Ready and not-ready endpoints of each service hostname. */
  readonly endpointsByHost: ReadonlyMap<string, readonly Endpoint[]>;
  /** The VirtualService that owns each host (the oldest one when several claim it). */
  readonly virtualServiceByHost: ReadonlyMap<string, ResolvedVirtualService>;
  readonly destinationRuleByHost: ReadonlyMap<string, DestinationRule>;
  readonly ruleStatus: ReadonlyMap<string, RuleStatus>;
  readonly rejected: readonly RejectedObject[];
  /** Mesh-wide settings (`--mesh-config`), Istio's defaults when none is given. */
  readonly meshConfig: MeshConfig;
  /** Per-snapshot memo for generator output shared by many proxies. */
  memo<T>(key: string, build: () => T): T;
}

/** Istio's order for rules that compete: oldest first, then namespace/name. */
function compareRules(a: Rule, b: Rule): number {
  const at = a.meta.creationTimestamp ?? '';
  const bt = b.meta.creationTimestamp ?? '';
  if (at !== bt) return at < bt ? -1 : 1;
  return ruleKey(a.meta) < ruleKey(b.meta) ? -1 : ruleKey(a.meta) > ruleKey(b.meta) ? 1 : 0;
}

export function resolveDestination(destination: Destination, namespace: string): ResolvedDestination {
  return { ...destination, host: resolveShortName(destination.host, namespace) };
}

function resolveVirtualService(rule: VirtualService): ResolvedVirtualService {
  const namespace = rule.meta.namespace;
  const http = (rule.spec.http ?? []).map((route) =>
    route.route
      ? { ...route, route: route.route.map((d) => ({ ...d, destination: resolveDestination(d.destination, namespace) })) }
      : route,
  );
  return { rule, hosts: rule.spec.hosts.map((host) => resolveShortName(host, namespace)), http };
}

function appliesToMesh(rule: VirtualService): boolean {
  const gateways = rule.spec.gateways;
  return !gateways || gateways.length === 0 || gateways.includes('mesh');
}

function subsetsOf(rule: DestinationRule | undefined): readonly Subset[] {
  return rule?.spec.subsets ?? [];
}

/** Cross-object checks: a destination's host, port and subset should exist. Istio still applies such rules. */
function referenceIssues(
  vs: ResolvedVirtualService,
  services: ReadonlyMap<string, Service>,
  destinationRules: ReadonlyMap<string, DestinationRule>,
): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  vs.http.forEach((route, i) => {
    route.route?.forEach((target, j) => {
      const path = `spec.http[${i}].route[${j}].destination`;
      const { host, subset, port } = target.destination;
      const service = services.get(host);
      if (!service) {
        issues.push({
          code: 'MP_REF_UNKNOWN',
          severity: 'warning',
          path: `${path}.host`,
          message: `no service "${host}" in the registry: requests routed here fail with 503 until it exists`,
        });
        return;
      }
      if (port && !service.ports.some((p) => p.port === port.number)) {
        issues.push({
          code: 'MP_REF_UNKNOWN',
          severity: 'warning',
          path: `${path}.port.number`,
          message: `service "${host}" has no port ${port.number}: use one of ${service.ports.map((p) => p.port).join(', ')}`,
        });
      }
      if (subset && !subsetsOf(destinationRules.get(host)).some((s) => s.name === subset)) {
        issues.push({
          code: 'MP_REF_UNKNOWN',
          severity: 'warning',
          path: `${path}.subset`,
          message: `no DestinationRule defines subset "${subset}" for "${host}": add it to the DestinationRule's subsets`,
        });
      }
    });
  });
  return issues;
}

let sequence = 0;

export function buildPushContext(snapshot: SourceSnapshot, meshConfig: MeshConfig = DEFAULT_MESH_CONFIG): PushContext {
  const services = [...snapshot.services].sort((a, b) => (a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0));
  const serviceByHost = new Map(services.map((s) => [s.hostname, s]));

  const endpointsByHost = new Map<string, Endpoint[]>();
  for (const endpoint of snapshot.endpoints) {
    const list = endpointsByHost.get(endpoint.serviceHostname);
    if (list) list.push(endpoint);
    else endpointsByHost.set(endpoint.serviceHostname, [endpoint]);
  }
  for (const list of endpointsByHost.values()) {
    list.sort((a, b) => (a.address === b.address ? a.port - b.port : a.address < b.address ? -1 : 1));
  }

  const rules = [...snapshot.rules].sort(compareRules);
  const ruleStatus = new Map<string, RuleStatus>();
  const destinationRuleByHost = new Map<string, DestinationRule>();
  for (const rule of rules.filter(isDestinationRule)) {
    const host = resolveShortName(rule.spec.host, rule.meta.namespace);
    const owner = destinationRuleByHost.get(host);
    if (owner) {
      ruleStatus.set(ruleKey(rule.meta), {
        rule,
        applied: false,
        issues: [conflict('spec.host', host, owner)],
      });
      continue;
    }
    destinationRuleByHost.set(host, rule);
    ruleStatus.set(ruleKey(rule.meta), { rule, issues: [], applied: true });
  }

  const virtualServiceByHost = new Map<string, ResolvedVirtualService>();
  for (const rule of rules.filter(isVirtualService)) {
    const resolved = resolveVirtualService(rule);
    const issues = referenceIssues(resolved, serviceByHost, destinationRuleByHost);
    const forMesh = appliesToMesh(rule);
    let claimed = 0;
    resolved.hosts.forEach((host, i) => {
      if (!forMesh) return;
      const owner = virtualServiceByHost.get(host);
      if (owner) {
        issues.push(conflict(`spec.hosts[${i}]`, host, owner.rule));
        return;
      }
      virtualServiceByHost.set(host, resolved);
      claimed++;
    });
    ruleStatus.set(ruleKey(rule.meta), { rule, issues, applied: claimed > 0 });
  }

  const memo = new Map<string, unknown>();
  return {
    sequence: ++sequence,
    builtAt: new Date(),
    services,
    serviceByHost,
    endpointsByHost,
    virtualServiceByHost,
    destinationRuleByHost,
    ruleStatus,
    rejected: snapshot.rejected,
    meshConfig,
    memo<T>(key: string, build: () => T): T {
      if (memo.has(key)) return memo.get(key) as T;
      const value = build();
      memo.set(key, value);
      return value;
    },
  };
}

function conflict(path: string, host: string, owner: Rule): ValidationIssue {
  return {
    code: 'MP_RULE_CONFLICT',
    severity: 'warning',
    path,
    message: `host "${host}" is already claimed by ${owner.meta.kind} ${owner.meta.namespace}/${owner.meta.name}, which is older: merge the two or remove one`,
  };
}
