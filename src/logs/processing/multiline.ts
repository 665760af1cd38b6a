// Multiline grouping per container and stream: a start pattern, or presets that recognise Java,
// Python and Go stack traces. Runs after partial-line reassembly; stdout and stderr are grouped
// separately and never merged. Memory per group is bounded by max_lines and max_bytes; a group
// that reaches a bound is emitted and the next line starts a new group.
//
// A group is the record of its first line with the joined text as body; it holds the acks of all
// of its lines (src/logs/ack.ts), so the source commits none of them before the group is
// delivered. The bytes of open groups are reported through `hold` (the queue's memory bound).
import { joinAcks } from '../ack.js';
import { textOf } from '../record.js';
import type { LogRecord } from '../types.js';
import type { Clock, ProcessingHooks } from './types.js';
import type { Pattern } from '../../util/pattern.js';

export const MULTILINE_PRESETS = ['java', 'python', 'go'] as const;
export type MultilinePreset = (typeof MULTILINE_PRESETS)[number];

export interface MultilineOptions {
  /** Stack-trace presets to recognise (any combination). Ignored when startPattern is set. */
  presets: readonly MultilinePreset[];
  /** A line matching this starts a new record; other lines continue the open one. */
  startPattern?: Pattern;
  /** Most lines in one record. */
  maxLines: number;
  /** Most bytes (UTF-8, without the joining newlines) in one record. */
  maxBytes: number;
  /** A group with no new line for this long is emitted. */
  flushMs: number;
}

type Mode = 'pattern' | MultilinePreset;

/** What a rule says about a line following an open group. */
interface Next {
  state: string;
  /** The line joins only if a later line confirms the group goes on (blank lines in traces). */
  tentative?: boolean;
}

interface Rule {
  opens(line: string): string | undefined;
  continues(line: string, state: string): Next | undefined;
}

// --- Java: frames "\tat x.y(Z.java:1)", "Caused by: …", "Suppressed: …", "... 12 more".
const JAVA_CONT =
  /^(?:\s+at\s|\s*\.\.\. \d+ (?:more|common frames omitted)\s*$|\s*Caused by: |\s*Suppressed: |\t)/;
const javaRule: Rule = {
  // Any line may be the header of a trace (the exception line, or the log line it follows).
  opens: () => 'j',
  continues: (line) => (JAVA_CONT.test(line) ? { state: 'j' } : undefined),
};

// --- Python: "Traceback (most recent call last):", indented frames, then the exception line;
// chained exceptions ("During handling of the above exception…") stay in the same record.
const PY_START = /^Traceback \(most recent call last\):\s*$/;
const PY_EXC = /^[A-Za-z_][\w.]*(?::.*)?$/;
const PY_CHAIN =
  /^(?:During handling of the above exception, another exception occurred:|The above exception was the direct cause of the following exception:)\s*$/;
const pythonRule: Rule = {
  opens: (line) => (PY_START.test(line) ? 'tb' : undefined),
  continues(line, state) {
    switch (state) {
      case 'tb':
        if (/^\s+\S/.test(line)) return { state: 'tb' };
        if (PY_EXC.test(line)) return { state: 'exc' };
        return undefined;
      case 'exc':
      case 'gap':
        if (line.trim() === '') return { state: 'gap', tentative: true };
        if (PY_CHAIN.test(line)) return { state: 'chain' };
        return undefined;
      case 'chain':
        if (line.trim() === '') return { state: 'chain' };
        if (PY_START.test(line)) return { state: 'tb' };
        return undefined;
    }
    return undefined;
  },
};

