// Istio's Gateway resource, validated as Istio's admission webhook validates it (servers, ports,
// hosts with namespace prefixes, TLS settings), plus a warning for what meshpilot does not serve.
import { isPassthroughMode, isValidCipherSuite } from '../model/gateways.ts';
import { parseProtocolName } from '../model/service.ts';
import type { ValidationIssue } from '../model/rules.ts';
import type { Fields } from './object-fields.ts';
import { describeType, isDns1123Label, isFields, isIpAddress, isPortNumber, isWildcardDomain } from './object-fields.ts';
import { checkBoolean, checkEnum, checkLabels, IssueList, mapAt, mapsIn, stringsIn } from './istio-fields.ts';
import { checkIstioFields } from './istio-schema.ts';

export const SERVER_TLS_MODES = ['PASSTHROUGH', 'SIMPLE', 'MUTUAL', 'AUTO_PASSTHROUGH', 'ISTIO_MUTUAL', 'OPTIONAL_MUTUAL'] as const;
const TLS_VERSIONS = ['TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3'];
const PROTOCOLS = 'HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, TCP, TLS, MONGO, REDIS, MYSQL';
const HOST_EXAMPLE = 'e.g. "*", "bookinfo.example.com", "shop/*.example.com" or "./api.example.com"';

/** Istio's gateway server host: `*`, a FQDN, a `*.` wildcard or an IP; no short names, no partial wildcards. */
function checkHostPart(host: string, path: string, issues: IssueList): void {
  if (host !== '*' && !host.includes('.') && !isIpAddress(host)) {
    issues.error(path, `"${host}" is a short name, which a Gateway does not take: write the full name clients send (${HOST_EXAMPLE})`);
    return;
  }
  if (!isWildcardDomain(host) && !isIpAddress(host)) {
    issues.error(path, `"${host}" is not a valid host: use a lowercase DNS name, optionally starting with "*." (${HOST_EXAMPLE})`);
    return;
  }
  if (host !== '*' && host.includes('*') && (!host.startsWith('*.') || host.slice(1).includes('*'))) {
    issues.error(path, `"${host}" is a partial wildcard, which a Gateway does not take: use "*" alone or a leading "*." label`);
  }
}

function checkServerHost(host: string, path: string, issues: IssueList): void {
  const slash = host.indexOf('/');
  if (slash < 0) {
    checkHostPart(host, path, issues);
    return;
  }
  const [namespace, dnsName] = [host.slice(0, slash), host.slice(slash + 1)];
  if (namespace === '' || dnsName === '') {
    issues.error(path, `"${host}" has an empty namespace or host: write namespace/host (${HOST_EXAMPLE})`);
    return;
  }
  if (namespace !== '*' && namespace !== '.' && !isDns1123Label(namespace)) {
    issues.error(path, `"${namespace}" is not a namespace: use a namespace name, "." (the Gateway's namespace) or "*" (any)`);
  }
  checkHostPart(dnsName, path, issues);
}

function checkPort(value: unknown, path: string, unixBind: boolean, issues: IssueList): { protocol: string } | undefined {
  if (value === undefined || value === null) {
    issues.error(path, 'is required: write port: { number: 8080, name: http, protocol: HTTP }');
    return undefined;
  }
  const port = mapAt(value, path, 'port: { number: 8080, name: http, protocol: HTTP }', issues);
  if (!port) return undefined;
  let valid = true;
  const protocol = port['protocol'];
  if (typeof protocol !== 'string' || parseProtocolName(protocol) === 'Unsupported') {
    issues.error(`${path}.protocol`, `${describeType(protocol)} is not a protocol a Gateway server takes: use one of ${PROTOCOLS}`);
    valid = false;
  }
  const number = port['number'];
  if (!(unixBind && (number === undefined || number === 0)) && !isPortNumber(number)) {
    issues.error(`${path}.number`, `must be a port number 1..65535, got ${describeType(number)}: the port the gateway listens on, e.g. 8080`);
    valid = false;
  }
  if (unixBind && number !== undefined && number !== 0) issues.error(`${path}.number`, 'must be 0 for a server bound to a Unix domain socket: remove it');
  if (port['targetPort'] !== undefined && port['targetPort'] !== 0) issues.error(`${path}.targetPort`, 'has no effect on a Gateway (the pod port comes from the gateway Service): remove it');
  const name = port['name'];
  if (typeof name !== 'string' || name === '') {
    issues.error(`${path}.name`, name === undefined || name === '' ? 'is required: name the port, e.g. name: http' : `must be a string, got ${describeType(name)}: quote it`);
    valid = false;
  }
  return valid && typeof protocol === 'string' ? { protocol } : undefined;
}

