#!/usr/bin/env node
// Re-vendors proto/ from the .proto files that the pinned @grpc/grpc-js-xds package ships
// under deps/. Only the import closure of ROOTS is copied, so proto/ holds what meshpilot loads.
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', 'proto');
const require = createRequire(import.meta.url);
const pkgDir = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
const grpcJsDir = dirname(require.resolve('@grpc/grpc-js/package.json'));

const includeDirs = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(pkgDir, 'deps', d));
const roots = JSON.parse(readFileSync(join(here, '..', 'proto', 'roots.json'), 'utf8')).roots;

// google/protobuf/* are protobufjs built-ins; everything else must come from deps/.
const builtin = (name) => name.startsWith('google/protobuf/');

function locate(name) {
  for (const dir of includeDirs) {
    const file = join(dir, name);
    if (existsSync(file)) return file;
  }
  throw new Error(`${name}: not found under ${pkgDir}/deps (is the pinned @grpc/grpc-js-xds version right?)`);
}

const seen = new Map();
const queue = [...roots];
while (queue.length > 0) {
  const name = queue.pop();
  if (seen.has(name) || builtin(name)) continue;
  const file = locate(name);
  seen.set(name, file);
  for (const match of readFileSync(file, 'utf8').matchAll(/^import\s+(?:public\s+|weak\s+)?"([^"]+)";/gm)) {
    queue.push(match[1]);
  }
}

for (const top of ['envoy', 'xds', 'udpa', 'google', 'validate']) rmSync(join(out, top), { recursive: true, force: true });
for (const [name, file] of [...seen].sort()) {
  mkdirSync(dirname(join(out, name)), { recursive: true });
  cpSync(file, join(out, name));
}
cpSync(join(grpcJsDir, 'LICENSE'), join(out, 'LICENSE'));
writeFileSync(
  join(out, 'VERSION'),
  `Copied from @grpc/grpc-js-xds@${pkg.version} (deps/envoy-api, deps/xds, deps/googleapis, deps/protoc-gen-validate).\n` +
    `All are Apache License 2.0 (see LICENSE). Refresh with: npm run protos:refresh\n` +
    `${seen.size} files.\n`,
);
console.log(`proto/: ${seen.size} files from @grpc/grpc-js-xds@${pkg.version}`);
