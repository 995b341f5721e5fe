// What one stream's client holds of a type: name -> version. After a whole set is sent, many
// streams hold the same thing, so the map of that set is shared and each stream keeps only its
// own differences on top (the few resources sent to it since).
import type { EnvoyResource } from '../resource.ts';

const setMaps = new WeakMap<readonly EnvoyResource[], ReadonlyMap<string, string>>();

function mapOfSet(resources: readonly EnvoyResource[]): ReadonlyMap<string, string> {
  let map = setMaps.get(resources);
  if (!map) {
    map = new Map(resources.map((r) => [r.name, r.version]));
    setMaps.set(resources, map);
  }
  return map;
}

export class HeldResources {
  #base: ReadonlyMap<string, string> = new Map();
  /** Differences from the base: a version, or null for a name the client no longer holds. */
  #own = new Map<string, string | null>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  get(name: string): string | undefined {
    const own = this.#own.get(name);
    if (own !== undefined) return own ?? undefined;
    return this.#base.get(name);
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  set(name: string, version: string): void {
    if (!this.has(name)) this.#size++;
    if (this.#base.get(name) === version) this.#own.delete(name);
    else this.#own.set(name, version);
    this.#compactIfLarge();
  }

  delete(name: string): void {
    if (!this.has(name)) return;
    this.#size--;
    if (this.#base.has(name)) this.#own.set(name, null);
    else this.#own.delete(name);
    this.#compactIfLarge();
  }

  clear(): void {
    this.#base = new Map();
    this.#own = new Map();
    this.#size = 0;
  }

  /** The client now holds exactly `resources` (a whole set was sent): shared with every stream sent the same list. */
  replaceAll(resources: readonly EnvoyResource[]): void {
    this.#base = mapOfSet(resources);
    this.#own = new Map();
    this.#size = this.#base.size;
  }

  *keys(): IterableIterator<string> {
    for (const name of this.#base.keys()) if (this.#own.get(name) !== null) yield name;
    for (const [name, version] of this.#own) if (version !== null && !this.#base.has(name)) yield name;
  }

  /** A stream that has drifted far from its base keeps a plain map of its own instead. */
  #compactIfLarge(): void {
    if (this.#base.size === 0 || this.#own.size <= 64 || this.#own.size * 2 <= this.#base.size) return;
    const own = new Map<string, string | null>();
    for (const name of this.keys()) own.set(name, this.get(name) ?? null);
    this.#base = new Map();
    this.#own = own;
  }
}
