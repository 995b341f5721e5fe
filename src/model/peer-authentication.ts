// PeerAuthentication as Istio composes it (authn ComposePeerAuthentication): per workload, the
// oldest mesh-wide policy (root namespace, no selector), then the oldest namespace policy, then
// the oldest workload policy that selects it; each level's UNSET inherits the one above, and
// portLevelMtls of the workload policy overrides per port. PERMISSIVE when nothing says otherwise.
import type { WorkloadIndex } from './workload-labels.ts';
import { labelsMatch } from './service.ts';
import type { MutualTlsMode, PeerAuthentication, Rule, ValidationIssue } from './rules.ts';
import { ruleKey } from './rules.ts';

/** What a workload port accepts: UNSET is resolved away. */
export type EffectiveMtlsMode = Exclude<MutualTlsMode, 'UNSET'>;

export const DEFAULT_MTLS_MODE: EffectiveMtlsMode = 'PERMISSIVE';

export interface WorkloadMtls {
  /** The mode of every port without a port-level setting. */
  readonly mode: EffectiveMtlsMode;
  /** Port-level modes of the workload policy, by workload port. */
  readonly perPort: ReadonlyMap<number, EffectiveMtlsMode>;
  /** The policies that decided, most general first (for operators). */
  readonly policies: readonly PeerAuthentication[];
}

export interface PeerAuthenticationIndex {
  /** How many policies are applied (0: every workload is PERMISSIVE). */
  readonly size: number;
  /** The composed policy of a workload in `namespace` with `labels`. */
  forWorkload(namespace: string, labels: Readonly<Record<string, string>>): WorkloadMtls;
  /** Istio's BestEffortInferServiceMTLSMode: the namespace (else mesh) mode, ignoring workload policies. */
  namespaceMode(namespace: string): EffectiveMtlsMode;
}

/** The mode a workload port accepts. */
export function portMode(mtls: WorkloadMtls, port: number): EffectiveMtlsMode {
  return mtls.perPort.get(port) ?? mtls.mode;
}

export interface PeerAuthenticationStatusSink {
  set(key: string, status: { rule: Rule; issues: readonly ValidationIssue[]; applied: boolean }): unknown;
}

function selectorOf(policy: PeerAuthentication): Readonly<Record<string, string>> | undefined {
  const labels = policy.spec.selector?.matchLabels;
  return labels && Object.keys(labels).length > 0 ? labels : undefined;
}

function describe(policy: PeerAuthentication): string {
  return `PeerAuthentication ${policy.meta.namespace}/${policy.meta.name}`;
}

function inherit(parent: EffectiveMtlsMode, mode: MutualTlsMode | undefined): EffectiveMtlsMode {
  return mode === undefined || mode === 'UNSET' ? parent : mode;
}

function conflict(path: string, message: string): ValidationIssue {
  return { code: 'MP_RULE_CONFLICT', severity: 'warning', path, message };
}

/**
 * Indexes PeerAuthentications (sorted oldest first) and records each one's status: a second
 * policy at the mesh or namespace level is not applied, a root-namespace policy with a selector
 * never applies (Istio ignores it), and a workload policy that picks a workload an older one
 * already picks is reported; the oldest wins in every case, as in Istio.
 */
export function indexPeerAuthentications(
  policies: readonly PeerAuthentication[],
  rootNamespace: string,
  workloads: WorkloadIndex,
  status: PeerAuthenticationStatusSink,
): PeerAuthenticationIndex {
  let mesh: PeerAuthentication | undefined;
  const byNamespace = new Map<string, PeerAuthentication>();
  const selecting = new Map<string, PeerAuthentication[]>();
  for (const policy of policies) {
    const { namespace } = policy.meta;
    const selector = selectorOf(policy);
    const issues: ValidationIssue[] = [];
    let applied = true;
    if (!selector) {
      const older = namespace === rootNamespace ? mesh : byNamespace.get(namespace);
      if (older) {
        const level = namespace === rootNamespace ? 'the mesh-wide policy' : `the policy of namespace ${namespace}`;
        issues.push(conflict('spec.selector', `${describe(older)} is older and is ${level}, so this one is not applied: merge the two and remove one`));
        applied = false;
      } else if (namespace === rootNamespace) mesh = policy;
      else byNamespace.set(namespace, policy);
    } else if (namespace === rootNamespace) {
      issues.push({
        code: 'MP_RULE_INEFFECTIVE',
        severity: 'warning',
        path: 'spec.selector',
        message: `a policy with a selector in the root namespace ${rootNamespace} applies to no workload (as in Istio): move it to the workloads' namespace, or remove the selector to make it mesh-wide`,
      });
      applied = false;
    } else {
      const list = selecting.get(namespace) ?? [];
      for (const [workload, labels] of workloads.inNamespace(namespace)) {
        if (!labelsMatch(selector, labels)) continue;
        const older = list.find((other) => labelsMatch(selectorOf(other) ?? {}, labels));
        if (older) issues.push(conflict('spec.selector.matchLabels', `also selects workload ${workload}, which the older ${describe(older)} selects and decides: make the selectors select different pods`));
      }
      list.push(policy);
      selecting.set(namespace, list);
    }
    status.set(ruleKey(policy.meta), { rule: policy, issues, applied });
  }
  const size = (mesh ? 1 : 0) + byNamespace.size + [...selecting.values()].reduce((n, list) => n + list.length, 0);
  const namespaceMode = (namespace: string): EffectiveMtlsMode =>
    inherit(inherit(DEFAULT_MTLS_MODE, mesh?.spec.mtls?.mode), byNamespace.get(namespace)?.spec.mtls?.mode);
  return {
    size,
    namespaceMode,
    forWorkload(namespace, labels) {
      const ns = byNamespace.get(namespace);
      const workload = Object.keys(labels).length > 0 ? selecting.get(namespace)?.find((p) => labelsMatch(selectorOf(p) ?? {}, labels)) : undefined;
      const mode = inherit(namespaceMode(namespace), workload?.spec.mtls?.mode);
      const perPort = new Map<number, EffectiveMtlsMode>();
      for (const [port, setting] of Object.entries(workload?.spec.portLevelMtls ?? {})) perPort.set(Number(port), inherit(mode, setting.mode));
      return { mode, perPort, policies: [mesh, ns, workload].filter((p): p is PeerAuthentication => p !== undefined) };
    },
  };
}
