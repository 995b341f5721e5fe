// `meshpilot proxy-config secret PROXY`: the proxy's certificates as `istioctl proxy-config secret`
// shows them (`default` and `ROOTCA`), from meshpilot's CA record of what it issued to the proxy's
// identity, or from the agent beside the proxy (`--agent URL`, its status endpoint).
import { MeshpilotError } from '../errors.ts';
import type { AgentStatus } from '../agent/status-server.ts';
import type { ProxySecurity } from '../admin/proxy-security.ts';
import { ROOT_SECRET, WORKLOAD_SECRET } from '../security/names.ts';
import type { AdminFlags } from './admin-client.ts';
import { callAdmin, print, printJson, table } from './admin-client.ts';

export interface SecretFlags extends AdminFlags {
  readonly agent?: string;
}

interface Validity {
  readonly serial: string;
  readonly notBefore: string;
  readonly notAfter: string;
}

export interface SecretRow extends Validity {
  readonly name: string;
  readonly type: 'Cert Chain' | 'CA';
  readonly status: 'ACTIVE' | 'EXPIRED' | 'NOT YET VALID';
  readonly valid: boolean;
  /** The SPIFFE ID of `default`; `trust domain X` of ROOTCA. */
  readonly identity: string;
}

export interface SecretAnswer {
  readonly proxy: string;
  readonly source: 'ca' | 'agent';
  readonly identity: string;
  readonly secrets: readonly SecretRow[];
  /** What else the reader should know (other certificates of the identity). */
  readonly note?: string;
}

function row(name: string, type: SecretRow['type'], validity: Validity, identity: string, now: number): SecretRow {
  const status = Date.parse(validity.notAfter) <= now ? 'EXPIRED' : Date.parse(validity.notBefore) > now ? 'NOT YET VALID' : 'ACTIVE';
  return { name, type, status, valid: status === 'ACTIVE', serial: validity.serial, notBefore: validity.notBefore, notAfter: validity.notAfter, identity };
}

function trustDomainOf(spiffeId: string): string {
  return /^spiffe:\/\/([^/]+)\//.exec(spiffeId)?.[1] ?? '?';
}

interface CertsAnswer {
  readonly trustDomain: string;
  readonly root: Validity;
  readonly proxy: ProxySecurity & { readonly id: string };
}

async function fromCa(flags: AdminFlags, proxy: string, now: number): Promise<SecretAnswer> {
  const answer = await callAdmin<CertsAnswer>(flags, `/debug/certs?proxyID=${encodeURIComponent(proxy)}`);
  const { identity, certificate, issuedToIdentity, unknownBecause } = answer.proxy;
  if (!identity || !certificate) throw new MeshpilotError('MP_NO_CERTIFICATE', `no certificate is known for proxy "${proxy}": ${unknownBecause ?? 'the CA has none on record'}`);
  const others = issuedToIdentity - 1;
  return {
    proxy,
    source: 'ca',
    identity: identity.spiffeId,
    secrets: [row(WORKLOAD_SECRET, 'Cert Chain', certificate, identity.spiffeId, now), row(ROOT_SECRET, 'CA', answer.root, `trust domain ${answer.trustDomain}`, now)],
    ...(others > 0
      ? { note: `the newest of ${String(issuedToIdentity)} certificates the CA issued to ${identity.spiffeId} (every pod of the service account gets its own, and each rotation a new one); --agent URL reads the one this pod holds` }
      : {}),
  };
}

async function fromAgent(agentUrl: string, proxy: string, now: number): Promise<SecretAnswer> {
  const url = `${agentUrl.replace(/\/+$/, '')}/status`;
  let status: AgentStatus;
  try {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`it answered ${String(response.status)}`);
    status = (await response.json()) as AgentStatus;
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : error instanceof Error ? error.message : String(error);
    throw new MeshpilotError('MP_AGENT_UNREACHABLE', `cannot read the agent's status at ${url} (${cause}): give --agent http://127.0.0.1:15020 of the pod (e.g. through kubectl port-forward)`);
  }
  const { serial, notBefore, notAfter } = status;
  if (serial === undefined || notBefore === undefined || notAfter === undefined) {
    throw new MeshpilotError('MP_NO_CERTIFICATE', `no certificate is known for proxy "${proxy}": its agent (${status.identity}) holds none yet${status.lastError ? `: ${status.lastError}` : ''}`);
  }
  const trustDomain = `trust domain ${trustDomainOf(status.identity)}`;
  return {
    proxy,
    source: 'agent',
    identity: status.identity,
    secrets: [row(WORKLOAD_SECRET, 'Cert Chain', { serial, notBefore, notAfter }, status.identity, now), ...(status.roots ?? []).map((root) => row(ROOT_SECRET, 'CA', root, trustDomain, now))],
  };
}

const HEADER = ['RESOURCE NAME', 'TYPE', 'STATUS', 'VALID CERT', 'SERIAL NUMBER', 'NOT AFTER', 'NOT BEFORE', 'IDENTITY'];

export async function showSecrets(proxy: string, flags: SecretFlags, now = Date.now()): Promise<number> {
  const answer = flags.agent !== undefined ? await fromAgent(flags.agent, proxy, now) : await fromCa(flags, proxy, now);
  if (flags.output === 'json') {
    printJson(answer);
    return 0;
  }
  const rows = answer.secrets.map((s) => [s.name, s.type, s.status, String(s.valid), s.serial, s.notAfter, s.notBefore, s.identity]);
  print(table(HEADER, rows) + (answer.note ? `\nsource: meshpilot's CA record, ${answer.note}\n` : `\nsource: ${answer.source === 'ca' ? "meshpilot's CA record" : `the agent at ${flags.agent ?? ''}`}\n`));
  return 0;
}
