// `meshpilot proxy-config cluster|listener|route|endpoint|secret PROXY`: what a proxy was sent, and its certificates.
import type { Command } from 'commander';
import { Argument, Option } from 'commander';
import { MeshpilotError } from '../errors.ts';
import { asObject, asObjects, routeRule, str } from '../xds/attribution.ts';
import { assignmentEndpoints } from '../xds/explain/explain.ts';
import { parseClusterName } from '../xds/generate/names.ts';
import type { JsonObject } from '../xds/proto-json.ts';
import { callAdmin, print, printJson, ruleText, runCommand, table, withAdminOptions } from './admin-client.ts';
import { showSecrets, type SecretFlags } from './proxy-config-secret.ts';

type Section = 'cluster' | 'listener' | 'route' | 'endpoint';

const DUMP: Readonly<Record<Section, { type: string; list: string; pick: (entry: JsonObject) => JsonObject | undefined }>> = {
  cluster: { type: 'ClustersConfigDump', list: 'dynamic_active_clusters', pick: (e) => asObject(e['cluster']) },
  endpoint: { type: 'EndpointsConfigDump', list: 'dynamic_endpoint_configs', pick: (e) => asObject(e['endpoint_config']) },
  listener: { type: 'ListenersConfigDump', list: 'dynamic_listeners', pick: (e) => asObject(asObject(e['active_state'])?.['listener']) },
  route: { type: 'RoutesConfigDump', list: 'dynamic_route_configs', pick: (e) => asObject(e['route_config']) },
};

function resourcesOf(dump: { configs: JsonObject[] }, section: Section): JsonObject[] {
  const { type, list, pick } = DUMP[section];
  const config = dump.configs.find((c) => str(c['@type']).endsWith(`.${type}`));
  return asObjects(config?.[list]).map(pick).filter((r): r is JsonObject => r !== undefined);
}

function clusterRows(resources: readonly JsonObject[]): string[][] {
  return resources.map((c) => {
    const name = str(c['name']);
    const key = parseClusterName(name);
    return key ? [key.host, String(key.port), key.subset || '-', key.direction, str(c['type'])] : [name, '-', '-', '-', str(c['type'])];
  });
}

function listenerDestination(listener: JsonObject): { kind: string; destination: string } {
  const api = asObject(asObject(listener['api_listener'])?.['api_listener']);
  if (api) return { kind: 'gRPC API', destination: `Route: ${str(asObject(api['rds'])?.['route_config_name'])}` };
  for (const chain of asObjects(listener['filter_chains'])) {
    for (const filter of asObjects(chain['filters'])) {
      const typed = asObject(filter['typed_config']) ?? {};
      const rds = asObject(typed['rds']);
      if (rds) return { kind: 'HTTP', destination: `Route: ${str(rds['route_config_name'])}` };
      if (typeof typed['cluster'] === 'string') return { kind: 'TCP', destination: `Cluster: ${typed['cluster']}` };
    }
  }
  return { kind: '-', destination: '-' };
}

function listenerRows(resources: readonly JsonObject[]): string[][] {
  return resources.map((l) => {
    const socket = asObject(asObject(l['address'])?.['socket_address']) ?? {};
    const { kind, destination } = listenerDestination(l);
    return [str(l['name']), str(socket['address']) || '-', str(socket['port_value']) || '-', kind, destination];
  });
}

function describeMatch(match: JsonObject): string {
  const path = typeof match['prefix'] === 'string' ? `${match['prefix']}*` : typeof match['path'] === 'string' ? match['path'] : typeof asObject(match['safe_regex'])?.['regex'] === 'string' ? `~${str(asObject(match['safe_regex'])?.['regex'])}` : '/*';
  const headers = asObjects(match['headers']).map((h) => {
    const sm = asObject(h['string_match']) ?? {};
    const value = h['exact_match'] ?? h['prefix_match'] ?? sm['exact'] ?? sm['prefix'] ?? asObject(h['safe_regex_match'] ?? sm['safe_regex'])?.['regex'] ?? '*';
    return `${str(h['name'])}=${str(value)}`;
  });
  return headers.length > 0 ? `${path} [${headers.join(', ')}]` : path;
}

function routeDestination(route: JsonObject): string {
  const action = asObject(route['route']);
  if (!action) return route['redirect'] ? 'redirect' : route['direct_response'] ? 'direct response' : '-';
  if (typeof action['cluster'] === 'string') return action['cluster'];
  return asObjects(asObject(action['weighted_clusters'])?.['clusters']).map((c) => `${str(c['name'])} ${str(c['weight'])}`).join(', ');
}

function routeRows(resources: readonly JsonObject[]): string[][] {
  return resources.flatMap((rc) =>
    asObjects(rc['virtual_hosts']).flatMap((vh) => {
      const domains = Array.isArray(vh['domains']) ? vh['domains'].map((d) => str(d)) : [];
      const shown = domains.length > 2 ? `${domains.slice(0, 2).join(', ')} +${domains.length - 2} more` : domains.join(', ');
      return asObjects(vh['routes']).map((r) => [str(rc['name']), shown, describeMatch(asObject(r['match']) ?? {}), routeDestination(r), ruleText(routeRule(r)) || '-']);
    }),
  );
}

function endpointRows(resources: readonly JsonObject[]): string[][] {
  return resources.flatMap((cla) => assignmentEndpoints(cla).map((e) => [`${e.address}:${e.port}`, e.healthStatus, e.locality, str(cla['cluster_name'])]));
}

const HEADERS: Readonly<Record<Section, readonly string[]>> = {
  cluster: ['SERVICE FQDN', 'PORT', 'SUBSET', 'DIRECTION', 'TYPE'],
  listener: ['NAME', 'ADDRESS', 'PORT', 'TYPE', 'DESTINATION'],
  route: ['NAME', 'DOMAINS', 'MATCH', 'DESTINATION', 'RULE'],
  endpoint: ['ENDPOINT', 'STATUS', 'LOCALITY', 'CLUSTER'],
};

const ROWS: Readonly<Record<Section, (resources: readonly JsonObject[]) => string[][]>> = {
  cluster: clusterRows,
  listener: listenerRows,
  route: routeRows,
  endpoint: endpointRows,
};

export function registerProxyConfigCommand(program: Command): void {
  withAdminOptions(
    program
      .command('proxy-config')
      .addArgument(new Argument('<type>', 'what to show').choices(['cluster', 'listener', 'route', 'endpoint', 'secret']))
      .argument('<proxy>', 'node id of a connected proxy (see proxy-status)')
      .addOption(new Option('--agent <url>', "secret: read the certificates from the agent's status endpoint beside the proxy (e.g. http://127.0.0.1:15020) instead of meshpilot's CA record"))
      .description("the clusters, listeners, routes or endpoints a proxy was sent, or its certificates (secret: `default` and `ROOTCA`)"),
  ).action((type: Section | 'secret', proxy: string, flags: SecretFlags) =>
    runCommand(async () => {
      if (type === 'secret') return showSecrets(proxy, flags);
      if (flags.agent !== undefined) throw new MeshpilotError('MP_CONFIG', '--agent is for `proxy-config secret`; the other sections come from meshpilot');
      const dump = await callAdmin<{ configs: JsonObject[] }>(flags, `/debug/config_dump?proxyID=${encodeURIComponent(proxy)}`);
      const resources = resourcesOf(dump, type);
      if (flags.output === 'json') printJson(resources);
      else print(table(HEADERS[type], ROWS[type](resources)));
      return 0;
    }),
  );
}
