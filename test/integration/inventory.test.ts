// Foundation acceptance 1: every container operation shows in the inventory within 1 s.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { pino } from 'pino';
import { DockerClient } from '../../src/docker/client.js';
import { Inventory } from '../../src/docker/inventory.js';
import type { ContainerInfo, InventoryEvent } from '../../src/docker/types.js';
import {
  TEST_IMAGE,
  describeDocker,
  getDocker,
  runContainer,
  uniqueName,
  waitFor,
} from './harness/index.js';

describeDocker('inventory follows the daemon', () => {
  let inventory: Inventory;
  const events: InventoryEvent[] = [];
  const controller = new AbortController();

  beforeAll(async () => {
    const docker = getDocker();
    const client = new DockerClient({ host: docker.host });
    inventory = new Inventory({ client, logger: pino({ level: 'silent' }), removedGraceMs: 5_000 });
    inventory.subscribe((e) => events.push(e));
    await inventory.start(controller.signal);
    await inventory.waitReady();
  });

  afterAll(async () => {
    controller.abort();
    await inventory?.stop();
  });

  /** Waits until the inventory entry satisfies pred; returns how long that took. */
  async function within1s(
    id: string,
    pred: (c: ContainerInfo | undefined) => boolean,
    what: string,
  ) {
    const t0 = Date.now();
    await waitFor(() => pred(inventory.list().find((c) => c.id === id)), 5_000, 10, what);
    const ms = Date.now() - t0;
    expect(ms, `${what} took ${ms} ms`).toBeLessThan(1000);
    return ms;
  }

  it('reflects create, start, rename, pause, unpause, stop, kill, restart and remove within 1 s', async () => {
    const docker = getDocker();
    const name = uniqueName('inv');
    const labels = { 'com.example.team': 'payments', 'quote"and\\slash': 'va"lue\nnewline' };
    const id = (
      await docker.dockerOk([
        'create',
        '--network',
        'none',
        '--label',
        'harbormaster.test=1',
        ...Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]),
        '--name',
        name,
        '--stop-timeout',
        '1',
        TEST_IMAGE,
        'sleep',
        '300',
      ])
    ).trim();
    const timings: Record<string, number> = {};
    timings.create = await within1s(id, (c) => c?.state === 'created', 'created');
    const created = inventory.get(id);
    expect(created?.name).toBe(name);
    expect(created?.image).toBe(TEST_IMAGE);
    expect(created?.labels).toMatchObject(labels);
    expect(created?.logDriver).toBe('json-file');
    expect(created?.cgroup.v1).toBe(`/docker/${id}`);

    await docker.dockerOk(['start', id]);
    timings.start = await within1s(
      id,
      (c) => c?.state === 'running' && (c?.pid ?? 0) > 0,
      'running',
    );
    expect(inventory.get(id)?.startedAt).toBeGreaterThan(0);

    const renamed = `${name}-renamed`;
    await docker.dockerOk(['rename', id, renamed]);
    timings.rename = await within1s(id, (c) => c?.name === renamed, 'renamed');

    await docker.dockerOk(['pause', id]);
    timings.pause = await within1s(id, (c) => c?.state === 'paused', 'paused');
    await docker.dockerOk(['unpause', id]);
    timings.unpause = await within1s(id, (c) => c?.state === 'running', 'unpaused');

    await docker.dockerOk(['stop', '-t', '1', id]);
    timings.stop = await within1s(id, (c) => c?.state === 'exited', 'stopped');
    expect(inventory.get(id)?.exitCode).toBe(137); // busybox sleep ignores SIGTERM: killed after 1 s

    await docker.dockerOk(['start', id]);
    await within1s(id, (c) => c?.state === 'running', 'running again');
    await docker.dockerOk(['kill', id]);
    timings.kill = await within1s(id, (c) => c?.state === 'exited', 'killed');

    await docker.dockerOk(['start', id]);
    await within1s(id, (c) => c?.state === 'running', 'running before restart');
    const before = inventory.get(id)?.startedAt ?? 0;
    await docker.dockerOk(['restart', '-t', '1', id]);
    timings.restart = await within1s(
      id,
      (c) => c?.state === 'running' && c.startedAt > before,
      'restarted (new start time)',
    );

    await docker.dockerOk(['rm', '-f', id]);
    timings.remove = await within1s(id, (c) => c === undefined, 'removed');
    // still resolvable for late readers during the grace period, labels intact
    expect(inventory.get(id)?.name).toBe(renamed);
    expect(inventory.get(id)?.labels).toMatchObject(labels);
    const kinds = events.filter((e) => e.container.id === id).map((e) => e.type);
    expect(kinds[0]).toBe('added');
    expect(kinds.at(-1)).toBe('removed');
    console.log('inventory latency (ms):', JSON.stringify(timings));
  });

  it('lists containers that existed before it started, with their identity', async () => {
    const name = uniqueName('pre');
    const id = (
      await runContainer(['-d', '--name', name, '--label', 'app=pre', TEST_IMAGE, 'sleep', '300'])
    ).stdout.trim();
    const client = new DockerClient({ host: getDocker().host });
    const fresh = new Inventory({ client, logger: pino({ level: 'silent' }) });
    const ctl = new AbortController();
    await fresh.start(ctl.signal);
    await fresh.waitReady();
    const c = fresh.get(id);
    expect(c).toMatchObject({
      name,
      state: 'running',
      labels: { app: 'pre' },
      networkMode: 'none',
    });
    expect(c?.logPath).toMatch(new RegExp(`${id}-json\\.log$`));
    expect(c?.imageId).toMatch(/^sha256:/);
    expect(fresh.engine()?.apiVersion).toMatch(/^1\.\d+$/);
    await fresh.stop();
  });
});
