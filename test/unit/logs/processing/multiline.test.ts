// Issue 6 acceptance 1 (unit level): Java, Python and Go stack traces interleaved with normal
// lines each become one record; normal lines stay their own; stdout and stderr never merge.
import { describe, expect, it } from 'vitest';
import {
  MultilineGrouper,
  type MultilineOptions,
} from '../../../../src/logs/processing/multiline.js';
import { AckTracker, ackSeqs } from '../../../../src/logs/ack.js';
import { newRecord } from '../../../../src/logs/record.js';
import type { LogRecord } from '../../../../src/logs/types.js';
import { Pattern } from '../../../../src/util/pattern.js';

const JAVA = [
  'java.lang.IllegalStateException: order 42 has no items',
  '\tat com.shop.Orders.checkout(Orders.java:118)',
  '\tat com.shop.Api.handle(Api.java:57)',
  'Caused by: java.lang.NullPointerException: items',
  '\tat com.shop.Cart.items(Cart.java:33)',
  '\t... 2 more',
];
const PYTHON = [
  'Traceback (most recent call last):',
  '  File "/app/worker.py", line 12, in <module>',
  '    run()',
  '  File "/app/worker.py", line 9, in run',
  '    1 / 0',
  'ZeroDivisionError: division by zero',
];
const PYTHON_CHAINED = [
  'Traceback (most recent call last):',
  '  File "/app/a.py", line 2, in <module>',
  "KeyError: 'x'",
  '',
  'During handling of the above exception, another exception occurred:',
  '',
  'Traceback (most recent call last):',
  '  File "/app/a.py", line 4, in <module>',
  'ValueError: bad',
];
const GO = [
  'panic: runtime error: index out of range [5] with length 3',
  '',
  'goroutine 1 [running]:',
  'main.lookup(...)',
  '\t/app/main.go:12',
  'main.main()',
  '\t/app/main.go:8 +0x1d',
];

function harness(opts: Partial<MultilineOptions>) {
  let now = 1000;
  const out: LogRecord[] = [];
  const g = new MultilineGrouper(
    { presets: [], maxLines: 500, maxBytes: 256 * 1024, flushMs: 1000, ...opts },
    (r) => out.push(r),
    () => now,
  );
  let seq = 0;
  const resource = { key: 'c', attributes: {} };
  // Line n (from 1) has time n and ack token n - 1.
  const tracker = new AckTracker<number>(() => {});
  const push = (body: string, stream: 'stdout' | 'stderr' = 'stdout') =>
    g.push(newRecord(resource, stream, body, ++seq, 0, 0, tracker.next(seq, 0)));
  const lineNumbers = (r: LogRecord): number[] => ackSeqs(r.ack).map((s) => s + 1);
  return {
    g,
    out,
    push,
    lineNumbers,
    tick: (ms: number) => (now += ms),
    bodies: () => out.map((r) => String(r.body)),
  };
}

describe('multiline presets', () => {
  it('groups Java, Python and Go traces interleaved with normal lines', () => {
    const h = harness({ presets: ['java', 'python', 'go'] });
    const input = [
      'INFO starting shop',
      ...JAVA,
      'INFO request served in 3 ms',
      ...PYTHON,
      'WARN slow request (pid 7)',
      ...PYTHON_CHAINED,
      'INFO next',
      ...GO,
      'INFO after panic',
    ];
    for (const l of input) h.push(l);
    h.g.flushAll();
    expect(h.bodies()).toEqual([
      'INFO starting shop',
      JAVA.join('\n'),
      'INFO request served in 3 ms',
      PYTHON.join('\n'),
      'WARN slow request (pid 7)',
      PYTHON_CHAINED.join('\n'),
      'INFO next',
      GO.join('\n'),
      'INFO after panic',
    ]);
    const java = h.out[1]!;
    expect(java.lines).toBe(JAVA.length);
    expect(java.timeSec).toBe(2); // the first line's time
    // The group holds the acks of all of its lines.
    expect(h.lineNumbers(java)).toEqual(JAVA.map((_, i) => 2 + i));
  });

  it('a blank line after a Python trace that is not a chain ends the trace and ships on its own', () => {
    const h = harness({ presets: ['python'] });
    for (const l of [...PYTHON, '', 'INFO ok']) h.push(l);
    h.g.flushAll();
    expect(h.bodies()).toEqual([PYTHON.join('\n'), '', 'INFO ok']);
  });

  it('never merges stdout with stderr', () => {
    const h = harness({ presets: ['java'] });
    h.push(JAVA[0]!, 'stderr');
    h.push('INFO interleaved on stdout', 'stdout');
    for (const l of JAVA.slice(1)) h.push(l, 'stderr');
    h.g.flushAll();
    expect(h.out.filter((r) => r.stream === 'stderr').map((r) => String(r.body))).toEqual([
      JAVA.join('\n'),
    ]);
    expect(h.out.filter((r) => r.stream === 'stdout').map((r) => String(r.body))).toEqual([
      'INFO interleaved on stdout',
    ]);
  });

  it('flushes an idle group after the timeout, not before', () => {
    const h = harness({ presets: ['java'], flushMs: 1000 });
    for (const l of JAVA) h.push(l);
    h.g.flushExpired();
    expect(h.out).toHaveLength(0);
    expect(h.g.nextDeadline()).toBe(2000);
    expect(h.g.held).toBe(JAVA.reduce((n, l) => n + Buffer.byteLength(l), 0));
    h.tick(999);
    h.g.flushExpired();
    expect(h.out).toHaveLength(0);
    h.tick(1);
    h.g.flushExpired();
    expect(h.bodies()).toEqual([JAVA.join('\n')]);
    expect(h.g.held).toBe(0);
    expect(h.lineNumbers(h.out[0]!)).toEqual(JAVA.map((_, i) => 1 + i));
  });

  it('lines that cannot start a trace are not held (python/go only)', () => {
    const h = harness({ presets: ['python', 'go'] });
    h.push('INFO plain');
    expect(h.bodies()).toEqual(['INFO plain']);
  });

  it('bounds a group by lines and bytes, shipping it in pieces', () => {
    const h = harness({ presets: ['java'], maxLines: 3 });
    for (const l of JAVA) h.push(l);
    h.g.flushAll();
    expect(h.out.map((r) => r.lines ?? 1)).toEqual([3, 3]);
    expect(h.bodies().join('\n')).toBe(JAVA.join('\n'));
    const b = harness({ presets: ['java'], maxBytes: 1024 });
    b.push('Exception: x');
    for (let i = 0; i < 100; i++) b.push(`\tat frame${i}(F.java:${i}) ${'p'.repeat(40)}`);
    b.g.flushAll();
    for (const r of b.out)
      expect(Buffer.byteLength(String(r.body)) - ((r.lines ?? 1) - 1)).toBeLessThanOrEqual(1024);
    expect(b.out.reduce((n, r) => n + (r.lines ?? 1), 0)).toBe(101);
  });
});

describe('multiline start pattern', () => {
  it('a line matching the pattern starts a record; others continue it', () => {
    const h = harness({ startPattern: Pattern.compile('^\\d{4}-\\d\\d-\\d\\d ') });
    for (const l of ['2024-01-01 a', 'cont 1', 'cont 2', '2024-01-01 b', '2024-01-01 c', 'x'])
      h.push(l);
    h.g.flushAll();
    expect(h.bodies()).toEqual(['2024-01-01 a\ncont 1\ncont 2', '2024-01-01 b', '2024-01-01 c\nx']);
  });
});
