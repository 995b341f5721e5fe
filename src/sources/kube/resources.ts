// What the Kubernetes source watches: one table, read by the informers, discovery, and the
// RBAC test that keeps deploy/ in step with it.

export interface WatchedResource {
  readonly kind: string;
  /** API group; '' is the core group (`/api/v1`). */
  readonly group: string;
  /** Versions meshpilot reads, most preferred first. */
  readonly versions: readonly string[];
  readonly plural: string;
  readonly namespaced: boolean;
  /** A CRD that may not be installed: found by discovery, skipped with one log line when absent. */
  readonly optional: boolean;
  /** Kinds with a status subresource the leader writes: Istio's validation messages, Gateway API routes' parents. */
  readonly statusSubresource?: boolean;
  /** How the source keys it when another group has a kind of the same name (the Gateway API's Gateway). */
  readonly id?: string;
}

/** The name the source keys a resource and its objects by: its kind, unless another group's kind has it. */
export function resourceId(resource: WatchedResource): string {
  return resource.id ?? resource.kind;
}

const ISTIO_NETWORKING_VERSIONS = ['v1', 'v1beta1', 'v1alpha3'] as const;

function istio(kind: string, plural: string): WatchedResource {
  return { kind, group: 'networking.istio.io', versions: ISTIO_NETWORKING_VERSIONS, plural, namespaced: true, optional: true, statusSubresource: true };
}

export const WATCHED_RESOURCES: readonly WatchedResource[] = [
  { kind: 'Namespace', group: '', versions: ['v1'], plural: 'namespaces', namespaced: false, optional: false },
  { kind: 'Service', group: '', versions: ['v1'], plural: 'services', namespaced: true, optional: false },
  { kind: 'EndpointSlice', group: 'discovery.k8s.io', versions: ['v1'], plural: 'endpointslices', namespaced: true, optional: false },
  { kind: 'Pod', group: '', versions: ['v1'], plural: 'pods', namespaced: true, optional: false },
  // TLS Secrets for gateways' credentialName (others are read and dropped: their data never leaves the source).
  { kind: 'Secret', group: '', versions: ['v1'], plural: 'secrets', namespaced: true, optional: false },
  istio('VirtualService', 'virtualservices'),
  istio('DestinationRule', 'destinationrules'),
  istio('ServiceEntry', 'serviceentries'),
  istio('WorkloadEntry', 'workloadentries'),
  istio('Sidecar', 'sidecars'),
  istio('Gateway', 'gateways'),
  { kind: 'PeerAuthentication', group: 'security.istio.io', versions: ['v1', 'v1beta1'], plural: 'peerauthentications', namespaced: true, optional: true, statusSubresource: true },
  { kind: 'AuthorizationPolicy', group: 'security.istio.io', versions: ['v1', 'v1beta1'], plural: 'authorizationpolicies', namespaced: true, optional: true, statusSubresource: true },
  { kind: 'RouteRule', group: 'config.istio.io', versions: ['v1alpha2'], plural: 'routerules', namespaced: true, optional: true },
  // Gateway API routes get `status.parents` written back (not Istio's validation messages).
  { kind: 'HTTPRoute', group: 'gateway.networking.k8s.io', versions: ['v1', 'v1beta1'], plural: 'httproutes', namespaced: true, optional: true, statusSubresource: true },
  { kind: 'GRPCRoute', group: 'gateway.networking.k8s.io', versions: ['v1'], plural: 'grpcroutes', namespaced: true, optional: true, statusSubresource: true },
  { kind: 'ReferenceGrant', group: 'gateway.networking.k8s.io', versions: ['v1beta1'], plural: 'referencegrants', namespaced: true, optional: true },
  // The experimental channel's L4 routes, on Gateway listeners.
  { kind: 'TLSRoute', group: 'gateway.networking.k8s.io', versions: ['v1', 'v1alpha3', 'v1alpha2'], plural: 'tlsroutes', namespaced: true, optional: true, statusSubresource: true },
  { kind: 'TCPRoute', group: 'gateway.networking.k8s.io', versions: ['v1alpha2'], plural: 'tcproutes', namespaced: true, optional: true, statusSubresource: true },
  // Gateways of meshpilot's classes, and those classes, get their status written too.
  { kind: 'GatewayClass', group: 'gateway.networking.k8s.io', versions: ['v1', 'v1beta1'], plural: 'gatewayclasses', namespaced: false, optional: true, statusSubresource: true },
  { kind: 'Gateway', id: 'Gateway.gateway.networking.k8s.io', group: 'gateway.networking.k8s.io', versions: ['v1', 'v1beta1'], plural: 'gateways', namespaced: true, optional: true, statusSubresource: true },
  // The experimental channel's XMesh: the one naming meshpilot's mesh controller gets Accepted and the mesh's supportedFeatures.
  { kind: 'XMesh', group: 'gateway.networking.x-k8s.io', versions: ['v1alpha1'], plural: 'xmeshes', namespaced: false, optional: true, statusSubresource: true },
];

