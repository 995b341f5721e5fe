// A stand-in for the agent's SDS server (the agent is its own program): serves the workload
// certificate as `default` and the root as `ROOTCA` over SotW SDS to Envoys on loopback.
import * as grpc from '@grpc/grpc-js';
import { ROOT_SECRET, WORKLOAD_SECRET } from '../../src/security/names.ts';
import { messageType } from '../../src/xds/protos.ts';
import { decodeToProtoJson, encodeProtoJson, type JsonObject } from '../../src/xds/proto-json.ts';
import type { WorkloadCertificate } from './test-ca.ts';

const SECRET_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';
const REQUEST = messageType('envoy.service.discovery.v3.DiscoveryRequest');
const RESPONSE = messageType('envoy.service.discovery.v3.DiscoveryResponse');

function secret(name: string, cert: WorkloadCertificate): JsonObject | undefined {
  if (name === WORKLOAD_SECRET) {
    return { '@type': SECRET_TYPE, name, tls_certificate: { certificate_chain: { inline_string: cert.certPem }, private_key: { inline_string: cert.keyPem } } };
  }
  return name === ROOT_SECRET ? { '@type': SECRET_TYPE, name, validation_context: { trusted_ca: { inline_string: cert.rootPem } } } : undefined;
}

export interface TestSdsServer {
  readonly port: number;
  /** How many responses were sent (an Envoy that got its secrets has asked). */
  readonly responses: number;
  close(): Promise<void>;
}

export async function startSdsServer(cert: WorkloadCertificate): Promise<TestSdsServer> {
  const server = new grpc.Server();
  let responses = 0;
  const definition: grpc.ServiceDefinition = {
    StreamSecrets: {
      path: '/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets',
      requestStream: true,
      responseStream: true,
      requestSerialize: (value: Buffer) => value,
      requestDeserialize: (bytes: Buffer) => bytes,
      responseSerialize: (value: Buffer) => value,
      responseDeserialize: (bytes: Buffer) => bytes,
    },
  };
  server.addService(definition, {
    StreamSecrets: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      let nonce = 0;
      let sent = '';
      call.on('data', (bytes: Buffer) => {
        const request = decodeToProtoJson(REQUEST, bytes) as { resource_names?: string[] };
        const names = [...(request.resource_names ?? [])].sort();
        // An ACK repeats the names it was sent: answer only a new subscription.
        if (names.join(',') === sent) return;
        sent = names.join(',');
        const resources = names.map((name) => secret(name, cert)).filter((s): s is JsonObject => s !== undefined);
        call.write(Buffer.from(encodeProtoJson(RESPONSE, { version_info: '1', resources, type_url: SECRET_TYPE, nonce: String(++nonce) })));
        responses++;
      });
      call.on('end', () => call.end());
      call.on('error', () => undefined);
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => {
      if (error) reject(error);
      else resolve(bound);
    });
  });
  return {
    port,
    get responses() {
      return responses;
    },
    close: () => new Promise<void>((resolve) => {
      server.tryShutdown(() => { resolve(); });
    }),
  };
}
