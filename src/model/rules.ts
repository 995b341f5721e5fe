// Istio traffic rules as meshpilot holds them: the spec as the user wrote it (Istio's field
// names), plus where it came from. Short hosts are resolved when the PushContext is built.
import type { OutboundTrafficMode } from './mesh-config.ts';
import type { SourceRef } from './service.ts';
import type { ErrorCode } from '../errors.ts';

export type RuleKind = 'VirtualService' | 'DestinationRule' | 'Sidecar' | 'PeerAuthentication' | 'AuthorizationPolicy' | 'Gateway';

export interface StringMatch {
  readonly exact?: string;
  readonly prefix?: string;
  readonly regex?: string;
}

export interface HttpMatchRequest {
  readonly name?: string;
  readonly uri?: StringMatch;
  readonly scheme?: StringMatch;
  readonly method?: StringMatch;
  readonly authority?: StringMatch;
  /** `{}` as a value means "the header is present". */
  readonly headers?: Readonly<Record<string, StringMatch>>;
  readonly withoutHeaders?: Readonly<Record<string, StringMatch>>;
  readonly queryParams?: Readonly<Record<string, StringMatch>>;
  readonly port?: number;
  readonly sourceLabels?: Readonly<Record<string, string>>;
  readonly sourceNamespace?: string;
  readonly gateways?: readonly string[];
  readonly ignoreUriCase?: boolean;
}

export interface PortSelector {
  readonly number: number;
}

export interface Destination {
  readonly host: string;
  readonly subset?: string;
  readonly port?: PortSelector;
}

export interface HeaderOperations {
  readonly set?: Readonly<Record<string, string>>;
  readonly add?: Readonly<Record<string, string>>;
  readonly remove?: readonly string[];
}

export interface Headers {
  readonly request?: HeaderOperations;
  readonly response?: HeaderOperations;
}

export interface HttpRouteDestination {
  readonly destination: Destination;
  readonly weight?: number;
  readonly headers?: Headers;
}

export interface HttpRedirect {
  readonly uri?: string;
  /** Replaces the matched prefix (or the whole path of an exact match); not with `uri`. */
  readonly prefixRewrite?: string;
  readonly authority?: string;
  readonly port?: number;
  readonly scheme?: string;
  readonly redirectCode?: number;
}

export interface HttpRewrite {
  readonly uri?: string;
  readonly authority?: string;
  readonly uriRegexRewrite?: { readonly match?: string; readonly rewrite?: string };
}

/** A fixed response instead of forwarding: `body` is a string or base64 `bytes`. */
export interface HttpDirectResponse {
  readonly status: number;
  readonly body?: { readonly string?: string; readonly bytes?: string };
}

export interface HttpMirrorPolicy {
  readonly destination?: Destination;
  readonly percentage?: Percent;
}

export interface HttpRetry {
  readonly attempts?: number;
  readonly perTryTimeout?: string;
  readonly retryOn?: string;
  readonly retryRemoteLocalities?: boolean;
  readonly retryIgnorePreviousHosts?: boolean;
  /** Base interval of Envoy's exponential back-off between retries. */
  readonly backoff?: string;
}

/** Istio's `Percent`: a double from 0 to 100. */
export interface Percent {
  readonly value?: number;
}

export interface HttpFaultInjection {
  readonly delay?: { readonly fixedDelay?: string; readonly percentage?: Percent; readonly percent?: number };
  readonly abort?: { readonly httpStatus?: number; readonly grpcStatus?: string; readonly percentage?: Percent };
}

export interface CorsPolicy {
  readonly allowOrigins?: readonly StringMatch[];
  readonly allowMethods?: readonly string[];
  readonly allowHeaders?: readonly string[];
  readonly exposeHeaders?: readonly string[];
  readonly maxAge?: string;
  readonly allowCredentials?: boolean;
}

