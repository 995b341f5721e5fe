// Facts about resource lists that many streams are sent (a namespace's clusters, the load
// assignments of a subscription): computed once per list, kept while the list lives. One per
// server: two servers in one process share nothing.
import type { EnvoyResource } from '../resource.ts';
import { versionOfSet } from '../resource.ts';

export class SharedLists {
  readonly #versions = new WeakMap<readonly EnvoyResource[], string>();
  readonly #names = new WeakMap<readonly EnvoyResource[], ReadonlySet<string>>();
  readonly #maps = new WeakMap<readonly EnvoyResource[], ReadonlyMap<string, EnvoyResource>>();
  /** Shared maps one step on from a shared map: by the set version of the resources added. */
  readonly #overlays = new WeakMap<ReadonlyMap<string, unknown>, Map<string, Overlay>>();

  /** The set version of a list (a hash over every resource). */
  versionOf(resources: readonly EnvoyResource[]): string {
    let version = this.#versions.get(resources);
    if (version === undefined) {
      version = versionOfSet(resources);
      this.#versions.set(resources, version);
    }
    return version;
  }

  namesOf(resources: readonly EnvoyResource[]): ReadonlySet<string> {
    let names = this.#names.get(resources);
    if (!names) {
      names = new Set(resources.map((r) => r.name));
      this.#names.set(resources, names);
    }
    return names;
  }

  /** Name -> resource: what every stream sent this list whole holds, one map between them. */
  mapOf(resources: readonly EnvoyResource[]): ReadonlyMap<string, EnvoyResource> {
    let map = this.#maps.get(resources);
    if (!map) {
      map = new Map(resources.map((r) => [r.name, r]));
      this.#maps.set(resources, map);
    }
    return map;
  }

  /**
   * `base` with `resources` put on top, one map for every stream that held `base` and was sent the
   * same resources (a burst of endpoint changes reaches thousands of streams alike). Undefined for
   * the first such stream: a copy of the base is made only once a second one proves it shared.
   */
  overlay<V>(base: ReadonlyMap<string, V | EnvoyResource>, resources: readonly EnvoyResource[]): ReadonlyMap<string, V | EnvoyResource> | undefined {
    let byVersion = this.#overlays.get(base);
    if (!byVersion) {
      byVersion = new Map();
      this.#overlays.set(base, byVersion);
    }
    const key = this.versionOf(resources);
    const known = byVersion.get(key);
    if (!known) {
      byVersion.set(key, { resources, map: undefined });
      return undefined;
    }
    let map = known.map as ReadonlyMap<string, V | EnvoyResource> | undefined;
    if (!map) {
      const built = new Map(base);
      for (const resource of known.resources) built.set(resource.name, resource);
      map = built;
      byVersion.set(key, { resources: known.resources, map });
    }
    // The version is a sum of hashes: the map is taken only if it holds exactly these resources on top.
    const same = known.resources.length === resources.length && resources.every((r) => map.get(r.name) === r);
    return same ? map : undefined;
  }
}

interface Overlay {
  /** What the first stream was sent on top of the base. */
  readonly resources: readonly EnvoyResource[];
  /** Built when a second stream is sent the same. */
  readonly map: ReadonlyMap<string, unknown> | undefined;
}