/** The verbs the source uses; the ClusterRole grants exactly these. */
export const WATCH_VERBS: readonly string[] = ['get', 'list', 'watch'];

/** One grant beyond watching: where, which objects (all when absent), which verbs. */
export interface KubePermission {
  readonly group: string;
  readonly resource: string;
  readonly verbs: readonly string[];
  readonly resourceNames?: readonly string[];
  /** `system`: meshpilot's own namespace only (a Role); `cluster`: every namespace (a ClusterRole). */
  readonly scope: 'system' | 'cluster';
}

/** What the CA reads, writes and asks (src/security/ca-kube.ts); deploy/02-rbac.yaml grants exactly these. */
export const CA_PERMISSIONS: readonly KubePermission[] = [
  { group: '', resource: 'secrets', verbs: ['get'], resourceNames: ['cacerts', 'meshpilot-ca-secret'], scope: 'system' },
  // create cannot be limited by name (the object does not exist yet).
  { group: '', resource: 'secrets', verbs: ['create'], scope: 'system' },
  { group: '', resource: 'configmaps', verbs: ['get', 'update'], resourceNames: ['istio-ca-root-cert'], scope: 'cluster' },
  { group: '', resource: 'configmaps', verbs: ['create'], scope: 'cluster' },
  { group: 'authentication.k8s.io', resource: 'tokenreviews', verbs: ['create'], scope: 'cluster' },
];

/** The Lease of the status writer's election, in meshpilot's namespace (Istio names its own `istio-status-leader`). */
export const STATUS_LEADER_LEASE = 'meshpilot-status-leader';

/** What leader election and the status writer use (src/sources/kube/leader-election.ts, status-writer.ts); deploy/02-rbac.yaml grants exactly these. */
export const STATUS_PERMISSIONS: readonly KubePermission[] = [
  { group: 'coordination.k8s.io', resource: 'leases', verbs: ['get', 'update'], resourceNames: [STATUS_LEADER_LEASE], scope: 'system' },
  // create cannot be limited by name (the object does not exist yet).
  { group: 'coordination.k8s.io', resource: 'leases', verbs: ['create'], scope: 'system' },
  ...WATCHED_RESOURCES.filter((resource) => resource.statusSubresource).map((resource): KubePermission => ({ group: resource.group, resource: `${resource.plural}/status`, verbs: ['update'], scope: 'cluster' })),
];

/**
 * What the gateway deployment controller uses (src/sources/kube/gateway-deployment.ts), in every
 * namespace a Gateway may be in; deploy/02-rbac.yaml grants exactly these.
 */
export const GATEWAY_DEPLOYMENT_PERMISSIONS: readonly KubePermission[] = [
  { group: 'gateway.networking.k8s.io', resource: 'gateways', verbs: WATCH_VERBS, scope: 'cluster' },
  { group: 'gateway.networking.k8s.io', resource: 'gatewayclasses', verbs: WATCH_VERBS, scope: 'cluster' },
  // Watched (only those it labelled) so that an edit or a deletion is put right, as Istio does.
  ...['serviceaccounts', 'services'].map((resource): KubePermission => ({ group: '', resource, verbs: [...WATCH_VERBS, 'create', 'update'], scope: 'cluster' })),
  { group: 'apps', resource: 'deployments', verbs: [...WATCH_VERBS, 'create', 'update'], scope: 'cluster' },
];

export function apiVersionOf(resource: WatchedResource, version: string): string {
  return resource.group === '' ? version : `${resource.group}/${version}`;
}

/** `/api/v1/namespaces/default/services` or `/apis/networking.istio.io/v1/virtualservices`. */
export function collectionPath(resource: WatchedResource, version: string, namespace?: string): string {
  const base = resource.group === '' ? `/api/${version}` : `/apis/${resource.group}/${version}`;
  return namespace !== undefined && resource.namespaced ? `${base}/namespaces/${namespace}/${resource.plural}` : `${base}/${resource.plural}`;
}

/** Where one object lives in the API, used as its source location in /debug/configz. */
export function objectPath(resource: WatchedResource, version: string, namespace: string | undefined, name: string): string {
  return `${collectionPath(resource, version, resource.namespaced ? namespace : undefined)}/${name}`;
}
