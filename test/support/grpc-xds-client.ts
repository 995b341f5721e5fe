// A proxyless gRPC client (@grpc/grpc-js-xds) pointed at meshpilot, as an application would use it.
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import { WHOAMI_PATH, rawMethod, type Whoami } from './backends.ts';

grpcXds.register();

const WhoamiClient = grpc.makeGenericClientConstructor({ Whoami: rawMethod(WHOAMI_PATH) }, 'Echo');

export interface XdsClientOptions {
  readonly xdsPort: number;
  readonly nodeId: string;
  readonly metadata?: Record<string, string>;
}

export function xdsBootstrap(options: XdsClientOptions): string {
  return JSON.stringify({
    xds_servers: [{ server_uri: `127.0.0.1:${options.xdsPort}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: options.nodeId, metadata: options.metadata ?? {}, locality: {} },
  });
}

export class GrpcXdsCaller {
  readonly #client: grpc.Client;

  constructor(target: string, options: XdsClientOptions) {
    this.#client = new WhoamiClient(target, grpc.credentials.createInsecure(), {
      // grpc-js-xds reads a per-channel bootstrap here, so several proxies can live in one test process.
      'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': xdsBootstrap(options),
    });
  }

  whoami(headers: Record<string, string> = {}, timeoutMs = 5000): Promise<Whoami> {
    const metadata = new grpc.Metadata();
    for (const [k, v] of Object.entries(headers)) metadata.set(k, v);
    return new Promise((resolve, reject) => {
      (this.#client as unknown as {
        Whoami(req: Buffer, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Buffer) => void): void;
      }).Whoami(Buffer.alloc(0), metadata, { deadline: Date.now() + timeoutMs }, (error, response) => {
        if (error) reject(error);
        else resolve(JSON.parse((response ?? Buffer.alloc(0)).toString('utf8')) as Whoami);
      });
    });
  }

  /** The gRPC status of one call (0 when it succeeded) and how long it took. */
  async status(headers: Record<string, string> = {}, timeoutMs = 5000): Promise<{ code: grpc.status; ms: number; name?: string }> {
    const started = Date.now();
    try {
      const { name } = await this.whoami(headers, timeoutMs);
      return { code: grpc.status.OK, ms: Date.now() - started, name };
    } catch (error) {
      return { code: (error as grpc.ServiceError).code, ms: Date.now() - started };
    }
  }

  /** Makes `count` calls and counts which backend answered each. */
  async tally(count: number, headers: Record<string, string> = {}): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    for (let i = 0; i < count; i++) {
      const { name } = await this.whoami(headers);
      counts.set(name, (counts.get(name) ?? 0) + 1);
    }
    return counts;
  }

  /** Waits until the channel is READY or TRANSIENT_FAILURE (asking it to connect), or `timeoutMs` passes. */
  async settled(timeoutMs: number): Promise<grpc.connectivityState> {
    const channel = this.#client.getChannel();
    const deadline = Date.now() + timeoutMs;
    let state = channel.getConnectivityState(true);
    while (state !== grpc.connectivityState.READY && state !== grpc.connectivityState.TRANSIENT_FAILURE && Date.now() < deadline) {
      const from = state;
      await new Promise<void>((resolve) => {
        channel.watchConnectivityState(from, deadline, () => {
          resolve();
        });
      });
      state = channel.getConnectivityState(false);
    }
    return state;
  }

  close(): void {
    this.#client.close();
  }
}
