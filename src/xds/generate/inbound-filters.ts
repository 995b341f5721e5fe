// The seam where a workload's own inbound policies (AuthorizationPolicy's RBAC, later others) put
// their HTTP filters: before the router, on every inbound HTTP chain of an Envoy sidecar and on the
// server listener of a proxyless gRPC server alike.
import type { Proxy } from '../../model/proxy.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { HttpFilter } from '../envoy-types.generated.ts';
import { authorizationHttpFilters, grpcAuthorizationHttpFilters } from './authz.ts';

/**
 * HTTP filters for inbound requests to the proxy's workload on `port` (its own port), before the
 * router. Policies apply to the whole workload (a port enters only as a rule's condition), so the
 * filters are the same on every port; proxyless gRPC gets the form it can evaluate, failing closed.
 */
export function inboundHttpFilters(push: PushContext, proxy: Proxy, _port: number): HttpFilter[] {
  return proxy.generator === 'grpc' ? grpcAuthorizationHttpFilters(push, proxy) : authorizationHttpFilters(push, proxy);
}
