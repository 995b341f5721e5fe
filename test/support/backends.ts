// Real gRPC backends for end-to-end tests: each answers /meshpilot.test.Echo/Whoami with its
// name and address (raw bytes, no generated stubs, so any gRPC implementation can call it).
import * as grpc from '@grpc/grpc-js';

export const WHOAMI_PATH = '/meshpilot.test.Echo/Whoami';

export interface Whoami {
  readonly name: string;
  readonly address: string;
}

/** How a backend misbehaves; tests may change it while the backend runs. */
export interface BackendBehaviour {
  /** Answer every call with UNAVAILABLE. */
  failing?: boolean;
  /** Answer a call's first attempt with UNAVAILABLE; retries (grpc-previous-rpc-attempts set) succeed. */
  failFirstAttempt?: boolean;
  /** Wait this long before answering. */
  delayMs?: number;
}

export interface Backend {
  readonly name: string;
  readonly behaviour: BackendBehaviour;
  readonly host: string;
  readonly port: number;
  readonly calls: number;
  /** Calls that carried `x-caller: <caller>`, so concurrent clients can each count their own. */
  callsFrom(caller: string): number;
  close(): Promise<void>;
}

const identity = (b: Buffer): Buffer => b;

/** A gRPC method definition that passes raw bytes both ways (no generated stubs). */
export function rawMethod(path: string, streaming = false): grpc.MethodDefinition<Buffer, Buffer> {
  return {
    path,
    requestStream: streaming,
    responseStream: streaming,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}

export async function startBackend(name: string, host: string, port = 0, behaviour: BackendBehaviour = {}): Promise<Backend> {
  const server = new grpc.Server();
  let calls = 0;
  const callers = new Map<string, number>();
  let boundPort = port;
  server.addService(
    { Whoami: rawMethod(WHOAMI_PATH) },
    {
      Whoami: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        calls++;
        const caller = call.metadata.get('x-caller')[0];
        if (typeof caller === 'string') callers.set(caller, (callers.get(caller) ?? 0) + 1);
        const retried = call.metadata.get('grpc-previous-rpc-attempts').length > 0;
        const answer = (): void => {
          if (behaviour.failing || (behaviour.failFirstAttempt && !retried)) {
            callback({ code: grpc.status.UNAVAILABLE, details: `${name} is failing` });
            return;
          }
          callback(null, Buffer.from(JSON.stringify({ name, address: `${host}:${boundPort}` } satisfies Whoami)));
        };
        if (behaviour.delayMs) setTimeout(answer, behaviour.delayMs);
        else answer();
      },
    },
  );
  boundPort = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (error, bound) => {
      if (error) reject(error);
      else resolve(bound);
    });
  });
  return {
    name,
    behaviour,
    host,
    port: boundPort,
    get calls() {
      return calls;
    },
    callsFrom: (caller) => callers.get(caller) ?? 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => {
          resolve();
        });
      }),
  };
}

/** Starts one backend per name on 127.0.0.2, 127.0.0.3, ... all on the same port (like pods behind one targetPort). */
export async function startBackends(names: readonly string[]): Promise<Backend[]> {
  const first = await startBackend(names[0] ?? 'backend', '127.0.0.2');
  const rest = await Promise.all(names.slice(1).map((name, i) => startBackend(name, `127.0.0.${i + 3}`, first.port)));
  return [first, ...rest];
}
