import { describe, expect, it } from 'vitest';
import { LifecycleTracker } from '../../../src/collectors/lifecycle/tracker.js';
import { lifecycleSelection, renderLifecycle } from '../../../src/collectors/lifecycle/index.js';
import { metricsSection } from '../../../src/config/sections/metrics.js';
import type { ContainerInfo, DockerEvent } from '../../../src/docker/types.js';
import { makeContainerInfo } from '../../support/container-info.js';
import type { ContainerRun } from '../../../src/exporters/otlp-traces.js';
import { imageNameAndTags } from '../../../src/docker/image-ref.js';
import { runToSpan, traceIdFor } from '../../../src/exporters/otlp-traces.js';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { SpanStatusCode } from '@opentelemetry/api';

const ID = 'a'.repeat(64);
const T0 = 1_700_000_000_000;

function info(over: Partial<ContainerInfo> = {}): ContainerInfo {
  return makeContainerInfo({
    id: ID,
    imageId: 'sha256:x',
    labels: { 'com.docker.compose.service': 'web', other: 'x' },
    createdAt: T0 - 1000,
    startedAt: T0,
    networkMode: 'none',
    cgroup: { v1: `/docker/${ID}`, v2: `/system.slice/docker-${ID}.scope` },
    ...over,
  });
}

function ev(
  action: string,
  ms: number,
  attrs: Record<string, string> = {},
  type = 'container',
): DockerEvent {
  return {
    Type: type,
    Action: action,
    Actor: { ID: ID, Attributes: attrs },
    time: Math.floor(ms / 1000),
    timeNano: ms * 1e6,
  };
}

function setup() {
  const runs: ContainerRun[] = [];
  const ooms: [string, number][] = [];
  let now = T0;
  const t = new LifecycleTracker({
    now: () => now,
    removedGraceMs: 1000,
    hooks: { runEnded: (r) => runs.push(r), oomEvent: (id, s) => ooms.push([id, s]) },
  });
  return { t, runs, ooms, advance: (ms: number) => (now += ms) };
}

