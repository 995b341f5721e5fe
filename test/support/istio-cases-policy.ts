// DestinationRule, ServiceEntry, WorkloadEntry and Sidecar cases derived from the semantics of
// Istio's validation_test.go (written here as YAML objects).
import type { K8sObject } from './mesh-dir.ts';
import { rule } from './mesh-dir.ts';
import type { IstioCase } from './istio-cases-routing.ts';
import { invalid, unsupported, VALID, warning } from './verdict.ts';

const NS = 'default';
const dr = (spec: Record<string, unknown>): K8sObject => rule('DestinationRule', 'case', NS, { host: 'ratings', ...spec });
const policy = (trafficPolicy: unknown): K8sObject => dr({ trafficPolicy });
const se = (spec: Record<string, unknown>): K8sObject => rule('ServiceEntry', 'case', NS, { hosts: ['api.example.com'], ports: [{ number: 443, name: 'https', protocol: 'TLS' }], ...spec });
const we = (spec: Record<string, unknown>): K8sObject => ({ apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name: 'case', namespace: NS }, spec });
const sidecar = (spec: Record<string, unknown>): K8sObject => rule('Sidecar', 'case', NS, spec);
const egress = (...listeners: Record<string, unknown>[]): K8sObject => sidecar({ egress: listeners });
const TP = 'spec.trafficPolicy';
const LB = `${TP}.loadBalancer`;
const POOL = `${TP}.connectionPool`;
const OD = `${TP}.outlierDetection`;

const ok = (what: string, object: K8sObject): IstioCase => ({ what, object, istio: 'valid', expect: VALID });
const bad = (what: string, object: K8sObject, path: string): IstioCase => ({ what, object, istio: 'invalid', expect: invalid(path) });
const warns = (what: string, object: K8sObject, path: string): IstioCase => ({ what, object, istio: 'warning', expect: warning(path, 'MP_RULE_WARNING') });
const notServed = (what: string, object: K8sObject, path: string): IstioCase => ({ what, object, istio: 'valid', expect: unsupported(path) });

