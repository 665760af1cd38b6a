// The processing stages for one container, in order:
//   multiline grouping → drop/keep filter → rate limit → body parsing → redaction → emit.
// They work on the pipeline's LogRecord directly (text only when a stage needs it, see
// record.ts textOf). Discovery creates one ContainerProcessor per container (after the enabled
// check); the source pushes every record after partial-line reassembly; held multiline groups are
// flushed on a timer (timers option) and by flushAll() when the source stops. A record a filter
// or the rate limit drops is acknowledged at once and counted. Nothing here throws: problems are
// counted and logged once.
import { acknowledge } from '../ack.js';
import { bodyBytes, bodyRange, textOf } from '../record.js';
import type { LogRecord } from '../types.js';
import { autoMayParse, parseBody, type BodyLimits, type ParserMode, PARSER_MODES } from './body.js';
import type { ProcessingConfig } from './config.js';
import { LABELS, LineFilter, TokenBucket, logsEnabled, parseBoolLabel } from './controls.js';
import { MULTILINE_PRESETS, MultilineGrouper, type MultilinePreset } from './multiline.js';
import {
  DEFAULT_REDACTION_PATTERNS,
  Redactor,
  compileUserRegex,
  type RedactionPattern,
} from './redact.js';
import type { Clock, ProcessingDropReason, ProcessingHooks } from './types.js';
import { MAX_PATTERN_LENGTH, Pattern, PatternError } from '../../util/pattern.js';

/** Where a container's processed records go. */
export interface ProcessorSink {
  /** A record to ship. */
  emit(rec: LogRecord): void;
  /** A record dropped by a filter or the rate limit (already counted and acknowledged). */
  dropped?(rec: LogRecord, reason: ProcessingDropReason): void;
  /** Bytes held by multiline grouping grew (or shrank) by delta. */
  hold?(delta: number): void;
}

/** Record attributes the pipeline owns: a parsed field of the same name is dropped (counted). */
const RESERVED_ATTRIBUTES = new Set(['log.iostream']);

/** Settings of one container: config defaults with its labels applied. */
export interface ContainerSettings {
  enabled: boolean;
  parser: ParserMode;
  limits: BodyLimits;
  multiline: {
    presets: MultilinePreset[];
    startPattern?: Pattern;
    maxLines: number;
    maxBytes: number;
    flushMs: number;
  };
  drop: Pattern[];
  keep?: Pattern;
  rate?: { perSecond: number; burst: number };
  redactor: Redactor;
  /** Over this many milliseconds for one record: counted (over_budget) and logged once. */
  budgetMs: number;
}

const MAX_LABEL_REGEX = MAX_PATTERN_LENGTH;

/** Compiles the global redaction settings (config is already validated). */
export function buildRedactor(cfg: ProcessingConfig['redaction']): Redactor {
  if (!cfg.enabled) return new Redactor({ patterns: [], mask: cfg.mask });
  const patterns: RedactionPattern[] = cfg.default_patterns ? [...DEFAULT_REDACTION_PATTERNS] : [];
  cfg.patterns.forEach((p, i) => patterns.push({ name: `custom_${i}`, re: compileUserRegex(p) }));
  return new Redactor({
    patterns,
    mask: cfg.mask,
    secretKeys: cfg.secret_keys
      ? Pattern.compile(cfg.secret_keys, { caseInsensitive: true })
      : undefined,
  });
}

/**
 * Resolves a container's settings from config and labels. Invalid label values are reported
 * through hooks (event invalid_label + warnOnce) and ignored.
 */
