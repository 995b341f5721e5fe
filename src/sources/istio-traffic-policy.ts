// Validation of a DestinationRule trafficPolicy (load balancer, connection pool, outlier
// detection, TLS, port-level settings), at the top level and in each subset.
import { isPrime } from '../model/prime.ts';
import { describeType, isPortNumber } from './object-fields.ts';
import { checkBoolean, checkDuration, checkEnum, checkInteger, IssueList, mapAt, mapsIn, stringsIn } from './istio-fields.ts';

const SIMPLE_LB = ['UNSPECIFIED', 'ROUND_ROBIN', 'LEAST_REQUEST', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH'];
const HASH_KEYS = ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'];
const TLS_MODES = ['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'];
const H2_UPGRADE = ['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE'];
const MAX_INT32 = 2_147_483_647;

function checkLoadBalancer(value: unknown, path: string, issues: IssueList): void {
  const lb = mapAt(value, path, 'loadBalancer: { simple: LEAST_REQUEST }', issues);
  if (!lb) return;
  if (lb['simple'] !== undefined && lb['consistentHash'] !== undefined) {
    issues.error(path, 'has both simple and consistentHash: a load balancer is one or the other; keep one');
  }
  checkEnum(lb['simple'], SIMPLE_LB, `${path}.simple`, issues);
  const hashPath = `${path}.consistentHash`;
  const hash = mapAt(lb['consistentHash'], hashPath, 'consistentHash: { httpHeaderName: x-user }', issues);
  if (!hash) return;
  const keys = HASH_KEYS.filter((key) => hash[key] !== undefined && hash[key] !== false);
  if (keys.length === 0) issues.error(hashPath, `hashes on nothing: set one of ${HASH_KEYS.join(', ')}`);
  if (keys.length > 1) issues.error(hashPath, `hashes on ${keys.join(' and ')}: set exactly one of them`);
  for (const key of ['httpHeaderName', 'httpQueryParameterName']) {
    const name = hash[key];
    if (name !== undefined && (typeof name !== 'string' || name === '')) issues.error(`${hashPath}.${key}`, `must be a non-empty string, got ${describeType(name)}`);
  }
  checkBoolean(hash['useSourceIp'], `${hashPath}.useSourceIp`, issues);
  const cookie = mapAt(hash['httpCookie'], `${hashPath}.httpCookie`, 'httpCookie: { name: user, ttl: 0s }', issues);
  if (cookie) {
    if (typeof cookie['name'] !== 'string' || cookie['name'] === '') issues.error(`${hashPath}.httpCookie.name`, 'is required: name the cookie to hash on');
    checkDuration(cookie['ttl'], `${hashPath}.httpCookie.ttl`, issues, { allowZero: true });
  }
  if (hash['ringHash'] !== undefined && hash['maglev'] !== undefined) issues.error(hashPath, 'has both ringHash and maglev: choose one');
  const ring = mapAt(hash['ringHash'], `${hashPath}.ringHash`, 'ringHash: { minimumRingSize: 1024 }', issues);
  if (ring) checkInteger(ring['minimumRingSize'], `${hashPath}.ringHash.minimumRingSize`, issues, 1, 8_388_608);
  checkInteger(hash['minimumRingSize'], `${hashPath}.minimumRingSize`, issues, 1, 8_388_608);
  const maglev = mapAt(hash['maglev'], `${hashPath}.maglev`, 'maglev: { tableSize: 65537 }', issues);
  if (maglev) {
    checkInteger(maglev['tableSize'], `${hashPath}.maglev.tableSize`, issues, 1, 5_000_011);
    const size = maglev['tableSize'];
    if (typeof size === 'number' && Number.isInteger(size) && size >= 1 && !isPrime(size)) {
      issues.error(`${hashPath}.maglev.tableSize`, `${size} is not a prime number, which Envoy requires of a Maglev table: use a prime such as 65537`);
    }
  }
}

function checkConnectionPool(value: unknown, path: string, issues: IssueList): void {
  const pool = mapAt(value, path, 'connectionPool: { tcp: { maxConnections: 100 } }', issues);
  if (!pool) return;
  const tcp = mapAt(pool['tcp'], `${path}.tcp`, 'tcp: { maxConnections: 100, connectTimeout: 30ms }', issues);
  if (tcp) {
    checkInteger(tcp['maxConnections'], `${path}.tcp.maxConnections`, issues, 1, MAX_INT32);
    checkDuration(tcp['connectTimeout'], `${path}.tcp.connectTimeout`, issues);
    checkDuration(tcp['maxConnectionDuration'], `${path}.tcp.maxConnectionDuration`, issues);
    const keepalive = mapAt(tcp['tcpKeepalive'], `${path}.tcp.tcpKeepalive`, 'tcpKeepalive: { time: 7200s, interval: 75s }', issues);
    if (keepalive) {
      checkInteger(keepalive['probes'], `${path}.tcp.tcpKeepalive.probes`, issues, 1);
      // Envoy takes keepalive times as uint32 seconds.
      checkDuration(keepalive['time'], `${path}.tcp.tcpKeepalive.time`, issues, { maxSeconds: 4_294_967_295 });
      checkDuration(keepalive['interval'], `${path}.tcp.tcpKeepalive.interval`, issues, { maxSeconds: 4_294_967_295 });
    }
  }
  const http = mapAt(pool['http'], `${path}.http`, 'http: { http1MaxPendingRequests: 10 }', issues);
  if (http) {
    for (const key of ['http1MaxPendingRequests', 'http2MaxRequests', 'maxRetries', 'maxConcurrentStreams']) {
      checkInteger(http[key], `${path}.http.${key}`, issues, 1, MAX_INT32);
    }
    checkInteger(http['maxRequestsPerConnection'], `${path}.http.maxRequestsPerConnection`, issues, 0, MAX_INT32);
    checkDuration(http['idleTimeout'], `${path}.http.idleTimeout`, issues);
    checkEnum(http['h2UpgradePolicy'], H2_UPGRADE, `${path}.http.h2UpgradePolicy`, issues);
    checkBoolean(http['useClientProtocol'], `${path}.http.useClientProtocol`, issues);
  }
}

function checkOutlierDetection(value: unknown, path: string, issues: IssueList): void {
  const od = mapAt(value, path, 'outlierDetection: { consecutive5xxErrors: 5, interval: 10s }', issues);
  if (!od) return;
  for (const key of ['consecutiveErrors', 'consecutive5xxErrors', 'consecutiveGatewayErrors', 'consecutiveLocalOriginFailures']) {
    checkInteger(od[key], `${path}.${key}`, issues, 0);
  }
  checkBoolean(od['splitExternalLocalOriginErrors'], `${path}.splitExternalLocalOriginErrors`, issues);
  checkDuration(od['interval'], `${path}.interval`, issues);
  checkDuration(od['baseEjectionTime'], `${path}.baseEjectionTime`, issues);
  checkInteger(od['maxEjectionPercent'], `${path}.maxEjectionPercent`, issues, 0, 100);
  checkInteger(od['minHealthPercent'], `${path}.minHealthPercent`, issues, 0, 100);
  if (od['consecutiveLocalOriginFailures'] !== undefined && od['splitExternalLocalOriginErrors'] !== true) {
    issues.error(`${path}.consecutiveLocalOriginFailures`, 'only counts when splitExternalLocalOriginErrors is true: set it, or remove this field');
  }
}

function checkTls(value: unknown, path: string, issues: IssueList): void {
  const tls = mapAt(value, path, 'tls: { mode: ISTIO_MUTUAL }', issues);
  if (!tls) return;
  checkEnum(tls['mode'], TLS_MODES, `${path}.mode`, issues);
  stringsIn(tls['subjectAltNames'], `${path}.subjectAltNames`, issues);
  if (tls['mode'] === 'MUTUAL' && tls['credentialName'] === undefined) {
    for (const key of ['clientCertificate', 'privateKey']) {
      if (typeof tls[key] !== 'string' || tls[key] === '') {
        issues.error(`${path}.${key}`, `is required for mode MUTUAL: give the file path, or use credentialName`);
      }
    }
  }
  if (tls['mode'] === 'ISTIO_MUTUAL') {
    for (const key of ['clientCertificate', 'privateKey', 'caCertificates', 'credentialName']) {
      if (tls[key] !== undefined) issues.error(`${path}.${key}`, 'must not be set with mode ISTIO_MUTUAL, which uses the mesh certificates: remove it or use MUTUAL');
    }
  }
}

function checkPolicyComponents(policy: Readonly<Record<string, unknown>>, path: string, issues: IssueList): void {
  checkLoadBalancer(policy['loadBalancer'], `${path}.loadBalancer`, issues);
  checkConnectionPool(policy['connectionPool'], `${path}.connectionPool`, issues);
  checkOutlierDetection(policy['outlierDetection'], `${path}.outlierDetection`, issues);
  checkTls(policy['tls'], `${path}.tls`, issues);
}

export function checkTrafficPolicy(value: unknown, path: string, issues: IssueList): void {
  const policy = mapAt(value, path, 'trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } }', issues);
  if (!policy) return;
  checkPolicyComponents(policy, path, issues);
  const seen = new Map<number, number>();
  for (const [index, setting] of mapsIn(policy['portLevelSettings'], `${path}.portLevelSettings`, 'port traffic policy', issues)) {
    const settingPath = `${path}.portLevelSettings[${index}]`;
    const port = mapAt(setting['port'], `${settingPath}.port`, 'port: { number: 9080 }', issues);
    const number = port?.['number'];
    if (!isPortNumber(number)) {
      issues.error(`${settingPath}.port.number`, `must be a port number 1..65535, got ${describeType(number)}: name the service port these settings apply to`);
    } else if (seen.has(number)) {
      issues.error(`${settingPath}.port.number`, `port ${number} already has settings at ${path}.portLevelSettings[${seen.get(number) ?? 0}]: merge them`);
    } else {
      seen.set(number, index);
    }
    checkPolicyComponents(setting, settingPath, issues);
  }
}