function checkBind(bind: unknown, path: string, issues: IssueList): boolean {
  if (bind === undefined || bind === null || bind === '') return false;
  if (typeof bind !== 'string') {
    issues.error(path, `must be a string, got ${describeType(bind)}: an IP address such as 127.0.0.1, or unix:///path`);
    return false;
  }
  if (bind.startsWith('unix://')) {
    const socket = bind.slice('unix://'.length);
    if (!socket.startsWith('@') && (!socket.startsWith('/') || socket.endsWith('/'))) issues.error(path, `"${socket}" is not an absolute path to a file: write unix:///var/run/gateway.sock`);
    issues.warn(path, 'binds a Unix domain socket, which meshpilot does not serve: this server gets no listener', 'MP_UNSUPPORTED');
    return true;
  }
  if (!isIpAddress(bind)) issues.error(path, `"${bind}" is not an IP address: write the address the listener binds, e.g. 127.0.0.1, or leave bind out for 0.0.0.0`);
  return false;
}

function nonEmpty(tls: Fields, key: string): boolean {
  const value = tls[key];
  return Array.isArray(value) ? value.length > 0 : typeof value === 'string' && value !== '';
}

function checkCiphers(tls: Fields, path: string, issues: IssueList): void {
  const ciphers = stringsIn(tls['cipherSuites'], `${path}.cipherSuites`, issues).map(([, cipher]) => cipher);
  const invalid = [...new Set(ciphers.filter((cipher) => !isValidCipherSuite(cipher)))].sort();
  if (invalid.length > 0) issues.warn(`${path}.cipherSuites`, `ignoring invalid cipher suites: ${invalid.join(', ')}`, 'MP_RULE_WARNING');
  const duplicates = [...new Set(ciphers.filter((cipher, index) => isValidCipherSuite(cipher) && ciphers.indexOf(cipher) !== index))].sort();
  if (duplicates.length > 0) issues.warn(`${path}.cipherSuites`, `ignoring duplicate cipher suites: ${duplicates.join(', ')}`, 'MP_RULE_WARNING');
  const min = tls['minProtocolVersion'];
  if ((min === 'TLSV1_0' || min === 'TLSV1_1') && ciphers.length === 0) {
    issues.warn(`${path}.minProtocolVersion`, 'TLS versions below TLSV1_2 need compatible cipherSuites: the defaults no longer include any', 'MP_RULE_WARNING');
  }
}