// --- Go: "panic: …" / "fatal error: …" / "goroutine N [running]:", then function lines and
// tab-indented file:line lines, goroutine blocks separated by blank lines.
const GO_START = /^(?:panic: |fatal error: |goroutine \d+ .*\[.*\]:\s*$|SIG[A-Z]+: )/;
const GO_CONT =
  /^(?:\t|goroutine \d+ .*\[.*\]:\s*$|created by \S|\[signal |\S+\(.*\)(?: in goroutine \d+)?\s*$|\.\.\.additional frames elided\.\.\.|\s+panic: |PC=0x|signal arrived during|exit status \d+$)/;
const goRule: Rule = {
  opens: (line) => (GO_START.test(line) ? 'g' : undefined),
  continues(line) {
    if (line.trim() === '') return { state: 'g', tentative: true };
    return GO_CONT.test(line) ? { state: 'g' } : undefined;
  },
};

const PRESET_RULES: Record<MultilinePreset, Rule> = {
  java: javaRule,
  python: pythonRule,
  go: goRule,
};

function patternRule(start: Pattern): Rule {
  return {
    opens: () => 'p',
    continues: (line) => (start.test(line) ? undefined : { state: 'p' }),
  };
}

interface Group {
  mode: Mode;
  state: string;
  first: LogRecord;
  /** Acks of the joined lines after the first. */
  ack: LogRecord['ack'];
  parts: string[];
  bytes: number;
  tentative: LogRecord[];
  tentativeBytes: number;
  lastAt: number;
}

const byteLen = (s: string): number => Buffer.byteLength(s);

/**
 * Groups the lines of one container (both streams, kept apart). Emits finished records through
 * `emit`, synchronously, in the order they are finished. Call flushExpired() on a timer (see
 * nextDeadline()) and flushAll() when the container stops.
 */
export class MultilineGrouper {
  private readonly groups: { stdout?: Group; stderr?: Group } = {};
  private readonly rules: [Mode, Rule][];

  /** Bytes of the open groups (both streams). */
  held = 0;

  constructor(
    private readonly opts: MultilineOptions,
    private readonly emit: (r: LogRecord) => void,
    private readonly clock: Clock = Date.now,
    private readonly hooks: ProcessingHooks = {},
    private readonly onHold?: (delta: number) => void,
  ) {
    if (opts.startPattern) this.rules = [['pattern', patternRule(opts.startPattern)]];
    else {
      // Java opens every line, so it is asked last.
      const order: MultilinePreset[] = ['python', 'go', 'java'];
      this.rules = order.filter((p) => opts.presets.includes(p)).map((p) => [p, PRESET_RULES[p]]);
    }
  }

  /** True when grouping does anything (a pattern or at least one preset). */
  get active(): boolean {
    return this.rules.length > 0;
  }

  push(rec: LogRecord): void {
    const now = this.clock();
    const g = this.groups[rec.stream];
    if (g) {
      const rule = this.ruleOf(g.mode);
      let next: Next | undefined;
      const text = textOf(rec);
      try {
        next = rule.continues(text, g.state);
      } catch {
        next = undefined;
      }
      if (next) {
        const len = byteLen(text);
        if (next.tentative) {
          if (
            g.parts.length + g.tentative.length + 1 <= this.opts.maxLines &&
            g.bytes + g.tentativeBytes + len <= this.opts.maxBytes
          ) {
            g.tentative.push(rec);
            g.tentativeBytes += len;
            this.hold(len);
            g.state = next.state;
            g.lastAt = now;
            return;
          }
        } else if (
          g.parts.length + g.tentative.length + 1 <= this.opts.maxLines &&
          g.bytes + g.tentativeBytes + len <= this.opts.maxBytes
        ) {
          for (const t of g.tentative) {
            g.parts.push(textOf(t));
            g.ack = joinAcks(g.ack, t.ack);
          }
          g.bytes += g.tentativeBytes;
          g.tentative = [];
          g.tentativeBytes = 0;
          g.parts.push(text);
          g.bytes += len;
          g.ack = joinAcks(g.ack, rec.ack);
          this.hold(len);
          g.state = next.state;
          g.lastAt = now;
          return;
        }
        // A bound is reached: emit what there is; the line starts a new group in the same state.
        this.hooks.event?.('multiline_split', 1);
        this.finish(rec.stream, g);
        const again = this.groups[rec.stream];
        if (again) this.finish(rec.stream, again);
        this.open(rec, g.mode, next.state, now);
        return;
      }
      this.finish(rec.stream, g);
      // Re-processed blank lines may have opened a group: the line goes through it.
      if (this.groups[rec.stream]) {
        this.push(rec);
        return;
      }
    }
    this.start(rec, now);
  }

  /** Emits groups idle for flushMs or longer. */
  flushExpired(now: number = this.clock()): void {
    for (const s of ['stdout', 'stderr'] as const) {
      const g = this.groups[s];
      if (g && now - g.lastAt >= this.opts.flushMs) this.finish(s, g);
    }
  }

  /** Emits every open group (container stopped, shutdown). */
  flushAll(): void {
    for (const s of ['stdout', 'stderr'] as const) {
      const g = this.groups[s];
      if (g) this.finish(s, g);
    }
  }

  /** When flushExpired() next has something to do (ms clock), or undefined when nothing is open. */
  nextDeadline(): number | undefined {
    let d: number | undefined;
    for (const g of [this.groups.stdout, this.groups.stderr]) {
      if (g && (d === undefined || g.lastAt + this.opts.flushMs < d))
        d = g.lastAt + this.opts.flushMs;
    }
    return d;
  }

  /** Lines currently held (both streams). */
  get pendingLines(): number {
    let n = 0;
    for (const g of [this.groups.stdout, this.groups.stderr])
      if (g) n += g.parts.length + g.tentative.length;
    return n;
  }

  private ruleOf(mode: Mode): Rule {
    return this.rules.find(([m]) => m === mode)![1];
  }

  private hold(delta: number): void {
    if (delta === 0) return;
    this.held += delta;
    this.onHold?.(delta);
  }

  private start(rec: LogRecord, now: number): void {
    const text = textOf(rec);
    const len = byteLen(text);
    if (len < this.opts.maxBytes && this.opts.maxLines > 1) {
      for (const [mode, rule] of this.rules) {
        let state: string | undefined;
        try {
          state = rule.opens(text);
        } catch {
          state = undefined;
        }
        if (state !== undefined) {
          this.open(rec, mode, state, now);
          return;
        }
      }
    }
    this.emit(rec);
  }

  private open(rec: LogRecord, mode: Mode, state: string, now: number): void {
    const text = textOf(rec);
    const bytes = byteLen(text);
    this.hold(bytes);
    this.groups[rec.stream] = {
      mode,
      state,
      first: rec,
      ack: undefined,
      parts: [text],
      bytes,
      tentative: [],
      tentativeBytes: 0,
      lastAt: now,
    };
  }

  private finish(stream: 'stdout' | 'stderr', g: Group): void {
    delete this.groups[stream];
    this.hold(-(g.bytes + g.tentativeBytes));
    const rec = g.first;
    if (g.parts.length > 1) {
      rec.body = g.parts.join('\n');
      rec.lines = g.parts.length;
      rec.ack = joinAcks(rec.ack, g.ack);
    }
    this.emit(rec);
    // Held blank lines that no continuation confirmed are lines of their own.
    const now = this.clock();
    for (const t of g.tentative) {
      if (this.groups[stream]) this.push(t);
      else this.start(t, now);
    }
  }
}
