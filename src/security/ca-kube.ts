// The CA's Kubernetes side: its root from the Secret `cacerts` (plugged in) or the shared
// `meshpilot-ca-secret` (created once, create-if-absent), TokenReview for callers' tokens, and
// the root published as the ConfigMap `istio-ca-root-cert` in every namespace of the mesh.
import type { Logger } from 'pino';
import { MeshpilotError } from '../errors.ts';
import type { KubeConnection } from '../sources/kube/kube-api.ts';
import { requestJson, statusMessage } from '../sources/kube/kube-api.ts';
import type { CaMaterial, NamedPem } from './ca-material.ts';
import { CA_CERT_FILE, CA_CHAIN_FILE, CA_KEY_FILE, CA_ROOT_FILE, createSelfSignedRoot, pluggedInMaterial, selfSignedMaterial } from './ca-material.ts';
import type { TokenReview, TokenReviewer } from './authn.ts';
import { PLUGGED_CA_SECRET, ROOT_CERT_CONFIGMAP, ROOT_CERT_FILE, SELF_SIGNED_CA_SECRET } from './names.ts';

const secretPath = (namespace: string, name?: string): string => `/api/v1/namespaces/${namespace}/secrets${name ? `/${name}` : ''}`;
const configMapPath = (namespace: string, name?: string): string => `/api/v1/namespaces/${namespace}/configmaps${name ? `/${name}` : ''}`;

function unavailable(what: string, statusCode: number, body: string): never {
  throw new MeshpilotError('MP_CA_ROOT_UNAVAILABLE', `${what}: the API server answered ${statusCode} (${statusMessage(body)}); meshpilot needs get/create on Secrets in its namespace (deploy/02-rbac.yaml)`);
}

function secretFile(secret: { data?: Record<string, string> }, label: string, key: string): NamedPem {
  const value = secret.data?.[key];
  const name = `${label} key ${key}`;
  if (value === undefined) throw new MeshpilotError('MP_CA_PLUGIN_INVALID', `${name}: the key is missing`);
  return { name, text: Buffer.from(value, 'base64').toString('utf8') };
}

/**
 * The CA material from meshpilot's namespace: `cacerts` when present (checked like --ca-dir),
 * else `meshpilot-ca-secret`, created with a new root when absent; a replica that loses the
 * creation race (409) reads the winner's.
 */
export async function loadKubeCaMaterial(connection: KubeConnection, namespace: string, trustDomain: string, log: Logger): Promise<CaMaterial> {
  const plugged = await requestJson(connection, 'GET', secretPath(namespace, PLUGGED_CA_SECRET));
  if (plugged.statusCode === 200) {
    const label = `Secret ${namespace}/${PLUGGED_CA_SECRET}`;
    const secret = JSON.parse(plugged.body) as { data?: Record<string, string> };
    const file = (key: string): NamedPem => secretFile(secret, label, key);
    return pluggedInMaterial({ caCert: file(CA_CERT_FILE), caKey: file(CA_KEY_FILE), rootCert: file(CA_ROOT_FILE), certChain: file(CA_CHAIN_FILE) }, label);
  }
  if (plugged.statusCode !== 404) unavailable(`Secret ${namespace}/${PLUGGED_CA_SECRET}`, plugged.statusCode, plugged.body);
  const label = `Secret ${namespace}/${SELF_SIGNED_CA_SECRET}`;
  const fromSecret = (body: string): CaMaterial => {
    const secret = JSON.parse(body) as { data?: Record<string, string> };
    try {
      return selfSignedMaterial(secretFile(secret, label, CA_CERT_FILE), secretFile(secret, label, CA_KEY_FILE), label);
    } catch (error) {
      throw new MeshpilotError('MP_CA_ROOT_UNAVAILABLE', error instanceof Error ? error.message.replace(/^MP_[A-Z_]+: /, '') : String(error), { cause: error });
    }
  };
  const existing = await requestJson(connection, 'GET', secretPath(namespace, SELF_SIGNED_CA_SECRET));
  if (existing.statusCode === 200) return fromSecret(existing.body);
  if (existing.statusCode !== 404) unavailable(label, existing.statusCode, existing.body);
  const root = await createSelfSignedRoot(trustDomain);
  const created = await requestJson(connection, 'POST', secretPath(namespace), {
    body: {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'istio.io/ca-root',
      metadata: { name: SELF_SIGNED_CA_SECRET, namespace, labels: { app: 'meshpilot' } },
      data: { [CA_CERT_FILE]: Buffer.from(root.certPem).toString('base64'), [CA_KEY_FILE]: Buffer.from(root.keyPem).toString('base64') },
    },
  });
  if (created.statusCode === 201 || created.statusCode === 200) {
    log.info({ secret: label }, 'created the self-signed CA root; every replica signs with it');
    return fromSecret(created.body);
  }
  if (created.statusCode !== 409) unavailable(label, created.statusCode, created.body);
  // Another replica created it first: use its root, so every replica signs with the same one.
  const winner = await requestJson(connection, 'GET', secretPath(namespace, SELF_SIGNED_CA_SECRET));
  if (winner.statusCode !== 200) unavailable(label, winner.statusCode, winner.body);
  log.info({ secret: label }, 'another replica created the CA root first; using it');
  return fromSecret(winner.body);
}

