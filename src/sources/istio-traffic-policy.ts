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

/** Istio's slow start: a window is required, the floor is a percentage, the aggression positive. */
function checkWarmup(value: unknown, path: string, issues: IssueList): void {
  const warmup = mapAt(value, path, 'warmup: { duration: 60s }', issues);
  if (!warmup) return;
  if (warmup['duration'] === undefined) issues.error(`${path}.duration`, 'is required: give the slow-start window, e.g. duration: 60s');
  checkDuration(warmup['duration'], `${path}.duration`, issues);
  const minimum = warmup['minimumPercent'];
  if (minimum !== undefined && (typeof minimum !== 'number' || minimum < 0 || minimum > 100)) {
    issues.error(`${path}.minimumPercent`, `must be a percentage from 0 to 100, got ${describeType(minimum)}`);
  }
  const aggression = warmup['aggression'];
  if (aggression !== undefined && (typeof aggression !== 'number' || aggression <= 0)) {
    issues.error(`${path}.aggression`, `must be a number above 0 (1 ramps up linearly), got ${describeType(aggression)}`);
  }
}

function checkLoadBalancer(value: unknown, path: string, issues: IssueList): void {
  const lb = mapAt(value, path, 'loadBalancer: { simple: LEAST_REQUEST }', issues);
  if (!lb) return;
  checkWarmup(lb['warmup'], `${path}.warmup`, issues);
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
  if (hash['minimumRingSize'] !== undefined && (hash['ringHash'] !== undefined || hash['maglev'] !== undefined)) {
    issues.error(`${hashPath}.minimumRingSize`, 'cannot be set with ringHash or maglev: move it to ringHash.minimumRingSize');
  } else if (hash['minimumRingSize'] !== undefined) {
    issues.warn(`${hashPath}.minimumRingSize`, 'is deprecated in Istio: write ringHash: { minimumRingSize: ... } instead (it is honoured)', 'MP_RULE_WARNING');
  }
  const ring = mapAt(hash['ringHash'], `${hashPath}.ringHash`, 'ringHash: { minimumRingSize: 1024 }', issues);
  if (ring) checkInteger(ring['minimumRingSize'], `${hashPath}.ringHash.minimumRingSize`, issues, 1, 8_388_608);
  checkInteger(hash['minimumRingSize'], `${hashPath}.minimumRingSize`, issues, 1, 8_388_608);
  const maglev = mapAt(hash['maglev'], `${hashPath}.maglev`, 'maglev: { tableSize: 65537 }', issues);
  if (maglev) {
    checkInteger(maglev['tableSize'], `${hashPath}.maglev.tableSize`, issues, 1, 5_000_010);
    const size = maglev['tableSize'];
    if (typeof size === 'number' && Number.isInteger(size) && size >= 1 && !isPrime(size)) {
      issues.error(`${hashPath}.maglev.tableSize`, `${size} is not a prime number, which Envoy requires of a Maglev table: use a prime such as 65537`);
    }
  }
}

function checkConnectionPool(value: unknown, path: string, issues: IssueList): void {
  const pool = mapAt(value, path, 'connectionPool: { tcp: { maxConnections: 100 } }', issues);
  if (!pool) return;
  if (pool['tcp'] === undefined && pool['http'] === undefined) issues.error(path, 'is empty: set tcp or http limits, or remove connectionPool');
  const tcp = mapAt(pool['tcp'], `${path}.tcp`, 'tcp: { maxConnections: 100, connectTimeout: 30ms }', issues);
  if (tcp) {
    // 0 is unset in Istio's proto: the default (no limit) stays.
    checkInteger(tcp['maxConnections'], `${path}.tcp.maxConnections`, issues, 0, MAX_INT32);
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
      checkInteger(http[key], `${path}.http.${key}`, issues, 0, MAX_INT32);
    }
    if (http['h2UpgradePolicy'] === 'UPGRADE' && http['useClientProtocol'] === true) {
      issues.error(`${path}.http.useClientProtocol`, 'cannot be true with h2UpgradePolicy UPGRADE: the two choose the upstream protocol differently; keep one');
    }
    const keepalive = mapAt(http['http2KeepAlive'], `${path}.http.http2KeepAlive`, 'http2KeepAlive: { interval: 15s, timeout: 5s }', issues);
    for (const key of keepalive ? ['interval', 'timeout'] : []) {
      if (keepalive?.[key] === undefined) issues.error(`${path}.http.http2KeepAlive.${key}`, `is required: give the HTTP/2 PING ${key}, e.g. ${key}: ${key === 'interval' ? '15s' : '5s'}`);
      checkDuration(keepalive?.[key], `${path}.http.http2KeepAlive.${key}`, issues);
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
  if (od['consecutiveErrors'] !== undefined && od['consecutiveErrors'] !== 0) {
    issues.warn(`${path}.consecutiveErrors`, 'is deprecated in Istio: write consecutive5xxErrors or consecutiveGatewayErrors instead', 'MP_RULE_WARNING');
  }
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
  if (tls['insecureSkipVerify'] === true) {
    const verifying = ['caCertificates', 'subjectAltNames', 'credentialName'].filter((key) => tls[key] !== undefined);
    if (verifying.length > 0) issues.error(`${path}.insecureSkipVerify`, `cannot be true with ${verifying.join(' and ')}, which verify the server: remove one or the other`);
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
  if (Object.keys(policy).length === 0) issues.error(path, 'is empty: set at least one of loadBalancer, connectionPool, outlierDetection, tls or portLevelSettings, or remove it');
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
