// Log shipping wired end to end without Docker: a static inventory with one json-file
// container whose log is a real file, the NDJSON exporter to a real file, the real checkpoint
// store. Lines arrive; the telemetry snapshot reports them shipped; another component's records
// go through intake(); reconfigure() applies new rules to the next lines, nothing lost or twice.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { logsSection } from '../../../src/config/sections/logs.js';
import { ResourceIdentity } from '../../../src/docker/identity.js';
import { NdjsonLogExporter } from '../../../src/exporters/ndjson.js';
import { OtlpLogsExporter } from '../../../src/exporters/otlp-logs.js';
import { CHECKPOINT_FILE } from '../../../src/logs/checkpoints.js';
import { LogsComponent } from '../../../src/logs/component.js';
import { processingSection } from '../../../src/logs/processing/config.js';
import { newRecord } from '../../../src/logs/record.js';
import { LogTelemetry } from '../../../src/logs/telemetry.js';
import { makeContainerInfo } from '../../support/container-info.js';
import { startOtlpReceiver } from '../../support/otlp-receiver.js';
import { FakeDockerLog } from './fake-docker.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('log shipping component', () => {
  it('ships a container log, reports it in the snapshot, takes submitted records, and reconfigures without loss', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-comp-'));
    dirs.push(dir);
    const w = new FakeDockerLog(dir);
    for (let i = 0; i < 50; i++) w.write('stdout', `line ${i}`);
    const c = makeContainerInfo({ id: 'a'.repeat(64), name: 'web', logPath: w.file });
    const inventory = {
      list: () => [c],
      get: (id: string) => (id === c.id ? c : undefined),
      subscribe: () => () => {},
      ready: () => true,
      engine: () => undefined,
    };
    const out = path.join(dir, 'out.ndjson');
    const logger = pino({ level: 'silent' });
    const telemetry = new LogTelemetry(new Registry(), logger);
    const logs = {
      ...logsSection.parse({}),
      batch_delay_seconds: 0.02,
      poll_interval_seconds: 0.02,
    };
    const comp = new LogsComponent({
      logs,
      stateDir: path.join(dir, 'state'),
      dockerRoot: '/var/lib/docker',
      shutdownTimeoutSeconds: 5,
      identity: new ResourceIdentity({ hostName: 'h1', daemonInfo: () => undefined }),
      logger,
      inventory,
      exporter: new NdjsonLogExporter(out),
      telemetry,
    });
    await comp.start();
    const shipped = (): { body: string; resource: Record<string, unknown> }[] => {
      try {
        return readFileSync(out, 'utf8')
          .trimEnd()
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { body: string; resource: Record<string, unknown> });
      } catch {
        return [];
      }
    };
    try {
      await until(() => shipped().length === 50, '50 lines shipped');
      await until(
        () => telemetry.snapshot().containers[0]?.linesShipped === 50,
        'the snapshot to count them',
      );
      const snap = telemetry.snapshot();
      expect(snap.containers).toEqual([
        expect.objectContaining({ name: 'web', kind: 'file', linesRead: 50, bytesBehind: 0 }),
      ]);
      expect(snap.exported).toBe(50);
      expect(shipped()[0]).toMatchObject({
        body: 'line 0',
        resource: { 'container.name': 'web', 'host.name': 'h1', 'service.name': 'web' },
      });
      // Another component's record, with its own resource.
      comp
        .intake()
        .submit(
          newRecord(
            { key: 'audit', attributes: { 'service.name': 'audit' } },
            'stdout',
            'exec ls',
            1,
            0,
            0,
            undefined,
          ),
        );
      await until(() => shipped().length === 51, 'the submitted record');
      expect(shipped()[50]).toMatchObject({
        body: 'exec ls',
        resource: { 'service.name': 'audit' },
      });
      // New rules apply to the next lines.
      comp.reconfigure(processingSection.parse({ drop_pattern: '^noise' }));
      w.write('stdout', 'noise 1');
      w.write('stdout', 'kept 1');
      await until(() => shipped().length === 52, 'the line after reconfigure');
      expect(shipped()[51]!.body).toBe('kept 1');
      expect(telemetry.snapshot().drops).toEqual({ filter_drop: 1 });
      await until(() => {
        try {
          const cp = JSON.parse(readFileSync(path.join(dir, 'state', CHECKPOINT_FILE), 'utf8')) as {
            files: Record<string, { offset: number }>;
          };
          return cp.files[c.id]?.offset === readFileSync(w.file).length;
        } catch {
          return false;
        }
      }, 'the checkpoint at the end of the file');
    } finally {
      await comp.stop();
    }
    expect(shipped().filter((r) => r.body.startsWith('line ')).length).toBe(50);
  });

  it('counts lines the receiver rejects with 400 in harbormaster_log_drops_total{reason="export_rejected"} and moves past them', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-comp-'));
    dirs.push(dir);
    const receiver = await startOtlpReceiver({ behaviour: { status: 400 } });
    const w = new FakeDockerLog(dir);
    for (let i = 0; i < 40; i++) w.write('stdout', `rejected ${i}`);
    const c = makeContainerInfo({ id: 'b'.repeat(64), name: 'api', logPath: w.file });
    const registry = new Registry();
    const logger = pino({ level: 'silent' });
    const exporter = new OtlpLogsExporter({
      url: `${receiver.url}/v1/logs`,
      protocol: 'http/protobuf',
      headers: {},
      compression: 'none',
      timeoutMs: 5000,
    });
    const comp = new LogsComponent({
      logs: { ...logsSection.parse({}), batch_delay_seconds: 0.02, poll_interval_seconds: 0.02 },
      stateDir: path.join(dir, 'state'),
      dockerRoot: '/var/lib/docker',
      shutdownTimeoutSeconds: 5,
      identity: new ResourceIdentity({ hostName: 'h1', daemonInfo: () => undefined }),
      logger,
      inventory: {
        list: () => [c],
        get: (id: string) => (id === c.id ? c : undefined),
        subscribe: () => () => {},
        ready: () => true,
        engine: () => undefined,
      },
      exporter,
      telemetry: new LogTelemetry(registry, logger),
    });
    const rejected = async (): Promise<number | undefined> => {
      const m = /^harbormaster_log_drops_total\{reason="export_rejected"\} (\d+)$/m.exec(
        await registry.metrics(),
      );
      return m ? Number(m[1]) : undefined;
    };
    const checkpointOffset = (): number | undefined => {
      try {
        const cp = JSON.parse(readFileSync(path.join(dir, 'state', CHECKPOINT_FILE), 'utf8')) as {
          files: Record<string, { offset: number }>;
        };
        return cp.files[c.id]?.offset;
      } catch {
        return undefined;
      }
    };
    await comp.start();
    try {
      // rejected lines are done with: acknowledged, so the checkpoint reaches the end of the file
      await until(
        () => checkpointOffset() === readFileSync(w.file).length,
        'the checkpoint past the rejected lines',
      );
      expect(receiver.requests()).toBeGreaterThanOrEqual(1);
      expect(await rejected()).toBe(40);
    } finally {
      await comp.stop();
      await exporter.shutdown();
      await receiver.close();
    }
  });
});
