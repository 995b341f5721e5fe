// The workload's certificate over time: fetched from the CA at start, renewed at ~80% of its
// lifetime (a little earlier at random, so a fleet started together does not renew together),
// retried with backoff on failure while the current one keeps being served, and handed to
// whoever listens (SDS streams, the files) as one new state, never a half-updated one.
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { spiffeId } from '../security/names.ts';
import { CaCallError, createCertificate, type CaClientOptions } from './ca-client.ts';
import { certificateFacts, generateKeyAndCsr, splitPemCertificates, type CertificateFacts, type KeyType } from './identity.ts';
import { buildSecrets, type SecretResource } from './secrets.ts';

export interface WorkloadCertificateOptions {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly keyType: KeyType;
  /** Asked of the CA as validity_duration; the CA may grant less. */
  readonly validitySeconds: number;
  readonly ca: CaClientOptions;
  readonly log: Logger;
  /** Fraction of the lifetime after which it is renewed (0.8), less up to `jitter` of it at random. */
  readonly renewAt?: number;
  readonly jitter?: number;
  /** First retry after this long, doubling up to `retryMaxMs`. */
  readonly retryInitialMs?: number;
  readonly retryMaxMs?: number;
}

/** What the agent holds: the chain (leaf first, no root), its key, and the trust bundle. */
export interface HeldCertificate {
  readonly certChainPem: string;
  readonly privateKeyPem: string;
  readonly trustBundlePem: string;
  readonly facts: CertificateFacts;
  /** The trust bundle's certificates (the ROOTCA secret), in order. */
  readonly roots: readonly CertificateFacts[];
  readonly secrets: ReadonlyMap<string, SecretResource>;
}

export interface CertificateStatus {
  readonly identity: string;
  readonly ready: boolean;
  readonly serial?: string;
  readonly notBefore?: string;
  readonly notAfter?: string;
  readonly lastRotation?: string;
  readonly nextRotation?: string;
  readonly rotations: number;
  readonly failures: number;
  readonly lastError?: string;
  /** The trust bundle served as ROOTCA: each root's serial and validity. */
  readonly roots?: readonly { readonly serial: string; readonly notBefore: string; readonly notAfter: string }[];
}

