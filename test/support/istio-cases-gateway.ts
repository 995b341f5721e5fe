// Gateway cases derived from the semantics of Istio's validation_test.go (TestValidateGateway,
// TestValidateServer, TestValidateServerPort, TestValidateTlsOptions), written here as YAML objects.
import type { K8sObject } from './mesh-dir.ts';
import { rule } from './mesh-dir.ts';
import type { IstioCase } from './istio-cases-routing.ts';
import { invalid, unsupported, VALID, warning } from './verdict.ts';

const gateway = (servers: unknown, name = 'case'): K8sObject => rule('Gateway', name, 'default', { selector: { istio: 'ingressgateway' }, servers });
const http = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ hosts: ['foo.bar.com'], port: { number: 7, name: 'http', protocol: 'http' }, ...extra });
const https = (tls: Record<string, unknown>, protocol = 'HTTPS'): K8sObject => gateway([{ hosts: ['foo.bar.com'], port: { number: 443, name: 'https', protocol }, tls }]);
const S0 = 'spec.servers[0]';

const ok = (what: string, object: K8sObject): IstioCase => ({ what, object, istio: 'valid', expect: VALID });
const bad = (what: string, object: K8sObject, path: string): IstioCase => ({ what, object, istio: 'invalid', expect: invalid(path) });
const warns = (what: string, object: K8sObject, path: string): IstioCase => ({ what, object, istio: 'warning', expect: warning(path, 'MP_RULE_WARNING') });
const notServed = (what: string, object: K8sObject, path: string): IstioCase => ({ what, object, istio: 'valid', expect: unsupported(path) });

