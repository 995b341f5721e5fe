// Automated gateway deployment (`--gateway-deployment on`), as Istio's gateway deployment
// controller: every replica watches Gateway API Gateways and GatewayClasses; the status leader
// gives each Gateway whose class names meshpilot's controller a ServiceAccount, a Service and a
// Deployment of Envoy with the agent (gateway-deployment-objects.ts), and applies them again when
// the Gateway, its class or one of them changes (as Istio's informers on its children re-queue
// the parent) or when it becomes leader. Deleting the Gateway deletes them
// (their owner references), through Kubernetes' garbage collector.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { apiErrorMessage } from './api-clients.ts';
import type { GatewayDeploymentSettings, GatewayObject } from './gateway-deployment-objects.ts';
import { deploymentName, GATEWAY_CONTROLLER_NAME, GATEWAY_NAME_LABEL, isManaged, MANAGED_LABEL, MANAGED_VALUE, renderDeployment, renderService, renderServiceAccount } from './gateway-deployment-objects.ts';
import type { KubeConnection } from './kube-api.ts';
import type { LeaderElector } from './leader-election.ts';
import { applyManaged, type ApplyResult } from './managed-apply.ts';
import { ResilientInformer, type InformerTuning } from './resilient-informer.ts';

const GATEWAY_API = '/apis/gateway.networking.k8s.io/v1';

export interface GatewayDeployerOptions {
  readonly connection: KubeConnection;
  readonly elector: Pick<LeaderElector, 'leading' | 'onLeadingChange'>;
  readonly settings: GatewayDeploymentSettings;
  readonly tuning: InformerTuning;
  /** Each API call's deadline: a write begun as leader ends before a successor can have taken over. */
  readonly timeoutMs: number;
  readonly log: Logger;
  /** A failed Gateway is tried again after this long, doubled per failure up to 30 s. */
  readonly retryInitialMs?: number;
}

export interface GatewayDeployerStats {
  /** Gateways of meshpilot's class, deployed by this controller. */
  readonly managed: number;
  /** Objects created or updated while leading. */
  readonly applied: number;
  readonly failed: number;
  readonly lastError?: string;
}

function gatewayOf(object: KubernetesObject): GatewayObject | undefined {
  const meta = object.metadata;
  const spec = (object as { spec?: GatewayObject['spec'] }).spec;
  if (!meta?.name || !meta.namespace || !meta.uid || typeof spec?.gatewayClassName !== 'string') return undefined;
  return { metadata: { name: meta.name, namespace: meta.namespace, uid: meta.uid, ...(meta.annotations ? { annotations: meta.annotations } : {}) }, spec };
}

/** The objects made for Gateways: only those with meshpilot's managed label are watched. */
const CHILDREN: readonly { readonly path: string; readonly apiVersion: string; readonly kind: string }[] = [
  { path: '/api/v1/serviceaccounts', apiVersion: 'v1', kind: 'ServiceAccount' },
  { path: '/api/v1/services', apiVersion: 'v1', kind: 'Service' },
  { path: '/apis/apps/v1/deployments', apiVersion: 'apps/v1', kind: 'Deployment' },
];

const keyOf = (gateway: Pick<GatewayObject, 'metadata'>): string => `${gateway.metadata.namespace}/${gateway.metadata.name}`;

export class GatewayDeployer {
  readonly #options: GatewayDeployerOptions;
  readonly #log: Logger;
  readonly #gateways = new Map<string, GatewayObject>();
  /** GatewayClass name -> its controllerName. */
  readonly #classes = new Map<string, string>();
  readonly #queue = new Set<string>();
  readonly #retries = new Map<string, { failures: number; timer?: NodeJS.Timeout }>();
  readonly #informers: ResilientInformer[];
  #unsubscribe: (() => void) | undefined;
  #working: Promise<void> | undefined;
  #stopped = false;
  #counts = { applied: 0, failed: 0 };
  #lastError: string | undefined;

