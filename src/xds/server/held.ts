// What one stream's client holds of a type: name -> the resource it was sent (or, for a Delta
// client's initial_resource_versions, only the version it says it has). After a whole set is
// sent, many streams hold the same thing, so the map of that set is shared and each stream keeps
// only its own differences on top (the few resources sent to it since). Operators' views read
// what was sent from here: nothing is generated again to show it.
import type { EnvoyResource } from '../resource.ts';
import type { SharedLists } from './shared-lists.ts';

/** A resource the client holds: the one it was sent, or a version it claims without meshpilot having sent it. */
type Held = EnvoyResource | { readonly version: string; readonly claimed: true };

export class HeldResources {
  readonly #lists: SharedLists;
  #base: ReadonlyMap<string, Held> = new Map();
  /** Differences from the base: what the client holds, or null for a name it no longer holds. */
  #own = new Map<string, Held | null>();
  #size = 0;

  /** `lists` is the server's: streams sent the same whole list share its map. */
  constructor(lists: SharedLists) {
    this.#lists = lists;
  }

  get size(): number {
    return this.#size;
  }

  #entry(name: string): Held | undefined {
    const own = this.#own.get(name);
    if (own !== undefined) return own ?? undefined;
    return this.#base.get(name);
  }

  /** The version the client holds of `name`. */
  get(name: string): string | undefined {
    return this.#entry(name)?.version;
  }

  has(name: string): boolean {
    return this.#entry(name) !== undefined;
  }

  /** The client was sent `resource`. */
  set(resource: EnvoyResource): void {
    this.#put(resource.name, resource);
  }

  /** The client says it holds `version` of `name` (Delta's initial_resource_versions). */
  claim(name: string, version: string): void {
    this.#put(name, { version, claimed: true });
  }

  #put(name: string, held: Held): void {
    if (!this.has(name)) this.#size++;
    if (this.#base.get(name) === held) this.#own.delete(name);
    else this.#own.set(name, held);
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

  /** The client was sent `resources` (names distinct): on top of a shared map alone, the result is shared too. */
  add(resources: readonly EnvoyResource[]): void {
    const shared = this.#own.size === 0 && this.#base.size > 0 ? this.#lists.overlay(this.#base, resources) : undefined;
    if (shared) {
      this.#base = shared;
      this.#size = shared.size;
      return;
    }
    for (const resource of resources) this.set(resource);
  }

  /** The client now holds exactly `resources` (a whole set was sent): shared with every stream sent the same list. */
  replaceAll(resources: readonly EnvoyResource[]): void {
    this.#base = this.#lists.mapOf(resources);
    this.#own = new Map();
    this.#size = this.#base.size;
  }

  *keys(): IterableIterator<string> {
    for (const name of this.#base.keys()) if (this.#own.get(name) !== null) yield name;
    for (const [name, held] of this.#own) if (held !== null && !this.#base.has(name)) yield name;
  }

  /** The resources meshpilot sent that the client holds, in name order (claimed versions have no content here). */
  sent(): EnvoyResource[] {
    const out: EnvoyResource[] = [];
    for (const name of this.keys()) {
      const held = this.#entry(name);
      if (held && !('claimed' in held)) out.push(held);
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** A stream that has drifted far from its base keeps a plain map of its own instead. */
  #compactIfLarge(): void {
    if (this.#base.size === 0 || this.#own.size <= 64 || this.#own.size * 2 <= this.#base.size) return;
    const own = new Map<string, Held | null>();
    for (const name of this.keys()) own.set(name, this.#entry(name) ?? null);
    this.#base = new Map();
    this.#own = own;
  }
}