/** Istio's validateTLSOptions: which certificate sources each mode takes. */
function checkTls(tls: Fields, path: string, issues: IssueList): void {
  checkBoolean(tls['httpsRedirect'], `${path}.httpsRedirect`, issues);
  checkEnum(tls['mode'], SERVER_TLS_MODES, `${path}.mode`, issues);
  for (const key of ['minProtocolVersion', 'maxProtocolVersion']) checkEnum(tls[key], TLS_VERSIONS, `${path}.${key}`, issues);
  for (const key of ['credentialNames', 'subjectAltNames', 'verifyCertificateSpki', 'verifyCertificateHash', 'ecdhCurves']) stringsIn(tls[key], `${path}.${key}`, issues);
  const tlsCertificates = mapsIn(tls['tlsCertificates'], `${path}.tlsCertificates`, 'TLS certificate', issues);
  checkCiphers(tls, path, issues);
  const mode = typeof tls['mode'] === 'string' ? tls['mode'] : undefined;
  const certificateFields = ['serverCertificate', 'privateKey', 'caCertificates', 'tlsCertificates', 'credentialName', 'credentialNames'];
  if (mode === 'ISTIO_MUTUAL') {
    for (const key of certificateFields) {
      if (nonEmpty(tls, key)) issues.error(`${path}.${key}`, 'ISTIO_MUTUAL uses the gateway\'s own workload certificate: remove it, or use SIMPLE or MUTUAL with your certificate');
    }
    return;
  }
  if (isPassthroughMode(mode) && (nonEmpty(tls, 'caCrl') || certificateFields.some((key) => nonEmpty(tls, key)))) {
    issues.warn(path, `${mode ?? 'PASSTHROUGH'} mode does not use certificates: they are ignored`, 'MP_RULE_WARNING');
  }
  const sources = [nonEmpty(tls, 'serverCertificate') && nonEmpty(tls, 'privateKey'), nonEmpty(tls, 'credentialName'), nonEmpty(tls, 'credentialNames'), tlsCertificates.length > 0].filter(Boolean).length;
  if (sources > 1) issues.error(path, 'names its certificate more than once: keep one of credentialName, credentialNames, serverCertificate/privateKey and tlsCertificates');
  const terminates = mode === 'SIMPLE' || mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL';
  if (terminates && (nonEmpty(tls, 'credentialName') || nonEmpty(tls, 'credentialNames'))) return;
  if (terminates) {
    const prefix = mode === 'SIMPLE' ? 'SIMPLE TLS' : 'MUTUAL TLS';
    if (mode !== 'SIMPLE' && !nonEmpty(tls, 'caCertificates')) issues.error(`${path}.caCertificates`, `${prefix} requires a client CA bundle: give caCertificates, or a credentialName whose Secret holds ca.crt`);
    if (tlsCertificates.length > 2) issues.warn(`${path}.tlsCertificates`, `${prefix} can serve at most 2 server certificates`, 'MP_RULE_WARNING');
    const pairs = tlsCertificates.length > 0 ? tlsCertificates.map(([index, cert]) => ({ cert, at: `${path}.tlsCertificates[${index}]` })) : [{ cert: tls, at: path }];
    for (const { cert, at } of pairs) {
      if (!nonEmpty(cert, 'serverCertificate')) issues.error(`${at}.serverCertificate`, `${prefix} requires a server certificate: give credentialName (a Kubernetes TLS Secret) or serverCertificate and privateKey`);
      if (!nonEmpty(cert, 'privateKey')) issues.error(`${at}.privateKey`, `${prefix} requires a private key: give credentialName (a Kubernetes TLS Secret) or serverCertificate and privateKey`);
    }
  }
  if (nonEmpty(tls, 'caCrl')) {
    if (nonEmpty(tls, 'credentialName')) issues.error(`${path}.caCrl`, 'cannot be used with credentialName: put the CRL in the credential\'s Secret (ca.crl)');
    if (mode === 'SIMPLE') issues.error(`${path}.caCrl`, 'is not supported with SIMPLE TLS, which checks no client certificate: remove it, or use MUTUAL');
  }
}

/** What a valid server asks for that meshpilot does not serve yet: the server is left out, and says so. */
function unsupportedServer(protocol: string, tls: Fields | undefined, path: string, issues: IssueList): void {
  const mode = tls && typeof tls['mode'] === 'string' ? tls['mode'] : undefined;
  const parsed = parseProtocolName(protocol);
  if (parsed === 'UDP') issues.warn(`${path}.port.protocol`, 'UDP servers are not implemented by meshpilot: this server gets no listener', 'MP_UNSUPPORTED');
  if (mode === 'AUTO_PASSTHROUGH' && (parsed === 'TLS' || parsed === 'HTTPS')) {
    issues.warn(`${path}.tls.mode`, 'AUTO_PASSTHROUGH (SNI-routed mesh mTLS for east-west gateways) is not implemented by meshpilot: this server gets no listener', 'MP_UNSUPPORTED');
  }
  if (tls && nonEmpty(tls, 'caCrl')) issues.warn(`${path}.tls.caCrl`, 'is not implemented by meshpilot and has no effect: revoked client certificates are accepted', 'MP_UNSUPPORTED');
  if (tls && nonEmpty(tls, 'caCertCredentialName')) issues.warn(`${path}.tls.caCertCredentialName`, 'is not implemented by meshpilot and has no effect: client certificates are checked against the credential\'s own CA (<credentialName>-cacert)', 'MP_UNSUPPORTED');
  if (tls?.['insecureSkipVerify'] !== undefined) issues.warn(`${path}.tls.insecureSkipVerify`, 'is not implemented by meshpilot and has no effect: client certificates are verified', 'MP_UNSUPPORTED');
}

