// Loads the vendored Envoy API protos once per process; everything else looks types up here.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const protoDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'proto');
const protobufjsDir = dirname(createRequire(import.meta.url).resolve('protobufjs/package.json'));

let loaded: protobuf.Root | undefined;

/** The root holding every Envoy/xDS message meshpilot encodes, loaded on first use. */
export function envoyRoot(): protobuf.Root {
  if (loaded) return loaded;
  const { roots } = JSON.parse(readFileSync(join(protoDir, 'roots.json'), 'utf8')) as { roots: string[] };
  const root = loadVendoredProtos(roots);
  loaded = root;
  return root;
}

/** A root holding `files` (paths under proto/) and what they import, resolved. */
export function loadVendoredProtos(files: readonly string[]): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    const vendored = join(protoDir, target);
    if (existsSync(vendored)) return vendored;
    // google/protobuf/* well-known types ship with protobufjs (common ones are built in).
    if (target in protobuf.common) return target;
    return join(protobufjsDir, target);
  };
  root.loadSync([...files], { keepCase: true });
  root.resolveAll();
  return root;
}

export function messageType(fullName: string): protobuf.Type {
  return envoyRoot().lookupType(fullName);
}

export { protoDir };
