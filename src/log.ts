// JSON logs to stdout with pino; components take child loggers.
import { pino, type Logger, type LevelWithSilent } from 'pino';

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function createLogger(level: LevelWithSilent = 'info'): Logger {
  return pino({ level, base: { app: 'meshpilot' }, timestamp: pino.stdTimeFunctions.isoTime });
}

export type { Logger };