function checkServer(server: Fields, path: string, issues: IssueList): string | undefined {
  const hostsValue = server['hosts'];
  const hosts = stringsIn(hostsValue, `${path}.hosts`, issues);
  if (hostsValue === undefined || hostsValue === null || (Array.isArray(hostsValue) && hostsValue.length === 0)) {
    issues.error(`${path}.hosts`, `is empty: list the hosts this server exposes (${HOST_EXAMPLE})`);
  }
  for (const [index, host] of hosts) checkServerHost(host, `${path}.hosts[${index}]`, issues);
  const unixBind = checkBind(server['bind'], `${path}.bind`, issues);
  const port = checkPort(server['port'], `${path}.port`, unixBind, issues);
  const tls = mapAt(server['tls'], `${path}.tls`, 'tls: { mode: SIMPLE, credentialName: shop-cert }', issues);
  if (tls) checkTls(tls, `${path}.tls`, issues);
  if (server['name'] !== undefined && typeof server['name'] !== 'string') issues.error(`${path}.name`, `must be a string, got ${describeType(server['name'])}: quote it`);
  if (!port) return undefined;
  const protocol = parseProtocolName(port.protocol);
  const tlsProtocol = protocol === 'HTTPS' || protocol === 'TLS';
  if (tlsProtocol && !tls) {
    issues.error(`${path}.tls`, `is required for a ${port.protocol} server: add tls: { mode: SIMPLE, credentialName: <Secret> } (or mode: PASSTHROUGH)`);
  } else if (!tlsProtocol && tls) {
    const plaintextHttp = protocol === 'HTTP' || protocol === 'HTTP2' || protocol === 'GRPC' || protocol === 'GRPC-Web';
    const mode = typeof tls['mode'] === 'string' ? tls['mode'] : undefined;
    if (!plaintextHttp) {
      issues.error(`${path}.tls`, `a ${port.protocol} server takes no TLS settings: use protocol TLS (or HTTPS) to terminate or pass TLS`);
    } else if (!isPassthroughMode(mode) || ['caCertificates', 'privateKey', 'serverCertificate'].some((key) => nonEmpty(tls, key))) {
      issues.error(`${path}.tls`, `a plaintext ${port.protocol} server takes only tls.httpsRedirect: use protocol HTTPS to terminate TLS`);
    }
  }
  unsupportedServer(port.protocol, tls, path, issues);
  return port.protocol;
}

/** Istio's ValidateGateway, over the spec as written; `name` is the Gateway's metadata.name. */
export function validateGatewaySpec(spec: unknown, _namespace = 'default', name?: string): ValidationIssue[] {
  const issues = new IssueList('MP_RULE_INVALID');
  // A Gateway's name is a DNS label: VirtualServices name it as namespace/name or name.namespace.
  if (name !== undefined && !isDns1123Label(name)) issues.error('metadata.name', `"${name}" is not a valid Gateway name: use a DNS label (lowercase letters, digits and "-", no dots)`);
  if (!isFields(spec)) {
    issues.error('spec', `${spec === undefined ? 'is missing' : `must be a map, got ${describeType(spec)}`}: add spec with selector and servers`);
    return issues.issues;
  }
  issues.issues.push(...checkIstioFields(spec, 'Gateway', 'spec', 'MP_RULE_INVALID'));
  checkLabels(spec['selector'], 'spec.selector', issues);
  const serversValue = spec['servers'];
  const servers = mapsIn(serversValue, 'spec.servers', 'server', issues);
  if (!Array.isArray(serversValue) || serversValue.length === 0) issues.error('spec.servers', 'is empty: a Gateway needs at least one server, e.g. servers: [{ port: { number: 8080, name: http, protocol: HTTP }, hosts: ["*"] }]');
  const portNames = new Map<string, number>();
  for (const [index, server] of servers) {
    const path = `spec.servers[${index}]`;
    const protocol = checkServer(server, path, issues);
    const port = isFields(server['port']) ? server['port'] : undefined;
    const portName = port?.['name'];
    if (typeof portName === 'string' && portName !== '') {
      const first = portNames.get(portName);
      if (first !== undefined) issues.error(`${path}.port.name`, `"${portName}" is already the name of spec.servers[${first}].port: port names must be unique within a Gateway`);
      else portNames.set(portName, index);
    }
    const tls = isFields(server['tls']) ? server['tls'] : undefined;
    if (protocol !== undefined && tls?.['httpsRedirect'] === true && !['HTTP', 'HTTP2', 'GRPC', 'GRPC-Web'].includes(parseProtocolName(protocol))) {
      issues.warn(`${path}.tls.httpsRedirect`, 'should only be used with HTTP servers: it redirects plaintext HTTP requests to HTTPS', 'MP_RULE_WARNING');
    }
  }
  return issues.issues;
}
