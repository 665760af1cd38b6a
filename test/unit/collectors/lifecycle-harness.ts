// The real Agent with a LifecycleCollector built by hand over the agent's own context, for unit
// tests that drive the collector through its tracker's entry points (no daemon is asked: the
// socket does not exist). Run spans are captured where the state-dir spool would wrap the
// exporter. Each test file registers `afterEach(stopLifecycles)`.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ExportResultCode } from '@opentelemetry/core';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { Agent } from '../../../src/agent.js';
import { LifecycleCollector } from '../../../src/collectors/lifecycle/index.js';
import { loadConfig } from '../../../src/config/load.js';
import type { DockerEvent } from '../../../src/docker/types.js';
import { captureLogger } from '../../support/log-capture.js';

type DockerListener = (event: DockerEvent, replayed: boolean) => void;

export interface LifecycleHarness {
  agent: Agent;
  lc: LifecycleCollector;
  spans: ReadableSpan[];
  env: Record<string, string>;
  /** the configuration file, when `configYaml` was given */
  file?: string;
  /** the collector's Docker event listener once it subscribed (with `captureDockerEvents`) */
  dockerListener: () => DockerListener | undefined;
}

const dirs: string[] = [];
const agents: Agent[] = [];

/** Stops every agent the harness built and removes its directory (register with afterEach). */
export async function stopLifecycles(): Promise<void> {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

export function handBuiltLifecycle(
  opts: {
    /** temp directory prefix, names the test in leftovers */
    prefix?: string;
    /** written to a configuration file the agent loads (and a reload can re-read) */
    configYaml?: string;
    /** LifecycleCollector's oomVerdictHoldMs */
    holdMs?: number;
    /** take over the inventory's onDockerEvent so the test hands events to the collector */
    captureDockerEvents?: boolean;
    /** give the context a log intake (the exec auditor is built only with one) */
    logIntake?: boolean;
  } = {},
): LifecycleHarness {
  const dir = mkdtempSync(path.join(os.tmpdir(), opts.prefix ?? 'hm-lc-'));
  dirs.push(dir);
  const env: Record<string, string> = {
    DOCKER_HOST: `unix://${path.join(dir, 'no-docker.sock')}`,
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9',
    HARBORMASTER_STATE_DIR: path.join(dir, 'state'),
    HARBORMASTER_LISTEN: '127.0.0.1:0',
    HARBORMASTER_LIFECYCLE_TRACES_BATCH_DELAY_SECONDS: '0.05',
    // built below by hand, over the agent's own context
    HARBORMASTER_LIFECYCLE_ENABLED: 'false',
  };
  let file: string | undefined;
  if (opts.configYaml !== undefined) {
    file = path.join(dir, 'harbormaster.yml');
    writeFileSync(file, opts.configYaml);
  }
  const spans: ReadableSpan[] = [];
  let lc: LifecycleCollector | undefined;
  let listener: DockerListener | undefined;
  const agent = new Agent(loadConfig({ env, file }).config, captureLogger().logger, [
    (ctx) => {
      ctx.wrapSpanExporter = () => ({
        export: (s, done) => {
          spans.push(...s);
          done({ code: ExportResultCode.SUCCESS });
        },
        shutdown: () => Promise.resolve(),
      });
      if (opts.logIntake) {
        ctx.logIntake = () => ({ waitForSpace: () => undefined, submit: () => undefined });
      }
      if (opts.captureDockerEvents) {
        ctx.inventory.onDockerEvent = (l) => {
          listener = l;
          return () => (listener = undefined);
        };
      }
      lc = new LifecycleCollector(
        ctx,
        opts.holdMs === undefined ? undefined : { oomVerdictHoldMs: opts.holdMs },
      );
      return lc;
    },
  ]);
  agents.push(agent);
  if (!lc) throw new Error('the agent did not build the lifecycle collector');
  return { agent, lc, spans, env, file, dockerListener: () => listener };
}

/** A container event as the daemon sends it, at `ms` (epoch milliseconds). */
export function containerEvent(
  id: string,
  name: string,
  action: string,
  ms: number,
  attrs: Record<string, string> = {},
): DockerEvent {
  return {
    Type: 'container',
    Action: action,
    Actor: { ID: id, Attributes: { name, ...attrs } },
    time: Math.floor(ms / 1000),
    timeNano: ms * 1e6,
  };
}

/** Polls `get` every 20 ms until it returns a value, for at most 10 s. */
export async function until<T>(get: () => T | undefined | false, what: string): Promise<T> {
  const end = Date.now() + 10_000;
  for (;;) {
    const v = get();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