const NO_SECRETS: ReadonlyMap<string, SecretResource> = new Map();
/** setTimeout's longest delay (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class WorkloadCertificate {
  readonly identity: string;
  readonly #options: WorkloadCertificateOptions;
  readonly #log: Logger;
  readonly #listeners: ((held: HeldCertificate) => void | Promise<void>)[] = [];
  #held: HeldCertificate | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #rotations = 0;
  #failures = 0;
  #lastError: string | undefined;
  #lastRotation: Date | undefined;
  #nextRotation: Date | undefined;
  #retryMs: number;
  #firstWaiters: (() => void)[] = [];
  #handing: Promise<void> | undefined;

  constructor(options: WorkloadCertificateOptions) {
    this.#options = options;
    this.identity = spiffeId(options.trustDomain, options.namespace, options.serviceAccount);
    this.#log = options.log.child({ identity: this.identity });
    this.#retryMs = options.retryInitialMs ?? 1000;
  }

  get held(): HeldCertificate | undefined {
    return this.#held;
  }

  secrets(): ReadonlyMap<string, SecretResource> {
    return this.#held?.secrets ?? NO_SECRETS;
  }

  /** Called with every new certificate (and at once if one is held); SDS pushes and file writes hang here. */
  onChange(listener: (held: HeldCertificate) => void | Promise<void>): void {
    this.#listeners.push(listener);
  }

  /** Starts fetching; resolves once the first certificate is held (it keeps retrying until then). */
  start(): Promise<void> {
    void this.#renew();
    return this.ready();
  }

  ready(): Promise<void> {
    if (this.#held) return Promise.resolve();
    return new Promise((resolve) => this.#firstWaiters.push(resolve));
  }

  #isClosed(): boolean {
    return this.#closed;
  }

  /** Stops renewing; resolves once a certificate being handed on (files being written) is done. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#handing;
  }

  status(): CertificateStatus {
    const facts = this.#held?.facts;
    return {
      identity: this.identity,
      // An expired certificate is still served (there is nothing better) but the pod is not ready.
      ready: facts !== undefined && facts.notAfter.getTime() > Date.now(),
      ...(facts ? { serial: facts.serial, notBefore: facts.notBefore.toISOString(), notAfter: facts.notAfter.toISOString() } : {}),
      ...(this.#lastRotation ? { lastRotation: this.#lastRotation.toISOString() } : {}),
      ...(this.#nextRotation ? { nextRotation: this.#nextRotation.toISOString() } : {}),
      rotations: this.#rotations,
      failures: this.#failures,
      ...(this.#lastError ? { lastError: this.#lastError } : {}),
      ...(this.#held ? { roots: this.#held.roots.map((root) => ({ serial: root.serial, notBefore: root.notBefore.toISOString(), notAfter: root.notAfter.toISOString() })) } : {}),
    };
  }

  #schedule(delayMs: number): void {
    clearTimeout(this.#timer);
    if (this.#closed) return;
    this.#nextRotation = new Date(Date.now() + delayMs);
    this.#timer = setTimeout(() => void this.#renew(), Math.min(MAX_TIMER_MS, Math.max(0, delayMs)));
  }

  async #renew(): Promise<void> {
    if (this.#closed) return;
    try {
      const held = await this.#fetch();
      // Closed while the CA was answering.
      if (this.#isClosed()) return;
      const renewed = this.#held !== undefined;
      this.#held = held;
      this.#rotations += renewed ? 1 : 0;
      const received = Date.now();
      this.#lastRotation = new Date(received);
      this.#lastError = undefined;
      this.#retryMs = this.#options.retryInitialMs ?? 1000;
      const { notBefore, notAfter, serial } = held.facts;
      // The lifetime counts from when the certificate arrived, as Istio's agent does: the CA backdates
      // notBefore for clock skew (2 minutes), which would otherwise make a short certificate renew at once, forever.
      const start = Math.max(notBefore.getTime(), received);
      const fraction = (this.#options.renewAt ?? 0.8) - Math.random() * (this.#options.jitter ?? 0.05);
      this.#schedule(start + (notAfter.getTime() - start) * fraction - Date.now());
      this.#log.info({ serial, notAfter: notAfter.toISOString(), nextRotation: this.#nextRotation?.toISOString() }, renewed ? 'workload certificate rotated' : 'workload certificate issued');
      for (const waiter of this.#firstWaiters.splice(0)) waiter();
      this.#handing = Promise.all(this.#listeners.map(async (listener) => {
        try {
          await listener(held);
        } catch (error) {
          this.#log.error({ err: error instanceof Error ? error.message : String(error) }, 'a new workload certificate could not be handed on');
        }
      })).then(() => undefined);
      await this.#handing;
    } catch (error) {
      this.#failures++;
      const message = error instanceof Error ? error.message : String(error);
      this.#lastError = message;
      const held = this.#held;
      // Never wait past the current certificate's end to try again.
      const untilExpiry = held ? held.facts.notAfter.getTime() - Date.now() : Infinity;
      const delay = Math.min(this.#retryMs, Math.max(this.#options.retryInitialMs ?? 1000, untilExpiry / 2));
      this.#retryMs = Math.min(this.#retryMs * 2, this.#options.retryMaxMs ?? 60_000);
      const grpcStatus = error instanceof CaCallError ? error.grpcStatus : undefined;
      const still = held ? (untilExpiry > 0 ? `the current certificate (valid until ${held.facts.notAfter.toISOString()}) is still served` : 'the current certificate HAS EXPIRED and is still served') : 'no certificate is held yet';
      this.#log.error({ code: 'MP_AGENT_CERTIFICATE', grpcStatus, retryInMs: delay }, `MP_AGENT_CERTIFICATE: ${message}; ${still}; retrying in ${Math.round(delay)} ms`);
      this.#schedule(delay);
    }
  }

  async #fetch(): Promise<HeldCertificate> {
    const { privateKeyPem, csrPem } = await generateKeyAndCsr(this.identity, this.#options.keyType);
    const current = this.#held;
    const presentable = current && current.facts.notAfter.getTime() > Date.now() ? { certChainPem: current.certChainPem, privateKeyPem: current.privateKeyPem } : undefined;
    const chain = (await createCertificate(this.#options.ca, { csrPem, validitySeconds: this.#options.validitySeconds, ...(presentable ? { clientCertificate: presentable } : {}) })).flatMap(splitPemCertificates);
    const leaf = chain[0];
    if (!leaf) throw new CaCallError(13, 'the CA answered with no certificate');
    const facts = certificateFacts(leaf);
    if (!facts.uris.includes(this.identity)) throw new CaCallError(13, `the CA signed a certificate for ${facts.uris.join(', ') || 'no URI SAN'}, not ${this.identity}`);
    // Leaf and intermediates for the chain; the root (last) joins the mounted roots as the trust bundle.
    const root = chain.length > 1 ? chain.at(-1) : undefined;
    const certChainPem = (root ? chain.slice(0, -1) : chain).join('');
    const mounted = splitPemCertificates(await readFile(this.#options.ca.rootCertFile, 'utf8'));
    const roots = [...new Set([...(root ? [root] : []), ...mounted].map((pem) => pem.trim()))].map((pem) => `${pem}\n`);
    const trustBundlePem = roots.join('');
    return { certChainPem, privateKeyPem, trustBundlePem, facts, roots: roots.map(certificateFacts), secrets: buildSecrets(certChainPem, privateKeyPem, trustBundlePem) };
  }
}
