// LDS: sidecar outbound listeners (Istio's names and shapes) and proxyless gRPC API listeners.
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import { isHttpProtocol } from '../../model/service.ts';
import type { JsonObject } from '../proto-json.ts';
import { EnvoyResource } from '../resource.ts';
import { CORS_TYPE, FAULT_TYPE, HTTP_CONNECTION_MANAGER_TYPE, LISTENER_TYPE, ROUTER_TYPE, TCP_PROXY_TYPE } from '../type-urls.ts';
import { ADS_CONFIG_SOURCE, socketAddress, typed } from './common.ts';
import {
  PASSTHROUGH_CLUSTER,
  VIRTUAL_OUTBOUND_LISTENER,
  VIRTUAL_OUTBOUND_PORT,
  clusterName,
  httpListenerName,
  parseHostPort,
  routeConfigName,
  tcpListenerName,
} from './names.ts';
import { CORS_FILTER, FAULT_FILTER } from './route-policy.ts';
import { resolveTargetHost } from './targets.ts';
import { tcpProxyUpstream } from './tcp-routes.ts';

const ROUTER_FILTER: JsonObject = { name: 'envoy.filters.http.router', typed_config: typed(ROUTER_TYPE, {}) };
// Empty top-level configs: routes switch them on through typed_per_filter_config, as Istio does.
const FAULT_HTTP_FILTER: JsonObject = { name: FAULT_FILTER, typed_config: typed(FAULT_TYPE, {}) };
const CORS_HTTP_FILTER: JsonObject = { name: CORS_FILTER, typed_config: typed(CORS_TYPE, {}) };

function httpConnectionManager(statPrefix: string, routeName: string, filters: readonly JsonObject[] = [FAULT_HTTP_FILTER, CORS_HTTP_FILTER]): JsonObject {
  return typed(HTTP_CONNECTION_MANAGER_TYPE, {
    stat_prefix: statPrefix,
    rds: { config_source: ADS_CONFIG_SOURCE, route_config_name: routeName },
    // The router must be last: it is the filter that forwards the request.
    http_filters: [...filters, ROUTER_FILTER],
  });
}

function tcpProxyFilter(statPrefix: string, upstream: JsonObject): JsonObject {
  return {
    name: 'envoy.filters.network.tcp_proxy',
    typed_config: typed(TCP_PROXY_TYPE, { stat_prefix: statPrefix, ...upstream }),
  };
}

function httpListener(port: number): JsonObject {
  const name = httpListenerName(port);
  return {
    name,
    address: socketAddress('0.0.0.0', port),
    // Outbound listeners receive traffic handed over by virtualOutbound, not by binding.
    bind_to_port: false,
    traffic_direction: 'OUTBOUND',
    filter_chains: [
      {
        filters: [
          { name: 'envoy.filters.network.http_connection_manager', typed_config: httpConnectionManager(`outbound_${name}`, routeConfigName(port)) },
        ],
      },
    ],
  };
}

function tcpListener(address: string, port: number, cluster: string, upstream: JsonObject = { cluster }): JsonObject {
  return {
    name: tcpListenerName(address, port),
    address: socketAddress(address, port),
    bind_to_port: false,
    traffic_direction: 'OUTBOUND',
    filter_chains: [{ filters: [tcpProxyFilter(cluster, upstream)] }],
  };
}

const VIRTUAL_OUTBOUND: JsonObject = {
  name: VIRTUAL_OUTBOUND_LISTENER,
  address: socketAddress('0.0.0.0', VIRTUAL_OUTBOUND_PORT),
  // iptables redirects outbound connections here; the original destination picks the listener.
  use_original_dst: true,
  traffic_direction: 'OUTBOUND',
  filter_chains: [{ name: 'virtualOutbound-catchall-tcp', filters: [tcpProxyFilter(PASSTHROUGH_CLUSTER, { cluster: PASSTHROUGH_CLUSTER })] }],
};

function sidecarListeners(push: PushContext): EnvoyResource[] {
  return push.memo('lds:sidecar', () => {
    const byName = new Map<string, JsonObject>();
    for (const service of push.services) {
      for (const port of service.ports) {
        if (isHttpProtocol(port.protocol)) {
          const name = httpListenerName(port.port);
          if (!byName.has(name)) byName.set(name, httpListener(port.port));
        }
      }
    }
    for (const service of push.services) {
      for (const port of service.ports) {
        if (isHttpProtocol(port.protocol) || port.protocol === 'UDP') continue;
        const address = service.vip ?? '0.0.0.0';
        const name = tcpListenerName(address, port.port);
        // An HTTP listener or an older service already owns this address:port.
        if (!byName.has(name)) byName.set(name, tcpListener(address, port.port, clusterName(port.port, service.hostname), tcpProxyUpstream(push, service, port)));
      }
    }
    byName.set(VIRTUAL_OUTBOUND_LISTENER, VIRTUAL_OUTBOUND);
    return [...byName.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([name, json]) => new EnvoyResource(LISTENER_TYPE, name, json));
  });
}

/** The API listener a proxyless gRPC client asks for by its target authority. */
export function grpcApiListener(name: string): JsonObject {
  return {
    name,
    // gRPC implements the fault filter but not CORS.
    api_listener: { api_listener: httpConnectionManager(name, name, [FAULT_HTTP_FILTER]) },
  };
}

/**
 * Listeners for a proxy. Wildcard (`names` undefined) gives a sidecar its outbound listeners.
 * A name of the form `host:port` that resolves to a service port gets a gRPC API listener,
 * whichever client asks for it.
 */
export function buildListeners(push: PushContext, proxy: Proxy, names: readonly string[] | undefined): EnvoyResource[] {
  if (!names) return proxy.generator === 'grpc' ? [] : sidecarListeners(push);
  const sidecar = proxy.generator === 'grpc' ? new Map<string, EnvoyResource>() : new Map(sidecarListeners(push).map((r) => [r.name, r]));
  const out: EnvoyResource[] = [];
  for (const name of names) {
    const known = sidecar.get(name);
    if (known) {
      out.push(known);
      continue;
    }
    const target = parseHostPort(name);
    if (!target || !resolveTargetHost(push, target.host, target.port, proxy.namespace)) continue;
    out.push(push.memo(`lds:grpc:${name}`, () => new EnvoyResource(LISTENER_TYPE, name, grpcApiListener(name))));
  }
  return out;
}
