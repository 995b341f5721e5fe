// Synthetic meshes for the benchmark and the scale tests: services x endpoints x subsets, with
// DestinationRules and VirtualServices, as model objects published straight to the ConfigStore.
import type { DestinationRule, Rule, VirtualService } from '../src/model/rules.ts';
import type { Endpoint, Service } from '../src/model/service.ts';
import { serviceHostname } from '../src/model/service.ts';
import type { SourceSnapshot } from '../src/model/store.ts';

export interface MeshShape {
  readonly services: number;
  readonly endpointsPerService: number;
  readonly namespaces: number;
  /** Every n-th service has a DestinationRule with two subsets (v1, v2). */
  readonly subsetEvery: number;
  /** Every n-th service has a VirtualService splitting 90/10 between its subsets. */
  readonly virtualServiceEvery: number;
}

export const SOURCE = { origin: 'file', location: 'synthetic' } as const;
export const PORT = 8080;

export function meshShape(services: number, endpointsPerService: number): MeshShape {
  return { services, endpointsPerService, namespaces: Math.max(1, Math.ceil(services / 100)), subsetEvery: 5, virtualServiceEvery: 10 };
}

export function namespaceOf(shape: MeshShape, index: number): string {
  return `ns-${index % shape.namespaces}`;
}

export function serviceName(index: number): string {
  return `svc-${index}`;
}

export function hostOf(shape: MeshShape, index: number): string {
  return serviceHostname(serviceName(index), namespaceOf(shape, index));
}

function ip(a: number, n: number): string {
  return `10.${a}.${(n >> 8) & 255}.${n & 255}`;
}

/** Endpoint addresses of one service; `revision` > 0 moves the first one to a new address. */
export function endpointsOf(shape: MeshShape, index: number, revision = 0): Endpoint[] {
  const hostname = hostOf(shape, index);
  return Array.from({ length: shape.endpointsPerService }, (_, e) => ({
    serviceHostname: hostname,
    servicePortName: 'http',
    address: e === 0 && revision > 0 ? ip(200 + (revision >> 16), revision & 0xffff) : ip(1 + (e % 50), index),
    port: PORT,
    labels: { app: serviceName(index), version: e % 2 === 0 ? 'v1' : 'v2' },
    locality: { region: 'region-a', zone: `zone-${e % 3}` },
    ready: true,
  }));
}

function serviceOf(shape: MeshShape, index: number): Service {
  return {
    hostname: hostOf(shape, index),
    name: serviceName(index),
    namespace: namespaceOf(shape, index),
    ports: [{ name: 'http', port: PORT, targetPort: PORT, protocol: 'HTTP' }],
    labels: { app: serviceName(index) },
    vip: ip(96, index),
    source: SOURCE,
  };
}

function destinationRule(shape: MeshShape, index: number): DestinationRule {
  return {
    meta: { kind: 'DestinationRule', name: serviceName(index), namespace: namespaceOf(shape, index), source: SOURCE },
    spec: { host: hostOf(shape, index), subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] },
  };
}

/** A 90/10 canary split; `marker` names the route so a client can tell the new version apart. */
export function virtualService(shape: MeshShape, index: number, v1Weight = 90, marker = 'canary'): VirtualService {
  const host = hostOf(shape, index);
  return {
    meta: { kind: 'VirtualService', name: serviceName(index), namespace: namespaceOf(shape, index), source: SOURCE },
    spec: {
      hosts: [host],
      http: [
        {
          name: marker,
          route: [
            { destination: { host, subset: 'v1' }, weight: v1Weight },
            { destination: { host, subset: 'v2' }, weight: 100 - v1Weight },
          ],
        },
      ],
    },
  };
}

/** The service whose endpoint the `step`-th change of a burst moves. */
export function burstIndex(step: number, services: number): number {
  return (step * 7) % services;
}

/** A mutable synthetic mesh: change one thing, publish the new snapshot. */
export class SyntheticMesh {
  readonly shape: MeshShape;
  readonly #services: Service[];
  readonly #endpoints: Endpoint[][];
  readonly #rules = new Map<string, Rule>();
  #endpointRevision = 0;

  constructor(shape: MeshShape) {
    this.shape = shape;
    this.#services = Array.from({ length: shape.services }, (_, i) => serviceOf(shape, i));
    this.#endpoints = Array.from({ length: shape.services }, (_, i) => endpointsOf(shape, i));
    for (let i = 0; i < shape.services; i++) {
      if (i % shape.subsetEvery === 0) this.#rules.set(`dr/${i}`, destinationRule(shape, i));
      if (i % shape.virtualServiceEvery === 0 && i % shape.subsetEvery === 0) this.#rules.set(`vs/${i}`, virtualService(shape, i));
    }
  }

  snapshot(): SourceSnapshot {
    // Filled in place, not flat(): the harness runs in meshpilot's process, and its garbage would count as meshpilot's.
    const endpoints = new Array<Endpoint>(this.#endpoints.reduce((n, list) => n + list.length, 0));
    let i = 0;
    for (const list of this.#endpoints) for (const endpoint of list) endpoints[i++] = endpoint;
    return { services: this.#services, endpoints, rules: [...this.#rules.values()], rejected: [] };
  }

  /** Moves one endpoint of service `index` to a fresh address; returns that address. */
  moveEndpoint(index: number): string {
    const revision = ++this.#endpointRevision;
    this.#endpoints[index] = endpointsOf(this.shape, index, revision);
    return this.#endpoints[index][0]?.address ?? '';
  }

  /** Rewrites the VirtualService of service `index` (which must have subsets) with a new route name. */
  setCanary(index: number, v1Weight: number, marker: string): void {
    this.#rules.set(`vs/${index}`, virtualService(this.shape, index, v1Weight, marker));
  }

  /** Services with subsets (and so a VirtualService may split them). */
  canaryCandidates(): number[] {
    return Array.from({ length: this.shape.services }, (_, i) => i).filter((i) => i % this.shape.subsetEvery === 0);
  }
}
