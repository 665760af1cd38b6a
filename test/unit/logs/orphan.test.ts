// A `docker run --rm` container Docker removed before the inventory could inspect it: its
// json-file log was opened on the start event (the descriptor outlives the deleted file), the
// inventory never learns of the container, and the destroy event is all that is left. Its lines
// are still read (with the name, image and labels the events carry) and its source retires.
// Real component, tailer, checkpoint store, NDJSON exporter and files; only the container event
// feed is in-process (the component takes it through the inventory interface).
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, expect, it } from 'vitest';
import { logsSection } from '../../../src/config/sections/logs.js';
import { ResourceIdentity } from '../../../src/docker/identity.js';
import type { ContainerInfo, DockerEvent, InventoryEvent } from '../../../src/docker/types.js';
import { NdjsonLogExporter } from '../../../src/exporters/ndjson.js';
import { LogsComponent } from '../../../src/logs/component.js';
import { encodeJsonFileLine } from '../../../src/logs/jsonfile.js';
import { LogTelemetry } from '../../../src/logs/telemetry.js';
import { makeContainerInfo } from '../../support/container-info.js';

class EventsOnlyInventory {
  private readonly events = new Set<(e: DockerEvent) => void>();
  constructor(
    private readonly root: string,
    /** What the inventory learned at create (inspected before the start: no log path yet). */
    private readonly known?: ContainerInfo,
  ) {}
  list = (): ContainerInfo[] => [];
  get = (): ContainerInfo | undefined => this.known;
  subscribe =
    (_fn: (ev: InventoryEvent) => void): (() => void) =>
    () =>
      undefined;
  onDockerEvent = (fn: (e: DockerEvent) => void): (() => void) => {
    this.events.add(fn);
    return () => this.events.delete(fn);
  };
  ready = (): boolean => true;
  engine = (): { dockerRootDir: string } => ({ dockerRootDir: this.root });
  emit(Action: string, id: string, Attributes: Record<string, string>): void {
    for (const fn of [...this.events])
      fn({ Type: 'container', Action, Actor: { ID: id, Attributes }, time: 0, timeNano: 0 });
  }
}

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

async function until(cond: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

it.each([
  ['the inventory never knew it', false],
  ['the inventory knew it only from its create (no log path yet)', true],
])(
  'reads the held log of a container removed before its start was inspected (%s), then retires it',
  async (_what, knownAtCreate) => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'hm-orphan-'));
    const id = 'ab'.repeat(32);
    const dir = path.join(root, 'containers', id);
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `${id}-json.log`);
    const t0 = Date.now();
    writeFileSync(
      file,
      Array.from({ length: 20 }, (_, i) =>
        encodeJsonFileLine(`line-${i + 1}\n`, 'stdout', new Date(t0 + i).toISOString()),
      ).join(''),
    );
    const out = path.join(root, 'out.ndjson');
    const inventory = new EventsOnlyInventory(
      root,
      knownAtCreate
        ? makeContainerInfo({
            id,
            name: 'short-lived',
            image: 'busybox:1.36',
            labels: { 'com.docker.compose.service': 'job' },
            state: 'created',
            logPath: '',
          })
        : undefined,
    );
    const registry = new Registry();
    const comp = new LogsComponent({
      logs: { ...logsSection.parse({}), batch_delay_seconds: 0.01, poll_interval_seconds: 0.05 },
      stateDir: path.join(root, 'state'),
      dockerRoot: root,
      shutdownTimeoutSeconds: 1,
      identity: new ResourceIdentity({ hostName: 'h', daemonInfo: () => undefined }),
      logger: pino({ level: 'silent' }),
      inventory: inventory as unknown as ConstructorParameters<
        typeof LogsComponent
      >[0]['inventory'],
      exporter: new NdjsonLogExporter(out),
      telemetry: new LogTelemetry(registry, pino({ level: 'silent' })),
    });
    cleanup.push(async () => {
      await comp.stop();
      await rm(root, { recursive: true, force: true });
    });
    await comp.start();

    const attrs = {
      name: 'short-lived',
      image: 'busybox:1.36',
      'com.docker.compose.service': 'job',
    };
    inventory.emit('start', id, attrs);
    // Docker removes the container (and its directory) before any inspect answered
    rmSync(dir, { recursive: true, force: true });
    inventory.emit('die', id, { ...attrs, exitCode: '0' });
    inventory.emit('destroy', id, attrs);

    const lines = (): Array<{ body: string; resource: Record<string, unknown> }> =>
      existsSync(out)
        ? readFileSync(out, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as { body: string; resource: Record<string, unknown> })
        : [];
    expect(await until(() => lines().length >= 20, 10_000)).toBe(true);
    expect(lines().map((l) => l.body)).toEqual(
      Array.from({ length: 20 }, (_, i) => `line-${i + 1}`),
    );
    expect(lines()[0]?.resource['container.name']).toBe('short-lived');
    expect(lines()[0]?.resource['service.name']).toBe('job');
    // nothing counted as lost, and the source retires (no series left for it)
    const metrics = await registry.metrics();
    expect(metrics).toMatch(/harbormaster_log_drops_total\{reason="file_removed_unread"\} 0/);
    expect(
      await until(async () => !(await registry.metrics()).includes('short-lived'), 10_000),
    ).toBe(true);
  },
);
