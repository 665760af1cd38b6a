// Issue 16, acceptance 4 (model test): a removed container's tailer, its per-container series and
// its checkpoint entry are retired exactly once, whatever the order of events. fast-check draws
// sequences of: a container writes lines (or a fragment of a line it never finishes), stops, is
// removed (its log directory deleted before or after the inventory says so), the receiver goes
// down (the small queue fills and the tailers pause) or comes back, the agent restarts (a new
// LogsComponent over the same state dir), and short waits that let commits land before or after a
// tailer finishes reading. Everything is real (component, tailers, ack trackers, checkpoint store,
// NDJSON exporter, files in a temp dir) except the container event feed, which the component
// takes through its inventory interface, and the receiver's availability (a gate in front of the
// NDJSON exporter).
//
// At the end (receiver up, settled): the tailers and telemetry sources are exactly the containers
// not removed; no series and no checkpoint entry names a removed one; every source was added and
// removed at most once per component; every line of a container that was not removed arrived.
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { logsSection } from '../../../src/config/sections/logs.js';
import { ResourceIdentity } from '../../../src/docker/identity.js';
import type { InventoryEvent } from '../../../src/docker/types.js';
import type { ContainerInfo } from '../../../src/docker/types.js';
import { NdjsonLogExporter } from '../../../src/exporters/ndjson.js';
import { CHECKPOINT_FILE } from '../../../src/logs/checkpoints.js';
import { LogsComponent } from '../../../src/logs/component.js';
import { LogTelemetry, type SourceStats } from '../../../src/logs/telemetry.js';
import type { ExportResult, LogExporter, LogRecord } from '../../../src/logs/types.js';
import { makeContainerInfo } from '../../support/container-info.js';
import { FakeDockerLog } from './fake-docker.js';

const N = 2;

type Ev =
  | { k: 'write'; c: number; n: number }
  | { k: 'partial'; c: number }
  | { k: 'stop'; c: number }
  | { k: 'remove'; c: number; deleteFirst: boolean }
  | { k: 'down' }
  | { k: 'up' }
  | { k: 'restart' }
  | { k: 'wait'; ms: number };

const cArb = fc.integer({ min: 0, max: N - 1 });
const evArb: fc.Arbitrary<Ev> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      k: fc.constant('write' as const),
      c: cArb,
      n: fc.integer({ min: 1, max: 60 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('partial' as const), c: cArb }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('stop' as const), c: cArb }) },
  {
    weight: 3,
    arbitrary: fc.record({ k: fc.constant('remove' as const), c: cArb, deleteFirst: fc.boolean() }),
  },
  { weight: 2, arbitrary: fc.constant({ k: 'down' as const }) },
  { weight: 2, arbitrary: fc.constant({ k: 'up' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'restart' as const }) },
  {
    weight: 3,
    arbitrary: fc.record({ k: fc.constant('wait' as const), ms: fc.constantFrom(0, 5, 40) }),
  },
);

/** The receiver: delivers to a real NDJSON file, or refuses (retryable) while down. */
class GatedExporter implements LogExporter {
  readonly name = 'gated-ndjson';
  down = false;
  private readonly inner: NdjsonLogExporter;
  constructor(readonly file: string) {
    this.inner = new NdjsonLogExporter(file);
  }
  export(batch: readonly LogRecord[]): Promise<ExportResult> {
    if (this.down)
      return Promise.resolve({ status: 'retryable', error: new Error('receiver down') });
    return this.inner.export(batch);
  }
}

/** The real telemetry, counting how often each source is added and removed. */
class CountingTelemetry extends LogTelemetry {
  readonly added = new Map<string, number>();
  readonly removed = new Map<string, number>();
  override addSource(
    key: string,
    name: string,
    kind: 'file' | 'api',
    behind?: () => number,
    oldest?: () => number | undefined,
  ): SourceStats {
    this.added.set(key, (this.added.get(key) ?? 0) + 1);
    return super.addSource(key, name, kind, behind, oldest);
  }
  override removeSource(key: string): void {
    this.removed.set(key, (this.removed.get(key) ?? 0) + 1);
    super.removeSource(key);
  }
}

interface Box {
  info: ContainerInfo;
  w: FakeDockerLog;
  dir: string;
  lines: string[];
  /** A fragment written without its end: the next line completes it (Docker's partial lines). */
  pending: string;
  state: 'running' | 'exited' | 'removed';
}