/** A root route's pointer to a VirtualService without hosts whose routes it takes. */
export interface HttpDelegate {
  readonly name: string;
  /** The root's namespace when unset. */
  readonly namespace?: string;
}

export interface HttpRoute {
  readonly name?: string;
  readonly delegate?: HttpDelegate;
  readonly match?: readonly HttpMatchRequest[];
  readonly route?: readonly HttpRouteDestination[];
  readonly redirect?: HttpRedirect;
  readonly directResponse?: HttpDirectResponse;
  readonly rewrite?: HttpRewrite;
  readonly timeout?: string;
  readonly retries?: HttpRetry;
  readonly fault?: HttpFaultInjection;
  readonly mirror?: Destination;
  readonly mirrorPercentage?: Percent;
  /** Deprecated in Istio for mirrorPercentage: a whole percentage. */
  readonly mirrorPercent?: number;
  readonly mirrors?: readonly HttpMirrorPolicy[];
  readonly corsPolicy?: CorsPolicy;
  readonly headers?: Headers;
}

export interface L4MatchAttributes {
  readonly destinationSubnets?: readonly string[];
  readonly port?: number;
  readonly sourceLabels?: Readonly<Record<string, string>>;
  readonly gateways?: readonly string[];
  readonly sourceNamespace?: string;
}

export interface RouteDestination {
  readonly destination: Destination;
  readonly weight?: number;
}

export interface TcpRoute {
  readonly match?: readonly L4MatchAttributes[];
  readonly route?: readonly RouteDestination[];
}

/** A TLS connection's SNI and where it arrived; served by gateways whose servers pass TLS through. */
export interface TlsMatchAttributes {
  readonly sniHosts: readonly string[];
  readonly destinationSubnets?: readonly string[];
  readonly port?: number;
  readonly sourceLabels?: Readonly<Record<string, string>>;
  readonly gateways?: readonly string[];
  readonly sourceNamespace?: string;
}

export interface TlsRoute {
  readonly match?: readonly TlsMatchAttributes[];
  readonly route?: readonly RouteDestination[];
}

export interface VirtualServiceSpec {
  /** Absent or empty: a delegate, used only through a root route's `delegate`. */
  readonly hosts?: readonly string[];
  readonly gateways?: readonly string[];
  readonly http?: readonly HttpRoute[];
  readonly tcp?: readonly TcpRoute[];
  readonly tls?: readonly TlsRoute[];
  readonly exportTo?: readonly string[];
}

export type SimpleLb = 'UNSPECIFIED' | 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'LEAST_CONN' | 'RANDOM' | 'PASSTHROUGH';

export interface ConsistentHashLb {
  readonly httpHeaderName?: string;
  readonly httpCookie?: { readonly name: string; readonly path?: string; readonly ttl?: string };
  readonly useSourceIp?: boolean;
  readonly httpQueryParameterName?: string;
  readonly ringHash?: { readonly minimumRingSize?: number };
  readonly maglev?: { readonly tableSize?: number };
  /** Deprecated in Istio for ringHash.minimumRingSize; still honoured. */
  readonly minimumRingSize?: number;
}

export interface LoadBalancerSettings {
  readonly simple?: SimpleLb;
  readonly consistentHash?: ConsistentHashLb;
  /** Deprecated in Istio for `warmup`: the slow-start window. */
  readonly warmupDurationSecs?: string;
  readonly warmup?: { readonly duration?: string; readonly minimumPercent?: number; readonly aggression?: number };
}

