// Issue 6 acceptance 3 and 4 (unit level): per-container controls by label, exact drop counts,
// rate limit, default redaction of bearer tokens and URL passwords, parsing wired per container.
import { describe, expect, it } from 'vitest';
import {
  defaultProcessingConfig,
  processingSection,
} from '../../../../src/logs/processing/config.js';
import { logsEnabled } from '../../../../src/logs/processing/controls.js';
import { LogProcessor } from '../../../../src/logs/processing/processor.js';
import { AckTracker, acknowledge } from '../../../../src/logs/ack.js';
import { newRecord } from '../../../../src/logs/record.js';
import type { LogRecord } from '../../../../src/logs/types.js';

function setup(labels: Record<string, string>, cfgOverrides: Record<string, unknown> = {}) {
  let now = 0;
  const drops: Record<string, number> = {};
  const events: Record<string, number> = {};
  const warnings: string[] = [];
  const cfg = processingSection.parse(cfgOverrides);
  const proc = new LogProcessor(cfg, {
    clock: () => now,
    hooks: {
      drop: (r, n) => (drops[r] = (drops[r] ?? 0) + n),
      event: (e, n) => (events[e] = (events[e] ?? 0) + n),
      warnOnce: (cause, _d, msg) => warnings.push(`${cause}: ${msg}`),
    },
  });
  const out: LogRecord[] = [];
  const dropped: number[] = [];
  const c = proc.forContainer(
    labels,
    { emit: (r) => out.push(r), dropped: (r) => dropped.push(r.timeSec) },
    'web',
  );
  let seq = 0;
  // Line n (from 1) has time n; the tracker commits n once lines 1..n are acknowledged.
  let committed = 0;
  const tracker = new AckTracker<number>((n) => (committed = n));
  const resource = { key: 'c', attributes: {} };
  const push = (body: string, stream: 'stdout' | 'stderr' = 'stdout') => {
    seq++;
    c.push(newRecord(resource, stream, body, seq, 0, 0, tracker.next(seq, 0)));
  };
  return {
    c,
    out,
    dropped,
    drops,
    events,
    warnings,
    push,
    committed: () => committed,
    tick: (ms: number) => (now += ms),
  };
}

describe('per-container controls', () => {
  it('harbormaster.logs.enabled=false disables a container; default_enabled=false makes it opt-in', () => {
    const cfg = defaultProcessingConfig();
    expect(logsEnabled({}, cfg)).toBe(true);
    expect(logsEnabled({ 'harbormaster.logs.enabled': 'false' }, cfg)).toBe(false);
    expect(logsEnabled({ 'harbormaster.logs.enabled': 'FALSE' }, cfg)).toBe(false);
    expect(logsEnabled({ 'harbormaster.logs.enabled': 'bogus' }, cfg)).toBe(true);
    expect(logsEnabled({}, { default_enabled: false })).toBe(false);
    expect(logsEnabled({ 'harbormaster.logs.enabled': 'true' }, { default_enabled: false })).toBe(
      true,
    );
  });

  it('a drop regex drops exactly the matching lines and counts them', () => {
    const h = setup({
      'harbormaster.logs.drop': 'healthcheck|GET /metrics',
      'harbormaster.logs.parser': 'none',
    });
    const lines = Array.from({ length: 300 }, (_, i) =>
      i % 7 === 0 ? `GET /metrics ${i}` : i % 11 === 0 ? `healthcheck ok ${i}` : `work ${i}`,
    );
    for (const l of lines) h.push(l);
    const expectedDropped = lines.filter((l) => /healthcheck|GET \/metrics/.test(l));
    expect(h.out.map((r) => r.body)).toEqual(
      lines.filter((l) => !/healthcheck|GET \/metrics/.test(l)),
    );
    expect(h.drops).toEqual({ filter_drop: expectedDropped.length });
    expect(h.dropped).toHaveLength(expectedDropped.length);
    // Dropped lines are acknowledged at once: line 1 (dropped) is committed, line 2 (shipped,
    // not delivered yet) holds the rest back.
    expect(h.committed()).toBe(1);
    for (const r of h.out) acknowledge(r.ack);
    expect(h.committed()).toBe(300);
  });

  it('a keep regex ships only matching lines', () => {
    const h = setup({ 'harbormaster.logs.keep': '(?i)error' });
    for (const l of ['ok', 'ERROR one', 'fine', 'an error']) h.push(l);
    expect(h.out.map((r) => r.body)).toEqual(['ERROR one', 'an error']);
    expect(h.drops).toEqual({ filter_keep: 2 });
  });

  it('an invalid label regex is reported once and ignored', () => {
    const h = setup({ 'harbormaster.logs.drop': '(unclosed', 'harbormaster.logs.parser': 'yaml' });
    h.push('(unclosed stays');
    expect(h.out.map((r) => r.body)).toEqual(['(unclosed stays']);
    expect(h.events.invalid_label).toBe(2);
    // the label warnings only: a record over the time budget (performance.now(), real time, on
    // a loaded machine) adds an over_budget warning of its own
    const labelWarnings = h.warnings.filter((w) => w.startsWith('invalid_label:'));
    expect(labelWarnings).toHaveLength(2);
    expect(labelWarnings.join('\n')).toContain('harbormaster.logs.drop');
    expect(labelWarnings.join('\n')).toContain('harbormaster.logs.parser');
  });

  it('the rate limit (off by default) drops over the budget and counts by reason', () => {
    const off = setup({});
    for (let i = 0; i < 1000; i++) off.push(`l${i}`);
    expect(off.out).toHaveLength(1000);
    const h = setup({ 'harbormaster.logs.rate_limit': '10', 'harbormaster.logs.rate_burst': '20' });
    for (let i = 0; i < 100; i++) h.push(`l${i}`);
    expect(h.out).toHaveLength(20);
    h.tick(1000);
    for (let i = 0; i < 100; i++) h.push(`m${i}`);
    expect(h.out).toHaveLength(30);
    expect(h.drops).toEqual({ rate_limited: 170 });
  });
});