/** The container event feed the component follows (the inventory's narrow interface). */
class FeedInventory {
  private readonly listeners = new Set<(ev: InventoryEvent) => void>();
  constructor(private readonly boxes: Box[]) {}
  list = (): ContainerInfo[] => this.boxes.filter((b) => b.state !== 'removed').map((b) => b.info);
  get = (id: string): ContainerInfo | undefined =>
    this.boxes.find((b) => b.info.id === id && b.state !== 'removed')?.info;
  subscribe = (fn: (ev: InventoryEvent) => void): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };
  ready = (): boolean => true;
  engine = (): undefined => undefined;
  emit(ev: InventoryEvent): void {
    for (const l of [...this.listeners]) l(ev);
  }
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

/** How often the orders the issue names really happened (a run set must contain each). */
const seen = { removedWhileQueueFull: 0, restartBeforeRetired: 0 };

async function runModel(events: Ev[]): Promise<void> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'hm-retire-'));
  const logger = pino({ level: 'silent' });
  const stateDir = path.join(root, 'state');
  const exporter = new GatedExporter(path.join(root, 'out.ndjson'));
  const boxes: Box[] = Array.from({ length: N }, (_, i) => {
    const id = String(i + 1).repeat(64);
    const dir = path.join(root, 'containers', id);
    mkdirSync(dir, { recursive: true });
    const w = new FakeDockerLog(dir);
    return {
      info: makeContainerInfo({ id, name: `c${i}`, logPath: w.file }),
      w,
      dir,
      lines: [],
      pending: '',
      state: 'running' as const,
    };
  });
  const inventory = new FeedInventory(boxes);
  const identity = new ResourceIdentity({ hostName: 'h', daemonInfo: () => undefined });
  const logs = {
    ...logsSection.parse({}),
    // a queue of a few dozen lines: a receiver that is down fills it and pauses the tailers
    queue_max_bytes: 4096,
    batch_max_bytes: 1024,
    batch_max_records: 16,
    batch_delay_seconds: 0.002,
    poll_interval_seconds: 0.01,
    retry_initial_seconds: 0.005,
    retry_max_seconds: 0.02,
    read_chunk_bytes: 4096,
    // unfinished lines wait for their end (or the container's stop), not for a timer
    partial_flush_seconds: 600,
  };
  let registry = new Registry();
  let telemetry = new CountingTelemetry(registry, logger);
  const instances: CountingTelemetry[] = [telemetry];
  const make = (): LogsComponent =>
    new LogsComponent({
      logs,
      stateDir,
      dockerRoot: '/var/lib/docker',
      shutdownTimeoutSeconds: 1,
      identity,
      logger,
      inventory,
      exporter,
      telemetry,
    });
  let comp = make();
  await comp.start();
  let seq = 0;
  const history: string[] = [];
  try {
    for (const ev of events) {
      history.push(JSON.stringify(ev));
      switch (ev.k) {
        case 'write': {
          const b = boxes[ev.c]!;
          if (b.state !== 'running') break;
          for (let i = 0; i < ev.n; i++) {
            const l = `c${ev.c} line ${seq++}`;
            b.w.write('stdout', l);
            b.lines.push(b.pending + l);
            b.pending = '';
          }
          break;
        }
        case 'partial': {
          const b = boxes[ev.c]!;
          if (b.state !== 'running') break;
          const f = `c${ev.c} fragment ${seq++} `;
          b.w.write('stdout', f, false);
          b.pending += f;
          break;
        }
        case 'stop': {
          const b = boxes[ev.c]!;
          if (b.state !== 'running') break;
          b.state = 'exited';
          // what the container left unfinished is shipped as it is once it stopped
          if (b.pending) b.lines.push(b.pending);
          b.pending = '';
          const previous = b.info;
          b.info = { ...b.info, state: 'exited' };
          inventory.emit({ type: 'updated', container: b.info, previous });
          break;
        }
        case 'remove': {
          const b = boxes[ev.c]!;
          if (b.state === 'removed') break;
          const wasRunning = b.state === 'running';
          // the queue is full: the tailers are paused (waitForSpace returns a promise)
          if (comp.intake().waitForSpace() !== undefined) seen.removedWhileQueueFull++;
          if (ev.deleteFirst) rmSync(b.dir, { recursive: true, force: true });
          b.state = 'removed';
          if (wasRunning) b.info = { ...b.info, state: 'exited' };
          inventory.emit({ type: 'removed', container: b.info });
          if (!ev.deleteFirst) rmSync(b.dir, { recursive: true, force: true });
          break;
        }
        case 'down':
          exporter.down = true;
          break;
        case 'up':
          exporter.down = false;
          break;
        case 'restart': {
          const pending = boxes.filter(
            (b) =>
              b.state === 'removed' &&
              telemetry.snapshot().containers.some((c) => c.key === b.info.id),
          );
          if (pending.length > 0) seen.restartBeforeRetired++;
          await comp.stop();
          registry = new Registry();
          telemetry = new CountingTelemetry(registry, logger);
          instances.push(telemetry);
          comp = make();
          await comp.start();
          break;
        }
        case 'wait':
          await new Promise((r) => setTimeout(r, ev.ms));
          break;
      }
      await new Promise((r) => setImmediate(r));
    }

    exporter.down = false;
    const removedIds = boxes.filter((b) => b.state === 'removed').map((b) => b.info.id);
    const liveIds = boxes.filter((b) => b.state !== 'removed').map((b) => b.info.id);
    const sourceKeys = (): string[] =>
      telemetry
        .snapshot()
        .containers.map((c) => c.key)
        .sort();
    const delivered = (): Set<string> => {
      if (!existsSync(exporter.file)) return new Set();
      // the exporter may be appending: only whole lines (what follows the last newline is a
      // line still being written)
      const lines = readFileSync(exporter.file, 'utf8').split('\n').slice(0, -1);
      return new Set(lines.filter(Boolean).map((l) => (JSON.parse(l) as { body: string }).body));
    };
    const allLive = (): boolean => {
      const got = delivered();
      return boxes
        .filter((b) => b.state !== 'removed')
        .every((b) => b.lines.every((l) => got.has(l)));
    };
    const settled = await until(
      () => JSON.stringify(sourceKeys()) === JSON.stringify([...liveIds].sort()) && allLive(),
      // usually well under a second; a loaded 2-core host has stretched it past 8 s
      20_000,
    );
    const ctx = `after ${history.join(' ')}`;
    expect(sourceKeys(), `the sources are the containers not removed, ${ctx}`).toEqual(
      [...liveIds].sort(),
    );
    expect(allLive(), `every line of a container not removed arrived, ${ctx}`).toBe(true);
    expect(settled).toBe(true);
    expect(comp.health().detail ?? '', ctx).toMatch(new RegExp(`^${liveIds.length} log files`));
    const text = await registry.metrics();
    for (const b of boxes.filter((x) => x.state === 'removed'))
      expect(text, `no series names removed ${b.info.name}, ${ctx}`).not.toContain(
        `container_name="${b.info.name}"`,
      );
    // each component added and retired a source at most once
    for (const t of instances) {
      for (const [k, n] of t.added) expect(n, `${k} added once, ${ctx}`).toBe(1);
      for (const [k, n] of t.removed) expect(n, `${k} retired once, ${ctx}`).toBe(1);
      for (const k of t.removed.keys()) expect(removedIds, ctx).toContain(k);
    }
    await comp.stop();
    const cpFile = path.join(stateDir, CHECKPOINT_FILE);
    // no file: nothing was ever delivered
    const cp = existsSync(cpFile)
      ? (JSON.parse(readFileSync(cpFile, 'utf8')) as { files: Record<string, unknown> })
      : { files: {} };
    for (const id of removedIds)
      expect(
        Object.keys(cp.files),
        `no checkpoint entry for a removed container, ${ctx}`,
      ).not.toContain(id);
  } finally {
    await comp.stop();
    await rm(root, { recursive: true, force: true });
  }
}