export function resolveContainerSettings(
  cfg: ProcessingConfig,
  labels: Readonly<Record<string, string>> | undefined,
  hooks: ProcessingHooks = {},
  containerName = '',
  redactor: Redactor = buildRedactor(cfg.redaction),
): ContainerSettings {
  const l = labels ?? {};
  const bad = (label: string, value: string, expected: string): void => {
    hooks.event?.('invalid_label', 1);
    hooks.warnOnce?.(
      `invalid_label:${containerName}:${label}`,
      { container: containerName, label, value: value.slice(0, 200) },
      `Container label ${label} has an invalid value (expected ${expected}); it is ignored.`,
    );
  };
  const regexLabel = (label: string): Pattern | undefined => {
    const v = l[label];
    if (v === undefined || v === '') return undefined;
    if (v.length > MAX_LABEL_REGEX) {
      bad(label, v, `a regular expression of at most ${MAX_LABEL_REGEX} characters`);
      return undefined;
    }
    try {
      return compileUserRegex(v);
    } catch (err) {
      const why = err instanceof PatternError ? `: ${err.reason}` : '';
      bad(label, v, `a pattern in RE2 syntax (linear time)${why}`);
      return undefined;
    }
  };
  // Labels only tighten: a value above the operator's setting is clamped to it, counted and
  // logged once (a tenant's label must not raise a bound the operator sized memory for).
  const clamp = (label: string, v: number | undefined, limit: number): number | undefined => {
    if (v === undefined || v <= limit) return v;
    hooks.event?.('label_clamped', 1);
    hooks.warnOnce?.(
      `label_clamped:${containerName}:${label}`,
      { container: containerName, label, value: v, limit },
      `Container label ${label} asks for ${v}, above the operator's setting ${limit}; ${limit} is used (labels can only tighten limits).`,
    );
    return limit;
  };
  const numLabel = (label: string, min: number, max: number, int: boolean): number | undefined => {
    const v = l[label];
    if (v === undefined || v.trim() === '') return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max || (int && !Number.isInteger(n))) {
      bad(label, v, `${int ? 'an integer' : 'a number'} from ${min} to ${max}`);
      return undefined;
    }
    return n;
  };

  const enabledRaw = l[LABELS.enabled];
  if (enabledRaw !== undefined && parseBoolLabel(enabledRaw) === undefined)
    bad(LABELS.enabled, enabledRaw, 'true or false');

  let parser: ParserMode = cfg.parser;
  const p = l[LABELS.parser];
  if (p !== undefined) {
    const t = p.trim().toLowerCase();
    if ((PARSER_MODES as readonly string[]).includes(t)) parser = t as ParserMode;
    else bad(LABELS.parser, p, PARSER_MODES.join(', '));
  }

  let presets: MultilinePreset[] = [...cfg.multiline.presets];
  const pr = l[LABELS.multilinePreset];
  if (pr !== undefined) {
    const names = pr
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean);
    if (names.length === 1 && names[0] === 'none') presets = [];
    else if (names.every((n) => (MULTILINE_PRESETS as readonly string[]).includes(n)))
      presets = names as MultilinePreset[];
    else
      bad(
        LABELS.multilinePreset,
        pr,
        `a comma-separated list of ${MULTILINE_PRESETS.join(', ')}, or none`,
      );
  }
  let startPattern = cfg.multiline.start_pattern
    ? compileUserRegex(cfg.multiline.start_pattern)
    : undefined;
  if (l[LABELS.multilinePattern] !== undefined)
    startPattern = regexLabel(LABELS.multilinePattern) ?? startPattern;
  // An explicit preset label on a container overrides a global start pattern.
  if (pr !== undefined && l[LABELS.multilinePattern] === undefined) startPattern = undefined;

  const drop: Pattern[] = [];
  if (cfg.drop_pattern) drop.push(compileUserRegex(cfg.drop_pattern));
  const ld = regexLabel(LABELS.drop);
  if (ld) drop.push(ld);
  let keep = cfg.keep_pattern ? compileUserRegex(cfg.keep_pattern) : undefined;
  if (l[LABELS.keep] !== undefined) keep = regexLabel(LABELS.keep) ?? keep;

  let rate = numLabel(LABELS.rateLimit, 0, 1e9, false) ?? cfg.rate_limit_lines_per_second;
  let burst = numLabel(LABELS.rateBurst, 0, 1e9, true) ?? cfg.rate_limit_burst_lines;
  const globalRate = cfg.rate_limit_lines_per_second;
  if (globalRate > 0) {
    // 0 means "no limit" on a label too: that would raise the operator's limit.
    rate = clamp(LABELS.rateLimit, rate === 0 ? Infinity : rate, globalRate)!;
    const globalBurst =
      cfg.rate_limit_burst_lines > 0
        ? cfg.rate_limit_burst_lines
        : Math.max(1, Math.ceil(globalRate));
    const effective = burst > 0 ? burst : Math.max(1, Math.ceil(rate));
    burst = clamp(LABELS.rateBurst, effective, globalBurst)!;
  }

  let red = redactor;
  const rl = l[LABELS.redact];
  if (rl !== undefined) {
    const b = parseBoolLabel(rl);
    if (b === false) red = new Redactor({ patterns: [], mask: '' });
    else if (b === undefined) bad(LABELS.redact, rl, 'true or false');
  }

  return {
    enabled: logsEnabled(l, cfg),
    parser,
    limits: {
      maxDepth: cfg.parser_max_depth,
      maxAttributes: cfg.parser_max_attributes,
      maxValueBytes: cfg.parser_max_value_bytes,
    },
    multiline: {
      presets,
      startPattern,
      maxLines:
        clamp(
          LABELS.multilineMaxLines,
          numLabel(LABELS.multilineMaxLines, 1, 100_000, true),
          cfg.multiline.max_lines,
        ) ?? cfg.multiline.max_lines,
      maxBytes:
        clamp(
          LABELS.multilineMaxBytes,
          numLabel(LABELS.multilineMaxBytes, 1024, 64 * 1024 * 1024, true),
          cfg.multiline.max_bytes,
        ) ?? cfg.multiline.max_bytes,
      flushMs:
        (clamp(
          LABELS.multilineFlushSeconds,
          numLabel(LABELS.multilineFlushSeconds, 0.001, 3600, false),
          cfg.multiline.flush_seconds,
        ) ?? cfg.multiline.flush_seconds) * 1000,
    },
    drop,
    keep,
    rate:
      rate > 0
        ? { perSecond: rate, burst: burst > 0 ? burst : Math.max(1, Math.ceil(rate)) }
        : undefined,
    redactor: red,
    budgetMs: cfg.record_budget_seconds * 1000,
  };
}

