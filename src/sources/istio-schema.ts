// The fields of every Istio message meshpilot reads, as istio/api's protos define them (JSON
// names), so an unknown field at any depth is an error naming it, and a valid field meshpilot
// does not implement is an MP_UNSUPPORTED warning instead of a silent no-op.
import type { ErrorCode } from '../errors.ts';
import type { ValidationIssue } from '../model/rules.ts';
import { isFields } from './object-fields.ts';
import { unknownFieldMessage } from './known-fields.ts';

/** A field holds a scalar, a message, a list of messages, or a map whose values are messages. */
type FieldType = 0 | { readonly one: string } | { readonly list: string } | { readonly values: string };

interface MessageSchema {
  readonly what: string;
  readonly fields: Readonly<Record<string, FieldType>>;
  /** Valid Istio fields meshpilot does not apply, with what that means for the user. */
  readonly unsupported?: Readonly<Record<string, string>>;
}

const one = (name: string): FieldType => ({ one: name });
const list = (name: string): FieldType => ({ list: name });
const values = (name: string): FieldType => ({ values: name });
const scalars = (...names: string[]): Record<string, FieldType> => Object.fromEntries(names.map((name) => [name, 0]));

const IGNORED = 'is not implemented by meshpilot and has no effect';

const MESSAGES: Readonly<Record<string, MessageSchema>> = {
  VirtualService: {
    what: 'a VirtualService spec',
    fields: { ...scalars('hosts', 'gateways', 'exportTo'), http: list('HTTPRoute'), tls: list('TLSRoute'), tcp: list('TCPRoute') },
  },
  Destination: { what: 'a destination', fields: { ...scalars('host', 'subset'), port: one('PortSelector') } },
  PortSelector: { what: 'a port selector', fields: scalars('number') },
  HTTPRoute: {
    what: 'an HTTP route',
    fields: {
      ...scalars('name', 'timeout', 'mirrorPercent'),
      match: list('HTTPMatchRequest'),
      route: list('HTTPRouteDestination'),
      redirect: one('HTTPRedirect'),
      directResponse: one('HTTPDirectResponse'),
      delegate: one('Delegate'),
      rewrite: one('HTTPRewrite'),
      retries: one('HTTPRetry'),
      fault: one('HTTPFaultInjection'),
      mirror: one('Destination'),
      mirrors: list('HTTPMirrorPolicy'),
      mirrorPercentage: one('Percent'),
      corsPolicy: one('CorsPolicy'),
      headers: one('Headers'),
    },
  },
  Delegate: { what: 'a delegate', fields: scalars('name', 'namespace') },
  Headers: { what: 'headers', fields: { request: one('HeaderOperations'), response: one('HeaderOperations') } },
  HeaderOperations: { what: 'header operations', fields: scalars('set', 'add', 'remove') },
  TLSRoute: { what: 'a TLS route', fields: { match: list('TLSMatchAttributes'), route: list('RouteDestination') } },
  TCPRoute: { what: 'a TCP route', fields: { match: list('L4MatchAttributes'), route: list('RouteDestination') } },
  HTTPMatchRequest: {
    what: 'an HTTP match',
    fields: {
      ...scalars('name', 'port', 'sourceLabels', 'gateways', 'ignoreUriCase', 'sourceNamespace', 'statPrefix'),
      uri: one('StringMatch'),
      scheme: one('StringMatch'),
      method: one('StringMatch'),
      authority: one('StringMatch'),
      headers: values('StringMatch'),
      queryParams: values('StringMatch'),
      withoutHeaders: values('StringMatch'),
    },
    unsupported: { statPrefix: IGNORED },
  },
  HTTPRouteDestination: { what: 'a route destination', fields: { destination: one('Destination'), weight: 0, headers: one('Headers') } },
  RouteDestination: { what: 'a route destination', fields: { destination: one('Destination'), weight: 0 } },
  L4MatchAttributes: {
    what: 'a TCP match',
    fields: scalars('destinationSubnets', 'port', 'sourceSubnet', 'sourceLabels', 'gateways', 'sourceNamespace'),
    unsupported: { destinationSubnets: `${IGNORED}: the match ignores the destination address`, sourceSubnet: `${IGNORED}: the match ignores the source address` },
  },
  TLSMatchAttributes: { what: 'a TLS match', fields: scalars('sniHosts', 'destinationSubnets', 'port', 'sourceLabels', 'gateways', 'sourceNamespace') },
  HTTPRedirect: {
    what: 'a redirect',
    fields: scalars('uri', 'authority', 'port', 'derivePort', 'scheme', 'redirectCode', 'prefixRewrite'),
    unsupported: { derivePort: IGNORED },
  },
  HTTPDirectResponse: { what: 'a direct response', fields: { status: 0, body: one('HTTPBody') } },
  HTTPBody: { what: 'a response body', fields: scalars('string', 'bytes') },
  HTTPRewrite: { what: 'a rewrite', fields: { ...scalars('uri', 'authority'), uriRegexRewrite: one('RegexRewrite') } },
  RegexRewrite: { what: 'a regex rewrite', fields: scalars('match', 'rewrite') },
  StringMatch: { what: 'a string match', fields: scalars('exact', 'prefix', 'regex') },
  HTTPRetry: {
    what: 'retries',
    fields: scalars('attempts', 'perTryTimeout', 'retryOn', 'retryRemoteLocalities', 'retryIgnorePreviousHosts', 'backoff'),
  },
  CorsPolicy: {
    what: 'a CORS policy',
    fields: { ...scalars('allowOrigin', 'allowMethods', 'allowHeaders', 'exposeHeaders', 'maxAge', 'allowCredentials', 'unmatchedPreflights'), allowOrigins: list('StringMatch') },
    unsupported: { allowOrigin: `${IGNORED}: use allowOrigins`, unmatchedPreflights: IGNORED },
  },
  HTTPFaultInjection: { what: 'a fault', fields: { delay: one('Delay'), abort: one('Abort') } },
  Delay: {
    what: 'a fault delay',
    fields: { ...scalars('percent', 'fixedDelay', 'exponentialDelay'), percentage: one('Percent') },
    unsupported: { exponentialDelay: `${IGNORED}: use fixedDelay` },
  },
  Abort: { what: 'a fault abort', fields: { ...scalars('httpStatus', 'grpcStatus', 'http2Error'), percentage: one('Percent') }, unsupported: { http2Error: IGNORED } },
  HTTPMirrorPolicy: { what: 'a mirror policy', fields: { destination: one('Destination'), percentage: one('Percent') } },
  Percent: { what: 'a percentage', fields: scalars('value') },

  DestinationRule: {
    what: 'a DestinationRule spec',
    fields: { ...scalars('host', 'exportTo'), trafficPolicy: one('TrafficPolicy'), subsets: list('Subset'), workloadSelector: one('MatchLabelsSelector') },
    unsupported: { workloadSelector: `${IGNORED}: the rule applies to every workload` },
  },
  MatchLabelsSelector: { what: 'a workload selector', fields: scalars('matchLabels') },
  TrafficPolicy: {
    what: 'a traffic policy',
    fields: {
      loadBalancer: one('LoadBalancerSettings'),
      connectionPool: one('ConnectionPoolSettings'),
      outlierDetection: one('OutlierDetection'),
      tls: one('ClientTLSSettings'),
      portLevelSettings: list('PortTrafficPolicy'),
      tunnel: one('TunnelSettings'),
      proxyProtocol: one('ProxyProtocol'),
      retryBudget: one('RetryBudget'),
    },
    unsupported: { tunnel: IGNORED, proxyProtocol: IGNORED, retryBudget: IGNORED },
  },
  PortTrafficPolicy: {
    what: 'a port traffic policy',
    fields: {
      port: one('PortSelector'),
      loadBalancer: one('LoadBalancerSettings'),
      connectionPool: one('ConnectionPoolSettings'),
      outlierDetection: one('OutlierDetection'),
      tls: one('ClientTLSSettings'),
    },
  },
  TunnelSettings: { what: 'tunnel settings', fields: scalars('protocol', 'targetHost', 'targetPort') },
  ProxyProtocol: { what: 'PROXY protocol settings', fields: scalars('version') },
  RetryBudget: { what: 'a retry budget', fields: scalars('percent', 'minRetryConcurrency', 'budgetInterval') },
  Subset: { what: 'a subset', fields: { ...scalars('name', 'labels'), trafficPolicy: one('TrafficPolicy') } },
  LoadBalancerSettings: {
    what: 'a load balancer',
    fields: {
      ...scalars('simple', 'warmupDurationSecs'),
      consistentHash: one('ConsistentHashLB'),
      localityLbSetting: one('LocalityLoadBalancerSetting'),
      zoneAwareLbSetting: one('ZoneAwareLoadBalancerSetting'),
      warmup: one('WarmupConfiguration'),
    },
    unsupported: { localityLbSetting: IGNORED, zoneAwareLbSetting: IGNORED },
  },
  ConsistentHashLB: {
    what: 'a consistent hash',
    fields: { ...scalars('httpHeaderName', 'useSourceIp', 'httpQueryParameterName', 'minimumRingSize'), httpCookie: one('HTTPCookie'), ringHash: one('RingHash'), maglev: one('MagLev') },
  },
  RingHash: { what: 'a ring hash', fields: scalars('minimumRingSize') },
  MagLev: { what: 'a Maglev table', fields: scalars('tableSize') },
  HTTPCookie: { what: 'an HTTP cookie', fields: { ...scalars('name', 'path', 'ttl'), attributes: list('CookieAttribute') }, unsupported: { attributes: IGNORED } },
  CookieAttribute: { what: 'a cookie attribute', fields: scalars('name', 'value') },
  WarmupConfiguration: { what: 'warmup', fields: scalars('duration', 'minimumPercent', 'aggression') },
  ConnectionPoolSettings: { what: 'a connection pool', fields: { tcp: one('TCPSettings'), http: one('HTTPSettings') } },
  TCPSettings: {
    what: 'TCP settings',
    fields: { ...scalars('maxConnections', 'connectTimeout', 'maxConnectionDuration', 'idleTimeout'), tcpKeepalive: one('TcpKeepalive') },
  },
  TcpKeepalive: { what: 'TCP keepalive', fields: scalars('probes', 'time', 'interval') },
  HTTPSettings: {
    what: 'HTTP settings',
    fields: {
      ...scalars('http1MaxPendingRequests', 'http2MaxRequests', 'maxRequestsPerConnection', 'maxRetries', 'idleTimeout', 'h2UpgradePolicy', 'useClientProtocol', 'maxConcurrentStreams'),
      http2KeepAlive: one('ConnectionKeepalive'),
    },
  },
  ConnectionKeepalive: { what: 'HTTP/2 keepalive', fields: scalars('interval', 'timeout') },
  OutlierDetection: {
    what: 'outlier detection',
    fields: scalars(
      'consecutiveErrors', 'splitExternalLocalOriginErrors', 'consecutiveLocalOriginFailures', 'consecutiveGatewayErrors', 'consecutive5xxErrors',
      'interval', 'baseEjectionTime', 'maxEjectionPercent', 'minHealthPercent', 'outlierDetectionHttpErrorCodes',
    ),
    unsupported: { outlierDetectionHttpErrorCodes: IGNORED },
  },
  ClientTLSSettings: {
    what: 'TLS settings',
    fields: scalars('mode', 'clientCertificate', 'privateKey', 'caCertificates', 'credentialName', 'subjectAltNames', 'sni', 'insecureSkipVerify', 'caCrl'),
    unsupported: { caCrl: IGNORED },
  },
  LocalityLoadBalancerSetting: {
    what: 'a locality load balancer setting',
    fields: { ...scalars('failoverPriority', 'enabled'), distribute: list('Distribute'), failover: list('Failover') },
  },
  Distribute: { what: 'a locality distribution', fields: scalars('from', 'to') },
  Failover: { what: 'a locality failover', fields: scalars('from', 'to') },
  ZoneAwareLoadBalancerSetting: { what: 'a zone-aware load balancer setting', fields: { ...scalars('enabled', 'failoverPriority', 'minClusterSize'), failover: list('Failover') } },

  ServiceEntry: {
    what: 'a ServiceEntry spec',
    fields: {
      ...scalars('hosts', 'addresses', 'location', 'resolution', 'exportTo', 'subjectAltNames'),
      ports: list('ServicePort'),
      endpoints: list('WorkloadEntry'),
      workloadSelector: one('WorkloadSelector'),
    },
  },
  ServicePort: { what: 'a ServiceEntry port', fields: scalars('number', 'protocol', 'name', 'targetPort') },
  WorkloadEntry: {
    what: 'a workload',
    fields: scalars('address', 'ports', 'labels', 'network', 'locality', 'weight', 'serviceAccount'),
    unsupported: { network: IGNORED },
  },
  WorkloadSelector: { what: 'a workload selector', fields: scalars('labels') },

  Sidecar: {
    what: 'a Sidecar spec',
    fields: {
      workloadSelector: one('WorkloadSelector'),
      ingress: list('IstioIngressListener'),
      egress: list('IstioEgressListener'),
      inboundConnectionPool: one('ConnectionPoolSettings'),
      outboundTrafficPolicy: one('OutboundTrafficPolicy'),
    },
    unsupported: {
      ingress: 'ingress listeners are not implemented by meshpilot and are ignored: inbound traffic is configured from the services whose endpoints are this workload',
      inboundConnectionPool: IGNORED,
    },
  },
  IstioIngressListener: {
    what: 'a Sidecar ingress listener',
    fields: { ...scalars('bind', 'captureMode', 'defaultEndpoint'), port: one('SidecarPort'), tls: one('ServerTLSSettings'), connectionPool: one('ConnectionPoolSettings') },
  },
  IstioEgressListener: {
    what: 'a Sidecar egress listener',
    fields: { ...scalars('bind', 'captureMode', 'hosts'), port: one('SidecarPort') },
    unsupported: {
      bind: 'is not implemented by meshpilot and is ignored: outbound traffic is captured by iptables and handed to the listener of its port, as without bind',
      captureMode: 'is not implemented by meshpilot and is ignored: outbound traffic is captured by iptables and handed to the listener of its port, as without captureMode',
    },
  },
  SidecarPort: { what: 'a Sidecar port', fields: scalars('number', 'protocol', 'name', 'targetPort') },
  OutboundTrafficPolicy: {
    what: 'an outbound traffic policy',
    fields: { mode: 0, egressProxy: one('Destination') },
    unsupported: { egressProxy: 'is not implemented by meshpilot and is ignored: unknown destinations are passed through (ALLOW_ANY)' },
  },
  ServerTLSSettings: {
    what: 'server TLS settings',
    fields: {
      ...scalars(
        'httpsRedirect', 'mode', 'serverCertificate', 'privateKey', 'caCertificates', 'caCrl', 'credentialName', 'credentialNames', 'caCertCredentialName',
        'subjectAltNames', 'verifyCertificateSpki', 'verifyCertificateHash', 'minProtocolVersion', 'maxProtocolVersion', 'cipherSuites', 'insecureSkipVerify', 'ecdhCurves',
      ),
      tlsCertificates: list('TLSCertificate'),
    },
  },
  TLSCertificate: { what: 'a TLS certificate', fields: scalars('serverCertificate', 'privateKey', 'caCertificates') },

  Gateway: { what: 'a Gateway spec', fields: { ...scalars('selector'), servers: list('Server') } },
  Server: {
    what: 'a Gateway server',
    fields: { ...scalars('hosts', 'bind', 'defaultEndpoint', 'name'), port: one('ServerPort'), tls: one('ServerTLSSettings') },
    unsupported: { defaultEndpoint: 'applies to Sidecar ingress listeners only: a Gateway ignores it, as Istio does' },
  },
  ServerPort: { what: 'a Gateway server port', fields: scalars('number', 'protocol', 'name', 'targetPort') },

  PeerAuthentication: {
    what: 'a PeerAuthentication spec',
    fields: { selector: one('MatchLabelsSelector'), mtls: one('PeerMutualTls'), portLevelMtls: values('PeerMutualTls') },
  },
  PeerMutualTls: { what: 'an mTLS setting', fields: scalars('mode') },
  AuthorizationPolicy: {
    what: 'an AuthorizationPolicy spec',
    fields: {
      ...scalars('action'),
      selector: one('WorkloadSelectorMatchLabels'),
      targetRef: one('PolicyTargetReference'),
      targetRefs: list('PolicyTargetReference'),
      rules: list('AuthorizationRule'),
      provider: one('ExtensionProvider'),
    },
  },
  WorkloadSelectorMatchLabels: { what: 'a workload selector', fields: scalars('matchLabels') },
  PolicyTargetReference: { what: 'a target reference', fields: scalars('group', 'kind', 'name', 'namespace') },
  ExtensionProvider: { what: 'an extension provider', fields: scalars('name') },
  AuthorizationRule: { what: 'an authorization rule', fields: { from: list('RuleFrom'), to: list('RuleTo'), when: list('Condition') } },
  RuleFrom: { what: 'a from entry', fields: { source: one('AuthorizationSource') } },
  RuleTo: { what: 'a to entry', fields: { operation: one('AuthorizationOperation') } },
  AuthorizationSource: {
    what: 'a source',
    fields: scalars(
      'principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals', 'namespaces', 'notNamespaces',
      'serviceAccounts', 'notServiceAccounts', 'trustDomains', 'notTrustDomains', 'ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks',
    ),
  },
  AuthorizationOperation: { what: 'an operation', fields: scalars('hosts', 'notHosts', 'ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths') },
  Condition: { what: 'a condition', fields: scalars('key', 'values', 'notValues') },

  RouteRule: {
    what: 'a RouteRule spec',
    fields: {
      ...scalars('precedence', 'websocketUpgrade', 'appendHeaders'),
      destination: one('IstioService'),
      match: one('MatchCondition'),
      route: list('DestinationWeight'),
      redirect: one('LegacyRedirect'),
      rewrite: one('LegacyRedirect'),
      httpReqTimeout: one('HTTPTimeout'),
      httpReqRetries: one('LegacyRetry'),
      httpFault: one('LegacyFault'),
      l4Fault: one('L4FaultInjection'),
      mirror: one('IstioService'),
      corsPolicy: one('LegacyCorsPolicy'),
    },
    unsupported: Object.fromEntries(
      ['redirect', 'rewrite', 'websocketUpgrade', 'httpReqTimeout', 'httpReqRetries', 'httpFault', 'l4Fault', 'mirror', 'corsPolicy', 'appendHeaders'].map((field) => [
        field,
        `RouteRule ${field} is not converted and has no effect: move it to a VirtualService`,
      ]),
    ),
  },
  IstioService: { what: 'a service', fields: scalars('name', 'namespace', 'domain', 'service', 'labels'), unsupported: { labels: `${IGNORED}: put labels on the route` } },
  MatchCondition: {
    what: 'a RouteRule match',
    fields: { source: one('IstioService'), tcp: one('LegacyL4Match'), udp: one('LegacyL4Match'), request: one('MatchRequest') },
    unsupported: { tcp: IGNORED, udp: IGNORED },
  },
  MatchRequest: { what: 'a request match', fields: { headers: values('StringMatch') } },
  DestinationWeight: { what: 'a RouteRule route', fields: { ...scalars('labels', 'weight'), destination: one('IstioService') } },
  LegacyL4Match: { what: 'an L4 match', fields: scalars('sourceSubnet', 'destinationSubnet') },
  LegacyRedirect: { what: 'a redirect or rewrite', fields: scalars('uri', 'authority') },
  HTTPTimeout: { what: 'a timeout', fields: { custom: 0, simpleTimeout: one('SimpleTimeoutPolicy') } },
  SimpleTimeoutPolicy: { what: 'a simple timeout', fields: scalars('timeout', 'overrideHeaderName') },
  LegacyRetry: { what: 'a retry policy', fields: { custom: 0, simpleRetry: one('SimpleRetryPolicy') } },
  SimpleRetryPolicy: { what: 'a simple retry', fields: scalars('attempts', 'perTryTimeout', 'overrideHeaderName') },
  LegacyCorsPolicy: { what: 'a CORS policy', fields: scalars('allowOrigin', 'allowMethods', 'allowHeaders', 'exposeHeaders', 'maxAge', 'allowCredentials') },
  LegacyFault: { what: 'a fault', fields: { delay: one('LegacyDelay'), abort: one('LegacyAbort') } },
  LegacyDelay: { what: 'a fault delay', fields: scalars('percent', 'fixedDelay', 'exponentialDelay', 'overrideHeaderName') },
  LegacyAbort: { what: 'a fault abort', fields: scalars('percent', 'grpcStatus', 'http2Error', 'httpStatus', 'overrideHeaderName') },
  L4FaultInjection: { what: 'an L4 fault', fields: { throttle: one('Throttle'), terminate: one('Terminate') } },
  Throttle: { what: 'a throttle', fields: scalars('percent', 'downstreamLimitBps', 'upstreamLimitBps', 'throttleAfterPeriod', 'throttleAfterBytes', 'throttleForPeriod') },
  Terminate: { what: 'a terminate fault', fields: scalars('percent', 'terminateAfterPeriod') },
};

