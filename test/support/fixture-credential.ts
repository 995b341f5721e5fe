// The test-only certificate of fixtures/ingress (bookinfo.example.com), its key and CA, as PEM.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import type { TlsPems } from './mesh-dir.ts';

const secret = parse(readFileSync(new URL('../../fixtures/ingress/credential.yaml', import.meta.url), 'utf8')) as { data: Record<string, string> };
const pem = (key: string): string => Buffer.from(secret.data[key] ?? '', 'base64').toString('utf8');

export const FIXTURE_CREDENTIAL: Required<TlsPems> = { cert: pem('tls.crt'), key: pem('tls.key'), ca: pem('ca.crt') };
