// Foundation acceptance 1: every container operation shows in the inventory within 1 s. And no
// event is missed or handled twice around a subscription: a container that starts and is removed
// before the inventory subscribes, or while its stream is lost, is still seen, once.
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { pino } from 'pino';
import { DockerClient } from '../../src/docker/client.js';
import { Inventory } from '../../src/docker/inventory.js';
import type { ContainerInfo, DockerEvent, InventoryEvent } from '../../src/docker/types.js';
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

  /** `<name> <action>` of each container event of a run, in the order handled; `*`: replayed. */
  const recordEvents = (inv: Inventory, prefix: string): string[] => {
    const seen: string[] = [];
    inv.onDockerEvent((ev: DockerEvent, replayed: boolean) => {
      const name = ev.Actor.Attributes?.name ?? '';
      if (ev.Type === 'container' && name.startsWith(prefix))
        seen.push(`${name} ${ev.Action}${replayed ? ' *' : ''}`);
    });
    return seen;
  };
  const lifecycle = (name: string, replayed: boolean): string[] =>
    ['create', 'attach', 'start', 'die', 'destroy'].map(
      (a) => `${name} ${a}${replayed ? ' *' : ''}`,
    );

  it('sees a container started and removed before it subscribed, once', async () => {
    const name = uniqueName('before');
    const client = new DockerClient({ host: getDocker().host });
    const fresh = new Inventory({ client, logger: pino({ level: 'silent' }) });
    const seen = recordEvents(fresh, name);
    // the agent has started (the inventory exists) but has not subscribed yet
    await runContainer(['--rm', '--name', name, TEST_IMAGE, 'true']);
    const ctl = new AbortController();
    await fresh.start(ctl.signal);
    try {
      await fresh.waitReady();
      await waitFor(() => seen.includes(`${name} destroy *`), 10_000, 50, 'the replayed destroy');
      expect([...seen].sort()).toEqual(lifecycle(name, true).sort());
    } finally {
      await fresh.stop();
    }
  });

  it('after a lost stream, sees what happened meanwhile and handles nothing twice', async () => {
    // a proxy in front of the daemon's socket that can drop every connection and refuse new ones
    const dir = await mkdtemp(path.join(os.tmpdir(), 'hm-inv-proxy-'));
    const sock = path.join(dir, 'docker.sock');
    const daemon = new URL(getDocker().host).pathname;
    const open = new Set<net.Socket>();
    let refusing = false;
    const proxy = net.createServer((down) => {
      if (refusing) return void down.destroy();
      const up = net.connect(daemon);
      open.add(down).add(up);
      const close = (): void => {
        down.destroy();
        up.destroy();
        open.delete(down);
        open.delete(up);
      };
      down.on('error', close).on('close', close);
      up.on('error', close).on('close', close);
      down.pipe(up).pipe(down);
    });
    await new Promise<void>((r) => proxy.listen(sock, r));
    const prefix = uniqueName('lost');
    const client = new DockerClient({ host: `unix://${sock}` });
    const inv = new Inventory({
      client,
      logger: pino({ level: 'silent' }),
      initialBackoffMs: 100,
      maxBackoffMs: 300,
    });
    const seen = recordEvents(inv, prefix);
    const ctl = new AbortController();
    try {
      await inv.start(ctl.signal);
      await inv.waitReady();
      // seen live; its events are the newest, so the replay after the reconnect repeats them
      await runContainer(['--rm', '--name', `${prefix}-a`, TEST_IMAGE, 'true']);
      await waitFor(() => seen.includes(`${prefix}-a destroy`), 10_000, 50, 'a destroyed');
      refusing = true;
      for (const s of open) s.destroy();
      await waitFor(() => !inv.ready(), 10_000, 20, 'the inventory noticing the lost stream');
      // started and removed while the inventory cannot reach the daemon
      await runContainer(['--rm', '--name', `${prefix}-b`, TEST_IMAGE, 'true']);
      refusing = false;
      await waitFor(() => inv.ready(), 10_000, 50, 'the inventory reconnected');
      await waitFor(() => seen.includes(`${prefix}-b destroy *`), 10_000, 50, 'b replayed');
      // a: live, once; b: replayed (marked: the lifecycle collector leaves such events to the
      // re-list), once
      expect([...seen].sort()).toEqual(
        [...lifecycle(`${prefix}-a`, false), ...lifecycle(`${prefix}-b`, true)].sort(),
      );
    } finally {
      await inv.stop();
      proxy.close();
      for (const s of open) s.destroy();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