/** The stages for one container. */
export class ContainerProcessor {
  private readonly grouper: MultilineGrouper | undefined;
  private readonly filter: LineFilter;
  private readonly bucket: TokenBucket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /**
   * No stage of these settings needs to see every record (no multiline, filter or rate limit;
   * parser none or auto): a byte body without attributes may then be checked as bytes and passed.
   */
  private readonly byteChecks: boolean;

  constructor(
    readonly settings: ContainerSettings,
    private readonly sink: ProcessorSink,
    private readonly clock: Clock = Date.now,
    private readonly hooks: ProcessingHooks = {},
    /** Flush expired multiline groups on a real timer (the agent; tests call flushExpired). */
    private readonly timers = false,
    private readonly containerName = '',
  ) {
    const g = new MultilineGrouper(
      settings.multiline,
      (r) => this.finish(r),
      clock,
      hooks,
      (d) => sink.hold?.(d),
    );
    this.grouper = g.active ? g : undefined;
    this.filter = new LineFilter(settings.drop, settings.keep);
    this.bucket =
      settings.rate && new TokenBucket(settings.rate.perSecond, settings.rate.burst, clock);
    this.byteChecks =
      !this.grouper &&
      !this.filter.active &&
      !this.bucket &&
      (settings.parser === 'auto' || settings.parser === 'none');
  }

  get enabled(): boolean {
    return this.settings.enabled;
  }