export const DESTINATION_RULE_CASES: readonly IstioCase[] = [
  ok('subsets with labels', dr({ subsets: [{ name: 'v1', labels: { version: 'v1' } }] })),
  ok('a fully qualified host', rule('DestinationRule', 'case', NS, { host: 'ratings.default.svc.cluster.local', trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } })),
  ok('a wildcard host', rule('DestinationRule', 'case', NS, { host: '*.example.com', trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } })),
  bad('no host', rule('DestinationRule', 'case', NS, { trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } }), 'spec.host'),
  bad('a host with an underscore', rule('DestinationRule', 'case', NS, { host: 'rat_ings', trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } }), 'spec.host'),
  bad('two subsets with one name', dr({ subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v1', labels: { version: 'v2' } }] }), 'spec.subsets[1].name'),
  bad('a subset without a name', dr({ subsets: [{ labels: { version: 'v1' } }] }), 'spec.subsets[0].name'),
  bad('a subset whose name is not a label', dr({ subsets: [{ name: 'V_1', labels: { version: 'v1' } }] }), 'spec.subsets[0].name'),
  bad('an empty trafficPolicy', policy({}), TP),
  bad('an empty subset trafficPolicy', dr({ subsets: [{ name: 'v1', labels: { version: 'v1' }, trafficPolicy: {} }] }), 'spec.subsets[0].trafficPolicy'),
  ok('round robin', policy({ loadBalancer: { simple: 'ROUND_ROBIN' } })),
  ok('least request', policy({ loadBalancer: { simple: 'LEAST_REQUEST' } })),
  ok('a header hash', policy({ loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } } })),
  ok('a cookie hash', policy({ loadBalancer: { consistentHash: { httpCookie: { name: 'user', ttl: '0s' } } } })),
  ok('a source IP hash with a ring', policy({ loadBalancer: { consistentHash: { useSourceIp: true, ringHash: { minimumRingSize: 1024 } } } })),
  ok('a Maglev table of a prime size', policy({ loadBalancer: { consistentHash: { httpHeaderName: 'x-user', maglev: { tableSize: 65537 } } } })),
  bad('a cookie hash without a name', policy({ loadBalancer: { consistentHash: { httpCookie: { ttl: '0s' } } } }), `${LB}.consistentHash.httpCookie.name`),
  bad('a Maglev table that is not prime', policy({ loadBalancer: { consistentHash: { httpHeaderName: 'x', maglev: { tableSize: 1000 } } } }), `${LB}.consistentHash.maglev.tableSize`),
  bad('a Maglev table of 5000011 or more', policy({ loadBalancer: { consistentHash: { httpHeaderName: 'x', maglev: { tableSize: 5000011 } } } }), `${LB}.consistentHash.maglev.tableSize`),
  warns('the deprecated minimumRingSize', policy({ loadBalancer: { consistentHash: { httpHeaderName: 'x', minimumRingSize: 1024 } } }), `${LB}.consistentHash.minimumRingSize`),
  bad('minimumRingSize with a ringHash', policy({ loadBalancer: { consistentHash: { httpHeaderName: 'x', minimumRingSize: 1024, ringHash: { minimumRingSize: 2048 } } } }), `${LB}.consistentHash.minimumRingSize`),
  ok('a slow start with warmup', policy({ loadBalancer: { simple: 'ROUND_ROBIN', warmup: { duration: '60s', minimumPercent: 10, aggression: 2 } } })),
  ok('the deprecated warmupDurationSecs', policy({ loadBalancer: { simple: 'ROUND_ROBIN', warmupDurationSecs: '60s' } })),
  bad('a warmup without a duration', policy({ loadBalancer: { warmup: { aggression: 2 } } }), `${LB}.warmup.duration`),
  bad('a warmup floor over 100%', policy({ loadBalancer: { warmup: { duration: '60s', minimumPercent: 101 } } }), `${LB}.warmup.minimumPercent`),
  bad('a warmup aggression of 0', policy({ loadBalancer: { warmup: { duration: '60s', aggression: 0 } } }), `${LB}.warmup.aggression`),
  notServed('locality failover', policy({ loadBalancer: { localityLbSetting: { enabled: true, failover: [{ from: 'us-east', to: 'us-west' }] } }, outlierDetection: { consecutive5xxErrors: 5 } }), `${LB}.localityLbSetting`),
  ok('connection limits', policy({ connectionPool: { tcp: { maxConnections: 100, connectTimeout: '30ms' }, http: { http1MaxPendingRequests: 10, http2MaxRequests: 100, maxRequestsPerConnection: 1, maxRetries: 3, idleTimeout: '30s' } } })),
  ok('zero limits, which are unset', policy({ connectionPool: { tcp: { maxConnections: 0 }, http: { http2MaxRequests: 0, maxRetries: 0 } } })),
  ok('an upgrade to HTTP/2', policy({ connectionPool: { http: { h2UpgradePolicy: 'UPGRADE' } } })),
  ok('TCP keepalive', policy({ connectionPool: { tcp: { tcpKeepalive: { time: '7200s', interval: '75s', probes: 9 } } } })),
  bad('an empty connectionPool', policy({ connectionPool: {} }), POOL),
  bad('negative max connections', policy({ connectionPool: { tcp: { maxConnections: -1 } } }), `${POOL}.tcp.maxConnections`),
  bad('negative pending requests', policy({ connectionPool: { http: { http1MaxPendingRequests: -1 } } }), `${POOL}.http.http1MaxPendingRequests`),
  bad('negative max requests per connection', policy({ connectionPool: { http: { maxRequestsPerConnection: -1 } } }), `${POOL}.http.maxRequestsPerConnection`),
  bad('a connect timeout under a millisecond', policy({ connectionPool: { tcp: { connectTimeout: '1us' } } }), `${POOL}.tcp.connectTimeout`),
  bad('an idle timeout that is not a duration', policy({ connectionPool: { http: { idleTimeout: 'soon' } } }), `${POOL}.http.idleTimeout`),
  bad('useClientProtocol with UPGRADE', policy({ connectionPool: { http: { h2UpgradePolicy: 'UPGRADE', useClientProtocol: true } } }), `${POOL}.http.useClientProtocol`),
  bad('an HTTP/2 keepalive without interval', policy({ connectionPool: { http: { http2KeepAlive: { timeout: '5s' } } } }), `${POOL}.http.http2KeepAlive.interval`),
  ok('outlier detection', policy({ outlierDetection: { consecutive5xxErrors: 5, interval: '10s', baseEjectionTime: '30s', maxEjectionPercent: 50, minHealthPercent: 10 } })),
  ok('local origin failures when split', policy({ outlierDetection: { splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 3 } })),
  warns('the deprecated consecutiveErrors', policy({ outlierDetection: { consecutiveErrors: 5 } }), `${OD}.consecutiveErrors`),
  bad('local origin failures without split', policy({ outlierDetection: { consecutiveLocalOriginFailures: 3 } }), `${OD}.consecutiveLocalOriginFailures`),
  bad('max ejection over 100%', policy({ outlierDetection: { maxEjectionPercent: 101 } }), `${OD}.maxEjectionPercent`),
  bad('min health under 0%', policy({ outlierDetection: { minHealthPercent: -1 } }), `${OD}.minHealthPercent`),
  bad('an interval under a millisecond', policy({ outlierDetection: { interval: '1ns' } }), `${OD}.interval`),
  ok('ISTIO_MUTUAL', policy({ tls: { mode: 'ISTIO_MUTUAL' } })),
  ok('SIMPLE with a CA and SNI', policy({ tls: { mode: 'SIMPLE', caCertificates: '/etc/certs/ca.pem', sni: 'ratings.example.com' } })),
  ok('MUTUAL with files', policy({ tls: { mode: 'MUTUAL', clientCertificate: '/etc/certs/cert.pem', privateKey: '/etc/certs/key.pem', caCertificates: '/etc/certs/ca.pem' } })),
  ok('MUTUAL with a credentialName', policy({ tls: { mode: 'MUTUAL', credentialName: 'client-credential' } })),
  ok('insecureSkipVerify alone', policy({ tls: { mode: 'SIMPLE', insecureSkipVerify: true } })),
  bad('MUTUAL without a client certificate', policy({ tls: { mode: 'MUTUAL', privateKey: '/etc/certs/key.pem' } }), `${TP}.tls.clientCertificate`),
  bad('ISTIO_MUTUAL with a CA', policy({ tls: { mode: 'ISTIO_MUTUAL', caCertificates: '/etc/certs/ca.pem' } }), `${TP}.tls.caCertificates`),
  bad('insecureSkipVerify with a CA', policy({ tls: { mode: 'SIMPLE', insecureSkipVerify: true, caCertificates: '/etc/certs/ca.pem' } }), `${TP}.tls.insecureSkipVerify`),
  bad('insecureSkipVerify with subjectAltNames', policy({ tls: { mode: 'SIMPLE', insecureSkipVerify: true, subjectAltNames: ['ratings.example.com'] } }), `${TP}.tls.insecureSkipVerify`),
  bad('an unknown TLS mode', policy({ tls: { mode: 'STRICT' } }), `${TP}.tls.mode`),
  ok('port-level settings', policy({ portLevelSettings: [{ port: { number: 9080 }, loadBalancer: { simple: 'LEAST_REQUEST' } }] })),
  bad('port-level settings without a port', policy({ portLevelSettings: [{ loadBalancer: { simple: 'LEAST_REQUEST' } }] }), `${TP}.portLevelSettings[0].port.number`),
  bad('one port with settings twice', policy({ portLevelSettings: [{ port: { number: 9080 }, loadBalancer: { simple: 'RANDOM' } }, { port: { number: 9080 }, loadBalancer: { simple: 'RANDOM' } }] }), `${TP}.portLevelSettings[1].port.number`),
  ok('exportTo', dr({ exportTo: ['.'], trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } })),
];

