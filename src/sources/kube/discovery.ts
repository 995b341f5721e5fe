// Which optional CRDs the cluster serves, and at which version meshpilot should read them.
import type { KubeConnection } from './kube-api.ts';
import { getJson, KubeApiError } from './kube-api.ts';
import type { WatchedResource } from './resources.ts';

export interface ServedResource {
  readonly resource: WatchedResource;
  readonly version: string;
}

export interface Discovery {
  readonly served: readonly ServedResource[];
  /** Optional resources the cluster does not serve (their CRD is not installed). */
  readonly missing: readonly WatchedResource[];
}

async function getOrNotFound(connection: KubeConnection, path: string, timeoutMs: number): Promise<unknown> {
  try {
    return await getJson(connection, path, {}, timeoutMs);
  } catch (error) {
    if (error instanceof KubeApiError && error.statusCode === 404) return undefined;
    throw error;
  }
}

function servedVersions(group: unknown): Set<string> {
  const versions = (group as { versions?: { version?: unknown }[] } | undefined)?.versions ?? [];
  return new Set(versions.map((entry) => entry.version).filter((version): version is string => typeof version === 'string'));
}

function resourceNames(list: unknown): Set<string> {
  const resources = (list as { resources?: { name?: unknown }[] } | undefined)?.resources ?? [];
  return new Set(resources.map((entry) => entry.name).filter((name): name is string => typeof name === 'string'));
}

/**
 * Asks the API's discovery endpoints (readable by every authenticated user, so no RBAC) which
 * groups, versions and resources exist; each resource is read at the most preferred version
 * meshpilot knows that the cluster serves. Network errors reject; absence does not.
 */
export async function discover(connection: KubeConnection, resources: readonly WatchedResource[], timeoutMs: number): Promise<Discovery> {
  const groups = [...new Set(resources.map((resource) => resource.group))];
  const resourcesByGroupVersion = new Map<string, Set<string>>();
  for (const group of groups) {
    const served = servedVersions(await getOrNotFound(connection, `/apis/${group}`, timeoutMs));
    const wanted = new Set(resources.filter((resource) => resource.group === group).flatMap((resource) => resource.versions));
    for (const version of wanted) {
      if (!served.has(version)) continue;
      resourcesByGroupVersion.set(`${group}/${version}`, resourceNames(await getOrNotFound(connection, `/apis/${group}/${version}`, timeoutMs)));
    }
  }
  const found: ServedResource[] = [];
  const missing: WatchedResource[] = [];
  for (const resource of resources) {
    const version = resource.versions.find((candidate) => resourcesByGroupVersion.get(`${resource.group}/${candidate}`)?.has(resource.plural));
    if (version === undefined) missing.push(resource);
    else found.push({ resource, version });
  }
  return { served: found, missing };
}
