// Who is calling on 15012: a client certificate this CA issued (its SPIFFE ID), else a
// Kubernetes service-account token (`authorization: Bearer`) checked by TokenReview with the
// audience `istio-ca`. Without a Kubernetes API only certificates can authenticate.
import type { PeerCertificate } from '../xds/server/grpc-transport.ts';
import type { CertificateAuthority } from './ca.ts';
import { CA_TOKEN_AUDIENCE, parseSpiffeId, spiffeId } from './names.ts';

export type TokenReview =
  | { readonly authenticated: true; readonly username: string; readonly audiences: readonly string[] }
  | { readonly authenticated: false; readonly error: string; readonly unavailable?: boolean };

/** The API server's TokenReview (or a stand-in in tests). */
export interface TokenReviewer {
  review(token: string, audiences: readonly string[]): Promise<TokenReview>;
}

export interface Caller {
  readonly namespace: string;
  readonly serviceAccount: string;
  /** `spiffe://<trustDomain>/ns/<ns>/sa/<sa>` */
  readonly identity: string;
  readonly via: 'token' | 'certificate';
}

export type Authentication = { readonly ok: true; readonly caller: Caller } | { readonly ok: false; readonly reason: string };

const SERVICE_ACCOUNT_USER = /^system:serviceaccount:([^:]+):([^:]+)$/;
/** Tokens longer than this are not sent to the API server. */
const MAX_TOKEN_CHARS = 16 * 1024;

export class CallerAuthenticator {
  readonly #ca: CertificateAuthority;
  readonly #reviewer: TokenReviewer | undefined;

  constructor(ca: CertificateAuthority, reviewer: TokenReviewer | undefined) {
    this.#ca = ca;
    this.#reviewer = reviewer;
  }

  /** True when tokens can be checked (a Kubernetes API is configured). */
  get checksTokens(): boolean {
    return this.#reviewer !== undefined;
  }

  async authenticate(authorization: string | undefined, peer: PeerCertificate | undefined): Promise<Authentication> {
    if (peer?.authorized) {
      const identity = this.#ca.identityOf(peer.certificate);
      const parts = identity ? parseSpiffeId(identity) : undefined;
      if (identity && parts) return { ok: true, caller: { namespace: parts.namespace, serviceAccount: parts.serviceAccount, identity, via: 'certificate' } };
    }
    const token = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
    if (token === undefined) {
      if (peer) return { ok: false, reason: `the client certificate is not one this CA issued for a workload of trust domain ${this.#ca.trustDomain} (${peer.authorizationError ?? 'no single SPIFFE URI SAN'})` };
      return { ok: false, reason: `no credentials: send "authorization: Bearer <service account token>" (audience ${CA_TOKEN_AUDIENCE}) or a client certificate issued by this CA` };
    }
    if (!this.#reviewer) {
      return { ok: false, reason: 'token authentication needs the Kubernetes API (TokenReview), and meshpilot runs without one: authenticate with a client certificate issued by this CA' };
    }
    if (token.length > MAX_TOKEN_CHARS) return { ok: false, reason: `the token is ${token.length} characters long; at most ${MAX_TOKEN_CHARS} are accepted` };
    const review = await this.#reviewer.review(token, [CA_TOKEN_AUDIENCE]).catch((error: unknown) => ({ authenticated: false as const, error: `TokenReview failed: ${error instanceof Error ? error.message : String(error)}` }));
    if (!review.authenticated) return { ok: false, reason: `the token was not accepted: ${review.error}` };
    if (review.audiences.length > 0 && !review.audiences.includes(CA_TOKEN_AUDIENCE)) {
      return { ok: false, reason: `the token is for ${review.audiences.join(', ')}, not the audience ${CA_TOKEN_AUDIENCE}` };
    }
    const user = SERVICE_ACCOUNT_USER.exec(review.username);
    if (!user?.[1] || !user[2]) return { ok: false, reason: `the token belongs to ${review.username.slice(0, 200)}, not a service account (system:serviceaccount:<namespace>:<name>)` };
    return { ok: true, caller: { namespace: user[1], serviceAccount: user[2], identity: spiffeId(this.#ca.trustDomain, user[1], user[2]), via: 'token' } };
  }
}
