import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { OomTracker } from '../../../src/collectors/oom.js';
import { ContainerMetrics } from '../../../src/collectors/containers.js';
import { containerSelection } from '../../../src/docker/selection.js';
import { detectCgroupLayout } from '../../../src/collectors/cgroup/detect.js';
import { MachineMetrics } from '../../../src/collectors/machine.js';
import {
  FIXTURES,
  FIXTURE_ID,
  StaticSource,
  containerInfo,
  expectGolden,
  promtoolCheck,
  silentLogger,
} from './helpers.js';

const NOW = Date.UTC(2025, 5, 1, 12, 0, 0);
const ALLOW = ['com.docker.compose.project', 'com.docker.compose.service'];

function collector(
  shape: string,
  source: StaticSource,
  extra: Partial<ConstructorParameters<typeof ContainerMetrics>[0]> = {},
) {
  return new ContainerMetrics({
    inventory: source,
    logger: silentLogger,
    registry: new Registry(),
    cgroupRoot: join(FIXTURES, shape, 'sys/fs/cgroup'),
    procRoot: join(FIXTURES, shape, 'proc'),
    labelAllowlist: ALLOW,
    minIntervalMs: 0,
    now: () => NOW,
    // the host's id="/" series are in the golden files; the other tests are about containers
    disabled: ['root'],
    ...extra,
  });
}

const SHAPES = [
  { shape: 'v1-cgroupfs', driver: 'cgroupfs', mode: 'hybrid' },
  { shape: 'v1-systemd', driver: 'systemd', mode: 'hybrid' },
  { shape: 'v2-cgroupfs', driver: 'cgroupfs', mode: 'v2' },
  { shape: 'v2-systemd', driver: 'systemd', mode: 'v2' },
] as const;

/** A writable layer of 20 MiB + 4 KiB in 12 entries on a 100 GiB filesystem (fixed figures). */
const FS_USAGE = {
  usage: (id: string) =>
    id === FIXTURE_ID ? { bytes: 20 * 1024 * 1024 + 4096, inodes: 12, at: NOW } : undefined,
  filesystem: () => ({
    device: '/dev/sda1',
    sizeBytes: 100 * 2 ** 30,
    inodesTotal: 6_553_600,
    inodesFree: 6_000_000,
  }),
};

/** The part of a golden file the container collector renders (machine_* follows it). */
function containerPart(golden: string): string {
  const i = golden.indexOf('# HELP machine_');
  return i < 0 ? golden : golden.slice(0, i);
}

