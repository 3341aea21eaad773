import { pino, type Logger, type LevelWithSilent, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  readonly level?: LevelWithSilent;
  /** Where JSON lines go; stderr by default so stdout stays free for command output. */
  readonly destination?: DestinationStream;
}

/** The one root logger; parts take `logger.child({ component })`. */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { name: 'zkroute' },
      redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'auth', 'credentials', 'password'], censor: '[redacted]' },
    },
    options.destination ?? pino.destination({ dest: 2, sync: false }),
  );
}

/** A logger that drops everything (tests, library users who pass none). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