/** TokenReview (`authentication.k8s.io/v1`) against the API server meshpilot watches. */
export class KubeTokenReviewer implements TokenReviewer {
  readonly #connection: KubeConnection;
  constructor(connection: KubeConnection) {
    this.#connection = connection;
  }

  async review(token: string, audiences: readonly string[]): Promise<TokenReview> {
    const answer = await requestJson(this.#connection, 'POST', '/apis/authentication.k8s.io/v1/tokenreviews', {
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences } },
      timeoutMs: 10_000,
    });
    if (answer.statusCode !== 201 && answer.statusCode !== 200) {
      return { authenticated: false, error: `TokenReview failed: the API server answered ${answer.statusCode} (${statusMessage(answer.body)})`, unavailable: true };
    }
    const status = (JSON.parse(answer.body) as { status?: { authenticated?: boolean; user?: { username?: string }; audiences?: string[]; error?: string } }).status ?? {};
    if (status.authenticated !== true) return { authenticated: false, error: status.error ?? 'the API server did not authenticate the token' };
    return { authenticated: true, username: status.user?.username ?? '', audiences: status.audiences ?? [] };
  }
}

/**
 * Keeps the ConfigMap `istio-ca-root-cert` (key `root-cert.pem`) equal to the root in every
 * namespace `namespaces()` names: created where missing, updated where it differs.
 */
export class RootCertPublisher {
  readonly #connection: KubeConnection;
  readonly #rootPem: string;
  readonly #namespaces: () => readonly string[];
  readonly #log: Logger;
  readonly #published = new Set<string>();
  #running: Promise<void> | undefined;
  #again = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: { connection: KubeConnection; rootPem: string; namespaces: () => readonly string[]; log: Logger; intervalMs?: number }) {
    this.#connection = options.connection;
    this.#rootPem = options.rootPem;
    this.#namespaces = options.namespaces;
    this.#log = options.log;
    // A ConfigMap someone deleted or edited is put back on the next round.
    this.#timer = setInterval(() => {
      this.#published.clear();
      void this.sync();
    }, options.intervalMs ?? 60_000);
    this.#timer.unref();
  }

  /** Namespaces whose ConfigMap is known to hold the root. */
  get published(): ReadonlySet<string> {
    return this.#published;
  }

  /** Writes the ConfigMap where it is missing or stale; calls during a run coalesce into one more. */
  sync(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        for (const namespace of this.#namespaces()) {
          if (this.#published.has(namespace)) continue;
          try {
            await this.#publish(namespace);
            this.#published.add(namespace);
          } catch (error) {
            this.#log.warn({ code: 'MP_CA_PUBLISH_FAILED', namespace }, `MP_CA_PUBLISH_FAILED: ConfigMap ${namespace}/${ROOT_CERT_CONFIGMAP}: ${error instanceof Error ? error.message : String(error)}; retried later`);
          }
        }
      } while (this.#takeRerun());
    })().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** Whether a sync was asked for during the run (and clears the request). */
  #takeRerun(): boolean {
    const again = this.#again;
    this.#again = false;
    return again;
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #publish(namespace: string): Promise<void> {
    const body = (resourceVersion?: string): unknown => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: ROOT_CERT_CONFIGMAP, namespace, labels: { 'istio.io/config': 'true' }, ...(resourceVersion ? { resourceVersion } : {}) },
      data: { [ROOT_CERT_FILE]: this.#rootPem },
    });
    const current = await requestJson(this.#connection, 'GET', configMapPath(namespace, ROOT_CERT_CONFIGMAP));
    if (current.statusCode === 404) {
      const created = await requestJson(this.#connection, 'POST', configMapPath(namespace), { body: body() });
      // 409: another replica wrote it a moment ago, with the same root.
      if (created.statusCode !== 201 && created.statusCode !== 200 && created.statusCode !== 409) throw new Error(`create answered ${created.statusCode} (${statusMessage(created.body)})`);
      return;
    }
    if (current.statusCode !== 200) throw new Error(`get answered ${current.statusCode} (${statusMessage(current.body)})`);
    const existing = JSON.parse(current.body) as { metadata?: { resourceVersion?: string }; data?: Record<string, string> };
    if (existing.data?.[ROOT_CERT_FILE] === this.#rootPem) return;
    const updated = await requestJson(this.#connection, 'PUT', configMapPath(namespace, ROOT_CERT_CONFIGMAP), { body: body(existing.metadata?.resourceVersion) });
    if (updated.statusCode !== 200) throw new Error(`update answered ${updated.statusCode} (${statusMessage(updated.body)})`);
  }
}
