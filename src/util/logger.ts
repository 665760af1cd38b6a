import { pino, type DestinationStream, type Logger } from 'pino';
import { redactSecrets } from './secrets.js';

export type { Logger };

/** The agent's own structured log: JSON lines on stderr. */
export function createLogger(
  level: string = 'info',
  dest: DestinationStream = pino.destination({ dest: 2, sync: true }),
): Logger {
  return pino(
    {
      level,
      base: { app: 'harbormaster' },
      // Secrets never printed: credentials in fields, headers, URLs and messages are masked.
      hooks: {
        logMethod(args, method) {
          method.apply(this, args.map((a) => redactSecrets(a)) as Parameters<typeof method>);
        },
      },
    },
    dest,
  );
}

/** A logger that logs each distinct cause once (hot paths: count always, log once). */
export class OnceLogger {
  private readonly seen = new Set<string>();
  constructor(
    private readonly log: Logger,
    private readonly max = 1000,
  ) {}
  warn(cause: string, obj: Record<string, unknown>, msg: string): void {
    if (this.seen.has(cause)) return;
    if (this.seen.size >= this.max) this.seen.clear();
    this.seen.add(cause);
    this.log.warn(obj, msg);
  }
  error(cause: string, obj: Record<string, unknown>, msg: string): void {
    if (this.seen.has(cause)) return;
    if (this.seen.size >= this.max) this.seen.clear();
    this.seen.add(cause);
    this.log.error(obj, msg);
  }
  /** Forget a cause so it may be logged again (e.g. after recovery). */
  reset(cause: string): void {
    this.seen.delete(cause);
  }
}
