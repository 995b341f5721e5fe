// The seam between the xDS services (ads-server.ts) and the gRPC server under them. Two sit
// behind it: the hand-written one over node:http2 (grpc-transport.ts, the default), which
// writes a shared response buffer to every stream as it is, and @grpc/grpc-js
// (grpcjs-transport.ts), which frames each message into a copy of its own.
import type { HandlerOptions, TransportStats } from './grpc-transport.ts';

/** One bidirectional xDS call as the services see it: request messages in, encoded responses out. */
export interface XdsCall {
  /** `address:port` of the client, for logs and /debug views. */
  readonly peer: string;
  /** True once the call has ended, whichever side ended it. */
  readonly closed: boolean;
  /** Each request message, unframed and uncompressed; valid only during the call (copy what is kept). */
  onMessage: ((message: Buffer) => void) | undefined;
  /** Once, when the call is over. */
  onClose: ((reason: string) => void) | undefined;
  /**
   * Writes one encoded message, given whole or as pieces in order (a shared body, then a stream's
   * own nonce); `written` runs once, when the transport has taken the bytes or the call is gone.
   */
  write(message: Buffer | readonly Buffer[], written: () => void): void;
  /** Ends the call with a status (OK tells a client to reconnect, elsewhere); nothing more is read. */
  end(status?: number, message?: string): void;
  /** Drops the call at once, unwritten responses included (a proxy that stopped reading). */
  reset(): void;
}

/** A gRPC server the xDS services are registered on. */
export interface XdsTransport<Call extends XdsCall = XdsCall> {
  /** Registers the handler for `/package.Service/Method`. */
  handle(path: string, handler: (call: Call) => void, options?: HandlerOptions): void;
  /** Binds `host:port` (0: a free port) and resolves with the bound port. */
  listen(host: string, port: number): Promise<number>;
  /** Stops accepting, ends every call with OK, and is closed within `graceMs`. */
  close(graceMs?: number): Promise<void>;
  stats(): TransportStats;
}

/** Which gRPC server serves the plaintext xDS port (`--xds-transport`). */
export const XDS_TRANSPORTS = ['node-http2', 'grpc-js'] as const;
export type XdsTransportKind = (typeof XDS_TRANSPORTS)[number];
