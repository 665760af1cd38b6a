import fc from 'fast-check';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ContainerMetrics } from '../../../src/collectors/containers.js';
import { MAX_LABEL_VALUE_CHARS, escapeLabelValue } from '../../../src/collectors/exposition.js';
import { FIXTURES, StaticSource, containerInfo, promtoolCheck, silentLogger } from './helpers.js';

/** Reads a label value back the way Prometheus' text parser does. */
function unescape(s: string): string {
  return s.replace(/\\(.)/g, (_m, c: string) => (c === 'n' ? '\n' : c));
}

describe('label value escaping', () => {
  it('escapes quotes, backslashes and newlines reversibly', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        const e = escapeLabelValue(s);
        expect(e).not.toMatch(/\n/);
        expect(unescape(e)).toBe(s);
      }),
      { numRuns: 300, examples: [['a"b\\c\nd']] },
    );
  });

  it('replaces invalid UTF-16 and truncates long values to the documented bound', () => {
    expect(escapeLabelValue('a\uD800b')).toBe('a\uFFFDb');
    const long = escapeLabelValue('x'.repeat(64 * 1024));
    expect(long.length).toBe(MAX_LABEL_VALUE_CHARS);
    expect(long.endsWith('…')).toBe(true);
  });

  it('keeps hostile container names, images and labels valid for promtool', async () => {
    const hostile = [
      'quote"and\\backslash\nnewline',
      'y'.repeat(64 * 1024),
      Buffer.from([0x61, 0xff, 0xfe, 0x62]).toString('utf8'), // invalid UTF-8 decoded
      'lone\uDC00surrogate',
    ];
    const src = new StaticSource(
      hostile.map((v, i) =>
        containerInfo({
          id: String(i).repeat(64),
          name: i === 1 ? 'n'.repeat(200) : v,
          image: v,
          labels: { 'com.docker.compose.project': v, 'com.docker.compose.service': v },
        }),
      ),
    );
    const c = new ContainerMetrics({
      inventory: src,
      logger: silentLogger,
      registry: new Registry(),
      // a shape where every hostile container has its own cgroup directory is not needed:
      // pretend all containers share the fixture cgroup by pointing their paths at it
      cgroupRoot: join(FIXTURES, 'v2-cgroupfs/sys/fs/cgroup'),
      procRoot: join(FIXTURES, 'v2-cgroupfs/proc'),
      labelAllowlist: ['com.docker.compose.project', 'com.docker.compose.service'],
      minIntervalMs: 0,
    });
    for (const ci of src.list()) {
      src.set({
        ...ci,
        cgroup: { v1: '/docker/' + 'c0ffee00'.repeat(8), v2: '/docker/' + 'c0ffee00'.repeat(8) },
      });
    }
    c.start();
    const text = await c.render();
    expect(text).toContain(`name="${'n'.repeat(200)}"`);
    expect(text).toContain('quote\\"and\\\\backslash\\nnewline');
    expect(text).toContain('a\uFFFD\uFFFDb');
    for (const line of text.split('\n')) expect(line.length).toBeLessThan(8 * 1024);
    expect(promtoolCheck(text)).toEqual({ code: 0, output: '' });
  });
});
