// Several observers (metrics, NACK attribution) share the one ConnectionEvents seam.
import type { ConnectionEvents } from './connection.ts';

/** One ConnectionEvents that calls each observer in turn. */
export function fanOutEvents(...observers: readonly ConnectionEvents[]): ConnectionEvents {
  return {
    onAck: (connection, typeUrl, ack) => {
      for (const o of observers) o.onAck?.(connection, typeUrl, ack);
    },
    onNack: (connection, typeUrl, nack, rejected) => {
      for (const o of observers) o.onNack?.(connection, typeUrl, nack, rejected);
    },
    onStaleNonce: (connection, typeUrl) => {
      for (const o of observers) o.onStaleNonce?.(connection, typeUrl);
    },
    onSend: (connection, typeUrl, sent, stats) => {
      for (const o of observers) o.onSend?.(connection, typeUrl, sent, stats);
    },
    onConverged: (connection, typeUrl, ms, pushSequence) => {
      for (const o of observers) o.onConverged?.(connection, typeUrl, ms, pushSequence);
    },
    onSecretDenied: (connection, name) => {
      for (const o of observers) o.onSecretDenied?.(connection, name);
    },
  };
}