export interface ConnectionPoolSettings {
  readonly tcp?: {
    readonly maxConnections?: number;
    readonly connectTimeout?: string;
    readonly tcpKeepalive?: { readonly probes?: number; readonly time?: string; readonly interval?: string };
    readonly maxConnectionDuration?: string;
  };
  readonly http?: {
    readonly http1MaxPendingRequests?: number;
    readonly http2MaxRequests?: number;
    readonly maxRequestsPerConnection?: number;
    readonly maxRetries?: number;
    readonly idleTimeout?: string;
    readonly h2UpgradePolicy?: 'DEFAULT' | 'DO_NOT_UPGRADE' | 'UPGRADE';
    readonly maxConcurrentStreams?: number;
    readonly useClientProtocol?: boolean;
    /** HTTP/2 PINGs on an HTTP/2 upstream connection. */
    readonly http2KeepAlive?: { readonly interval?: string; readonly timeout?: string };
  };
}

export interface OutlierDetection {
  readonly consecutiveErrors?: number;
  readonly consecutive5xxErrors?: number;
  readonly consecutiveGatewayErrors?: number;
  readonly splitExternalLocalOriginErrors?: boolean;
  readonly consecutiveLocalOriginFailures?: number;
  readonly interval?: string;
  readonly baseEjectionTime?: string;
  readonly maxEjectionPercent?: number;
  readonly minHealthPercent?: number;
}

export type TlsMode = 'DISABLE' | 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL';

export interface ClientTlsSettings {
  readonly mode?: TlsMode;
  readonly clientCertificate?: string;
  readonly privateKey?: string;
  readonly caCertificates?: string;
  readonly credentialName?: string;
  readonly subjectAltNames?: readonly string[];
  readonly sni?: string;
  readonly insecureSkipVerify?: boolean;
}

export interface PortTrafficPolicy {
  readonly port?: PortSelector;
  readonly loadBalancer?: LoadBalancerSettings;
  readonly connectionPool?: ConnectionPoolSettings;
  readonly outlierDetection?: OutlierDetection;
  readonly tls?: ClientTlsSettings;
}

export interface TrafficPolicy {
  readonly loadBalancer?: LoadBalancerSettings;
  readonly connectionPool?: ConnectionPoolSettings;
  readonly outlierDetection?: OutlierDetection;
  readonly tls?: ClientTlsSettings;
  readonly portLevelSettings?: readonly PortTrafficPolicy[];
}

export interface Subset {
  readonly name: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly trafficPolicy?: TrafficPolicy;
}

export interface DestinationRuleSpec {
  readonly host: string;
  readonly trafficPolicy?: TrafficPolicy;
  readonly subsets?: readonly Subset[];
  readonly exportTo?: readonly string[];
}

/** A rule converted from another API (Gateway API routes): where each of its `spec.http[i]` was written. */
export interface RuleOrigin {
  readonly group: string;
  readonly http: readonly { readonly kind: string; readonly namespace: string; readonly name: string; readonly rule: number }[];
}

export interface RuleMeta {
  readonly kind: RuleKind;
  readonly name: string;
  readonly namespace: string;
  readonly source: SourceRef;
  /** Creation order tiebreaker (Istio merges rules oldest first); falls back to name. */
  readonly creationTimestamp?: string;
  /** Problems that did not stop the rule from being accepted (e.g. unknown fields). */
  readonly warnings?: readonly ValidationIssue[];
  /** Set on rules meshpilot converted from another API; they follow that API's semantics. */
  readonly origin?: RuleOrigin;
}

export interface VirtualService {
  readonly meta: RuleMeta & { readonly kind: 'VirtualService' };
  readonly spec: VirtualServiceSpec;
}

export interface DestinationRule {
  readonly meta: RuleMeta & { readonly kind: 'DestinationRule' };
  readonly spec: DestinationRuleSpec;
}

/** Istio's IstioEgressListener: which hosts (`namespace/dnsName`) a proxy may reach, optionally on one port. */
export interface SidecarEgressListener {
  readonly port?: { readonly number: number; readonly protocol?: string; readonly name?: string };
  readonly bind?: string;
  readonly captureMode?: string;
  readonly hosts: readonly string[];
}