  /** One record after partial-line reassembly. The record object may be modified and emitted. */
  push(rec: LogRecord): void {
    if (this.byteChecks && this.passes(rec)) {
      this.sink.emit(rec);
      return;
    }
    const t0 = performance.now();
    if (this.grouper) {
      this.grouper.push(rec);
      if (this.timers && !this.timer && !this.closed) this.schedule();
    } else this.finish(rec);
    this.timed(performance.now() - t0, bodyBytes(rec));
  }

  /**
   * The default settings cost nothing for a line no stage can change: its bytes show that parser
   * `auto` finds plain text and that no redaction pattern can match, so it is passed on as it
   * was read (not decoded to text, not timed: byte checks are linear and pattern-free).
   */
  private passes(rec: LogRecord): boolean {
    if (rec.attributes !== undefined) return false;
    // A body range (the file tailer's records) is checked where it lies: no Buffer view.
    const x = bodyRange(rec);
    let b: Buffer;
    let start = 0;
    let end: number;
    if (x) {
      b = x.src!;
      start = x.start;
      end = x.end;
    } else {
      const body = rec.body;
      if (typeof body === 'string') return false;
      b = body;
      end = body.length;
    }
    return this.passesBytes(b, start, end);
  }

  /**
   * Runs of encoded lines (src/logs/run.ts) may skip these stages: they see no record, only
   * byte checks (byteChecking) on each line's body.
   */
  get byteChecking(): boolean {
    return this.byteChecks;
  }

  /**
   * A body without attributes that no stage would change or drop (checked as bytes). pairs and
   * pairHits: the decoder's look-up of the body's pairs (Redactor.mayMatchBytes).
   */
  passesBytes(b: Buffer, start: number, end: number, pairs?: Uint16Array, pairHits = -1): boolean {
    const s = this.settings;
    if (s.parser === 'auto' && autoMayParse(b, start, end)) return false;
    return !s.redactor.mayMatchBytes(b, start, end, pairs, pairHits);
  }

  /** The redaction literals' pair table for the decoder (undefined: nothing to look up). */
  get literalPairs(): Uint16Array | undefined {
    return this.settings.redactor.literalPairs;
  }

  /** Bytes held by multiline grouping. */
  get held(): number {
    return this.grouper?.held ?? 0;
  }