describe('container metrics from cgroup fixture trees', () => {
  for (const { shape, driver, mode } of SHAPES) {
    it(`${shape}: matches the golden exposition and passes promtool`, async () => {
      const root = join(FIXTURES, shape, 'sys/fs/cgroup');
      expect(detectCgroupLayout(root).mode).toBe(mode);
      const oom = new OomTracker(() => 0); // the agent watched the run start: count from 0
      const c = collector(shape, new StaticSource([containerInfo({ driver })]), {
        oom,
        disabled: [],
        perCpu: true,
        fsUsage: FS_USAGE,
      });
      c.start();
      const text = (await c.render()) + new MachineMetrics(join(FIXTURES, shape, 'proc')).render();
      expectGolden(join(FIXTURES, `${shape}.golden.prom`), text);
      expect(promtoolCheck(text)).toEqual({ code: 0, output: '' });
      // the same collection in OpenMetrics (what Prometheus asks for), against its own golden
      const om = await c.renderChunks(true);
      expectGolden(
        join(FIXTURES, `${shape}.golden.om`),
        Buffer.concat(om.chunks).toString('utf8') + '# EOF\n',
      );
      om.release();
      // the cgroup OOM counter reaches the shared tracker
      expect(oom.total(FIXTURE_ID)).toBe(2);
    });
  }

  it('reports cAdvisor semantics for the v2 fixture', async () => {
    const c = collector('v2-systemd', new StaticSource([containerInfo({ driver: 'systemd' })]));
    c.start();
    const text = await c.render();
    const lbl = `id="/system.slice/docker-${FIXTURE_ID}.scope",image="nginx:1.27",name="web-1",container_label_com_docker_compose_project="shop",container_label_com_docker_compose_service="web"`;
    expect(text).toContain(`container_cpu_usage_seconds_total{${lbl},cpu="total"} 123.456789\n`);
    // working set = usage - inactive_file
    expect(text).toContain(`container_memory_working_set_bytes{${lbl}} ${52428800 - 10485760}\n`);
    expect(text).toContain(`container_spec_memory_swap_limit_bytes{${lbl}} 0\n`); // max => 0
    expect(text).toContain(`container_spec_cpu_quota{${lbl}} 50000\n`);
    expect(text).toContain(`container_threads_max{${lbl}} 100\n`);
    expect(text).toContain(`container_fs_writes_bytes_total{${lbl},device="/dev/sda"} 4194304\n`);
    expect(text).toContain(
      `container_network_receive_bytes_total{${lbl},interface="eth0"} 123456\n`,
    );
    expect(text).not.toContain('interface="lo"');
    expect(text).not.toContain('not_allowlisted');
    expect(text).toContain(`container_pressure_cpu_waiting_seconds_total{${lbl}} 2.5\n`);
  });

  it('skips and counts a container whose cgroup is gone, without failing the scrape', async () => {
    const registry = new Registry();
    const src = new StaticSource([
      containerInfo(),
      containerInfo({ id: 'dead'.repeat(16), name: 'ghost' }),
    ]);
    const c = collector('v1-cgroupfs', src, { registry });
    c.start();
    const text = await c.render();
    expect(text).toContain('name="web-1"');
    expect(text).not.toContain('name="ghost"');
    const m = await registry.getSingleMetricAsString('harbormaster_cgroup_skipped_total');
    expect(m).toContain('harbormaster_cgroup_skipped_total{reason="cgroup_vanished"} 1');
  });

  it('drops a removed container from the next scrape and skips stopped ones', async () => {
    const src = new StaticSource([containerInfo()]);
    const c = collector('v1-cgroupfs', src);
    c.start();
    expect(await c.render()).toContain('name="web-1"');
    src.remove(FIXTURE_ID);
    expect(await c.render()).toBe('');
    src.set(containerInfo({ state: 'exited', pid: 0 }));
    expect(await c.render()).toBe('');
  });

  it('switches metric groups and single families off', async () => {
    const c = collector('v2-cgroupfs', new StaticSource([containerInfo()]), {
      disabled: ['network', 'pressure', 'container_memory_swap'],
    });
    c.start();
    const text = await c.render();
    expect(text).not.toContain('container_network_');
    expect(text).not.toContain('container_pressure_');
    expect(text).not.toContain('container_memory_swap ');
    expect(text).toContain('container_memory_rss');
  });

  it('leaves excluded containers out without reading their cgroups', async () => {
    const registry = new Registry();
    const ghost = 'dead'.repeat(16); // no cgroup in the fixture: reading it would be counted
    const src = new StaticSource([
      containerInfo(),
      containerInfo({ id: ghost, name: 'tmp-job' }),
      containerInfo({
        id: 'beef'.repeat(16),
        name: 'quiet',
        labels: { 'harbormaster.metrics.enabled': 'false' },
      }),
    ]);
    const c = collector('v1-cgroupfs', src, {
      registry,
      selection: containerSelection({
        exclude: ['name:tmp-*'],
        optOutLabel: 'harbormaster.metrics.enabled',
      }),
    });
    c.start();
    const text = await c.render();
    expect(text).toContain('name="web-1"');
    expect(text).not.toContain('tmp-job');
    expect(text).not.toContain('quiet');
    const m = await registry.getSingleMetricAsString('harbormaster_cgroup_skipped_total');
    expect(m).toContain('harbormaster_cgroup_skipped_total{reason="cgroup_vanished"} 0');
    expect([...c.activeIds()]).toEqual([FIXTURE_ID]);
    // a rename into an exclude rule drops the series at the next scrape
    src.set(containerInfo({ name: 'tmp-web' }));
    expect(await c.render()).toBe('');
    expect(c.openFiles()).toBe(0);
  });

  it('does not duplicate network series for host or shared namespaces', async () => {
    const other = 'beef'.repeat(16);
    const src = new StaticSource([
      containerInfo(),
      // joins the first one's namespace: same pid dir in the fixture, so same inode
      containerInfo({ id: other, name: 'sidecar', networkMode: `container:${FIXTURE_ID}` }),
      containerInfo({ id: 'aaaa'.repeat(16), name: 'hostnet', networkMode: 'host' }),
    ]);
    const c = collector('v2-cgroupfs', src);
    c.start();
    const text = await c.render();
    const rx = text
      .split('\n')
      .filter((l) => l.startsWith('container_network_receive_bytes_total'));
    expect(rx).toHaveLength(1);
    expect(rx[0]).toContain('name="web-1"');
  });

  it('serves two scrapes within the minimum interval from one collection', async () => {
    let now = NOW;
    const registry = new Registry();
    const c = collector('v1-cgroupfs', new StaticSource([containerInfo()]), {
      registry,
      minIntervalMs: 1000,
      now: () => now,
    });
    c.start();
    const [a, b] = await Promise.all([c.render(), c.render()]);
    expect(a).toBe(b);
    now += 500;
    await c.render();
    const count = async () =>
      (await registry.getSingleMetric('harbormaster_metrics_collections_total')?.get())?.values[0]
        ?.value;
    expect(await count()).toBe(1);
    now += 600;
    await c.render();
    expect(await count()).toBe(2);
  });
});

