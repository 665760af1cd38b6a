// A run that a SIGKILL nobody sent through the API ended (exit code 137, no `kill` event) may have
// been OOM-killed with Docker's verdict still on its way: containerd reports the OOM and the exit
// on separate paths, and on a busy host the `oom` event comes after `die`. Its span waits a
// moment for that verdict; runs that `docker kill` ended, and every other run, go out at once.
//
// Through the real Agent and LifecycleCollector (no daemon: events and inspects enter through the
// tracker's entry points), spans captured where the state-dir spool would wrap the exporter.
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterEach, describe, expect, it } from 'vitest';
import type { LifecycleCollector } from '../../../src/collectors/lifecycle/index.js';
import type { DockerEvent } from '../../../src/docker/types.js';
import { makeContainerInfo } from '../../support/container-info.js';
import { containerEvent, handBuiltLifecycle, stopLifecycles, until } from './lifecycle-harness.js';

const T0 = 1_750_000_000_000;

afterEach(stopLifecycles);

const ev = (
  id: string,
  action: string,
  ms: number,
  attrs: Record<string, string> = {},
): DockerEvent => containerEvent(id, id.slice(0, 4), action, ms, attrs);

const start = (holdMs: number): ReturnType<typeof handBuiltLifecycle> =>
  handBuiltLifecycle({ prefix: 'hm-lc-oom-', holdMs });

function running(lc: LifecycleCollector, id: string): void {
  lc.tracker.onInventory(
    {
      type: 'added',
      container: makeContainerInfo({
        id,
        name: id.slice(0, 4),
        startedAt: T0,
        createdAt: T0 - 1000,
      }),
    },
    false,
  );
  lc.tracker.onDockerEvent(ev(id, 'start', T0));
}

const spanOf = (spans: ReadableSpan[], id: string): ReadableSpan | undefined =>
  spans.find(
    (s) => s.resource.attributes['container.id'] === id || s.attributes['container.id'] === id,
  );

describe('run spans and a late OOM verdict', () => {
  it('an unexplained SIGKILL: the span waits for the oom event that follows die and carries it', async () => {
    const { lc, spans, agent } = start(60_000);
    const id = 'a'.repeat(64);
    running(lc, id);
    lc.tracker.onDockerEvent(ev(id, 'die', T0 + 1000, { exitCode: '137' }));
    await new Promise((r) => setTimeout(r, 300));
    expect(spanOf(spans, id)).toBeUndefined(); // held (for a minute here)
    lc.tracker.onDockerEvent(ev(id, 'oom', T0 + 3000));
    await agent.stop(); // sends what is held
    const span = spanOf(spans, id);
    expect(span?.attributes['docker.container.oom_killed']).toBe(true);
    expect(span?.events.map((e) => e.name)).toContain('oom');
  });

  it('a held span goes out when the hold ends, without a verdict if none came', async () => {
    const { lc, spans } = start(300);
    const id = 'e'.repeat(64);
    running(lc, id);
    lc.tracker.onDockerEvent(ev(id, 'die', T0 + 1000, { exitCode: '137' }));
    const span = await until(() => spanOf(spans, id), 'the span after the hold');
    expect(span.attributes['docker.container.oom_killed']).toBe(false);
  });

  it('docker kill (a kill event) and a plain exit: the spans go out at once', async () => {
    const { lc, spans } = start(60_000);
    const killed = 'b'.repeat(64);
    const exited = 'c'.repeat(64);
    running(lc, killed);
    running(lc, exited);
    lc.tracker.onDockerEvent(ev(killed, 'kill', T0 + 900, { signal: '9' }));
    lc.tracker.onDockerEvent(ev(killed, 'die', T0 + 1000, { exitCode: '137' }));
    lc.tracker.onDockerEvent(ev(exited, 'die', T0 + 1000, { exitCode: '1' }));
    const k = await until(() => spanOf(spans, killed), 'the killed run span');
    expect(k.attributes['docker.container.oom_killed']).toBe(false);
    await until(() => spanOf(spans, exited), 'the exited run span');
  });

  it('a held span is sent when the agent stops, with what is known', async () => {
    const { lc, spans, agent } = start(60_000);
    const id = 'd'.repeat(64);
    running(lc, id);
    lc.tracker.onDockerEvent(ev(id, 'die', T0 + 1000, { exitCode: '137' }));
    await new Promise((r) => setTimeout(r, 300));
    expect(spanOf(spans, id)).toBeUndefined();
    await agent.stop();
    const span = spanOf(spans, id);
    expect(span?.attributes['docker.container.oom_killed']).toBe(false);
  });
});
