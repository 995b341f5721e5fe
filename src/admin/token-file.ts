// The admin token, from a flag or from a file (a mounted Secret: not visible in `ps`).
import { readFile } from 'node:fs/promises';
import { MeshpilotError } from '../errors.ts';

export async function readAdminToken(token: string | undefined, file: string | undefined): Promise<string | undefined> {
  if (file === undefined) return token === '' ? undefined : token;
  if (token !== undefined && token !== '') {
    throw new MeshpilotError('MP_CONFIG', '--admin-token and --admin-token-file are both set: keep only --admin-token-file');
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new MeshpilotError('MP_CONFIG', `--admin-token-file ${file} cannot be read (${error instanceof Error ? error.message : String(error)}): mount the Secret holding the token there`);
  }
  const trimmed = text.trim();
  if (trimmed === '' || /\s/.test(trimmed)) {
    throw new MeshpilotError('MP_CONFIG', `--admin-token-file ${file} ${trimmed === '' ? 'is empty' : 'holds more than one word'}: write the token alone, e.g. openssl rand -hex 32 > ${file}`);
  }
  return trimmed;
}
