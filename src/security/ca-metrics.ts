// The CA's Prometheus metrics, with the names Istio's CA (citadel) uses, in meshpilot's registry.
import { Counter, Gauge, type Registry } from 'prom-client';

export class CaMetrics {
  readonly csrs: Counter;
  readonly issued: Counter;
  readonly authenticationFailures: Counter;
  readonly csrParseErrors: Counter;
  readonly identityErrors: Counter;
  readonly xdsRefused: Counter<'reason'>;

  constructor(registry: Registry, rootExpiry: () => Date | undefined) {
    const registers = [registry];
    this.csrs = new Counter({ name: 'citadel_server_csr_count', help: 'CreateCertificate requests received.', registers });
    this.issued = new Counter({ name: 'citadel_server_success_cert_issuance_count', help: 'Certificates signed and returned.', registers });
    this.authenticationFailures = new Counter({
      name: 'citadel_server_authentication_failure_count',
      help: 'Calls on the secure port (CA or xDS) refused for want of valid credentials.',
      registers,
    });
    this.csrParseErrors = new Counter({ name: 'citadel_server_csr_parsing_err_count', help: 'CSRs refused as malformed or hostile (key, signature, SANs, CA request, size, TTL).', registers });
    this.identityErrors = new Counter({ name: 'citadel_server_id_extraction_err_count', help: "CSRs refused because the identity asked for is not the caller's.", registers });
    this.xdsRefused = new Counter({
      name: 'meshpilot_secure_xds_refused',
      help: 'xDS streams on the secure port refused: no valid credentials, or a node claiming a namespace that is not the caller\'s.',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of ['unauthenticated', 'namespace']) this.xdsRefused.labels(reason).inc(0);
    new Gauge({
      name: 'citadel_server_root_cert_expiry_timestamp',
      help: 'When the CA root certificate expires, in seconds since the Unix epoch.',
      registers,
      collect() {
        const expiry = rootExpiry();
        if (expiry) this.set(Math.floor(expiry.getTime() / 1000));
      },
    });
  }
}