describe('LifecycleTracker', () => {
  it('counts a crash loop: one restart per start after the first, one run per attempt', () => {
    const { t, runs } = setup();
    t.onDockerEvent(ev('create', T0 - 10));
    let ms = T0;
    for (let i = 0; i < 4; i++) {
      t.onDockerEvent(ev('start', ms));
      if (i === 0) t.onInventory({ type: 'added', container: info({ startedAt: ms }) }, false);
      t.onDockerEvent(ev('die', ms + 50, { exitCode: '1' }));
      ms += 200 * (i + 1);
    }
    const c = t.get(ID)!;
    expect(c.restarts).toBe(3);
    expect(c.lastExit).toMatchObject({ code: 1, oom: false });
    expect(c.state).toBe('exited');
    expect(runs).toHaveLength(4);
    expect(runs.map((r) => r.exitCode)).toEqual([1, 1, 1, 1]);
    expect(runs.map((r) => r.attempt)).toEqual([1, 2, 3, 4]);
  });

  it('counts no restart when the inspect of a new container lands before its start event', () => {
    const { t, runs } = setup();
    t.onDockerEvent(ev('create', T0 - 10));
    // the inventory inspected the container right after it started, before the start event
    t.onInventory({ type: 'added', container: info({ startedAt: T0 }) }, false);
    t.onDockerEvent(ev('start', T0));
    expect(t.get(ID)!.restarts).toBe(0);
    let ms = T0;
    for (let i = 1; i < 4; i++) {
      t.onDockerEvent(ev('die', ms + 50, { exitCode: '1' }));
      ms += 200 * i;
      t.onDockerEvent(ev('start', ms));
    }
    t.onDockerEvent(ev('die', ms + 50, { exitCode: '1' }));
    expect(t.get(ID)!.restarts).toBe(3);
    expect(runs.map((r) => r.attempt)).toEqual([1, 2, 3, 4]);
  });

  it('counts no restart when the inspect saw the second run of a crash loop before the first start event', () => {
    const { t } = setup();
    t.onDockerEvent(ev('create', T0 - 10));
    t.onInventory({ type: 'added', container: info({ startedAt: T0 + 150 }) }, false);
    t.onDockerEvent(ev('start', T0));
    t.onDockerEvent(ev('die', T0 + 50, { exitCode: '1' }));
    t.onDockerEvent(ev('start', T0 + 150));
    t.onDockerEvent(ev('die', T0 + 200, { exitCode: '1' }));
    expect(t.get(ID)!.restarts).toBe(1);
  });

  it('starts at 0 for containers found at startup (no phantom restarts) and counts docker restart once', () => {
    const { t, runs } = setup();
    t.onInventory({ type: 'added', container: info({ restartCount: 7 }) }, true);
    expect(t.get(ID)!.restarts).toBe(0);
    // docker restart: kill, die, stop, start, restart
    t.onDockerEvent(ev('kill', T0 + 5000, { signal: '15' }));
    t.onDockerEvent(ev('die', T0 + 5001, { exitCode: '137' }));
    t.onDockerEvent(ev('stop', T0 + 5002));
    t.onDockerEvent(ev('start', T0 + 5100));
    t.onDockerEvent(ev('restart', T0 + 5101));
    expect(t.get(ID)!.restarts).toBe(1);
    // the run found at startup ends with its real start time and the kill signal
    expect(runs[0]).toMatchObject({
      startMs: T0,
      endMs: T0 + 5001,
      exitCode: 137,
      signal: 'SIGTERM',
    });
    // stop, then start later
    t.onDockerEvent(ev('die', T0 + 9000, { exitCode: '0' }));
    t.onDockerEvent(ev('stop', T0 + 9001));
    t.onDockerEvent(ev('start', T0 + 20_000));
    expect(t.get(ID)!.restarts).toBe(2);
  });

  it('does not count the first start of a created container', () => {
    const { t } = setup();
    t.onInventory({ type: 'added', container: info({ state: 'created', startedAt: 0 }) }, false);
    t.onDockerEvent(ev('start', T0));
    expect(t.get(ID)!.restarts).toBe(0);
  });

  it('after a reconnect, counts restarts missed while disconnected and not the replayed start event', () => {
    const { t } = setup();
    const before = info({ restartCount: 1 });
    t.onInventory({ type: 'added', container: before }, true);
    const after = info({ startedAt: T0 + 60_000, restartCount: 3 });
    t.onInventory({ type: 'updated', container: after, previous: before }, true);
    expect(t.get(ID)!.restarts).toBe(2);
    t.onDockerEvent(ev('start', T0 + 60_005)); // buffered event replayed after the re-list
    expect(t.get(ID)!.restarts).toBe(2);
    t.onDockerEvent(ev('die', T0 + 70_000, { exitCode: '1' }));
    t.onDockerEvent(ev('start', T0 + 70_200));
    expect(t.get(ID)!.restarts).toBe(3);
  });

  it('reports OOM with the inspect StartedAt of the run and marks the exit as OOM', () => {
    const { t, runs, ooms } = setup();
    t.onDockerEvent(ev('start', T0 + 3));
    t.onDockerEvent(ev('oom', T0 + 500));
    expect(ooms).toEqual([]); // inspect StartedAt not known yet
    t.onInventory({ type: 'added', container: info({ startedAt: T0 }) }, false);
    expect(ooms).toEqual([[ID, T0]]);
    t.onDockerEvent(ev('die', T0 + 501, { exitCode: '137' }));
    expect(t.get(ID)!.lastExit).toMatchObject({ code: 137, oom: true });
    expect(runs[0]?.oomKilled).toBe(true);
    expect(runs[0]?.events.map((e) => e.name)).toEqual(['oom']);
  });

  it('takes an OOM verdict that comes after die: the last exit and the ended run get it', () => {
    // containerd reports the OOM and the exit on separate paths: on a busy host `die` wins
    const { t, runs, ooms } = setup();
    t.onInventory({ type: 'added', container: info({ startedAt: T0 }) }, false);
    t.onDockerEvent(ev('start', T0 + 3));
    t.onDockerEvent(ev('die', T0 + 900, { exitCode: '137' }));
    expect(t.get(ID)!.lastExit).toMatchObject({ code: 137, oom: false });
    expect(runs[0]?.oomKilled).toBe(false);
    t.onDockerEvent(ev('oom', T0 + 4_000));
    expect(ooms).toEqual([[ID, T0]]);
    expect(t.get(ID)!.lastExit).toMatchObject({ code: 137, oom: true });
    // the same object the collector holds for a moment before sending it
    expect(runs[0]?.oomKilled).toBe(true);
    expect(runs[0]?.events.map((e) => e.name)).toEqual(['oom']);
    expect(runs).toHaveLength(1);
  });

  it("takes inspect's OOMKilled for the run that ended even when die came seconds after FinishedAt", () => {
    const { t, runs } = setup();
    t.onInventory({ type: 'added', container: info({ startedAt: T0 }) }, false);
    t.onDockerEvent(ev('start', T0 + 3));
    // dockerd sends die after its exit handling: 5 s after containerd's exit time here
    t.onDockerEvent(ev('die', T0 + 6_000, { exitCode: '137' }));
    t.onInventory(
      {
        type: 'updated',
        container: info({
          startedAt: T0,
          state: 'exited',
          exitCode: 137,
          finishedAt: T0 + 1_000,
          oomKilled: true,
        }),
        previous: info({ startedAt: T0 }),
      },
      false,
    );
    expect(t.get(ID)!.lastExit).toMatchObject({ code: 137, oom: true });
    expect(runs[0]?.oomKilled).toBe(true);
    // an inspect of another run (another StartedAt, far-off end) does not touch this exit
    t.onDockerEvent(ev('start', T0 + 20_000));
    t.onDockerEvent(ev('die', T0 + 30_000, { exitCode: '137' }));
    t.onInventory(
      {
        type: 'updated',
        container: info({
          startedAt: T0,
          state: 'exited',
          exitCode: 137,
          finishedAt: T0 + 1_000,
          oomKilled: true,
        }),
        previous: info({ startedAt: T0 }),
      },
      false,
    );
    expect(t.get(ID)!.lastExit).toMatchObject({ code: 137, oom: false });
    expect(runs[1]?.oomKilled).toBe(false);
  });

  it('with a restart policy: a verdict just after the next start is for the run that ended', () => {
    const { t, runs, ooms } = setup();
    t.onInventory({ type: 'added', container: info({ startedAt: T0 }) }, false);
    t.onDockerEvent(ev('start', T0 + 3));
    t.onInventory(
      { type: 'updated', container: info({ startedAt: T0 }), previous: info({ startedAt: T0 }) },
      false,
    );
    t.onDockerEvent(ev('die', T0 + 900, { exitCode: '137' }));
    t.onDockerEvent(ev('start', T0 + 1_000)); // restarted 100 ms later
    t.onDockerEvent(ev('oom', T0 + 1_600));
    expect(t.get(ID)!.lastExit).toMatchObject({ code: 137, oom: true });
    expect(runs[0]?.oomKilled).toBe(true);
    expect(runs[0]?.events.map((e) => e.name)).toEqual(['oom']);
    expect(ooms).toEqual([[ID, T0]]); // counted for the run that ended
    // the new run is not marked: its exit is its own
    t.onDockerEvent(ev('die', T0 + 9_000, { exitCode: '0' }));
    expect(t.get(ID)!.lastExit).toMatchObject({ code: 0, oom: false });
    expect(runs[1]?.oomKilled).toBe(false);
    // but an OOM well into a run, or after a docker kill, is that run's
    t.onDockerEvent(ev('start', T0 + 10_000));
    t.onDockerEvent(ev('oom', T0 + 13_000));
    t.onDockerEvent(ev('die', T0 + 13_100, { exitCode: '137' }));
    expect(runs[2]?.oomKilled).toBe(true);
    t.onDockerEvent(ev('start', T0 + 14_000));
    t.onDockerEvent(ev('kill', T0 + 14_500, { signal: '9' }));
    t.onDockerEvent(ev('die', T0 + 14_600, { exitCode: '137' }));
    t.onDockerEvent(ev('start', T0 + 14_700));
    t.onDockerEvent(ev('oom', T0 + 15_000));
    expect(runs[3]?.oomKilled).toBe(false);
    t.onDockerEvent(ev('die', T0 + 16_000, { exitCode: '137' }));
    expect(runs[4]?.oomKilled).toBe(true);
  });

  it('gives a late OOM to no run that it cannot belong to', () => {
    const { t, runs } = setup();
    t.onInventory({ type: 'added', container: info({ startedAt: T0 }) }, false);
    t.onDockerEvent(ev('start', T0 + 3));
    t.onDockerEvent(ev('die', T0 + 60_000, { exitCode: '1' }));
    // replayed from before that run's end (after a reconnect): an earlier run's
    t.onDockerEvent(ev('oom', T0 + 50_000));
    // long after the end (the window is LATE_OOM_MS)
    t.onDockerEvent(ev('oom', T0 + 60_000 + 31_000));
    expect(t.get(ID)!.lastExit).toMatchObject({ code: 1, oom: false });
    expect(runs[0]?.oomKilled).toBe(false);
    expect(runs[0]?.events).toEqual([]);
  });

  it('records health transitions and pause/unpause as span events', () => {
    const { t, runs } = setup();
    t.onInventory({ type: 'added', container: info({ health: 'starting' }) }, true);
    t.onDockerEvent(ev('health_status: healthy', T0 + 1000));
    expect(t.get(ID)!.health).toBe('healthy');
    t.onDockerEvent(ev('pause', T0 + 1500));
    expect(t.get(ID)!.state).toBe('paused');
    t.onDockerEvent(ev('unpause', T0 + 1600));
    t.onDockerEvent(ev('health_status: unhealthy', T0 + 4000));
    t.onInventory(
      {
        type: 'updated',
        container: info({ health: 'unhealthy', healthFailingStreak: 3 }),
        previous: info(),
      },
      false,
    );
    expect(t.get(ID)!.failingStreak).toBe(3);
    t.onDockerEvent(ev('die', T0 + 5000, { exitCode: '0' }));
    expect(
      runs[0]?.events.map(
        (e) =>
          `${e.name}:${JSON.stringify(e.attributes?.['container.health.status'] ?? '').replaceAll('"', '')}`,
      ),
    ).toEqual(['health_status:healthy', 'pause:', 'unpause:', 'health_status:unhealthy']);
  });

  it('forgets a destroyed container after the grace, without ending its run', () => {
    const { t, runs, advance } = setup();
    t.onInventory({ type: 'added', container: info() }, true);
    t.onInventory({ type: 'removed', container: info() }, false);
    t.sweep();
    expect(t.get(ID)).toBeDefined();
    advance(1000);
    t.sweep();
    expect(t.get(ID)).toBeUndefined();
    expect(runs).toEqual([]);
  });

  it('counts image pulls and deletes', () => {
    let pulls = 0;
    let deletes = 0;
    const t = new LifecycleTracker({
      hooks: { imagePull: () => pulls++, imageDelete: () => deletes++ },
    });
    t.onDockerEvent(ev('pull', T0, {}, 'image'));
    t.onDockerEvent(ev('delete', T0, {}, 'image'));
    t.onDockerEvent(ev('tag', T0, {}, 'image'));
    expect([pulls, deletes]).toEqual([1, 1]);
  });
});