export interface SidecarSpec {
  readonly workloadSelector?: { readonly labels?: Readonly<Record<string, string>> };
  readonly egress?: readonly SidecarEgressListener[];
  readonly ingress?: readonly unknown[];
  readonly outboundTrafficPolicy?: { readonly mode?: OutboundTrafficMode };
}

export interface Sidecar {
  readonly meta: RuleMeta & { readonly kind: 'Sidecar' };
  readonly spec: SidecarSpec;
}

/** PeerAuthentication's mTLS modes; UNSET inherits from the level above. */
export type MutualTlsMode = 'UNSET' | 'DISABLE' | 'PERMISSIVE' | 'STRICT';

export interface PeerAuthenticationSpec {
  readonly selector?: { readonly matchLabels?: Readonly<Record<string, string>> };
  readonly mtls?: { readonly mode?: MutualTlsMode };
  /** Keyed by the workload's port number (as a string, the way YAML map keys arrive). */
  readonly portLevelMtls?: Readonly<Record<string, { readonly mode?: MutualTlsMode }>>;
}

export interface PeerAuthentication {
  readonly meta: RuleMeta & { readonly kind: 'PeerAuthentication' };
  readonly spec: PeerAuthenticationSpec;
}

export type AuthorizationAction = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';

/** Istio's Source: who the caller is. Every list is a set of alternatives; the lists are ANDed. */
export interface AuthorizationSource {
  readonly principals?: readonly string[];
  readonly notPrincipals?: readonly string[];
  readonly requestPrincipals?: readonly string[];
  readonly notRequestPrincipals?: readonly string[];
  readonly namespaces?: readonly string[];
  readonly notNamespaces?: readonly string[];
  readonly serviceAccounts?: readonly string[];
  readonly notServiceAccounts?: readonly string[];
  readonly trustDomains?: readonly string[];
  readonly notTrustDomains?: readonly string[];
  readonly ipBlocks?: readonly string[];
  readonly notIpBlocks?: readonly string[];
  readonly remoteIpBlocks?: readonly string[];
  readonly notRemoteIpBlocks?: readonly string[];
}

/** Istio's Operation: what the caller asks for. */
export interface AuthorizationOperation {
  readonly hosts?: readonly string[];
  readonly notHosts?: readonly string[];
  readonly ports?: readonly string[];
  readonly notPorts?: readonly string[];
  readonly methods?: readonly string[];
  readonly notMethods?: readonly string[];
  readonly paths?: readonly string[];
  readonly notPaths?: readonly string[];
}

export interface AuthorizationCondition {
  readonly key: string;
  readonly values?: readonly string[];
  readonly notValues?: readonly string[];
}

export interface AuthorizationRule {
  readonly from?: readonly { readonly source?: AuthorizationSource }[];
  readonly to?: readonly { readonly operation?: AuthorizationOperation }[];
  readonly when?: readonly AuthorizationCondition[];
}

export interface AuthorizationPolicySpec {
  readonly selector?: { readonly matchLabels?: Readonly<Record<string, string>> };
  readonly targetRef?: Readonly<Record<string, unknown>>;
  readonly targetRefs?: readonly Readonly<Record<string, unknown>>[];
  /** ALLOW when unset, as in Istio. */
  readonly action?: AuthorizationAction;
  readonly provider?: { readonly name?: string };
  readonly rules?: readonly AuthorizationRule[];
}

export interface AuthorizationPolicy {
  readonly meta: RuleMeta & { readonly kind: 'AuthorizationPolicy' };
  readonly spec: AuthorizationPolicySpec;
}

/** Istio's ServerTLSSettings modes, as a Gateway server takes them. */
export type ServerTlsMode = 'PASSTHROUGH' | 'SIMPLE' | 'MUTUAL' | 'AUTO_PASSTHROUGH' | 'ISTIO_MUTUAL' | 'OPTIONAL_MUTUAL';

