// JSON logs to stdout with pino; components take child loggers.
import { pino, type Logger, type LevelWithSilent } from 'pino';
import { LogSink } from './log-sink.ts';

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Logs to `sink` (default: stdout through a sink that never blocks serving). */
export function createLogger(level: LevelWithSilent = 'info', sink: LogSink = new LogSink()): Logger {
  return pino({ level, base: { app: 'meshpilot' }, timestamp: pino.stdTimeFunctions.isoTime }, sink);
}

export type { Logger };