describe('renderLifecycle', () => {
  it('renders state sets, allowlisted labels and the cgroup path of the engine as id', () => {
    const { t } = setup();
    t.onInventory(
      { type: 'added', container: info({ state: 'exited', finishedAt: T0 + 2000, exitCode: 3 }) },
      true,
    );
    const opts = {
      cgroupVersion: () => '1',
      labelAllowlist: ['com.docker.compose.service'],
      oomTotal: () => 2,
      imagePulls: () => 1,
      imageDeletes: () => 0,
    };
    const text = renderLifecycle(t.served(), opts);
    const base = `id="/docker/${ID}",image="busybox:1.36",name="web",container_label_com_docker_compose_service="web"`;
    expect(text).toContain(`container_restarts_total{${base}} 0\n`);
    expect(text).toContain(`container_oom_events_total{${base}} 2\n`);
    expect(text).toContain(`container_last_exit_code{${base}} 3\n`);
    expect(text).toContain(
      `container_last_termination_time_seconds{${base}} ${(T0 + 2000) / 1000}\n`,
    );
    expect(text).toContain(`container_state{${base},state="exited"} 1\n`);
    expect(text).toContain(`container_state{${base},state="running"} 0\n`);
    expect(text).toContain(`container_health_state{${base},state="none"} 1\n`);
    expect(text).toContain('docker_engine_image_pulls_total 1\n');
    expect(text).not.toContain('other=');
    const v2 = renderLifecycle(t.served(), {
      ...opts,
      cgroupVersion: () => '2',
      disabled: new Set(['container_state']),
    });
    expect(v2).toContain(`id="/system.slice/docker-${ID}.scope"`);
    expect(v2).not.toContain('container_state{');
  });
});