describe('kept-open cgroup files', () => {
  function copyTree(shape: string): string {
    const dir = mkdtempSync(join(tmpdir(), 'hm-cg-'));
    cpSync(join(FIXTURES, shape), dir, { recursive: true, verbatimSymlinks: true });
    return dir;
  }

  for (const shape of ['v1-cgroupfs', 'v2-cgroupfs']) {
    it(`${shape}: renders the same with files kept open, opened per read, and in OpenMetrics`, async () => {
      const opts = { perCpu: true, fsUsage: FS_USAGE, disabled: [] };
      const kept = collector(shape, new StaticSource([containerInfo()]), opts);
      const perRead = collector(shape, new StaticSource([containerInfo()]), {
        ...opts,
        maxOpenFiles: 0,
      });
      kept.start();
      perRead.start();
      const golden = containerPart(readFileSync(join(FIXTURES, `${shape}.golden.prom`), 'utf8'));
      expect(await kept.render()).toBe(golden);
      expect(kept.openFiles()).toBeGreaterThan(10);
      expect(await kept.render()).toBe(golden); // second read of the same descriptors (pread at 0)
      expect(await perRead.render()).toBe(golden);
      expect(perRead.openFiles()).toBe(0);
      const om = await kept.renderChunks(true);
      expect(Buffer.concat(om.chunks).toString('utf8') + '# EOF\n').toBe(
        readFileSync(join(FIXTURES, `${shape}.golden.om`), 'utf8'),
      );
      om.release();
      kept.stop();
      expect(kept.openFiles()).toBe(0);
    });
  }

  it('keeps open what the open-files limit leaves after the agent, HTTP clients and log files', async () => {
    const golden = containerPart(readFileSync(join(FIXTURES, 'v1-cgroupfs.golden.prom'), 'utf8'));
    // what a generous limit keeps open for the one running container
    const all = collector('v1-cgroupfs', new StaticSource([containerInfo()]), {
      fsUsage: FS_USAGE,
      disabled: [],
      perCpu: true,
      openFilesLimit: () => 1_000_000,
    });
    all.start();
    expect(await all.render()).toBe(golden);
    const files = all.openFiles();
    expect(files).toBeGreaterThan(10);
    all.stop();

    let limit = 256 + 50 + 2 * 1 + 5; // room for 5 files with one known container
    let now = NOW;
    const src = new StaticSource([containerInfo()]);
    const c = collector('v1-cgroupfs', src, {
      fsUsage: FS_USAGE,
      disabled: [],
      perCpu: true,
      httpConnections: 50,
      openFilesLimit: () => limit,
      now: () => now,
    });
    c.start();
    expect(await c.render()).toBe(golden); // files beyond the budget are read all the same
    expect(c.fileBudget().limit).toBe(5);
    expect(c.openFiles()).toBe(5);
    // two more containers known to the daemon (stopped: no cgroup files, but log files): 4 fewer
    src.set(containerInfo({ id: 'a'.repeat(64), name: 'old-1', state: 'exited' }));
    src.set(containerInfo({ id: 'b'.repeat(64), name: 'old-2', state: 'exited' }));
    expect(await c.render()).toBe(golden);
    expect(c.fileBudget().limit).toBe(1);
    expect(c.openFiles()).toBeLessThanOrEqual(1); // files over the budget closed
    expect(await c.render()).toBe(golden);
    expect(c.openFiles()).toBe(1);
    // prlimit raises the limit of the running agent: followed within 5 s
    limit = 1_000_000;
    now += 1000;
    await c.render();
    expect(c.openFiles()).toBe(1);
    now += 5000;
    await c.render();
    expect(c.openFiles()).toBe(files);
    c.stop();
    expect(c.openFiles()).toBe(0);
  });

  it('sees new values, survives a re-created cgroup and counts a vanished one', async () => {
    const root = copyTree('v1-cgroupfs');
    try {
      const registry = new Registry();
      const src = new StaticSource([containerInfo()]);
      const c = new ContainerMetrics({
        inventory: src,
        logger: silentLogger,
        registry,
        cgroupRoot: join(root, 'sys/fs/cgroup'),
        procRoot: join(root, 'proc'),
        labelAllowlist: ALLOW,
        minIntervalMs: 0,
        now: () => NOW,
        disabled: ['root'],
      });
      c.start();
      expect(await c.render()).toContain('container_memory_failcnt{');
      const dir = join(root, 'sys/fs/cgroup/memory/docker', FIXTURE_ID);
      writeFileSync(join(dir, 'memory.failcnt'), '9\n');
      expect(await c.render()).toMatch(/container_memory_failcnt\{[^}]*\} 9\n/);
      // a restart makes a new cgroup at the same path (the inventory reports a new run): the
      // files are opened again. (On cgroupfs the old descriptors would also fail with ENODEV
      // and be reopened once; a regular file system keeps serving the unlinked inode.)
      const copy = dir + '.new';
      cpSync(dir, copy, { recursive: true });
      rmSync(dir, { recursive: true });
      renameSync(copy, dir);
      writeFileSync(join(dir, 'memory.failcnt'), '11\n');
      src.set(containerInfo({ startedAt: containerInfo().startedAt + 1000 }));
      expect(await c.render()).toMatch(/container_memory_failcnt\{[^}]*\} 11\n/);
      // the next run's cgroup is gone before it is read: skipped, counted, nothing kept open
      rmSync(join(root, 'sys/fs/cgroup/cpuacct/docker', FIXTURE_ID), { recursive: true });
      src.set(containerInfo({ startedAt: containerInfo().startedAt + 2000 }));
      expect(await c.render()).toBe('');
      expect(c.openFiles()).toBe(0);
      const m = await registry.getSingleMetricAsString('harbormaster_cgroup_skipped_total');
      expect(m).toContain('harbormaster_cgroup_skipped_total{reason="cgroup_vanished"} 1');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('reads limits again after an inventory update', async () => {
    const root = copyTree('v2-cgroupfs');
    try {
      const src = new StaticSource([containerInfo()]);
      const c = new ContainerMetrics({
        inventory: src,
        logger: silentLogger,
        cgroupRoot: join(root, 'sys/fs/cgroup'),
        procRoot: join(root, 'proc'),
        minIntervalMs: 0,
        now: () => NOW,
      });
      c.start();
      expect(await c.render()).toMatch(/container_spec_memory_limit_bytes\{[^}]*\} 67108864\n/);
      writeFileSync(join(root, 'sys/fs/cgroup/docker', FIXTURE_ID, 'memory.max'), '1048576\n');
      // limits are cached until the inventory reports a change (docker update)
      expect(await c.render()).toMatch(/container_spec_memory_limit_bytes\{[^}]*\} 67108864\n/);
      src.set(containerInfo());
      expect(await c.render()).toMatch(/container_spec_memory_limit_bytes\{[^}]*\} 1048576\n/);
      c.stop();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('inventory changes during a collection', () => {
  it('does not report or reopen files of a container removed while the collection yields', async () => {
    const fixture = containerInfo();
    const many = Array.from({ length: 600 }, (_, i) =>
      containerInfo({
        id: i.toString(16).padStart(64, 'c'),
        name: `c${i}`,
        cgroup: fixture.cgroup,
        pid: fixture.pid,
      }),
    );
    const src = new StaticSource(many);
    const c = collector('v1-cgroupfs', src);
    c.start();
    const pending = c.render(); // runs synchronously up to its first yield (after 250 containers)
    src.remove(many[0]!.id);
    const text = await pending;
    expect(text).not.toContain('name="c0"');
    expect(text).toContain('name="c599"');
    expect(await c.render()).not.toContain('name="c0"');
    c.stop();
    expect(c.openFiles()).toBe(0);
  });
});