  /** Stops the flush timer (the container is gone; flushAll() first to ship what is held). */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    const d = this.nextDeadline();
    if (d === undefined) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        if (this.closed) return;
        this.flushExpired();
        this.schedule();
      },
      Math.max(1, d - this.clock()),
    );
    this.timer.unref();
  }

  /** Per-record time budget: measured for every record, over-budget ones counted, logged once. */
  private timed(ms: number, chars: number): void {
    this.hooks.recordSeconds?.(ms / 1000);
    if (ms <= this.settings.budgetMs) return;
    this.hooks.event?.('over_budget', 1);
    this.hooks.warnOnce?.(
      `over_budget:${this.containerName}`,
      {
        container: this.containerName,
        ms: Math.round(ms),
        chars,
        budgetMs: this.settings.budgetMs,
      },
      `Processing one log record of container ${this.containerName} took ${Math.round(ms)} ms, over the budget of ${this.settings.budgetMs} ms (logs.processing.record_budget_seconds); check its patterns and multiline settings.`,
    );
  }

  /** Emits multiline groups idle for flush_seconds. Call at nextDeadline() (or on a short timer). */
  flushExpired(now: number = this.clock()): void {
    this.grouper?.flushExpired(now);
  }

  /** Emits everything held (container stopped, agent shutting down). */
  flushAll(): void {
    // Held blank lines re-pushed by a finished group may open a group again: a few rounds.
    for (let i = 0; i < 4 && this.grouper?.nextDeadline() !== undefined; i++)
      this.grouper.flushAll();
  }

  /** When flushExpired() next has work (ms clock); undefined when nothing is held. */
  nextDeadline(): number | undefined {
    return this.grouper?.nextDeadline();
  }

  private finish(rec: LogRecord): void {
    try {
      const s = this.settings;
      // Decoded once, only when a stage reads text; the record keeps its bytes unless changed.
      let text = this.filter.active || s.parser !== 'none' || s.redactor.active ? textOf(rec) : '';
      if (this.filter.active) {
        const v = this.filter.verdict(text);
        if (!v.keep) return this.drop(rec, v.reason);
      }
      if (this.bucket && !this.bucket.take()) return this.drop(rec, 'rate_limited');
      if (s.parser !== 'none') text = this.parse(rec, text);
      const n = s.redactor.active ? this.redact(rec, text) : 0;
      if (n > 0) this.hooks.event?.('redacted', n);
    } catch (err) {
      // Never lose a record to a bug in a stage: ship what there is.
      this.hooks.warnOnce?.(
        'processing_error',
        { err: (err as Error).message },
        'A log processing stage failed; the record is shipped as it is.',
      );
    }
    this.sink.emit(rec);
  }

  private drop(rec: LogRecord, reason: ProcessingDropReason): void {
    this.hooks.drop?.(reason, 1);
    acknowledge(rec.ack);
    this.sink.dropped?.(rec, reason);
  }

  private redact(rec: LogRecord, text: string): number {
    const view = { body: text, attributes: rec.attributes ?? {} };
    const n = this.settings.redactor.apply(view);
    if (n > 0) rec.body = view.body;
    return n;
  }

  /** Parses the body; returns the text of the body afterwards. */
  private parse(rec: LogRecord, text: string): string {
    const out = parseBody(text, this.settings.parser, this.settings.limits);
    if (out.kind === 'failed') {
      this.hooks.event?.('parse_failed', 1);
      return text;
    }
    if (out.kind !== 'parsed') return text;
    const p = out.parsed;
    this.hooks.event?.(p.format === 'json' ? 'parsed_json' : 'parsed_logfmt', 1);
    rec.body = p.body;
    let dropped = p.dropped;
    const attrs = (rec.attributes ??= {});
    for (const k in p.attributes) {
      // The pipeline's own attributes (log.iostream, …) win over fields of the line.
      if (RESERVED_ATTRIBUTES.has(k) || Object.prototype.hasOwnProperty.call(attrs, k)) dropped++;
      else attrs[k] = p.attributes[k]!;
    }
    if (dropped > 0) {
      rec.droppedAttributesCount = (rec.droppedAttributesCount ?? 0) + dropped;
      this.hooks.event?.('attributes_dropped', dropped);
    }
    if (p.truncated > 0) this.hooks.event?.('values_truncated', p.truncated);
    if (p.severity) {
      rec.severityNumber = p.severity.number;
      rec.severityText = p.severity.text;
    }
    if (p.traceId) {
      rec.traceId = p.traceId;
      if (p.spanId) rec.spanId = p.spanId;
      if (p.traceFlags !== undefined) rec.traceFlags = p.traceFlags;
    }
    return p.body;
  }
}

/** Builds ContainerProcessors from one config (the redactor is compiled once and shared). */
export class LogProcessor {
  private readonly redactor: Redactor;

  constructor(
    readonly config: ProcessingConfig,
    private readonly opts: { clock?: Clock; hooks?: ProcessingHooks; timers?: boolean } = {},
  ) {
    this.redactor = buildRedactor(config.redaction);
  }

  /** See logsEnabled(): the discovery calls this before tailing a container. */
  enabled(labels: Readonly<Record<string, string>> | undefined): boolean {
    return logsEnabled(labels, this.config);
  }

  forContainer(
    labels: Readonly<Record<string, string>> | undefined,
    sink: ProcessorSink,
    containerName = '',
  ): ContainerProcessor {
    const s = resolveContainerSettings(
      this.config,
      labels,
      this.opts.hooks,
      containerName,
      this.redactor,
    );
    return new ContainerProcessor(
      s,
      sink,
      this.opts.clock ?? Date.now,
      this.opts.hooks,
      this.opts.timers ?? false,
      containerName,
    );
  }
}
