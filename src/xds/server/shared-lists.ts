// Facts about resource lists that many streams are sent (a namespace's clusters, the load
// assignments of a subscription): computed once per list, kept while the list lives. One per
// server: two servers in one process share nothing.
import type { EnvoyResource } from '../resource.ts';
import { versionOfSet } from '../resource.ts';

export class SharedLists {
  readonly #versions = new WeakMap<readonly EnvoyResource[], string>();
  readonly #names = new WeakMap<readonly EnvoyResource[], ReadonlySet<string>>();
  readonly #maps = new WeakMap<readonly EnvoyResource[], ReadonlyMap<string, EnvoyResource>>();

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
}