export type IstioMessage = keyof typeof MESSAGES;

/**
 * Every unknown field under `value` (an error, named with its path) and every valid field meshpilot
 * does not implement (an MP_UNSUPPORTED warning); values of the wrong shape are left to the validators.
 */
export function checkIstioFields(value: unknown, message: string, path: string, code: ErrorCode): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  walk(value, message, path, code, issues);
  return issues;
}

function walk(value: unknown, message: string, path: string, code: ErrorCode, issues: ValidationIssue[]): void {
  const schema = MESSAGES[message];
  if (!schema || !isFields(value)) return;
  const known = Object.keys(schema.fields);
  for (const [key, field] of Object.entries(value)) {
    const fieldPath = `${path}.${key}`;
    const type = schema.fields[key];
    if (type === undefined) {
      issues.push({ code, severity: 'error', path: fieldPath, message: unknownFieldMessage(key, known, schema.what) });
      continue;
    }
    const reason = schema.unsupported?.[key];
    if (reason !== undefined && field !== undefined && field !== null) issues.push({ code: 'MP_UNSUPPORTED', severity: 'warning', path: fieldPath, message: reason });
    if (type === 0) continue;
    if ('one' in type) walk(field, type.one, fieldPath, code, issues);
    else if ('list' in type) {
      if (Array.isArray(field)) {
        field.forEach((item: unknown, index) => {
          walk(item, type.list, `${fieldPath}[${index}]`, code, issues);
        });
      }
    } else if (isFields(field)) {
      for (const [name, item] of Object.entries(field)) walk(item, type.values, `${fieldPath}.${name}`, code, issues);
    }
  }
}
