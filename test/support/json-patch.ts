// JSON merge patch (RFC 7386) and JSON patch (RFC 6902), as the fake Kubernetes API applies
// a PATCH request's body to the stored object.

function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isMap(patch)) return structuredClone(patch);
  const out: Record<string, unknown> = isMap(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) Reflect.deleteProperty(out, key);
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

/** RFC 6902 JSON patch (add, remove, replace, test); throws on a path that does not resolve. */
export function jsonPatch<T extends object>(target: T, operations: unknown): T {
  if (!Array.isArray(operations)) throw new Error('the patch is not a list of operations');
  const document = structuredClone(target);
  for (const operation of operations as { op?: string; path?: string; value?: unknown }[]) {
    const tokens = (operation.path ?? '').split('/').slice(1).map((token) => token.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = tokens.pop();
    if (last === undefined) throw new Error(`path ${operation.path ?? ''} is not a member`);
    let parent: unknown = document;
    for (const token of tokens) {
      parent = Array.isArray(parent) ? parent[Number(token)] : isMap(parent) ? parent[token] : undefined;
      if (parent === undefined) throw new Error(`path ${operation.path ?? ''} does not exist`);
    }
    if (Array.isArray(parent)) {
      const index = last === '-' ? parent.length : Number(last);
      const exists = index < parent.length;
      if (operation.op === 'add') parent.splice(index, 0, structuredClone(operation.value));
      else if ((operation.op === 'replace' || operation.op === 'remove' || operation.op === 'test') && !exists) throw new Error(`path ${operation.path ?? ''} does not exist`);
      else if (operation.op === 'replace') parent[index] = structuredClone(operation.value);
      else if (operation.op === 'remove') parent.splice(index, 1);
      else if (operation.op === 'test' && JSON.stringify(parent[index]) !== JSON.stringify(operation.value)) throw new Error(`testing value ${operation.path ?? ''} failed`);
      else if (operation.op !== 'test') throw new Error(`operation ${String(operation.op)} is not supported`);
    } else if (isMap(parent)) {
      const exists = last in parent;
      if (operation.op === 'add') parent[last] = structuredClone(operation.value);
      else if ((operation.op === 'replace' || operation.op === 'remove' || operation.op === 'test') && !exists) throw new Error(`path ${operation.path ?? ''} does not exist`);
      else if (operation.op === 'replace') parent[last] = structuredClone(operation.value);
      else if (operation.op === 'remove') Reflect.deleteProperty(parent, last);
      else if (operation.op === 'test' && JSON.stringify(parent[last]) !== JSON.stringify(operation.value)) throw new Error(`testing value ${operation.path ?? ''} failed`);
      else if (operation.op !== 'test') throw new Error(`operation ${String(operation.op)} is not supported`);
    } else {
      throw new Error(`path ${operation.path ?? ''} does not exist`);
    }
  }
  return document;
}
