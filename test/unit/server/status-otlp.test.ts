// The status page (GET /api/v1/status of a running agent) names the OTLP endpoints the exporters
// really use, with their protocol: for gRPC the host:port the channel connects to (not an HTTP
// URL with /v1/logs), and a per-signal logs endpoint when one is set.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../../../src/agent.js';
import { loadConfig } from '../../../src/config/load.js';
import type { StatusDocument } from '../../../src/server/status/model.js';
import { createLogger } from '../../../src/util/logger.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function statusOf(env: Record<string, string>): Promise<StatusDocument> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-status-otlp-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const { config } = loadConfig({
    env: {
      // no daemon answers here: the agent serves its status page all the same
      DOCKER_HOST: `unix://${path.join(dir, 'no-docker.sock')}`,
      HARBORMASTER_LISTEN: '127.0.0.1:0',
      HARBORMASTER_STATE_DIR: dir,
      ...env,
    },
    flags: { 'lifecycle-traces-enabled': 'true' },
  });
  const agent = new Agent(config, createLogger('silent'));
  cleanup.push(() => agent.stop());
  await agent.start();
  const res = await fetch(`http://${agent.address}/api/v1/status`);
  expect(res.status).toBe(200);
  return (await res.json()) as StatusDocument;
}

describe('status page OTLP endpoints', () => {
  it('shows the gRPC endpoint and protocol for logs and traces', async () => {
    const doc = await statusOf({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4317',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
    });
    const by = Object.fromEntries(doc.otlp.map((o) => [o.signal, o]));
    expect(by.logs).toMatchObject({ url: 'http://127.0.0.1:4317', protocol: 'grpc' });
    expect(by.traces).toMatchObject({ protocol: 'grpc' });
    expect(by.traces?.url).not.toContain('/v1/');
  });

  it('shows the logs-specific endpoint and its protocol over HTTP', async () => {
    const doc = await statusOf({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4317',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: 'http://127.0.0.1:4318/custom/logs',
      OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: 'http/json',
    });
    const logs = doc.otlp.find((o) => o.signal === 'logs');
    expect(logs).toMatchObject({ url: 'http://127.0.0.1:4318/custom/logs', protocol: 'http/json' });
    expect(doc.otlp.find((o) => o.signal === 'traces')).toMatchObject({ protocol: 'grpc' });
  });
});
