// The certificate files for proxyless gRPC's file_watcher provider (gRFC A29), each replaced
// whole: written beside its final name and renamed over it, so a reader never sees half a file.
import { randomBytes } from 'node:crypto';
import { renameSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CERT_CHAIN_FILE, KEY_FILE, ROOT_CERT_FILE } from '../security/names.ts';

function tempName(file: string): string {
  return `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
}

/** Writes `text` to `file` atomically (temp file + rename) with `mode`. */
export async function writeFileAtomically(file: string, text: string, mode: number): Promise<void> {
  const temp = tempName(file);
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
 * All three written beside their names first, then renamed in one synchronous run: the root
 * first (a leaf from a new root never lands before its trust anchor), then key and chain back to
 * back, so a reader opening both across a rotation has microseconds, not a write, to fall into.
 */
export async function writeCertificateFiles(dir: string, files: CertificateFiles): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const plan: [string, string, number][] = [
    [join(dir, ROOT_CERT_FILE), files.rootCertPem, 0o644],
    [join(dir, KEY_FILE), files.privateKeyPem, 0o600],
    [join(dir, CERT_CHAIN_FILE), files.certChainPem, 0o644],
  ];
  const temps = plan.map(([file]) => tempName(file));
  try {
    await Promise.all(plan.map(([, text, mode], i) => writeFile(temps[i] as string, text, { mode, flag: 'wx' })));
    plan.forEach(([file], i) => {
      renameSync(temps[i] as string, file);
    });
  } catch (error) {
    await Promise.all(temps.map((temp) => rm(temp, { force: true })));
    throw error;
  }
}
