// The CA's material from directories: a plugged-in CA (`--ca-dir`, Istio's four files) or the
// self-signed root kept in `--ca-root-dir`, created there once and read back on every start.
import { constants } from 'node:fs';
import { link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MeshpilotError } from '../errors.ts';
import type { CaMaterial, NamedPem } from './ca-material.ts';
import { CA_CERT_FILE, CA_CHAIN_FILE, CA_KEY_FILE, CA_ROOT_FILE, createSelfSignedRoot, pluggedInMaterial, selfSignedMaterial } from './ca-material.ts';

async function readPem(path: string, code: 'MP_CA_PLUGIN_INVALID' | 'MP_CA_ROOT_UNAVAILABLE'): Promise<NamedPem> {
  try {
    return { name: path, text: await readFile(path, 'utf8') };
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'the file does not exist' : `cannot be read (${(error as Error).message})`;
    throw new MeshpilotError(code, `${path}: ${reason}`, { cause: error });
  }
}

/** The plugged-in CA in `dir`; refuses with the first file that is missing or wrong. */
export async function readPluggedInDir(dir: string): Promise<CaMaterial> {
  const [caCert, caKey, rootCert, certChain] = await Promise.all([CA_CERT_FILE, CA_KEY_FILE, CA_ROOT_FILE, CA_CHAIN_FILE].map((file) => readPem(join(dir, file), 'MP_CA_PLUGIN_INVALID'))) as [NamedPem, NamedPem, NamedPem, NamedPem];
  return pluggedInMaterial({ caCert, caKey, rootCert, certChain }, dir);
}

/**
 * The self-signed root in `dir`: read when it is there, else made and written (the key 0600).
 * Two processes starting at once both keep the one that was linked into place first.
 */
export async function loadOrCreateRootDir(dir: string, trustDomain: string): Promise<{ material: CaMaterial; created: boolean }> {
  const certPath = join(dir, CA_CERT_FILE);
  const keyPath = join(dir, CA_KEY_FILE);
  const existing = await readFile(certPath, 'utf8').catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new MeshpilotError('MP_CA_ROOT_UNAVAILABLE', `${certPath}: cannot be read (${(error as Error).message})`, { cause: error });
  });
  if (existing !== undefined) {
    return { material: selfSignedMaterial({ name: certPath, text: existing }, await readPem(keyPath, 'MP_CA_ROOT_UNAVAILABLE'), dir), created: false };
  }
  const root = await createSelfSignedRoot(trustDomain);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // The key first, then the certificate: a reader that finds the certificate finds its key.
    const keyTemp = `${keyPath}.${process.pid}.tmp`;
    const certTemp = `${certPath}.${process.pid}.tmp`;
    await writeFile(keyTemp, root.keyPem, { mode: 0o600, flag: constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY });
    await writeFile(certTemp, root.certPem, { mode: 0o644 });
    try {
      await link(keyTemp, keyPath);
      await link(certTemp, certPath);
    } finally {
      await Promise.all([rm(keyTemp, { force: true }), rm(certTemp, { force: true })]);
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreateRootDir(dir, trustDomain);
    throw new MeshpilotError('MP_CA_ROOT_UNAVAILABLE', `${dir}: the new root cannot be stored (${(error as Error).message}); give --ca-root-dir a writable directory`, { cause: error });
  }
  return { material: selfSignedMaterial({ name: certPath, text: root.certPem }, { name: keyPath, text: root.keyPem }, dir), created: true };
}