describe('lifecycle series follow the metrics selection', () => {
  const names = (text: string): string[] =>
    [
      ...new Set([...text.matchAll(/^container_\w+\{[^}]*name="([^"]+)"/gm)].map((m) => m[1]!)),
    ].sort();
  const fleet = (): ReturnType<typeof setup>['t'] => {
    const { t } = setup();
    const add = (n: number, name: string, image: string, labels: Record<string, string> = {}) =>
      t.onInventory(
        {
          type: 'added',
          container: info({ id: String(n).repeat(64), name, image, labels }),
        },
        true,
      );
    add(1, 'web-1', 'nginx:1.27');
    add(2, 'web-2', 'nginx:1.27');
    add(3, 'db', 'postgres:16');
    add(4, 'batch', 'nginx:1.27', { 'harbormaster.metrics.enabled': 'false' });
    return t;
  };
  const render = (rules: Record<string, unknown>): string =>
    renderLifecycle(fleet().served(), {
      cgroupVersion: () => '1',
      labelAllowlist: [],
      oomTotal: () => 0,
      imagePulls: () => 3,
      imageDeletes: () => 0,
      selected: lifecycleSelection(metricsSection.parse(rules)),
    });

  it('leaves out containers excluded by a name glob, the opt-out label, and all but the included image', () => {
    // without rules only the opt-out label applies
    expect(names(render({}))).toEqual(['db', 'web-1', 'web-2']);
    const excluded = render({ exclude_containers: ['name:web-*'] });
    expect(names(excluded)).toEqual(['db']);
    for (const family of ['container_restarts_total', 'container_state', 'container_exec_total'])
      expect(excluded).not.toMatch(new RegExp(`^${family}\\{[^}]*name="web-1"`, 'm'));
    expect(names(render({ include_containers: ['image:postgres'] }))).toEqual(['db']);
    expect(names(render({ include_containers: ['image:nginx'] }))).toEqual(['web-1', 'web-2']);
    // daemon-wide families are not per container: they stay
    expect(excluded).toContain('docker_engine_image_pulls_total 3\n');
  });
});

describe('run spans', () => {
  it('derive the trace id from the container id and carry status, attributes and events', () => {
    expect(traceIdFor(ID)).toBe('a'.repeat(32));
    expect(traceIdFor('not-hex')).toMatch(/^[0-9a-f]{32}$/);
    expect(imageNameAndTags(`reg:5000/a/b:1.2@sha256:${'ab'.repeat(32)}`)).toEqual({
      name: 'reg:5000/a/b',
      tags: ['1.2'],
    });
    expect(imageNameAndTags('busybox')).toEqual({ name: 'busybox', tags: ['latest'] });
    const span = runToSpan(
      {
        containerId: ID,
        containerName: 'web',
        image: 'busybox:1.36',
        startMs: T0 + 0.5,
        endMs: T0 + 1500,
        exitCode: 1,
        oomKilled: false,
        events: [],
      },
      resourceFromAttributes({ 'host.name': 'h' }),
    );
    expect(span.spanContext().traceId).toBe('a'.repeat(32));
    expect(span.startTime).toEqual([1_700_000_000, 500_000]);
    expect(span.endTime).toEqual([1_700_000_001, 500_000_000]);
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes).toMatchObject({
      'container.id': ID,
      'container.name': 'web',
      'container.image.name': 'busybox',
      'container.image.tags': ['1.36'],
      'container.runtime.name': 'docker',
      'process.exit.code': 1,
    });
  });
});

