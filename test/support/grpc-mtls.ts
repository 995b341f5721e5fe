// Proxyless gRPC with xDS security (gRFC A29/A36), as an application builds it: an XdsServer and
// xDS clients with XdsServerCredentials/XdsChannelCredentials, each bootstrapped to meshpilot with
// a `default` file_watcher certificate provider over files holding its workload certificate.
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import { CERT_CHAIN_FILE, GRPC_CERT_PROVIDER, KEY_FILE, ROOT_CERT_FILE } from '../../src/security/names.ts';
import { WHOAMI_PATH, rawMethod } from './backends.ts';
import type { WorkloadCertificate } from './test-ca.ts';

grpcXds.register();

/** Istio's template (its agent writes it): a server asks for its listener by this name. */
export const SERVER_LISTENER_TEMPLATE = 'xds.istio.io/grpc/lds/inbound/%s';
const BOOTSTRAP_KEY = 'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config';
/** A second method the server answers like Whoami, for policies on one method. */
export const HELLO_PATH = '/meshpilot.test.Echo/Hello';

/** What a server tells its caller about the connection. */
export interface PeerView {
  readonly server: string;
  readonly transport: string;
  /** The client certificate's SANs (`URI:spiffe://...`), empty over plaintext. */
  readonly peer: string;
}

/** Writes the three files the agent would, under `dir`. */
export async function writeCertificateFiles(dir: string, cert: WorkloadCertificate): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, CERT_CHAIN_FILE), cert.certPem);
  await writeFile(join(dir, KEY_FILE), cert.keyPem);
  await writeFile(join(dir, ROOT_CERT_FILE), cert.rootPem);
}

export function grpcMtlsBootstrap(xdsPort: number, nodeId: string, labels: Record<string, string>, certDir?: string): string {
  return JSON.stringify({
    xds_servers: [{ server_uri: `127.0.0.1:${xdsPort}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: nodeId, metadata: { GENERATOR: 'grpc', LABELS: labels }, locality: {} },
    server_listener_resource_name_template: SERVER_LISTENER_TEMPLATE,
    ...(certDir
      ? {
          certificate_providers: {
            [GRPC_CERT_PROVIDER]: {
              plugin_name: 'file_watcher',
              config: {
                certificate_file: join(certDir, CERT_CHAIN_FILE),
                private_key_file: join(certDir, KEY_FILE),
                ca_certificate_file: join(certDir, ROOT_CERT_FILE),
                refresh_interval: '1s',
              },
            },
          },
        }
      : {}),
  });
}

/** A free port on `host` (the server must name its port before binding, as in a pod). */
export async function freePort(host: string): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, host, resolve));
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => { resolve(); }));
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export interface SecureServer {
  readonly address: string;
  close(): Promise<void>;
}

/** An XdsServer answering Whoami with what it sees of the caller's connection. */
export async function startXdsServer(name: string, address: string, bootstrap: string): Promise<SecureServer> {
  const server = new grpcXds.XdsServer({ [BOOTSTRAP_KEY]: bootstrap });
  const whoami = (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>): void => {
    const auth = call.getAuthContext();
    const view: PeerView = { server: name, transport: auth.transportSecurityType ?? 'insecure', peer: auth.sslPeerCertificate?.subjectaltname ?? '' };
    callback(null, Buffer.from(JSON.stringify(view)));
  };
  server.addService({ Whoami: rawMethod(WHOAMI_PATH), Hello: rawMethod(HELLO_PATH) }, { Whoami: whoami, Hello: whoami });
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(address, new grpcXds.XdsServerCredentials(grpc.ServerCredentials.createInsecure()), (error) => {
      if (error) reject(error);
      else resolve();
    });
  });
  return { address, close: () => new Promise<void>((resolve) => { server.tryShutdown(() => { resolve(); }); }) };
}

const WhoamiClient = grpc.makeGenericClientConstructor({ Whoami: rawMethod(WHOAMI_PATH), Hello: rawMethod(HELLO_PATH) }, 'Echo');
type UnaryStub = (req: Buffer, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Buffer) => void) => void;

export class WhoamiCaller {
  readonly #client: grpc.Client;

  /** An xDS client (`bootstrap` given) with XdsChannelCredentials, or a plain plaintext client of `target`. */
  constructor(target: string, bootstrap?: string, options: grpc.ChannelOptions = {}) {
    this.#client = bootstrap
      ? new WhoamiClient(target, new grpcXds.XdsChannelCredentials(grpc.credentials.createInsecure()), { [BOOTSTRAP_KEY]: bootstrap, ...options })
      : new WhoamiClient(target, grpc.credentials.createInsecure(), options);
  }

  /** One call of Whoami (or of Hello, which answers the same). */
  call(timeoutMs = 3000, method: 'Whoami' | 'Hello' = 'Whoami'): Promise<PeerView> {
    const stub = (this.#client as unknown as Record<typeof method, UnaryStub>)[method].bind(this.#client);
    return new Promise((resolve, reject) => {
      stub(Buffer.alloc(0), new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (error, response) => {
        if (error) reject(error);
        else resolve(JSON.parse((response ?? Buffer.alloc(0)).toString('utf8')) as PeerView);
      });
    });
  }

  /** The status code of one call (OK when it succeeded). */
  async status(timeoutMs = 3000, method: 'Whoami' | 'Hello' = 'Whoami'): Promise<grpc.status> {
    try {
      await this.call(timeoutMs, method);
      return grpc.status.OK;
    } catch (error) {
      return (error as grpc.ServiceError).code;
    }
  }

  close(): void {
    this.#client.close();
  }
}