describe('tailer retirement (model)', () => {
  it('retires a removed container exactly once in every order of events', async () => {
    await fc.assert(fc.asyncProperty(fc.array(evArb, { minLength: 1, maxLength: 14 }), runModel), {
      numRuns: Number(process.env.HM_MODEL_RUNS ?? 60),
      endOnFailure: true,
      // the orders the issue names, always among the runs: removed while the queue is full and
      // the tailer paused; the agent restarted before the removed container was retired
      examples: [
        [
          [
            { k: 'down' },
            { k: 'write', c: 0, n: 60 },
            { k: 'write', c: 1, n: 60 },
            { k: 'wait', ms: 40 },
            { k: 'remove', c: 0, deleteFirst: false },
            { k: 'restart' },
            { k: 'up' },
          ],
        ],
        [
          [
            { k: 'down' },
            { k: 'write', c: 1, n: 60 },
            { k: 'wait', ms: 40 },
            { k: 'remove', c: 1, deleteFirst: true },
            { k: 'up' },
            { k: 'wait', ms: 0 },
            { k: 'restart' },
          ],
        ],
      ],
    });
    // the run set covered the orders that matter (else the property proved little)
    console.log(`orders seen: ${JSON.stringify(seen)}`);
    expect(seen.removedWhileQueueFull).toBeGreaterThan(0);
    expect(seen.restartBeforeRetired).toBeGreaterThan(0);
  }, 300_000);

  it('retires a container removed while a line fragment is unfinished', async () => {
    await runModel([
      { k: 'write', c: 0, n: 3 },
      { k: 'partial', c: 0 },
      { k: 'wait', ms: 40 },
      { k: 'remove', c: 0, deleteFirst: true },
    ]);
  }, 30_000);
});
