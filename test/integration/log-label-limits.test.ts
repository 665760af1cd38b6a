// Issue 16, criterion 2: four containers whose labels ask for 64 MiB multiline groups of 100,000
// lines flushed after an hour, each writing ~20 MB of continuation lines. Labels only tighten:
// the operator's limits apply (counted as label_clamped), the groups held meanwhile show in
// harbormaster_log_held_bytes, and the agent's RSS stays within the stated bound.
//
// Bound stated: with logs.queue_max_bytes = Q (8 MiB here) the log path holds at most about Q
// (queue + held groups + partial lines + the batch in flight). Reading 80 MB at full speed grows
// the heap by itself (garbage V8 collects lazily), so the bound is relative to the same workload
// under the operator's limits (the multiline pattern label only): RSS growth with the greedy
// labels <= 1.25 x that + 2·Q. Unclamped, the four held groups alone would add 256 MiB.
import { readFileSync } from 'node:fs';
import { afterAll, expect, it } from 'vitest';
import {
  describeDocker,
  getDocker,
  harness,
  runContainer,
  sleep,
  startAgent,
  TEST_IMAGE,
  uniqueName,
  waitFor,
  type AgentProcess,
} from './harness/index.js';

const Q = 8 * 1024 * 1024;
const CONTAINERS = 4;
const LINES = 200_000;
const GROUP_MAX = 256 * 1024; // the operator's logs.processing.multiline.max_bytes (default)

function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN) * 1024;
}

function gauge(text: string, re: RegExp): number {
  return Number(re.exec(text)?.[1] ?? NaN);
}

interface Burst {
  growth: number;
  peakHeld: number;
  held: number;
  text: string;
  agent: AgentProcess;
}

async function burst(labels: string[], ids: string[]): Promise<Burst> {
  const info = harness().docker;
  const a = await startAgent({
    dockerHost: getDocker().host,
    args: ['--docker-root', info.available ? info.dataRoot : '/var/lib/docker'],
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: '',
      HARBORMASTER_LOGS_EXPORTER: 'ndjson',
      HARBORMASTER_LOGS_NDJSON_PATH: '/dev/null',
      HARBORMASTER_LOGS_QUEUE_MAX_BYTES: String(Q),
      HARBORMASTER_LOGS_BATCH_DELAY_SECONDS: '0.05',
      HARBORMASTER_LOGS_POLL_INTERVAL_SECONDS: '0.1',
      HARBORMASTER_METRICS_ENABLED: 'false',
    },
  });
  const text = async (): Promise<string> => (await a.get('/metrics')).text;
  await waitFor(async () => (await a.get('/readyz')).status === 200, 30_000, 100, 'ready');
  const xs: number[] = [];
  for (let i = 0; i < 7; i++) {
    xs.push(rssBytes(a.pid));
    await sleep(300);
  }
  const before = xs.sort((p, q) => p - q)[3]!;
  const prefix = uniqueName('greedy');
  // One START line, LINES continuation lines as fast as possible, then one more continuation
  // line every 0.2 s (the group never ends by itself).
  const pad = 'c'.repeat(90);
  for (let i = 0; i < CONTAINERS; i++) {
    ids.push(
      (
        await runContainer([
          '-d',
          '--name',
          `${prefix}-${i}`,
          '--label',
          'harbormaster.logs.multiline.pattern=^START',
          ...labels.flatMap((l) => ['--label', l]),
          TEST_IMAGE,
          'sh',
          '-c',
          `echo START; seq 1 ${LINES} | sed 's/^/  ${pad} /'; ` +
            `while true; do echo '  still going'; sleep 0.2; done`,
        ])
      ).stdout.trim(),
    );
  }
  let peak = 0;
  let peakHeld = 0;
  const linesRead = (t: string): number => {
    let n = 0;
    const re = new RegExp(
      `^harbormaster_log_lines_read_total\\{[^}]*${prefix}[^}]*\\} (\\d+)$`,
      'gm',
    );
    for (const m of t.matchAll(re)) n += Number(m[1]);
    return n;
  };
  await waitFor(
    async () => {
      const t = await text();
      peak = Math.max(peak, rssBytes(a.pid));
      peakHeld = Math.max(peakHeld, gauge(t, /^harbormaster_log_held_bytes (\d+)$/m));
      return linesRead(t) >= CONTAINERS * (LINES + 1);
    },
    150_000,
    100,
    'every burst line read',
  );
  // After the burst: each container's group grows by one line every 0.2 s and is held.
  const t = await waitFor(
    async () => {
      const m = await text();
      peak = Math.max(peak, rssBytes(a.pid));
      return gauge(m, /^harbormaster_log_held_bytes (\d+)$/m) > 0 ? m : undefined;
    },
    20_000,
    100,
    'held multiline groups in harbormaster_log_held_bytes',
  );
  const held = gauge(t, /^harbormaster_log_held_bytes (\d+)$/m);
  console.log(
    `${labels.length ? 'greedy labels' : 'operator limits'}: RSS before ${(before / 2 ** 20).toFixed(1)} MiB, peak ${(peak / 2 ** 20).toFixed(1)} MiB (+${((peak - before) / 2 ** 20).toFixed(1)} MiB); held bytes peak ${peakHeld}, now ${held}`,
  );
  return { growth: peak - before, peakHeld, held, text: t, agent: a };
}

describeDocker('labels cannot raise multiline limits past the memory bound (issue 16, 2)', () => {
  const ids: string[] = [];
  const agents: AgentProcess[] = [];
  afterAll(async () => {
    for (const a of agents) await a.kill().catch(() => undefined);
    if (ids.length) await getDocker().docker(['rm', '-f', ...ids]);
  });

  it('64 MiB / 100,000 lines / 3600 s labels on four containers: clamped, held bytes shown, RSS bounded', async () => {
    const ref = await burst([], ids);
    agents.push(ref.agent);
    await ref.agent.stop();
    await getDocker().docker(['rm', '-f', ...ids.splice(0)]);

    const g = await burst(
      [
        `harbormaster.logs.multiline.max_bytes=${64 * 1024 * 1024}`,
        'harbormaster.logs.multiline.max_lines=100000',
        'harbormaster.logs.multiline.flush_seconds=3600',
      ],
      ids,
    );
    agents.push(g.agent);
    // the labels were clamped (one per container and label), not obeyed
    expect(
      gauge(g.text, /^harbormaster_log_processing_events_total\{event="label_clamped"\} (\d+)$/m),
    ).toBeGreaterThanOrEqual(CONTAINERS * 3);
    const clampWarn = g.agent
      .logs()
      .filter((l) => String(l.msg).includes('labels can only tighten'));
    expect(clampWarn.length).toBeGreaterThanOrEqual(CONTAINERS);
    // the held groups show in the gauge, bounded by the operator's group size, within Q
    expect(g.held).toBeGreaterThan(0);
    expect(g.held).toBeLessThanOrEqual(CONTAINERS * 2 * (GROUP_MAX + 64 * 1024));
    expect(g.peakHeld).toBeLessThanOrEqual(Q);
    const bound = 1.25 * Math.max(0, ref.growth) + 2 * Q;
    console.log(
      `RSS growth: greedy labels ${(g.growth / 2 ** 20).toFixed(1)} MiB, operator limits ${(ref.growth / 2 ** 20).toFixed(1)} MiB, bound ${(bound / 2 ** 20).toFixed(1)} MiB`,
    );
    expect(g.growth).toBeLessThanOrEqual(bound);
    await g.agent.stop();
  }, 400_000);
});
