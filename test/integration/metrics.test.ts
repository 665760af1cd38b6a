// Issue 3 acceptance with real containers on the private dockerd, a real Prometheus and promtool.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CONTAINER_FAMILIES } from '../../src/collectors/containers.js';
import {
  TEST_IMAGE,
  describeDocker,
  getDocker,
  runContainer,
  sleep,
  startAgent,
  uniqueName,
  startPrometheus,
  waitFor,
  type AgentProcess,
  type PromSample,
  type PrometheusServer,
} from './harness/index.js';

type Sample = { labels: Record<string, string>; value: number };

/** Minimal text-format reader for assertions (label values unescaped). */
function parse(text: string): Map<string, Sample[]> {
  const out = new Map<string, Sample[]>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    let lm: RegExpExecArray | null;
    while ((lm = re.exec(m[2] ?? '')))
      labels[lm[1] as string] = (lm[2] as string).replace(/\\(.)/g, (_x, c: string) =>
        c === 'n' ? '\n' : c,
      );
    const list = out.get(m[1] as string) ?? [];
    list.push({ labels, value: Number(m[3]) });
    out.set(m[1] as string, list);
  }
  return out;
}

function value(
  metrics: Map<string, Sample[]>,
  name: string,
  containerName: string,
): number | undefined {
  const s = metrics.get(name)?.filter((x) => x.labels.name === containerName) ?? [];
  if (s.length === 0) return undefined;
  return s.reduce((a, x) => a + x.value, 0);
}

const MiB = 1024 * 1024;
const OWN = new Set(CONTAINER_FAMILIES.map((f) => f.name));

/** Whether the cgroup collector serves any series for the container (other components' aside). */
function hasOwnSeries(text: string, containerName: string): boolean {
  return text
    .split('\n')
    .some((l) => OWN.has(l.slice(0, l.indexOf('{'))) && l.includes(`name="${containerName}"`));
}

