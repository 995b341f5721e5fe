// The certificate files for proxyless gRPC's file_watcher provider (gRFC A29), each replaced
// whole: written beside its final name and renamed over it, so a reader never sees half a file.
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CERT_CHAIN_FILE, KEY_FILE, ROOT_CERT_FILE } from '../security/names.ts';

/** Writes `text` to `file` atomically (temp file + rename) with `mode`. */
export async function writeFileAtomically(file: string, text: string, mode: number): Promise<void> {
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(temp, text, { mode, flag: 'wx' });
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

export interface CertificateFiles {
  readonly certChainPem: string;
  readonly privateKeyPem: string;
  readonly rootCertPem: string;
}

/**
 * `root-cert.pem`, then `key.pem` (0600), then `cert-chain.pem`: the root first, so a leaf from a
 * new root is never read before its trust anchor; key and chain one right after the other.
 */
export async function writeCertificateFiles(dir: string, files: CertificateFiles): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await writeFileAtomically(join(dir, ROOT_CERT_FILE), files.rootCertPem, 0o644);
  await writeFileAtomically(join(dir, KEY_FILE), files.privateKeyPem, 0o600);
  await writeFileAtomically(join(dir, CERT_CHAIN_FILE), files.certChainPem, 0o644);
}
