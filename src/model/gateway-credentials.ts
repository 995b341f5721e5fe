// Which Secrets a Gateway server's TLS needs on a gateway in a namespace, and whether that gateway
// may have them: a server whose Secret is missing, unusable or another namespace's (without a
// ReferenceGrant) is left out of the gateway's listeners (the other servers stay), and the Gateway
// is told which and why.
import type { CredentialIndex, CredentialRef } from './credentials.ts';
import { CA_SECRET_SUFFIX, credentialResourceName, crossNamespaceDenial, parseCredentialName } from './credentials.ts';
import type { Gateway, GatewayServer, ValidationIssue } from './rules.ts';
import type { GatewayWorkload } from './gateway-selection.ts';
import { labelsMatch } from './service.ts';

/** Modes that take a certificate from `credentialName`; MUTUAL and OPTIONAL_MUTUAL also its CA. */
const CREDENTIAL_MODES = new Set(['SIMPLE', 'MUTUAL', 'OPTIONAL_MUTUAL']);

/** The SDS names a server's TLS asks for (as gateway-tls.ts renders them), read in `namespace`. */
export function serverCredentialRefs(server: GatewayServer, namespace: string): CredentialRef[] {
  const tls = server.tls;
  if (!tls?.mode || !CREDENTIAL_MODES.has(tls.mode)) return [];
  const written = tls.credentialNames?.length ? tls.credentialNames : tls.credentialName ? [tls.credentialName] : [];
  const names = written.map(credentialResourceName).filter((name): name is string => name !== undefined);
  const [first] = names;
  if (first !== undefined && tls.mode !== 'SIMPLE') names.push(`${first}${CA_SECRET_SUFFIX}`);
  return names.map((name) => parseCredentialName(name, namespace)).filter((ref): ref is CredentialRef => ref !== undefined);
}

/** Why a gateway in `namespace` cannot serve this server's certificate, or undefined when it can. */
export function missingCredential(credentials: CredentialIndex, server: GatewayServer, namespace: string): string | undefined {
  for (const ref of serverCredentialRefs(server, namespace)) {
    const denial = crossNamespaceDenial(ref, namespace, credentials);
    if (denial !== undefined) return denial;
    const found = credentials.lookup(ref);
    if (!found.found) return found.reason;
  }
  return undefined;
}

/** The namespaces of the gateway workloads a Gateway selects; its own when none is known. */
function selectedNamespaces(gateway: Gateway, workloads: ReadonlyMap<string, GatewayWorkload>): string[] {
  const selector = gateway.spec.selector ?? {};
  const namespaces = new Set<string>();
  if (Object.keys(selector).length > 0) {
    for (const workload of workloads.values()) if (workload.namespace !== undefined && labelsMatch(selector, workload.labels)) namespaces.add(workload.namespace);
  }
  return namespaces.size > 0 ? [...namespaces].sort() : [gateway.meta.namespace];
}

/** MP_REF_UNKNOWN on each server whose credential the gateways it selects cannot serve. */
export function gatewayCredentialIssues(gateway: Gateway, credentials: CredentialIndex, workloads: ReadonlyMap<string, GatewayWorkload>): ValidationIssue[] {
  if (!gateway.spec.servers.some((server) => serverCredentialRefs(server, gateway.meta.namespace).length > 0)) return [];
  const namespaces = selectedNamespaces(gateway, workloads);
  const issues: ValidationIssue[] = [];
  gateway.spec.servers.forEach((server, index) => {
    for (const namespace of namespaces) {
      const reason = missingCredential(credentials, server, namespace);
      if (reason === undefined) continue;
      const label = server.name ?? `${server.port.name} (port ${String(server.port.number)})`;
      const field = server.tls?.credentialNames?.length ? 'credentialNames' : 'credentialName';
      issues.push({ code: 'MP_REF_UNKNOWN', severity: 'warning', path: `spec.servers[${String(index)}].tls.${field}`, message: `${reason}: server ${label} is left out of the gateways in ${namespace} until it is there; their other servers are served` });
      break;
    }
  });
  return issues;
}
