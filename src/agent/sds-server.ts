// SDS for Envoy on a Unix socket: StreamSecrets (state of the world) and DeltaSecrets, also
// accepted on the ADS paths. Requests are read and responses written by the xDS server's own
// codecs; what is per stream here is small: the names asked for, what was sent, the last nonce.
import { mkdir, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { decodeDeltaDiscoveryRequest, decodeDiscoveryRequest, encodeDeltaDiscoveryResponse, encodeDiscoveryResponse } from '../xds/server/messages.ts';
import { GrpcStatus, GrpcTransport, type GrpcCall } from '../xds/server/grpc-transport.ts';
import { ResourceWire } from '../xds/server/wire.ts';
import { versionOfSet } from '../xds/resource.ts';
import { SECRET_TYPE } from '../xds/type-urls.ts';
import type { SecretResource } from './secrets.ts';

export const SDS_SOTW_PATH = '/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets';
export const SDS_DELTA_PATH = '/envoy.service.secret.v3.SecretDiscoveryService/DeltaSecrets';
const ADS_SOTW_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
const ADS_DELTA_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources';
const CONTROL_PLANE_ID = 'meshpilot-agent';

/** Where the secrets come from: the certificate holder, which says when they change. */
export interface SecretSource {
  secrets(): ReadonlyMap<string, SecretResource>;
  onChange(listener: () => void): void;
}

export interface SdsStats {
  streams: number;
  responses: number;
  acks: number;
  nacks: number;
  /** Streams opened, by method path (which one Envoy uses). */
  readonly paths: Map<string, number>;
}

interface Stream {
  /** Sends whatever the client asked for and does not have yet. */
  push(): void;
}

export class SdsServer {
  readonly #transport: GrpcTransport;
  readonly #source: SecretSource;
  readonly #log: Logger;
  readonly #streams = new Set<Stream>();
  readonly stats: SdsStats = { streams: 0, responses: 0, acks: 0, nacks: 0, paths: new Map() };
  #nonce = 0;
  readonly #wire = new ResourceWire();

  constructor(source: SecretSource, log: Logger) {
    this.#source = source;
    this.#log = log;
    this.#transport = new GrpcTransport({ log, limits: { maxMessageBytes: 1 << 20, maxConnectionAgeMs: 0 } });
    for (const path of [SDS_SOTW_PATH, ADS_SOTW_PATH]) this.#transport.handle(path, (call) => { this.#serve(call, this.#sotw(call)); });
    for (const path of [SDS_DELTA_PATH, ADS_DELTA_PATH]) this.#transport.handle(path, (call) => { this.#serve(call, this.#delta(call)); });
    source.onChange(() => {
      for (const stream of this.#streams) stream.push();
    });
  }

  /** Listens on `socketPath`, creating its directory and replacing a socket left by an earlier run. */
  async listen(socketPath: string): Promise<void> {
    await mkdir(dirname(socketPath), { recursive: true, mode: 0o750 });
    const existing = await stat(socketPath).catch(() => undefined);
    if (existing?.isSocket()) await rm(socketPath);
    else if (existing) throw new Error(`${socketPath} exists and is not a socket; not replacing it`);
    await this.#transport.listenPath(socketPath);
  }

  close(): Promise<void> {
    return this.#transport.close(500);
  }

  #serve(call: GrpcCall, stream: Stream & { receive(message: Buffer): void }): void {
    this.stats.streams++;
    this.stats.paths.set(call.path, (this.stats.paths.get(call.path) ?? 0) + 1);
    this.#streams.add(stream);
    call.onClose = () => this.#streams.delete(stream);
    call.onMessage = (message) => {
      try {
        stream.receive(message);
      } catch (error) {
        this.#log.warn({ code: 'MP_XDS_BAD_REQUEST', err: error instanceof Error ? error.message : String(error) }, 'MP_XDS_BAD_REQUEST: an SDS request could not be read; the stream is closed');
        call.end(GrpcStatus.INVALID_ARGUMENT, error instanceof Error ? error.message : String(error));
      }
    };
  }

  #nextNonce(): string {
    return (++this.#nonce).toString(36);
  }

  /** A request for another type is refused: this server holds only secrets. */
  #checkType(call: GrpcCall, typeUrl: string): boolean {
    if (typeUrl === SECRET_TYPE || typeUrl === '') return true;
    call.end(GrpcStatus.INVALID_ARGUMENT, `this SDS server serves only ${SECRET_TYPE}, not ${typeUrl.slice(0, 200)}`);
    return false;
  }

  #nack(kind: 'sotw' | 'delta', detail: { code: number; message: string }, names: Iterable<string>): void {
    this.stats.nacks++;
    this.#log.warn({ code: 'MP_XDS_NACK', secrets: [...names], errorCode: detail.code, errorDetail: detail.message, protocol: kind }, `MP_XDS_NACK: Envoy rejected SDS secrets: ${detail.message}`);
  }

  #unknown(names: readonly string[]): void {
    if (names.length > 0) this.#log.warn({ secrets: names }, `Envoy asked for secrets this agent does not hold (${names.join(', ')}); it holds only its workload certificate and root`);
  }

  #sotw(call: GrpcCall): Stream & { receive(message: Buffer): void } {
    let names: readonly string[] = [];
    let lastNonce = '';
    let sent = '';
    const push = (): void => {
      const secrets = this.#source.secrets();
      const resources = names.map((name) => secrets.get(name)).filter((secret): secret is SecretResource => secret !== undefined);
      // Nothing to send for names not held (yet): Envoy waits, as for any resource not known.
      if (resources.length === 0) return;
      const version = versionOfSet(resources);
      const key = `${version}|${resources.map((r) => r.name).join(',')}`;
      if (key === sent) return;
      sent = key;
      lastNonce = this.#nextNonce();
      this.stats.responses++;
      call.write(encodeDiscoveryResponse({ versionInfo: version, typeUrl: SECRET_TYPE, nonce: lastNonce, resources, controlPlaneId: CONTROL_PLANE_ID }, this.#wire), () => undefined);
    };
    return {
      push,
      receive: (message) => {
        const request = decodeDiscoveryRequest(message);
        if (!this.#checkType(call, request.typeUrl)) return;
        // A request answering an older response is stale (xds_protocol): the newer one is on its way.
        if (request.responseNonce !== '' && request.responseNonce !== lastNonce) return;
        if (request.errorDetail) this.#nack('sotw', request.errorDetail, request.resourceNames);
        else if (request.responseNonce !== '') this.stats.acks++;
        const requested = [...request.resourceNames];
        if (requested.join(',') !== names.join(',')) {
          names = requested;
          const held = this.#source.secrets();
          if (held.size > 0) this.#unknown(names.filter((name) => !held.has(name)));
        }
        push();
      },
    };
  }

  #delta(call: GrpcCall): Stream & { receive(message: Buffer): void } {
    const subscribed = new Set<string>();
    const clientHas = new Map<string, string>();
    const toldMissing = new Set<string>();
    let lastNonce = '';
    const push = (): void => {
      const secrets = this.#source.secrets();
      const resources: SecretResource[] = [];
      const removed: string[] = [];
      for (const name of subscribed) {
        const secret = secrets.get(name);
        if (secret && clientHas.get(name) !== secret.version) resources.push(secret);
        // Said once that a name does not exist (only once secrets are held: before, they may yet come).
        else if (!secret && secrets.size > 0 && !toldMissing.has(name)) removed.push(name);
      }
      if (resources.length === 0 && removed.length === 0) return;
      for (const secret of resources) clientHas.set(secret.name, secret.version);
      for (const name of removed) toldMissing.add(name);
      this.#unknown(removed);
      lastNonce = this.#nextNonce();
      this.stats.responses++;
      const systemVersionInfo = versionOfSet([...secrets.values()]);
      call.write(encodeDeltaDiscoveryResponse({ systemVersionInfo, typeUrl: SECRET_TYPE, nonce: lastNonce, resources, removed, controlPlaneId: CONTROL_PLANE_ID }, this.#wire), () => undefined);
    };
    return {
      push,
      receive: (message) => {
        const request = decodeDeltaDiscoveryRequest(message);
        if (!this.#checkType(call, request.typeUrl)) return;
        for (const [name, version] of request.initialVersions) clientHas.set(name, version);
        if (request.responseNonce !== '' && request.responseNonce === lastNonce) {
          if (request.errorDetail) this.#nack('delta', request.errorDetail, subscribed);
          else this.stats.acks++;
        }
        for (const name of request.unsubscribe) {
          subscribed.delete(name);
          clientHas.delete(name);
          toldMissing.delete(name);
        }
        for (const name of request.subscribe) subscribed.add(name);
        push();
      },
    };
  }
}