  constructor(options: GatewayDeployerOptions) {
    this.#options = options;
    this.#log = options.log;
    const informer = (plural: string, kind: string, upsert: (object: KubernetesObject) => void, remove: (object: KubernetesObject) => void): ResilientInformer =>
      new ResilientInformer({ connection: options.connection, path: `${GATEWAY_API}/${plural}`, apiVersion: 'gateway.networking.k8s.io/v1', kind, tuning: options.tuning, log: options.log, handlers: { upsert, remove } });
    // A child edited or deleted by someone else: its Gateway is applied again.
    const onChild = (object: KubernetesObject): void => {
      const labels = object.metadata?.labels ?? {};
      const gatewayName = labels[GATEWAY_NAME_LABEL];
      if (labels[MANAGED_LABEL] === MANAGED_VALUE && gatewayName && object.metadata?.namespace) this.#enqueue(`${object.metadata.namespace}/${gatewayName}`);
    };
    const children = CHILDREN.map(
      (child) =>
        new ResilientInformer({ connection: options.connection, ...child, labelSelector: `${MANAGED_LABEL}=${MANAGED_VALUE}`, tuning: options.tuning, log: options.log, handlers: { upsert: onChild, remove: onChild } }),
    );
    this.#informers = [
      informer(
        'gatewayclasses',
        'GatewayClass',
        (object) => {
          const name = object.metadata?.name;
          const controller = (object as { spec?: { controllerName?: unknown } }).spec?.controllerName;
          if (!name) return;
          this.#classes.set(name, typeof controller === 'string' ? controller : '');
          this.#enqueueClass(name);
        },
        (object) => {
          if (object.metadata?.name) this.#classes.delete(object.metadata.name);
        },
      ),
      informer(
        'gateways',
        'Gateway',
        (object) => {
          const gateway = gatewayOf(object);
          if (!gateway) return;
          const key = keyOf(gateway);
          const before = this.#gateways.get(key);
          this.#gateways.set(key, gateway);
          // A status write is no reason to apply again.
          if (!before || JSON.stringify(before) !== JSON.stringify(gateway)) this.#enqueue(key);
        },
        (object) => {
          if (object.metadata?.name && object.metadata.namespace) this.#gateways.delete(`${object.metadata.namespace}/${object.metadata.name}`);
        },
      ),
      ...children,
    ];
  }

  start(): void {
    this.#unsubscribe = this.#options.elector.onLeadingChange((leading) => {
      // A new leader applies everything once: what the last leader left may be out of date.
      if (leading) for (const key of this.#gateways.keys()) this.#enqueue(key);
    });
    for (const informer of this.#informers) informer.start();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe?.();
    for (const retry of this.#retries.values()) clearTimeout(retry.timer);
    await Promise.all(this.#informers.map((informer) => informer.stop()));
    await this.#working;
  }

  stats(): GatewayDeployerStats {
    return { managed: [...this.#gateways.values()].filter((g) => this.#ours(g)).length, ...this.#counts, ...(this.#lastError !== undefined ? { lastError: this.#lastError } : {}) };
  }

  /** Istio's reconcile filter: the Gateway's class is known and names meshpilot's controller, and it names no address of its own. */
  #ours(gateway: GatewayObject): boolean {
    return this.#classes.get(gateway.spec.gatewayClassName) === GATEWAY_CONTROLLER_NAME && isManaged(gateway);
  }

  #leading(): boolean {
    return this.#options.elector.leading;
  }

  #enqueueClass(className: string): void {
    for (const [key, gateway] of this.#gateways) if (gateway.spec.gatewayClassName === className) this.#enqueue(key);
  }

  #enqueue(key: string): void {
    if (this.#stopped) return;
    this.#queue.add(key);
    this.#kick();
  }

  #kick(): void {
    if (this.#working || this.#stopped) return;
    this.#working = this.#drain().finally(() => {
      this.#working = undefined;
      // Something queued after the last turn of the loop.
      if (this.#queue.size > 0) this.#kick();
    });
  }

  async #drain(): Promise<void> {
    for (const key of this.#queue) {
      this.#queue.delete(key);
      if (this.#stopped) return;
      await this.#reconcile(key);
    }
  }

  async #reconcile(key: string): Promise<void> {
    const gateway = this.#gateways.get(key);
    if (!gateway || !this.#ours(gateway) || !this.#leading()) return;
    const { connection, settings, timeoutMs } = this.#options;
    const ns = gateway.metadata.namespace;
    const objects: [string, Record<string, unknown>][] = [
      [`/api/v1/namespaces/${ns}/serviceaccounts`, renderServiceAccount(gateway)],
      [`/api/v1/namespaces/${ns}/services`, renderService(gateway)],
      [`/apis/apps/v1/namespaces/${ns}/deployments`, renderDeployment(gateway, settings)],
    ];
    try {
      for (const [collection, desired] of objects) {
        // Leadership may have ended during the previous write: the next leader applies instead.
        if (!this.#leading()) return;
        const result: ApplyResult = await applyManaged(connection, collection, desired, timeoutMs);
        if (result !== 'unchanged') {
          this.#counts.applied++;
          this.#log.info({ gateway: key, kind: desired['kind'], name: deploymentName(gateway) }, `gateway ${key}: ${String(desired['kind'])} ${deploymentName(gateway)} ${result}`);
        }
      }
      const retry = this.#retries.get(key);
      clearTimeout(retry?.timer);
      this.#retries.delete(key);
    } catch (error) {
      this.#counts.failed++;
      this.#lastError = `${key}: ${apiErrorMessage(error)}`;
      const failures = (this.#retries.get(key)?.failures ?? 0) + 1;
      const delayMs = Math.min(30_000, (this.#options.retryInitialMs ?? 1000) * 2 ** Math.min(failures - 1, 15));
      this.#log[failures === 1 ? 'warn' : 'debug']({ gateway: key, failures, retryInMs: delayMs }, `gateway ${key}: deploying failed (${this.#lastError}); trying again`);
      const timer = setTimeout(() => {
        this.#enqueue(key);
      }, delayMs);
      timer.unref();
      this.#retries.set(key, { failures, timer });
    }
  }
}
