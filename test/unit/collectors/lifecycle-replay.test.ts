// The lifecycle collector and replayed Docker events. After the agent's start or a lost event
// stream, the inventory asks Docker for the events since then; the re-list it made meanwhile
// already describes their effect, and it hands them to listeners marked `replayed`. A replayed
// `die` of a container's earlier run, applied after the re-list opened the current run, would end
// that run (and export a span ending before it started) and reset the last exit's OOM flag. The
// collector skips replayed events; live ones go to the tracker as before.
//
// The real Agent and LifecycleCollector, with the inventory's event entry point (onDockerEvent)
// captured so the test can hand events to the collector's listener as the inventory would.
import { afterEach, describe, expect, it } from 'vitest';
import type { DockerEvent } from '../../../src/docker/types.js';
import { makeContainerInfo } from '../../support/container-info.js';
import { containerEvent, handBuiltLifecycle, stopLifecycles, until } from './lifecycle-harness.js';

const ID = 'f'.repeat(64);
const T0 = 1_760_000_000_000;

afterEach(stopLifecycles);

const ev = (action: string, ms: number, attrs: Record<string, string> = {}): DockerEvent =>
  containerEvent(ID, 'api', action, ms, attrs);

describe('lifecycle collector and replayed events', () => {
  it('skips a replayed die of an earlier run; the live die ends the run the re-list opened', async () => {
    const {
      lc: c,
      spans,
      dockerListener,
    } = handBuiltLifecycle({
      prefix: 'hm-lc-replay-',
      captureDockerEvents: true,
    });
    const signal = new AbortController().signal;
    await c.start(signal);
    expect(dockerListener(), 'the collector listens to Docker events').toBeDefined();
    const send = (e: DockerEvent, replayed: boolean): void => dockerListener()?.(e, replayed);

    // the re-list after the reconnect: the container runs, its second run started at T0 after
    // an OOM kill of the first
    c.tracker.onInventory(
      {
        type: 'added',
        container: makeContainerInfo({
          id: ID,
          name: 'api',
          startedAt: T0,
          createdAt: T0 - 60_000,
        }),
      },
      false,
    );
    // then the replay of what happened before the subscription: the first run's oom and die,
    // and the start of the second run
    send(ev('oom', T0 - 2_000), true);
    send(ev('die', T0 - 1_900, { exitCode: '137' }), true);
    send(ev('start', T0), true);
    expect(c.tracker.get(ID)?.state).toBe('running');
    expect(c.tracker.get(ID)?.lastExit).toBeUndefined();
    // live: the second run ends
    send(ev('die', T0 + 5_000, { exitCode: '3' }), false);
    expect(c.tracker.get(ID)?.state).toBe('exited');
    expect(c.tracker.get(ID)?.lastExit).toMatchObject({ code: 3, oom: false });
    await until(() => spans.length > 0, 'the run span');
    // one run span: the second run, from its start to the live die (none ending before it began)
    expect(spans.map((s) => s.attributes['container.id'])).toEqual([ID]);
    const span = spans[0]!;
    expect(span.startTime[0] * 1000 + span.startTime[1] / 1e6).toBe(T0);
    expect(span.endTime[0] * 1000 + span.endTime[1] / 1e6).toBe(T0 + 5_000);
  });
});