const STATIC = { resolution: 'STATIC' };
export const SERVICE_ENTRY_CASES: readonly IstioCase[] = [
  ok('an external API resolved by DNS', se({ resolution: 'DNS', location: 'MESH_EXTERNAL' })),
  ok('static endpoints', se({ ...STATIC, endpoints: [{ address: '10.1.1.1' }, { address: '10.1.1.2', ports: { https: 8443 } }] })),
  ok('DNS endpoints', se({ resolution: 'DNS', endpoints: [{ address: 'a.example.com' }, { address: 'b.example.com' }] })),
  ok('a wildcard host with NONE', se({ hosts: ['*.example.com'], resolution: 'NONE' })),
  ok('addresses and a CIDR with NONE', se({ addresses: ['10.2.0.1', '10.3.0.0/16'] })),
  ok('a workloadSelector with STATIC', se({ ...STATIC, workloadSelector: { labels: { app: 'vm' } } })),
  ok('a mesh-internal entry', se({ location: 'MESH_INTERNAL', ...STATIC, endpoints: [{ address: '10.1.1.1' }] })),
  ok('an IPv6 endpoint', se({ ...STATIC, endpoints: [{ address: '2001:db8::1' }] })),
  bad('no hosts', se({ hosts: [] }), 'spec.hosts'),
  bad('the host *', se({ hosts: ['*'] }), 'spec.hosts[0]'),
  bad('a host with an underscore', se({ hosts: ['api_example.com'] }), 'spec.hosts[0]'),
  warns('a partial wildcard host', se({ hosts: ['*api.example.com'] }), 'spec.hosts[0]'),
  bad('an address that is not an IP', se({ addresses: ['example.com'] }), 'spec.addresses[0]'),
  bad('a CIDR with DNS', se({ addresses: ['10.3.0.0/16'], resolution: 'DNS' }), 'spec.addresses[0]'),
  bad('a port name that is not a label', se({ ports: [{ number: 443, name: 'HTTPS_port' }] }), 'spec.ports[0].name'),
  bad('a port without a name', se({ ports: [{ number: 443 }] }), 'spec.ports[0].name'),
  bad('an unknown protocol', se({ ports: [{ number: 443, name: 'https', protocol: 'QUIC' }] }), 'spec.ports[0].protocol'),
  bad('an unknown resolution', se({ resolution: 'MAGIC' }), 'spec.resolution'),
  bad('an unknown location', se({ location: 'OUTSIDE' }), 'spec.location'),
  bad('endpoints with NONE', se({ endpoints: [{ address: '10.1.1.1' }] }), 'spec.endpoints'),
  bad('a DNS name as a STATIC endpoint', se({ ...STATIC, endpoints: [{ address: 'vm.example.com' }] }), 'spec.endpoints[0].address'),
  bad('an endpoint port no service port names', se({ ...STATIC, endpoints: [{ address: '10.1.1.1', ports: { grpc: 9000 } }] }), 'spec.endpoints[0].ports.grpc'),
  bad('an endpoint port 70000', se({ ...STATIC, endpoints: [{ address: '10.1.1.1', ports: { https: 70000 } }] }), 'spec.endpoints[0].ports.https'),
  bad('an endpoint without address', se({ ...STATIC, endpoints: [{ ports: { https: 8443 } }] }), 'spec.endpoints[0].address'),
  bad('a wildcard host resolved by DNS without endpoints', se({ hosts: ['*.example.com'], resolution: 'DNS' }), 'spec.hosts[0]'),
  bad('a selector key with a wildcard', se({ ...STATIC, workloadSelector: { labels: { 'app*': 'vm' } } }), 'spec.workloadSelector.labels.app*'),
  warns('a workloadSelector with NONE', se({ workloadSelector: { labels: { app: 'vm' } } }), 'spec.workloadSelector'),
  warns('a workloadSelector without labels', se({ ...STATIC, workloadSelector: {} }), 'spec.workloadSelector'),
  notServed('a Unix socket endpoint', se({ ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], ...STATIC, endpoints: [{ address: 'unix:///var/run/api.sock' }] }), 'spec.endpoints[0].address'),
  notServed('DYNAMIC_DNS resolution', se({ hosts: ['*.example.com'], resolution: 'DYNAMIC_DNS' }), 'spec.resolution'),
  ok('exportTo', se({ exportTo: ['.'] })),
];

