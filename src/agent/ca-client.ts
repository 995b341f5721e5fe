// istio.v1.auth.IstioCertificateService/CreateCertificate as one unary gRPC call over TLS
// (node:http2): the CA's serving certificate is checked against the mesh root and the expected
// server name; the caller is its service-account token (read again for every call: a projected
// token rotates) and, while it holds one, its current certificate as a TLS client certificate.
import { readFile } from 'node:fs/promises';
import http2 from 'node:http2';
import { isIP } from 'node:net';
import { checkServerIdentity } from 'node:tls';
import { splitHostPort } from '../model/address.ts';
import { CREATE_CERTIFICATE_PATH, caServiceTypes } from '../security/ca-service.ts';

/** A chain of a few certificates is kilobytes; more is not an answer to keep reading. */
const MAX_RESPONSE_BYTES = 1 << 20;

/** A CreateCertificate that did not return a chain: the gRPC status (or -1 for a transport failure) and why. */
export class CaCallError extends Error {
  readonly grpcStatus: number;
  constructor(grpcStatus: number, message: string) {
    super(message);
    this.name = 'CaCallError';
    this.grpcStatus = grpcStatus;
  }
}

export interface CaClientOptions {
  /** `host:port` of the CA (meshpilot's 15012). */
  readonly address: string;
  /** The name the CA's serving certificate must carry (default: the address's host). */
  readonly serverName?: string;
  /** PEM root(s) the CA's serving certificate must chain to. */
  readonly rootCertFile: string;
  /** The service-account token file, read on every call. */
  readonly tokenFile: string;
  /** A call not answered within this long fails with DEADLINE_EXCEEDED. */
  readonly deadlineMs: number;
}

export interface CreateCertificateRequest {
  readonly csrPem: string;
  readonly validitySeconds: number;
  /** The current certificate and key, presented as a TLS client certificate while valid. */
  readonly clientCertificate?: { readonly certChainPem: string; readonly privateKeyPem: string };
}

/** One length-prefixed gRPC message (not compressed). */
function frame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

function grpcTimeout(ms: number): string {
  return `${Math.max(1, Math.ceil(ms))}m`;
}

/** Calls CreateCertificate once; resolves to the PEM chain, leaf first, root last. */
export async function createCertificate(options: CaClientOptions, request: CreateCertificateRequest): Promise<string[]> {
  const hostPort = splitHostPort(options.address);
  if (!hostPort) throw new CaCallError(-1, `the CA address "${options.address}" is not host:port`);
  const [token, ca] = await Promise.all([
    readFile(options.tokenFile, 'utf8').then((text) => text.trim()),
    readFile(options.rootCertFile, 'utf8'),
  ]);
  const { request: requestType, response: responseType } = caServiceTypes();
  const body = requestType.encode(requestType.fromObject({ csr: request.csrPem, validity_duration: request.validitySeconds })).finish();
  const authority = hostPort.host.includes(':') ? `[${hostPort.host}]:${hostPort.port}` : `${hostPort.host}:${hostPort.port}`;
  const url = `https://${authority}`;
  const serverName = options.serverName ?? hostPort.host;
  return new Promise<string[]>((resolve, reject) => {
    let settled = false;
    const session = http2.connect(url, {
      ca,
      // SNI is a name, never an IP (RFC 6066); an IP host is checked against the certificate's IP SANs.
      ...(isIP(serverName) === 0 ? { servername: serverName } : {}),
      checkServerIdentity: (_host, cert) => checkServerIdentity(serverName, cert),
      ALPNProtocols: ['h2'],
      ...(request.clientCertificate ? { cert: request.clientCertificate.certChainPem, key: request.clientCertificate.privateKeyPem } : {}),
    });
    const finish = (error: Error | undefined, chain?: string[]): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.close();
      if (!session.destroyed) {
        setTimeout(() => {
          session.destroy();
        }, 1000).unref();
      }
      if (error) reject(error);
      else resolve(chain ?? []);
    };
    const timer = setTimeout(() => {
      finish(new CaCallError(4, `the CA at ${options.address} did not answer within ${options.deadlineMs} ms`));
    }, options.deadlineMs);
    session.on('error', (error: Error) => {
      finish(new CaCallError(-1, `cannot reach the CA at ${options.address}: ${error.message}`));
    });
    const stream = session.request({
      ':method': 'POST',
      ':path': CREATE_CERTIFICATE_PATH,
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-timeout': grpcTimeout(options.deadlineMs),
      authorization: `Bearer ${token}`,
    });
    const chunks: Buffer[] = [];
    let httpStatus = 0;
    stream.on('response', (headers) => {
      httpStatus = Number(headers[':status']);
      // Trailers-only: the status came with the headers.
      if (headers['grpc-status'] !== undefined) settleStatus(headers);
    });
    let received = 0;
    stream.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > MAX_RESPONSE_BYTES) {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        finish(new CaCallError(8, `the CA's answer is larger than ${MAX_RESPONSE_BYTES} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    stream.on('trailers', (trailers: http2.IncomingHttpHeaders) => {
      settleStatus(trailers);
    });
    stream.on('error', (error: Error) => {
      finish(new CaCallError(-1, `the call to the CA at ${options.address} failed: ${error.message}`));
    });
    stream.on('close', () => {
      finish(new CaCallError(-1, `the CA at ${options.address} closed the call without a status (HTTP ${httpStatus})`));
    });
    const settleStatus = (headers: http2.IncomingHttpHeaders): void => {
      const status = Number(headers['grpc-status']);
      const message = decodeGrpcMessage(headers['grpc-message']);
      if (status !== 0) {
        finish(new CaCallError(Number.isInteger(status) ? status : 2, `the CA refused the certificate request: ${message || `gRPC status ${String(headers['grpc-status'])}`}`));
        return;
      }
      try {
        finish(undefined, decodeChain(Buffer.concat(chunks), responseType));
      } catch (error) {
        finish(new CaCallError(13, `the CA's answer is not a certificate chain: ${error instanceof Error ? error.message : String(error)}`));
      }
    };
    stream.end(frame(body));
  });
}

function decodeGrpcMessage(value: string | string[] | undefined): string {
  const text = Array.isArray(value) ? value.join(',') : (value ?? '');
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function decodeChain(bytes: Buffer, responseType: protobuf.Type): string[] {
  if (bytes.length < 5) throw new Error('no response message');
  if (bytes[0] !== 0) throw new Error('a compressed response was not asked for');
  const length = bytes.readUInt32BE(1);
  if (bytes.length !== 5 + length) throw new Error(`a response of ${bytes.length - 5} bytes where ${length} were announced`);
  const decoded = responseType.toObject(responseType.decode(bytes.subarray(5)), { arrays: true }) as { cert_chain: string[] };
  if (decoded.cert_chain.length === 0) throw new Error('cert_chain is empty');
  return decoded.cert_chain;
}
