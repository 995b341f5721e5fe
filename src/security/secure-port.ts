// Port 15012: Istio's CA API (IstioCertificateService/CreateCertificate) and the same ADS as
// 15010, over TLS with meshpilot's own certificate (signed by its CA, renewed before expiry
// without dropping connections). Every call authenticates (token or client certificate); a
// workload gets only its own identity, and a proxy only its own namespace's config.
import type { Logger } from 'pino';
import { parseProxy } from '../model/proxy.ts';
import type { AdsServer, GateVerdict } from '../xds/server/ads-server.ts';
import type { NodeInfo } from '../xds/server/messages.ts';
import type { GrpcCall, TransportLimits } from '../xds/server/grpc-transport.ts';
import { GrpcStatus, GrpcTransport } from '../xds/server/grpc-transport.ts';
import type { Authentication, CallerAuthenticator } from './authn.ts';
import type { CertificateAuthority } from './ca.ts';
import { TtlRefused } from './ca.ts';
import type { CaMetrics } from './ca-metrics.ts';
import { CsrRefused } from './csr.ts';

import { CREATE_CERTIFICATE_PATH, caServiceTypes } from './ca-service.ts';

/** The names meshpilot's serving certificate always carries (Istio's istiod names, for meshpilot). */
export function servingDnsNames(namespace: string, extra: readonly string[] = []): string[] {
  return [...new Set([`meshpilot.${namespace}.svc`, `meshpilot.${namespace}.svc.cluster.local`, `meshpilot.${namespace}`, 'meshpilot', 'localhost', ...extra])];
}

export interface SecurePortOptions {
  readonly ca: CertificateAuthority;
  readonly authenticator: CallerAuthenticator;
  /** Served on this port too, behind authentication and the namespace check. */
  readonly ads: AdsServer;
  readonly metrics: CaMetrics;
  readonly log: Logger;
  /** SANs of meshpilot's serving certificate (see servingDnsNames). */
  readonly dnsNames: readonly string[];
  /** Lifetime of the serving certificate; it is renewed at 80% of it. */
  readonly servingTtlMs?: number;
  readonly limits?: Partial<TransportLimits>;
}

export const DEFAULT_SERVING_TTL_MS = 24 * 3_600_000;

export class SecurePort {
  readonly #options: SecurePortOptions;
  readonly #log: Logger;
  readonly #transport: GrpcTransport;
  #serving: { chain: string[]; notAfter: Date };
  #renewTimer: NodeJS.Timeout | undefined;
  #port: number | undefined;

