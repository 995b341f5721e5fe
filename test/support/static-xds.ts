// A control plane that serves fixed resources over ADS (SotW), for testing a client's side of a
// feature before meshpilot generates it: every request is answered with the resources of its
// type it names (all of them for a wildcard), an ACK with silence.
import pino from 'pino';
import { EnvoyResource } from '../../src/xds/resource.ts';
import type { JsonObject } from '../../src/xds/proto-json.ts';
import { decodeDiscoveryRequest, encodeDiscoveryResponse } from '../../src/xds/server/messages.ts';
import { GrpcTransport } from '../../src/xds/server/grpc-transport.ts';
import { ResourceWire } from '../../src/xds/server/wire.ts';

const ADS_SOTW_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';

export interface StaticXds {
  readonly port: number;
  close(): Promise<void>;
}

function resourceName(json: JsonObject): string {
  const name = json['name'] ?? json['cluster_name'];
  if (typeof name !== 'string') throw new Error('a resource needs a name (or cluster_name)');
  return name;
}

/** `resources` by type URL: each resource's proto3 JSON (its `name`, or `cluster_name` for endpoints, names it). */
export async function startStaticXds(resources: Readonly<Record<string, readonly JsonObject[]>>): Promise<StaticXds> {
  const byType = new Map(Object.entries(resources).map(([typeUrl, list]) => [typeUrl, list.map((json) => new EnvoyResource(typeUrl, resourceName(json), json))]));
  const transport = new GrpcTransport({ log: pino({ level: 'silent' }) });
  let nonce = 0;
  const wire = new ResourceWire();
  transport.handle(ADS_SOTW_PATH, (call) => {
    // Per type, the names last answered: an ACK (or NACK) repeats them and is not answered again.
    const answered = new Map<string, string>();
    call.onMessage = (message) => {
      const request = decodeDiscoveryRequest(message);
      const names = [...request.resourceNames];
      if (answered.get(request.typeUrl) === names.join(',')) return;
      answered.set(request.typeUrl, names.join(','));
      const all = byType.get(request.typeUrl) ?? [];
      const chosen = names.length === 0 ? all : all.filter((resource) => names.includes(resource.name));
      call.write(encodeDiscoveryResponse({ versionInfo: 'static', typeUrl: request.typeUrl, nonce: String(++nonce), resources: chosen, controlPlaneId: 'static' }, wire), () => undefined);
    };
  });
  const port = await transport.listen('127.0.0.1', 0);
  return { port, close: () => transport.close(100) };
}