describeDocker('container metrics on /metrics (issue 3)', () => {
  let agent: AgentProcess;
  let prom: PrometheusServer | undefined;
  const names = {
    cpu: uniqueName('cpu'),
    mem: uniqueName('mem'),
    oom: uniqueName('oom'),
    writer: uniqueName('writer'),
    pids: uniqueName('pids'),
    gone: uniqueName('gone'),
  };
  const scrape = async (): Promise<{ text: string; m: Map<string, Sample[]> }> => {
    const r = await agent.get('/metrics');
    expect(r.status).toBe(200);
    return { text: r.text, m: parse(r.text) };
  };
  const query = (q: string): Promise<PromSample[]> => {
    if (!prom) throw new Error('Prometheus is not running');
    return prom.query(q);
  };

  beforeAll(async () => {
    const d = getDocker();
    const common = ['-d', '--stop-timeout', '1'];
    await Promise.all([
      runContainer([
        ...common,
        '--name',
        names.cpu,
        '--cpus',
        '0.5',
        TEST_IMAGE,
        'sh',
        '-c',
        'while :; do :; done',
      ]),
      runContainer([
        ...common,
        '--name',
        names.mem,
        '--tmpfs',
        '/hold:size=128m',
        TEST_IMAGE,
        'sh',
        '-c',
        'dd if=/dev/zero of=/hold/f bs=1M count=64 2>/dev/null; sleep 600',
      ]),
      runContainer([
        ...common,
        '--name',
        names.oom,
        '--memory',
        '16m',
        '--memory-swap',
        '16m',
        TEST_IMAGE,
        'sleep',
        '600',
      ]),
      runContainer([
        ...common,
        '--name',
        names.writer,
        TEST_IMAGE,
        'sh',
        '-c',
        'sleep 3; dd if=/dev/zero of=/data.bin bs=1M count=48 2>/dev/null; sync; sleep 600',
      ]),
      runContainer([
        ...common,
        '--name',
        names.pids,
        TEST_IMAGE,
        'sh',
        '-c',
        'sleep 600 & sleep 600 & sleep 600 & wait',
      ]),
      runContainer([...common, '--name', names.gone, TEST_IMAGE, 'sleep', '600']),
    ]);
    agent = await startAgent({ dockerHost: d.host });
    await agent.waitFor(
      async () => hasOwnSeries((await scrape()).text, names.gone),
      30_000,
      200,
      'the test containers on /metrics',
    );
  });

  afterAll(async () => {
    await prom?.stop();
    await agent?.stop();
  });

  it('passes promtool check metrics', async () => {
    const { text } = await scrape();
    const out = execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(out).toBe('');
  });

  it('pids current matches the processes started in the container', async () => {
    const { m } = await scrape();
    expect(value(m, 'container_processes', names.pids)).toBe(4);
    expect(value(m, 'container_threads', names.pids)).toBe(4);
  });

  it('reports the working set of a container holding 64 MiB within 10%', async () => {
    const ws = await waitFor(
      async () => {
        const v = value((await scrape()).m, 'container_memory_working_set_bytes', names.mem);
        return v !== undefined && v > 32 * MiB ? v : undefined;
      },
      20_000,
      250,
      'the 64 MiB to be written',
    );
    expect(Math.abs(ws - 64 * MiB)).toBeLessThan(6.4 * MiB);
  });

  it('shows the memory limit being hit and the OOM counter rise under --memory 16m', async () => {
    // tail -c buffers its input in anonymous memory: 64 MiB cannot fit under 16 MiB. The exec'd
    // processes make themselves the OOM killer's first choice so the container's init survives.
    const r = await getDocker().docker([
      'exec',
      names.oom,
      'sh',
      '-c',
      'echo 1000 >/proc/self/oom_score_adj; head -c 67108864 /dev/zero | tail -c 67108864 >/dev/null',
    ]);
    expect(r.code).toBe(137);
    await waitFor(
      async () => {
        const { m } = await scrape();
        const peak = value(m, 'container_memory_max_usage_bytes', names.oom) ?? 0;
        // container_oom_events_total is registered by the lifecycle component from the shared
        // OomTracker, which this collector feeds with the cgroup's oom_kill counter
        const oom = value(m, 'container_oom_events_total', names.oom);
        return peak >= 15 * MiB && (oom === undefined || oom > 0);
      },
      30_000,
      250,
      'the memory peak to reach the limit and container_oom_events_total (when served) to rise',
    );
    const { m } = await scrape();
    expect(value(m, 'container_spec_memory_limit_bytes', names.oom)).toBe(16 * MiB);
    expect(value(m, 'container_memory_usage_bytes', names.oom)).toBeLessThan(16 * MiB);
  });

  it('shows block I/O or page-cache growth for a writer', async () => {
    await waitFor(
      async () => {
        const { m } = await scrape();
        const written = value(m, 'container_fs_writes_bytes_total', names.writer) ?? 0;
        const cache = value(m, 'container_memory_cache', names.writer) ?? 0;
        return written >= 32 * MiB || cache >= 32 * MiB;
      },
      30_000,
      250,
      'fs writes or page cache of the writer to grow',
    );
  });

  it('is scraped by a real Prometheus: CPU rate under --cpus 0.5 and throttling, names queryable', async () => {
    prom = await startPrometheus({ targets: [new URL(agent.url).host] });
    const { m: before } = await scrape();
    const throttled0 = value(before, 'container_cpu_cfs_throttled_periods_total', names.cpu) ?? 0;
    await prom.waitForTargets();
    await sleep(12_000);
    const rate = await query(
      `rate(container_cpu_usage_seconds_total{name="${names.cpu}",cpu="total"}[10s])`,
    );
    expect(rate).toHaveLength(1);
    const r = Number(rate[0]?.value[1]);
    expect(r).toBeGreaterThan(0.4);
    expect(r).toBeLessThan(0.6);
    const { m: after } = await scrape();
    expect(value(after, 'container_cpu_cfs_throttled_periods_total', names.cpu)).toBeGreaterThan(
      throttled0,
    );
    const byName = await query(
      `container_start_time_seconds{name=~"${Object.values(names).join('|')}"}`,
    );
    expect(new Set(byName.map((s) => s.metric.name))).toEqual(new Set(Object.values(names)));
  });

  it('drops a removed container on the next scrape; a restarted one keeps its name with fresh counters', async () => {
    const d = getDocker();
    await d.dockerOk(['rm', '-f', names.gone]);
    await waitFor(
      async () => !hasOwnSeries((await scrape()).text, names.gone),
      10_000,
      200,
      'the removed container to disappear',
    );
    const { m: before } = await scrape();
    const cpuBefore = value(before, 'container_cpu_usage_seconds_total', names.cpu) ?? 0;
    expect(cpuBefore).toBeGreaterThan(2);
    await d.dockerOk(['stop', names.cpu]);
    await waitFor(
      async () => !hasOwnSeries((await scrape()).text, names.cpu),
      15_000,
      200,
      'the stopped container to disappear',
    );
    await d.dockerOk(['start', names.cpu]);
    const cpuAfter = await waitFor(
      async () => value((await scrape()).m, 'container_cpu_usage_seconds_total', names.cpu),
      15_000,
      200,
      'the restarted container to reappear',
    );
    expect(cpuAfter).toBeLessThan(cpuBefore);
  });
});