export const GATEWAY_CASES: readonly IstioCase[] = [
  // TestValidateGateway
  bad('no servers', rule('Gateway', 'case', 'default', { selector: { istio: 'ingressgateway' } }), 'spec.servers'),
  ok('a server for one domain', gateway([http({ port: { name: 'name1', number: 7, protocol: 'http' } })])),
  bad('port 66000', gateway([http({ port: { name: 'name1', number: 66000, protocol: 'http' } })]), `${S0}.port.number`),
  bad('two servers with one port name', gateway([http({ port: { name: 'foo', number: 80, protocol: 'http' } }), { hosts: ['scooby.doo.com'], port: { name: 'foo', number: 8080, protocol: 'http' } }]), 'spec.servers[1].port.name'),
  bad('a wildcard in the middle of a domain', gateway([http({ hosts: ['foo.*.bar.com'] })]), `${S0}.hosts[0]`),
  ok('httpsRedirect on an HTTP server', gateway([http({ hosts: ['bar.com'], port: { name: 'http', number: 80, protocol: 'http' }, tls: { httpsRedirect: true } })])),
  warns('httpsRedirect on an HTTPS server', gateway([{ hosts: ['bar.com'], port: { name: 'https', number: 80, protocol: 'https' }, tls: { httpsRedirect: true, mode: 'SIMPLE', credentialName: 'bar-cert' } }]), `${S0}.tls.httpsRedirect`),
  bad('a partial wildcard host', gateway([{ hosts: ['*bar.com'], port: { name: 'tls', number: 443, protocol: 'tls' }, tls: { mode: 'ISTIO_MUTUAL' } }]), `${S0}.hosts[0]`),
  bad('a name with a dot', gateway([http()], 'bookinfo.gateway'), 'metadata.name'),
  // TestValidateServer
  bad('a server without hosts', gateway([{ port: { number: 7, name: 'http', protocol: 'http' } }]), `${S0}.hosts`),
  bad('a server without a port', gateway([{ hosts: ['foo.bar.com'] }]), `${S0}.port`),
  ok('an IP host', gateway([http({ hosts: ['1.1.1.1'] })])),
  ok('a host of namespace ns1', gateway([http({ hosts: ['ns1/foo.bar.com'] })])),
  ok('a host of any namespace', gateway([http({ hosts: ['*/foo.bar.com'] })])),
  ok("a host of the Gateway's namespace", gateway([http({ hosts: ['./foo.bar.com'] })])),
  bad('a host of namespace ~', gateway([http({ hosts: ['~/foo.bar.com'] })]), `${S0}.hosts[0]`),
  bad('a namespaced host with a wildcard inside', gateway([http({ hosts: ['ns1/foo.*.bar.com'] })]), `${S0}.hosts[0]`),
  bad('a short name host', gateway([http({ hosts: ['foo'] })]), `${S0}.hosts[0]`),
  bad('SIMPLE TLS on a plaintext HTTP server', gateway([http({ tls: { mode: 'SIMPLE' } })]), `${S0}.tls.serverCertificate`),
  bad('an HTTPS server without TLS settings', gateway([{ hosts: ['foo.bar.com'], port: { number: 10000, name: 'https', protocol: 'https' } }]), `${S0}.tls`),
  bad('TLS termination on an HTTP server', gateway([http({ tls: { mode: 'SIMPLE', credentialName: 'foo-cert' } })]), `${S0}.tls`),
  ok('bound to an IP', gateway([http({ bind: '127.0.0.1' })])),
  bad('bound to a Unix socket with a port number', gateway([http({ bind: 'unix://@foobar' })]), `${S0}.port.number`),
  notServed('bound to a Unix socket', gateway([http({ bind: 'unix://@foobar', port: { number: 0, name: 'http', protocol: 'http' } })]), `${S0}.bind`),
  bad('bound to a name', gateway([http({ bind: 'foo.bar' })]), `${S0}.bind`),
  // TestValidateServerPort
  bad('an unknown protocol', gateway([http({ port: { number: 53, name: 'dns', protocol: 'DNS' } })]), `${S0}.port.protocol`),
  bad('a port without a name', gateway([http({ port: { number: 7, protocol: 'http' } })]), `${S0}.port.name`),
  bad('a targetPort', gateway([http({ port: { number: 7, name: 'http', protocol: 'http', targetPort: 8080 } })]), `${S0}.port.targetPort`),
  ok('a TCP server', gateway([{ hosts: ['*'], port: { number: 31400, name: 'tcp', protocol: 'TCP' } }])),
  ok('a GRPC server', gateway([http({ port: { number: 7, name: 'grpc', protocol: 'GRPC' } })])),
  // TestValidateTlsOptions
  ok('SIMPLE with a credential', https({ mode: 'SIMPLE', credentialName: 'sds-name' })),
  ok('MUTUAL with a credential', https({ mode: 'MUTUAL', credentialName: 'sds-name' })),
  ok('SIMPLE with files', https({ mode: 'SIMPLE', serverCertificate: '/etc/certs/cert.pem', privateKey: '/etc/certs/key.pem' })),
  ok('MUTUAL with files and a CA', https({ mode: 'MUTUAL', serverCertificate: '/etc/certs/cert.pem', privateKey: '/etc/certs/key.pem', caCertificates: '/etc/certs/ca.pem' })),
  ok('ISTIO_MUTUAL', https({ mode: 'ISTIO_MUTUAL' })),
  bad('SIMPLE without a certificate', https({ mode: 'SIMPLE', privateKey: '/etc/certs/key.pem' }), `${S0}.tls.serverCertificate`),
  bad('SIMPLE without a private key', https({ mode: 'SIMPLE', serverCertificate: '/etc/certs/cert.pem' }), `${S0}.tls.privateKey`),
  bad('MUTUAL files without a client CA', https({ mode: 'MUTUAL', serverCertificate: '/etc/certs/cert.pem', privateKey: '/etc/certs/key.pem' }), `${S0}.tls.caCertificates`),
  bad('ISTIO_MUTUAL with a certificate', https({ mode: 'ISTIO_MUTUAL', serverCertificate: '/etc/certs/cert.pem' }), `${S0}.tls.serverCertificate`),
  bad('ISTIO_MUTUAL with a credential', https({ mode: 'ISTIO_MUTUAL', credentialName: 'sds-name' }), `${S0}.tls.credentialName`),
  bad('a credential and files at once', https({ mode: 'SIMPLE', credentialName: 'sds-name', serverCertificate: '/etc/certs/cert.pem', privateKey: '/etc/certs/key.pem' }), `${S0}.tls`),
  // Istio returns before its CRL checks when a credential is named.
  notServed('a CRL with a credential', https({ mode: 'MUTUAL', credentialName: 'sds-name', caCrl: '/etc/certs/crl.pem' }), `${S0}.tls.caCrl`),
  bad('a CRL with SIMPLE files', https({ mode: 'SIMPLE', serverCertificate: '/etc/certs/cert.pem', privateKey: '/etc/certs/key.pem', caCrl: '/etc/certs/crl.pem' }), `${S0}.tls.caCrl`),
  bad('an unknown TLS mode', https({ mode: 'OPPORTUNISTIC', credentialName: 'sds-name' }), `${S0}.tls.mode`),
  warns('TLS 1.1 without cipher suites', https({ mode: 'SIMPLE', credentialName: 'sds-name', minProtocolVersion: 'TLSV1_1' }), `${S0}.tls.minProtocolVersion`),
  warns('an invalid cipher suite', https({ mode: 'SIMPLE', credentialName: 'sds-name', cipherSuites: ['ECDHE-RSA-AES256-GCM-SHA384', 'NOT-A-CIPHER'] }), `${S0}.tls.cipherSuites`),
  warns('PASSTHROUGH with a certificate', https({ mode: 'PASSTHROUGH', credentialName: 'sds-name' }, 'TLS'), `${S0}.tls`),
  // what meshpilot does not serve yet
  ok('PASSTHROUGH to tls routes', https({ mode: 'PASSTHROUGH' }, 'TLS')),
  ok('an HTTPS server passing TLS through', https({ mode: 'PASSTHROUGH' })),
  notServed('AUTO_PASSTHROUGH', https({ mode: 'AUTO_PASSTHROUGH' }, 'TLS'), `${S0}.tls.mode`),
];
