// Issue 3 acceptance with real containers on the private dockerd, a real Prometheus and promtool.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CONTAINER_FAMILIES } from '../../src/collectors/containers.js';
import {
  TEST_IMAGE,
  describeDocker,
  getDocker,
  runContainer,
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
        '0.2',
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
    // The container ran before the agent started, so its OOM count starts at the first read
    // (0 kills then). The kernel's own count of OOM kills in the container's memory cgroup (v1
    // memory.oom_control oom_kill; v2 memory.events oom_kill) is the truth to compare with.
    // On cgroup v1 dockerd emits one `oom` event per OOM notification, several per kill on a
    // loaded host; the agent must still count exactly the kernel's kills (src/collectors/oom.ts).
    const pid = (await getDocker().dockerOk(['inspect', '-f', '{{.State.Pid}}', names.oom])).trim();
    const kernelKills = (): number => {
      const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n');
      const v1 = lines.find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l));
      const file = v1
        ? `/sys/fs/cgroup/memory${v1.slice(v1.lastIndexOf(':') + 1)}/memory.oom_control`
        : `/sys/fs/cgroup${(lines.find((l) => l.startsWith('0::')) ?? '0::/').slice(3)}/memory.events`;
      return Number(/^oom_kill (\d+)$/m.exec(readFileSync(file, 'utf8'))?.[1] ?? NaN);
    };
    const kills = kernelKills();
    expect(kills).toBeGreaterThanOrEqual(1);
    let seen = '';
    await waitFor(
      async () => {
        const { m } = await scrape();
        const peak = value(m, 'container_memory_max_usage_bytes', names.oom) ?? 0;
        const oom = value(m, 'container_oom_events_total', names.oom);
        seen = `peak ${peak} B, container_oom_events_total ${String(oom)}, kernel oom_kill ${kills}`;
        return peak >= 15 * MiB && oom === kills;
      },
      30_000,
      250,
      'the memory peak to reach the limit and container_oom_events_total to equal oom_kill',
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}: ${seen}`, { cause: err });
    });
    const { m } = await scrape();
    expect(value(m, 'container_oom_events_total', names.oom)).toBe(kills);
    expect(value(m, 'container_spec_memory_limit_bytes', names.oom)).toBe(16 * MiB);
    expect(value(m, 'container_memory_usage_bytes', names.oom)).toBeLessThan(16 * MiB);
  });

  // container_fs_{reads,writes}_bytes_total are asserted on the cgroup fixture trees only
  // (test/unit/collectors/containers.test.ts, goldens): this machine's kernel accounts no block
  // I/O to cgroups (blkio stays 0 for overlay writes), so here only the page cache can grow.
  it('shows the page cache of a writer that wrote 48 MiB', async () => {
    const cache = await waitFor(
      async () => {
        const v = value((await scrape()).m, 'container_memory_cache', names.writer) ?? 0;
        return v >= 44 * MiB ? v : undefined;
      },
      30_000,
      250,
      'the page cache of the writer to hold the 48 MiB file',
    );
    // the file plus a little (the shell, busybox pages): not the whole host's cache
    expect(cache).toBeLessThan(64 * MiB);
  });

  it('is scraped by a real Prometheus: CPU rate under --cpus 0.2 and throttling, names queryable', async () => {
    prom = await startPrometheus({ targets: [new URL(agent.url).host] });
    const { m: before } = await scrape();
    const throttled0 = value(before, 'container_cpu_cfs_throttled_periods_total', names.cpu) ?? 0;
    await prom.waitForTargets();
    // Wait until Prometheus holds 10 s of samples of the container (not a fixed sleep): then the
    // rate over the last 10 s is measured on at least 8 scrapes.
    const series = `container_cpu_usage_seconds_total{name="${names.cpu}",cpu="total"}`;
    await waitFor(
      async () => Number((await query(`count_over_time(${series}[10s])`))[0]?.value[1] ?? 0) >= 8,
      60_000,
      500,
      '8 scrapes of the CPU counter within 10 s',
    );
    const rate = await query(`rate(${series}[10s])`);
    expect(rate).toHaveLength(1);
    const r = Number(rate[0]?.value[1]);
    // The quota caps the busy loop at 0.2 CPU: never above it (plus scrape jitter). How close it
    // gets depends on what else runs on this host's cores (0.26 of a 0.5 quota measured on the
    // shared 2-core CI machine at load 28), so the lower bound only shows the counter moves in
    // seconds, not nanoseconds.
    expect(r).toBeGreaterThan(0.01);
    expect(r).toBeLessThan(0.25);
    // throttling: polled, the busy loop hits its quota as soon as it gets a core for 20 ms of a
    // 100 ms period
    await waitFor(
      async () =>
        (value((await scrape()).m, 'container_cpu_cfs_throttled_periods_total', names.cpu) ?? 0) >
        throttled0,
      60_000,
      250,
      'throttled periods to rise',
    );
    const byName = await query(
      `container_start_time_seconds{name=~"${Object.values(names).join('|')}"}`,
    );
    expect(new Set(byName.map((s) => s.metric.name))).toEqual(new Set(Object.values(names)));
  });

  it('reports the engine (docker_engine_*) and the host (machine_*) as the daemon and node see them', async () => {
    const d = getDocker();
    const version = (await d.dockerOk(['version', '--format', '{{.Server.Version}}'])).trim();
    const images = Number((await d.dockerOk(['info', '--format', '{{.Images}}'])).trim());
    const { m, text } = await waitFor(
      async () => {
        const r = await scrape();
        return r.m.get('docker_engine_images') ? r : undefined;
      },
      30_000,
      250,
      'docker_engine_images',
    );
    expect(m.get('docker_engine_info')?.[0]?.labels.version).toBe(version);
    expect(m.get('docker_engine_images')?.[0]?.value).toBe(images);
    const running = (await d.dockerOk(['ps', '-q'])).split('\n').filter(Boolean).length;
    const states = m.get('docker_engine_containers') ?? [];
    expect(states.find((x) => x.labels.state === 'running')?.value).toBe(running);
    expect(m.get('machine_cpu_cores')?.[0]?.value).toBe(os.cpus().length);
    expect(m.get('machine_memory_bytes')?.[0]?.value).toBe(os.totalmem());
    expect(text).toMatch(/^machine_info\{.*\} 1$/m);
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
    // the busy container has used more than 1 s of CPU (it runs since beforeAll; polled, so this
    // does not depend on how long the tests before this one took)
    const cpuBefore = await waitFor(
      async () => {
        const v = value((await scrape()).m, 'container_cpu_usage_seconds_total', names.cpu) ?? 0;
        return v > 1 ? v : undefined;
      },
      60_000,
      250,
      'the busy container to use 1 s of CPU',
    );
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
