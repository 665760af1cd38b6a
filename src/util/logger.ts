import { pino, type DestinationStream, type Logger } from 'pino';
import { redactSecrets } from './secrets.js';

export type { Logger };

/** Every logger made by createLogger and its children, so a level change reaches them all. */
const family = new WeakMap<Logger, Set<WeakRef<Logger>>>();

/** The agent's own structured log: JSON lines on stderr. */
export function createLogger(
  level: string = 'info',
  dest: DestinationStream = pino.destination({ dest: 2, sync: true }),
): Logger {
  const children = new Set<WeakRef<Logger>>();
  const root = pino(
    {
      level,
      base: { app: 'harbormaster' },
      // Secrets never printed: credentials in fields, headers, URLs and messages are masked.
      hooks: {
        logMethod(args, method) {
          method.apply(this, args.map((a) => redactSecrets(a)) as Parameters<typeof method>);
        },
      },
      onChild: (child) => {
        children.add(new WeakRef(child));
      },
    },
    dest,
  );
  family.set(root, children);
  return root;
}

/** Changes the level of a createLogger logger and of every child made from it (SIGHUP reload). */
export function setLogLevel(root: Logger, level: string): void {
  root.level = level;
  const children = family.get(root);
  if (!children) return;
  for (const ref of [...children]) {
    const child = ref.deref();
    if (child) child.level = level;
    else children.delete(ref);
  }
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