export interface ServerTlsSettings {
  readonly httpsRedirect?: boolean;
  /** PASSTHROUGH when unset, as Istio's proto default. */
  readonly mode?: ServerTlsMode;
  readonly serverCertificate?: string;
  readonly privateKey?: string;
  readonly caCertificates?: string;
  readonly credentialName?: string;
  readonly credentialNames?: readonly string[];
  readonly subjectAltNames?: readonly string[];
  readonly verifyCertificateSpki?: readonly string[];
  readonly verifyCertificateHash?: readonly string[];
  readonly minProtocolVersion?: string;
  readonly maxProtocolVersion?: string;
  readonly cipherSuites?: readonly string[];
  readonly ecdhCurves?: readonly string[];
  /** Certificate and key file pairs (at most two: RSA and ECDSA). */
  readonly tlsCertificates?: readonly { readonly serverCertificate?: string; readonly privateKey?: string; readonly caCertificates?: string }[];
}

export interface GatewayPort {
  readonly number: number;
  /** As written (HTTP, HTTPS, GRPC, HTTP2, TCP, TLS, ...); Istio reads it case-insensitively. */
  readonly protocol: string;
  readonly name: string;
}

export interface GatewayServer {
  readonly port: GatewayPort;
  /** An IP address the listener binds instead of 0.0.0.0. */
  readonly bind?: string;
  /** `host` or `namespace/host` (namespace `.` is the Gateway's, `*` any): the VirtualService hosts this server exposes. */
  readonly hosts: readonly string[];
  readonly tls?: ServerTlsSettings;
  readonly name?: string;
}

export interface GatewaySpec {
  /** The gateway pods' labels; empty or absent selects every gateway proxy. */
  readonly selector?: Readonly<Record<string, string>>;
  readonly servers: readonly GatewayServer[];
}

export interface Gateway {
  readonly meta: RuleMeta & { readonly kind: 'Gateway' };
  readonly spec: GatewaySpec;
}

export type Rule = VirtualService | DestinationRule | Sidecar | PeerAuthentication | AuthorizationPolicy | Gateway;

/** A problem with an object, with a stable code and the path to the field. */
export interface ValidationIssue {
  readonly code: ErrorCode;
  readonly severity: 'error' | 'warning';
  /** Field path inside the object, e.g. `spec.http[0].route[1].weight`. */
  readonly path: string;
  readonly message: string;
}

export function ruleKey(meta: Pick<RuleMeta, 'kind' | 'namespace' | 'name'>): string {
  return `${meta.kind}/${meta.namespace}/${meta.name}`;
}

/** The objects a converted rule came from, `HTTPRoute ns/name` each, in the order of its routes. */
export function originLabels(origin: RuleOrigin): string[] {
  return [...new Set(origin.http.map((h) => `${h.kind} ${h.namespace}/${h.name}`))];
}

/** How a rule is named to users: `Kind ns/name`, or for a converted rule the objects it came from. */
export function ruleLabel(meta: Pick<RuleMeta, 'kind' | 'namespace' | 'name' | 'origin'>): string {
  const own = `${meta.kind} ${meta.namespace}/${meta.name}`;
  return meta.origin ? `${originLabels(meta.origin).join(', ')} (as ${own})` : own;
}

export function isVirtualService(rule: Rule): rule is VirtualService {
  return rule.meta.kind === 'VirtualService';
}

export function isDestinationRule(rule: Rule): rule is DestinationRule {
  return rule.meta.kind === 'DestinationRule';
}

export function isSidecar(rule: Rule): rule is Sidecar {
  return rule.meta.kind === 'Sidecar';
}

export function isPeerAuthentication(rule: Rule): rule is PeerAuthentication {
  return rule.meta.kind === 'PeerAuthentication';
}

export function isAuthorizationPolicy(rule: Rule): rule is AuthorizationPolicy {
  return rule.meta.kind === 'AuthorizationPolicy';
}

export function isGateway(rule: Rule): rule is Gateway {
  return rule.meta.kind === 'Gateway';
}