describe('parsing through the processor', () => {
  it('JSON fields land on the record; the pipeline attributes win; broken JSON ships unchanged', () => {
    const h = setup({});
    h.push(
      '{"level":"error","msg":"boom","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","log.iostream":"x","code":7}',
    );
    h.push('{"level":"error","msg":"cut');
    const [a, b] = h.out;
    expect(a).toMatchObject({
      body: 'boom',
      severityNumber: 17,
      severityText: 'error',
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      // log.iostream is the record's stream, set once by the source: a parsed field of that
      // name cannot change it (dropped and counted).
      stream: 'stdout',
      attributes: { code: 7 },
      droppedAttributesCount: 1,
    });
    expect(b!.body).toBe('{"level":"error","msg":"cut');
    expect(b!.severityNumber).toBeUndefined();
    expect(h.events.parse_failed).toBe(1);
  });

  it('multiline by label, then parsing', () => {
    const h = setup({ 'harbormaster.logs.multiline.preset': 'java' });
    for (const l of [
      'Exception in thread "main" java.lang.Error: x',
      '\tat a.B.c(B.java:1)',
      'level=info msg=next',
    ])
      h.push(l);
    h.c.flushAll();
    expect(h.out.map((r) => r.body)).toEqual([
      'Exception in thread "main" java.lang.Error: x\n\tat a.B.c(B.java:1)',
      'next',
    ]);
  });
});

describe('redaction', () => {
  it('default patterns mask a bearer token and a URL password', () => {
    const h = setup({ 'harbormaster.logs.parser': 'none' });
    h.push('calling api with Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-_x');
    h.push('connecting to postgres://app:s3cr3t-P4ss@db.internal:5432/shop');
    h.push('login password=hunter2 user=bob token=abc123&next=1');
    h.push('{"user":"bob","password":"hunter2"}');
    expect(h.out.map((r) => r.body)).toEqual([
      'calling api with Authorization: Bearer ***',
      'connecting to postgres://app:***@db.internal:5432/shop',
      'login password=*** user=bob token=***&next=1',
      '{"user":"bob","password":"***"}',
    ]);
    expect(h.events.redacted).toBe(5);
  });

  it('parsed secret fields and string attributes are masked; mask and patterns are configurable', () => {
    const h = setup({}, { redaction: { mask: '[REDACTED]', patterns: ['(?<=ssn=)\\d+'] } });
    h.push('{"msg":"user ssn=123456 signed in","db_password":"x","auth":"Bearer abc.def"}');
    expect(h.out[0]).toMatchObject({
      body: 'user ssn=[REDACTED] signed in',
      attributes: { db_password: '[REDACTED]', auth: 'Bearer [REDACTED]' },
    });
  });

  it('can be turned off', () => {
    const h = setup({ 'harbormaster.logs.parser': 'none' }, { redaction: { enabled: false } });
    h.push('Bearer abc');
    expect(h.out[0]!.body).toBe('Bearer abc');
  });

  it('invalid configured patterns fail config validation with the path', () => {
    const r = processingSection.safeParse({ redaction: { patterns: ['(bad'] }, drop_pattern: '[' });
    expect(r.success).toBe(false);
    const paths = r.error!.issues.map((i) => i.path.join('.'));
    expect(paths).toEqual(expect.arrayContaining(['redaction.patterns.0', 'drop_pattern']));
  });
});
