// Per-container controls: enabled switch, drop/keep regexes, a token-bucket rate limit.
import type { Pattern } from '../../util/pattern.js';
import type { Clock, ProcessingDropReason } from './types.js';

export const LABEL_PREFIX = 'harbormaster.logs.';
export const LABELS = {
  enabled: 'harbormaster.logs.enabled',
  parser: 'harbormaster.logs.parser',
  drop: 'harbormaster.logs.drop',
  keep: 'harbormaster.logs.keep',
  rateLimit: 'harbormaster.logs.rate_limit',
  rateBurst: 'harbormaster.logs.rate_burst',
  multilinePreset: 'harbormaster.logs.multiline.preset',
  multilinePattern: 'harbormaster.logs.multiline.pattern',
  multilineMaxLines: 'harbormaster.logs.multiline.max_lines',
  multilineMaxBytes: 'harbormaster.logs.multiline.max_bytes',
  multilineFlushSeconds: 'harbormaster.logs.multiline.flush_seconds',
  redact: 'harbormaster.logs.redact',
} as const;

/** "true/1/yes/on" → true, "false/0/no/off" → false (case-insensitive), anything else undefined. */
export function parseBoolLabel(v: string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  const t = v.trim().toLowerCase();
  if (t === 'true' || t === '1' || t === 'yes' || t === 'on') return true;
  if (t === 'false' || t === '0' || t === 'no' || t === 'off') return false;
  return undefined;
}

/**
 * Whether a container's logs are shipped: its harbormaster.logs.enabled label, else
 * logs.processing.default_enabled. An unreadable label value counts as absent.
 */
export function logsEnabled(
  labels: Readonly<Record<string, string>> | undefined,
  config: { default_enabled: boolean },
): boolean {
  return parseBoolLabel(labels?.[LABELS.enabled]) ?? config.default_enabled;
}

export type Verdict = { keep: true } | { keep: false; reason: ProcessingDropReason };
const KEEP: Verdict = { keep: true };

/** Drop / keep by regex. Drop patterns (global and label) are checked after the keep pattern. */
export class LineFilter {
  constructor(
    private readonly drop: readonly Pattern[],
    private readonly keep: Pattern | undefined,
  ) {}

  get active(): boolean {
    return this.drop.length > 0 || this.keep !== undefined;
  }

  verdict(body: string): Verdict {
    if (this.keep) {
      if (!this.keep.test(body)) return { keep: false, reason: 'filter_keep' };
    }
    for (const d of this.drop) {
      if (d.test(body)) return { keep: false, reason: 'filter_drop' };
    }
    return KEEP;
  }
}

/** A token bucket: `rate` tokens per second up to `burst`; starts full. */
export class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(
    readonly rate: number,
    readonly burst: number,
    private readonly clock: Clock = Date.now,
  ) {
    this.tokens = burst;
    this.last = clock();
  }

  take(n = 1): boolean {
    const now = this.clock();
    if (now > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    }
    this.last = now;
    if (this.tokens >= n) {
      this.tokens -= n;
      return true;
    }
    return false;
  }
}
