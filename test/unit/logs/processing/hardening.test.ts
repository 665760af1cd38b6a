// Issue 16 (unit level): label patterns the linear-time engine cannot take are counted and
// ignored; config patterns are rejected at load with their path; labels only tighten limits;
// the per-record time budget is measured and over-budget records counted.
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../../src/config/load.js';
import { processingSection } from '../../../../src/logs/processing/config.js';
import { LogProcessor } from '../../../../src/logs/processing/processor.js';
import { newRecord, textOf } from '../../../../src/logs/record.js';
import type { LogRecord, LogResource } from '../../../../src/logs/types.js';

const resource: LogResource = { key: 'c1', attributes: {} };

function setup(labels: Record<string, string>, cfgOverrides: Record<string, unknown> = {}) {
  const events: Record<string, number> = {};
  const warnings: string[] = [];
  const seconds: number[] = [];
  const cfg = processingSection.parse(cfgOverrides);
  const proc = new LogProcessor(cfg, {
    hooks: {
      event: (e, n) => (events[e] = (events[e] ?? 0) + n),
      warnOnce: (cause, _d, msg) => warnings.push(`${cause}: ${msg}`),
      recordSeconds: (s) => seconds.push(s),
    },
  });
  const out: LogRecord[] = [];
  const c = proc.forContainer(labels, { emit: (r) => out.push(r) }, 'tenant');
  const push = (body: string) => c.push(newRecord(resource, 'stdout', body, 1, 0, 0, undefined));
  return { c, out, events, warnings, seconds, push };
}

describe('label patterns on the linear-time engine', () => {
  it('a catastrophic drop label works and a crafted line passes through', () => {
    const h = setup({ 'harbormaster.logs.drop': '^(a+)+$', 'harbormaster.logs.parser': 'none' });
    h.push(`${'a'.repeat(5000)}!`);
    h.push('aaaa');
    expect(h.out.map((r) => textOf(r))).toEqual([`${'a'.repeat(5000)}!`]);
  });

  it('a label pattern the engine cannot take is counted, logged once naming why, and ignored', () => {
    const h = setup({
      'harbormaster.logs.drop': 'debug(?=:)',
      'harbormaster.logs.keep': '(x)\\1',
      'harbormaster.logs.parser': 'none',
    });
    h.push('debug: shipped, the drop label is ignored');
    expect(h.out).toHaveLength(1);
    expect(h.events.invalid_label).toBe(2);
    expect(h.warnings.join('\n')).toMatch(/harbormaster\.logs\.drop.*lookaheads/);
    expect(h.warnings.join('\n')).toMatch(/harbormaster\.logs\.keep.*backreferences/);
  });
});

describe('config patterns', () => {
  it('are rejected at load with their path and the reason', () => {
    let problems: ConfigError['problems'] = [];
    try {
      loadConfig({
        env: {
          HARBORMASTER_LOGS_PROCESSING_DROP_PATTERN: 'x(?=y)',
        },
      });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems = err.problems;
    }
    expect(problems.map((p) => p.path)).toContain('logs.processing.drop_pattern');
    expect(JSON.stringify(problems)).toContain('lookaheads');
  });
});

describe('labels only tighten', () => {
  const greedy = {
    'harbormaster.logs.multiline.pattern': '^START',
    'harbormaster.logs.multiline.max_bytes': String(64 * 1024 * 1024),
    'harbormaster.logs.multiline.max_lines': '100000',
    'harbormaster.logs.multiline.flush_seconds': '3600',
    'harbormaster.logs.rate_limit': '0',
    'harbormaster.logs.rate_burst': '100000',
  };

  it('limits above the operator setting are clamped to it, counted and logged once each', () => {
    const h = setup(greedy, {
      rate_limit_lines_per_second: 50,
      multiline: { max_bytes: 4096, max_lines: 20, flush_seconds: 2 },
    });
    const m = h.c.settings.multiline;
    expect([m.maxBytes, m.maxLines, m.flushMs]).toEqual([4096, 20, 2000]);
    expect(h.c.settings.rate).toEqual({ perSecond: 50, burst: 50 });
    expect(h.events.label_clamped).toBe(5);
    expect(h.warnings.filter((w) => w.startsWith('label_clamped:tenant:'))).toHaveLength(5);
    expect(h.warnings.join('\n')).toContain(
      'harbormaster.logs.multiline.max_bytes asks for 67108864',
    );
    // A 64 MiB group is shipped in pieces of the operator's size.
    h.push('START');
    for (let i = 0; i < 100; i++) h.push('x'.repeat(100));
    h.c.flushAll();
    expect(h.out.length).toBeGreaterThan(1);
    for (const r of h.out) expect(Buffer.byteLength(textOf(r))).toBeLessThanOrEqual(4096 + 20);
  });

  it('labels below the operator setting are kept', () => {
    const h = setup(
      {
        'harbormaster.logs.multiline.max_lines': '5',
        'harbormaster.logs.rate_limit': '10',
      },
      { rate_limit_lines_per_second: 50 },
    );
    expect(h.c.settings.multiline.maxLines).toBe(5);
    expect(h.c.settings.rate).toEqual({ perSecond: 10, burst: 10 });
    expect(h.events.label_clamped).toBeUndefined();
  });

  it('with no operator rate limit a label may set one', () => {
    const h = setup({ 'harbormaster.logs.rate_limit': '3' });
    expect(h.c.settings.rate).toEqual({ perSecond: 3, burst: 3 });
  });
});

describe('per-record time budget', () => {
  it('every record is measured; records over the budget are counted and logged once', () => {
    const h = setup({}, { record_budget_seconds: 1e-9 });
    for (let i = 0; i < 5; i++) h.push(`line ${i}`);
    expect(h.seconds).toHaveLength(5);
    expect(h.events.over_budget).toBe(5);
    // One cause per container: the agent's OnceLogger logs it once.
    const causes = h.warnings.map((w) => w.split(': ')[0]);
    expect(new Set(causes.filter((c) => c?.startsWith('over_budget:'))).size).toBe(1);
  });

  it('records within the budget are not counted', () => {
    const h = setup({}, { record_budget_seconds: 60 });
    for (let i = 0; i < 5; i++) h.push(`line ${i}`);
    expect(h.seconds).toHaveLength(5);
    expect(h.events.over_budget).toBeUndefined();
  });
});