  private constructor(options: SecurePortOptions, serving: { chain: string[]; keyPem: string; notAfter: Date }) {
    this.#options = options;
    this.#log = options.log;
    this.#serving = serving;
    this.#transport = new GrpcTransport({
      log: options.log,
      ...(options.limits ? { limits: options.limits } : {}),
      tls: { cert: serving.chain.join(''), key: serving.keyPem, ca: options.ca.rootPem },
    });
    this.#transport.handle(CREATE_CERTIFICATE_PATH, (call) => {
      this.#createCertificate(call);
    }, { rateLimited: false });
    options.ads.serveOn(this.#transport, (call, node) => this.#admitStream(call, node));
    this.#scheduleRenewal();
  }

  static async create(options: SecurePortOptions): Promise<SecurePort> {
    const serving = await options.ca.issueServing(options.dnsNames, options.servingTtlMs ?? DEFAULT_SERVING_TTL_MS);
    return new SecurePort(options, serving);
  }

  async listen(host: string, port: number): Promise<number> {
    this.#port = await this.#transport.listen(host, port);
    this.#log.info({ address: host, port: this.#port, dnsNames: this.#options.dnsNames, tokens: this.#options.authenticator.checksTokens }, 'secure port listening (CA and xDS over TLS)');
    return this.#port;
  }

  get port(): number | undefined {
    return this.#port;
  }

  /** The chain meshpilot serves with now, leaf first, and when its leaf expires. */
  get servingCertificate(): { readonly chain: readonly string[]; readonly notAfter: Date } {
    return this.#serving;
  }

  /** A new serving certificate for new connections; open ones keep theirs (nothing is dropped). */
  async renewServingCertificate(): Promise<void> {
    const serving = await this.#options.ca.issueServing(this.#options.dnsNames, this.#options.servingTtlMs ?? DEFAULT_SERVING_TTL_MS);
    this.#transport.setTls({ cert: serving.chain.join(''), key: serving.keyPem, ca: this.#options.ca.rootPem });
    this.#serving = serving;
    this.#log.info({ notAfter: serving.notAfter.toISOString() }, 'renewed the serving certificate of the secure port');
    this.#scheduleRenewal();
  }

  async close(): Promise<void> {
    clearTimeout(this.#renewTimer);
    await this.#transport.close();
  }

  #scheduleRenewal(): void {
    clearTimeout(this.#renewTimer);
    const lifetime = this.#serving.notAfter.getTime() - Date.now();
    this.#renewTimer = setTimeout(() => {
      this.renewServingCertificate().catch((error: unknown) => {
        this.#log.error({ err: error }, 'renewing the serving certificate failed; retrying in a minute');
        this.#renewTimer = setTimeout(() => void this.renewServingCertificate().catch(() => undefined), 60_000);
        this.#renewTimer.unref();
      });
    }, Math.max(1000, lifetime * 0.8));
    this.#renewTimer.unref();
  }

  async #authenticate(call: GrpcCall): Promise<Authentication> {
    const header = call.headers.authorization;
    const result = await this.#options.authenticator.authenticate(typeof header === 'string' ? header : undefined, call.peerCertificate());
    if (!result.ok) {
      this.#options.metrics.authenticationFailures.inc();
      this.#log.warn({ code: 'MP_CA_UNAUTHENTICATED', peer: call.peer, path: call.path }, `MP_CA_UNAUTHENTICATED: ${result.reason}`);
    }
    return result;
  }

  /** Istio's XDS_AUTH: the node's namespace must be the caller's. */
  async #admitStream(call: GrpcCall, node: NodeInfo | undefined): Promise<GateVerdict> {
    const auth = await this.#authenticate(call);
    if (!auth.ok) {
      this.#options.metrics.xdsRefused.labels('unauthenticated').inc();
      return { refused: { status: GrpcStatus.UNAUTHENTICATED, message: `MP_CA_UNAUTHENTICATED: ${auth.reason}` } };
    }
    const claimed = node ? parseProxy(node.id, node.metadata).namespace : undefined;
    // The stream keeps who it proved to be: what it may read (Secrets) is decided by it, not by the node's word.
    if (claimed === auth.caller.namespace) return { identity: { namespace: auth.caller.namespace, serviceAccount: auth.caller.serviceAccount, via: auth.caller.via } };
    const message = `MP_CA_IDENTITY_MISMATCH: the node ${JSON.stringify((node?.id ?? '').slice(0, 200))} claims namespace ${claimed ?? '(none)'}, but the caller is ${auth.caller.identity}`;
    this.#options.metrics.xdsRefused.labels('namespace').inc();
    this.#log.warn({ code: 'MP_CA_IDENTITY_MISMATCH', peer: call.peer, caller: auth.caller.identity }, message);
    return { refused: { status: GrpcStatus.PERMISSION_DENIED, message } };
  }

  #createCertificate(call: GrpcCall): void {
    call.endsWithClient = false;
    let answered = false;
    call.onHalfClose = () => {
      if (!answered) call.end(GrpcStatus.INVALID_ARGUMENT, 'MP_CA_CSR_REFUSED: the call carried no IstioCertificateRequest');
    };
    call.onMessage = (bytes) => {
      if (answered) return;
      answered = true;
      let request: { csr: string; validityDuration: number };
      try {
        const decoded = caServiceTypes().request.toObject(caServiceTypes().request.decode(bytes), { longs: Number, defaults: true }) as { csr: string; validity_duration: number };
        request = { csr: decoded.csr, validityDuration: decoded.validity_duration };
      } catch (error) {
        this.#options.metrics.csrs.inc();
        this.#options.metrics.csrParseErrors.inc();
        call.end(GrpcStatus.INVALID_ARGUMENT, `MP_CA_CSR_REFUSED: the IstioCertificateRequest cannot be decoded (${error instanceof Error ? error.message : String(error)})`);
        return;
      }
      void this.#answer(call, request);
    };
  }

  async #answer(call: GrpcCall, request: { csr: string; validityDuration: number }): Promise<void> {
    const { metrics } = this.#options;
    metrics.csrs.inc();
    const auth = await this.#authenticate(call);
    if (!auth.ok) {
      call.end(GrpcStatus.UNAUTHENTICATED, `MP_CA_UNAUTHENTICATED: ${auth.reason}`);
      return;
    }
    try {
      const chain = await this.#options.ca.sign(request.csr, auth.caller.identity, request.validityDuration);
      metrics.issued.inc();
      const response = caServiceTypes().response;
      call.write(Buffer.from(response.encode(response.fromObject({ cert_chain: chain })).finish()), () => undefined);
      call.end(GrpcStatus.OK);
    } catch (error) {
      if (error instanceof CsrRefused && error.problem === 'identity') {
        metrics.identityErrors.inc();
        const message = `MP_CA_IDENTITY_MISMATCH: ${error.message}`;
        this.#log.warn({ code: 'MP_CA_IDENTITY_MISMATCH', peer: call.peer, caller: auth.caller.identity, via: auth.caller.via }, message);
        call.end(GrpcStatus.PERMISSION_DENIED, message);
      } else if (error instanceof CsrRefused || error instanceof TtlRefused) {
        metrics.csrParseErrors.inc();
        const message = `MP_CA_CSR_REFUSED: ${error.message}`;
        this.#log.warn({ code: 'MP_CA_CSR_REFUSED', peer: call.peer, caller: auth.caller.identity }, message);
        call.end(GrpcStatus.INVALID_ARGUMENT, message);
      } else {
        this.#log.error({ err: error, caller: auth.caller.identity }, 'signing a certificate failed');
        call.end(GrpcStatus.INTERNAL, 'meshpilot failed to sign the certificate; see its log');
      }
    }
  }
}