describe('review regressions', () => {
  it('forgets containers destroyed before the inventory ever added them', () => {
    let now = T0;
    const forgotten: string[] = [];
    const t = new LifecycleTracker({
      now: () => now,
      removedGraceMs: 1000,
      hooks: { forget: (id) => forgotten.push(id) },
    });
    for (let i = 0; i < 1000; i++) {
      const id = i.toString(16).padStart(64, '0');
      const e = (action: string, attrs: Record<string, string> = {}): DockerEvent => ({
        Type: 'container',
        Action: action,
        Actor: { ID: id, Attributes: attrs },
        time: Math.floor(now / 1000),
        timeNano: now * 1e6,
      });
      for (const a of ['create', 'start', 'oom']) t.onDockerEvent(e(a));
      t.onDockerEvent(e('die', { exitCode: '137' }));
      t.onDockerEvent(e('destroy'));
    }
    now += 10 * 60_000;
    t.sweep();
    expect(t.containers()).toHaveLength(0);
    expect(forgotten).toHaveLength(1000);
  });

  it('never renders one label name twice when allowlisted keys sanitize alike', () => {
    const { t } = setup();
    t.onInventory({ type: 'added', container: info({ labels: { 'a.b': '1', a_b: '2' } }) }, true);
    const text = renderLifecycle(t.served(), {
      cgroupVersion: () => '1',
      labelAllowlist: ['a.b', 'a_b', 'a.b'],
      oomTotal: () => 0,
      imagePulls: () => 0,
      imageDeletes: () => 0,
    });
    const line = text.split('\n').find((l) => l.startsWith('container_restarts_total{')) ?? '';
    expect(line.match(/container_label_a_b=/g)).toHaveLength(1);
    expect(line).toContain('container_label_a_b="1"');
  });
});