export const WORKLOAD_ENTRY_CASES: readonly IstioCase[] = [
  ok('an IP with ports, labels, locality and weight', we({ address: '10.1.1.1', ports: { http: 8080 }, labels: { app: 'vm' }, locality: 'us-east/zone-a', weight: 3 })),
  ok('a DNS name', we({ address: 'vm.example.com' })),
  ok('an IPv6 address', we({ address: '2001:db8::5' })),
  bad('no address', we({ labels: { app: 'vm' } }), 'spec.address'),
  bad('an address that is neither IP nor name', we({ address: 'not an address' }), 'spec.address'),
  bad('a port 0', we({ address: '10.1.1.1', ports: { http: 0 } }), 'spec.ports.http'),
  bad('a port name with capitals', we({ address: '10.1.1.1', ports: { HTTP: 80 } }), 'spec.ports.HTTP'),
  bad('a Unix socket without a path', we({ address: 'unix://' }), 'spec.address'),
  notServed('an abstract Unix socket', we({ address: 'unix://@vm' }), 'spec.address'),
];

export const SIDECAR_CASES: readonly IstioCase[] = [
  ok('egress to its namespace and istio-system', egress({ hosts: ['./*', 'istio-system/*'] })),
  ok('egress to one host', egress({ hosts: ['default/ratings.default.svc.cluster.local'] })),
  ok('egress on a port', egress({ port: { number: 9080, protocol: 'HTTP', name: 'http' }, hosts: ['./*'] }, { hosts: ['*/*'] })),
  ok('a workloadSelector', sidecar({ workloadSelector: { labels: { app: 'ratings' } }, egress: [{ hosts: ['./*'] }] })),
  ok('REGISTRY_ONLY', sidecar({ egress: [{ hosts: ['./*'] }], outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } })),
  bad('an empty Sidecar', sidecar({}), 'spec.egress'),
  bad('an egress listener without hosts', egress({ hosts: [] }), 'spec.egress[0].hosts'),
  bad('a host without a namespace', egress({ hosts: ['ratings.default.svc.cluster.local'] }), 'spec.egress[0].hosts[0]'),
  bad('a short host name', egress({ hosts: ['default/ratings'] }), 'spec.egress[0].hosts[0]'),
  bad('two port-less egress listeners', egress({ hosts: ['./*'] }, { hosts: ['istio-system/*'] }), 'spec.egress[1]'),
  bad('a port-less egress listener before another', egress({ hosts: ['./*'] }, { port: { number: 9080, protocol: 'HTTP', name: 'http' }, hosts: ['./*'] }), 'spec.egress[0]'),
  bad('two egress listeners on one port', egress({ port: { number: 9080, protocol: 'HTTP', name: 'a' }, hosts: ['./*'] }, { port: { number: 9080, protocol: 'HTTP', name: 'b' }, hosts: ['./*'] }), 'spec.egress[1].port.number'),
  bad('egress port 70000', egress({ port: { number: 70000, protocol: 'HTTP', name: 'http' }, hosts: ['./*'] }), 'spec.egress[0].port.number'),
  bad('an unknown egress protocol', egress({ port: { number: 9080, protocol: 'QUIC', name: 'http' }, hosts: ['./*'] }), 'spec.egress[0].port.protocol'),
  bad('ALLOW_ANY_DYNAMIC_DNS in a Sidecar', sidecar({ egress: [{ hosts: ['./*'] }], outboundTrafficPolicy: { mode: 'ALLOW_ANY_DYNAMIC_DNS' } }), 'spec.outboundTrafficPolicy.mode'),
  bad('an egress proxy with REGISTRY_ONLY', sidecar({ egress: [{ hosts: ['./*'] }], outboundTrafficPolicy: { mode: 'REGISTRY_ONLY', egressProxy: { host: 'egress.istio-system.svc.cluster.local', port: { number: 80 } } } }), 'spec.outboundTrafficPolicy.egressProxy'),
  bad('a selector value with a wildcard', sidecar({ workloadSelector: { labels: { app: '*' } }, egress: [{ hosts: ['./*'] }] }), 'spec.workloadSelector.labels.app'),
  warns('the same egress host twice', egress({ hosts: ['./*', './*'] }), 'spec.egress[0].hosts[1]'),
  warns('*/* with other hosts', egress({ hosts: ['*/*', './ratings.default.svc.cluster.local'] }), 'spec.egress[0].hosts'),
  warns('a workloadSelector without labels', sidecar({ workloadSelector: {}, egress: [{ hosts: ['./*'] }] }), 'spec.workloadSelector'),
  bad('an ingress listener without a port', sidecar({ ingress: [{ defaultEndpoint: '127.0.0.1:8080' }] }), 'spec.ingress[0].port'),
  notServed('an ingress listener', sidecar({ ingress: [{ port: { number: 9080, protocol: 'HTTP', name: 'http' }, defaultEndpoint: '127.0.0.1:8080' }] }), 'spec.ingress'),
  notServed('an egress listener bound to a Unix socket', egress({ port: { number: 0, protocol: 'HTTP', name: 'uds' }, bind: 'unix:///var/run/egress.sock', hosts: ['./*'] }), 'spec.egress[0].bind'),
];
