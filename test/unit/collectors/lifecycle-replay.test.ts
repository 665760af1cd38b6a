// The lifecycle collector and replayed Docker events. After the agent's start or a lost event
// stream, the inventory asks Docker for the events since then; the re-list it made meanwhile
// already describes their effect, and it hands them to listeners marked `replayed`. A replayed
// `die` of a container's earlier run, applied after the re-list opened the current run, would end
// that run (and export a span ending before it started) and reset the last exit's OOM flag. The
// collector skips replayed events; live ones go to the tracker as before.
//
// The real Agent and LifecycleCollector, with the inventory's event entry point (onDockerEvent)
// captured so the test can hand events to the collector's listener as the inventory would.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ExportResultCode } from '@opentelemetry/core';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../../../src/agent.js';
import { LifecycleCollector } from '../../../src/collectors/lifecycle/index.js';
import { loadConfig } from '../../../src/config/load.js';
import type { DockerEvent } from '../../../src/docker/types.js';
import { makeContainerInfo } from '../../support/container-info.js';
import { captureLogger } from '../../support/log-capture.js';

const ID = 'f'.repeat(64);
const T0 = 1_760_000_000_000;

const dirs: string[] = [];
const agents: Agent[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function ev(action: string, ms: number, attrs: Record<string, string> = {}): DockerEvent {
  return {
    Type: 'container',
    Action: action,
    Actor: { ID, Attributes: { name: 'api', ...attrs } },
    time: Math.floor(ms / 1000),
    timeNano: ms * 1e6,
  };
}

describe('lifecycle collector and replayed events', () => {
  it('skips a replayed die of an earlier run; the live die ends the run the re-list opened', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-lc-replay-'));
    dirs.push(dir);
    const env = {
      // no daemon is asked: the socket does not exist
      DOCKER_HOST: `unix://${path.join(dir, 'no-docker.sock')}`,
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9',
      HARBORMASTER_STATE_DIR: path.join(dir, 'state'),
      HARBORMASTER_LISTEN: '127.0.0.1:0',
      HARBORMASTER_LIFECYCLE_TRACES_BATCH_DELAY_SECONDS: '0.05',
      HARBORMASTER_LIFECYCLE_ENABLED: 'false', // built below by hand, over the agent's context
    };
    const spans: ReadableSpan[] = [];
    let lc: LifecycleCollector | undefined;
    let deliver: ((e: DockerEvent, replayed: boolean) => void) | undefined;
    const agent = new Agent(loadConfig({ env }).config, captureLogger().logger, [
      (ctx) => {
        ctx.wrapSpanExporter = () => ({
          export: (s, done) => {
            spans.push(...s);
            done({ code: ExportResultCode.SUCCESS });
          },
          shutdown: () => Promise.resolve(),
        });
        ctx.inventory.onDockerEvent = (l) => {
          deliver = l;
          return () => (deliver = undefined);
        };
        lc = new LifecycleCollector(ctx);
        return lc;
      },
    ]);
    agents.push(agent);
    const c = lc!;
    const signal = new AbortController().signal;
    await c.start(signal);
    expect(deliver, 'the collector listens to Docker events').toBeDefined();
    const send = (e: DockerEvent, replayed: boolean): void => deliver?.(e, replayed);

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
    const end = Date.now() + 10_000;
    while (spans.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    // one run span: the second run, from its start to the live die (none ending before it began)
    expect(spans.map((s) => s.attributes['container.id'])).toEqual([ID]);
    const span = spans[0] as ReadableSpan;
    expect(span.startTime[0] * 1000 + span.startTime[1] / 1e6).toBe(T0);
    expect(span.endTime[0] * 1000 + span.endTime[1] / 1e6).toBe(T0 + 5_000);
  });
});
