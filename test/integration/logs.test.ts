// Log shipping acceptance (issue 5) against the private dockerd, the built agent and a receiver
// that decodes the real OTLP protobuf.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  describeDocker,
  getDocker,
  harness,
  runContainer,
  sleep,
  startAgent,
  TEST_IMAGE,
  uniqueName,
  waitFor,
  type AgentProcess,
} from './harness/index.js';
import {
  allLogRecords,
  attrs,
  startOtlpReceiver,
  type OtlpReceiver,
} from '../support/otlp-receiver.js';

const BIG = 64 * 1024;

/** Shell script: per stream, `blocks` blocks of `per` numbered lines, each followed by one 64 KiB line. */
function writerScript(blocks: number, per: number, pause = '0'): string {
  const one = (redir: string): string =>
    `b=0; while [ $b -lt ${blocks} ]; do seq $((b*${per}+1)) $((b*${per}+${per})) ${redir}; ` +
    `{ printf 'big%d:' $b; head -c ${BIG} /dev/zero | tr '\\0' x; echo; } ${redir}; ` +
    `b=$((b+1)); sleep ${pause}; done`;
  // The first second lets the agent attach before the first rotation.
  return `sleep 1; ( ${one('>&2')} ) & ( ${one('')} ); wait`;
}

interface Received {
  stdout: string[];
  stderr: string[];
}

function received(rx: OtlpReceiver, id: string): Received {
  const out: Received = { stdout: [], stderr: [] };
  for (const r of allLogRecords(rx.logs())) {
    if (r.resource['container.id'] !== id) continue;
    const s = attrs(r.attributes)['log.iostream'] as 'stdout' | 'stderr';
    out[s].push(r.body?.stringValue ?? '');
  }
  return out;
}

/** Checks every number 1..n and every big line arrived; returns the duplicate count per stream. */
function check(got: string[], blocks: number, per: number): { dups: number } {
  const seen = new Map<string, number>();
  let lastNum = 0;
  let outOfOrder = 0;
  for (const b of got) {
    seen.set(b, (seen.get(b) ?? 0) + 1);
    if (!b.startsWith('big')) {
      const n = Number(b);
      if (n < lastNum && seen.get(b) === 1) outOfOrder++;
      lastNum = n;
    }
  }
  const missing: string[] = [];
  for (let i = 1; i <= blocks * per; i++) if (!seen.has(String(i))) missing.push(String(i));
  for (let b = 0; b < blocks; b++) {
    const big = `big${b}:${'x'.repeat(BIG)}`;
    if (!seen.has(big)) missing.push(`big${b}`);
  }
  expect(missing.slice(0, 10)).toEqual([]);
  expect(outOfOrder).toBe(0);
  let dups = 0;
  for (const c of seen.values()) dups += c - 1;
  return { dups };
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

describeDocker('log shipping (json-file → OTLP)', () => {
  let rx: OtlpReceiver;
  let stateDir: string;
  const agents: AgentProcess[] = [];

  beforeAll(async () => {
    rx = await startOtlpReceiver();
  });
  afterAll(async () => {
    for (const a of agents) await a.kill().catch(() => undefined);
    await rx?.close();
  });

  async function agent(dir: string): Promise<AgentProcess> {
    const info = harness().docker;
    const a = await startAgent({
      dockerHost: getDocker().host,
      stateDir: dir,
      args: ['--docker-root', info.available ? info.dataRoot : '/var/lib/docker'],
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
        HARBORMASTER_LOGS_BATCH_DELAY_SECONDS: '0.05',
        HARBORMASTER_LOGS_POLL_INTERVAL_SECONDS: '0.1',
        HARBORMASTER_METRICS_ENABLED: 'false',
      },
    });
    agents.push(a);
    return a;
  }

  async function newStateDir(): Promise<string> {
    // A failed test may have left its agent running: it must not ship into the next test.
    for (const a of agents.splice(0)) await a.kill().catch(() => undefined);
    stateDir = await mkdtemp(path.join(os.tmpdir(), 'hm-logs-state-'));
    return stateDir;
  }

  async function runWriter(
    maxFile: number,
    blocks: number,
    per: number,
    pause = '0',
  ): Promise<string> {
    const name = uniqueName('logs');
    const r = await runContainer([
      '-d',
      '--name',
      name,
      '--log-driver',
      'json-file',
      '--log-opt',
      'max-size=1m',
      '--log-opt',
      `max-file=${maxFile}`,
      TEST_IMAGE,
      'sh',
      '-c',
      writerScript(blocks, per, pause),
    ]);
    return r.stdout.trim();
  }

  async function waitAll(id: string, blocks: number, per: number, ms = 90_000): Promise<Received> {
    const want = blocks * (per + 1);
    const last = agents[agents.length - 1];
    return waitFor(
      () => {
        const g = received(rx, id);
        const uniq = (xs: string[]): number => new Set(xs).size;
        return uniq(g.stdout) >= want && uniq(g.stderr) >= want ? g : undefined;
      },
      ms,
      250,
      `${want} lines per stream`,
    ).catch(async (err: unknown) => {
      const g = received(rx, id);
      for (const st of ['stdout', 'stderr'] as const) {
        const set = new Set(g[st]);
        const ranges: string[] = [];
        let startMiss = -1;
        for (let i = 1; i <= blocks * per + 1; i++) {
          const has = set.has(String(i)) || i > blocks * per;
          if (!has && startMiss < 0) startMiss = i;
          if (has && startMiss >= 0) {
            ranges.push(`${startMiss}-${i - 1}`);
            startMiss = -1;
          }
        }
        console.log(`${st} missing ranges: ${ranges.slice(0, 20).join(' ')}`);
      }
      const m = last ? (await last.get('/metrics').catch(() => ({ text: '' }))).text : '';
      console.log(
        `received stdout=${g.stdout.length} (${new Set(g.stdout).size} unique) stderr=${g.stderr.length}; requests=${rx.requests()} errors=${rx.errors().slice(0, 3).join(';')}\n` +
          m
            .split('\n')
            .filter((l) => l.startsWith('harbormaster_log'))
            .join('\n') +
          `\n${last?.stderr().slice(-3000) ?? ''}`,
      );
      throw err;
    });
  }

  for (const maxFile of [3, 1]) {
    it(`delivers 200,000 lines with 64 KiB lines exactly once, in order, max-size=1m max-file=${maxFile}`, async () => {
      rx.reset();
      const dir = await newStateDir();
      const a = await agent(dir);
      const blocks = 10;
      const per = 10_000;
      const id = await runWriter(maxFile, blocks, per, '0.1');
      const got = await waitAll(id, blocks, per, 40_000);
      expect(check(got.stdout, blocks, per).dups).toBe(0);
      expect(check(got.stderr, blocks, per).dups).toBe(0);
      const metrics = (await a.get('/metrics')).text;
      expect(metrics).toMatch(/harbormaster_log_records_exported_total \d+/);
      expect(metrics).toMatch(/harbormaster_log_drops_total\{reason="malformed_record"\} 0/);
      const rec = allLogRecords(rx.logs()).find((r) => r.resource['container.id'] === id)!;
      expect(rec.resource).toMatchObject({
        'container.image.name': 'harbormaster-test',
        'container.image.tags': ['busybox'],
      });
      expect(rec.resource['host.name']).toBeTruthy();
      expect(rec.timeUnixNano).toMatch(/^\d{19}$/);
      await a.stop();
      await rm(dir, { recursive: true, force: true });
    });
  }

  it('SIGKILLed 10 times during a run: nothing missing, duplicates at most one batch per kill', async () => {
    rx.reset();
    const dir = await newStateDir();
    let a = await agent(dir);
    const blocks = 20;
    const per = 5_000;
    const id = await runWriter(5, blocks, per, '1');
    for (let k = 0; k < 10; k++) {
      await sleep(300 + Math.random() * 500);
      await a.kill();
      a = await agent(dir);
    }
    const got = await waitAll(id, blocks, per);
    const d1 = check(got.stdout, blocks, per).dups;
    const d2 = check(got.stderr, blocks, per).dups;
    // A batch holds at most logs.batch_max_records (4096) records of either stream.
    expect(d1 + d2).toBeLessThanOrEqual(10 * 4096);
    await a.stop();
  });

  it('receiver answers 503 for 30 s then recovers: nothing lost, RSS bounded while the backlog waits on disk', async () => {
    rx.reset();
    const dir = await newStateDir();
    const a = await agent(dir);
    rx.setStatus(503, { retryAfter: 1 });
    const blocks = 20;
    const per = 10_000;
    const id = await runWriter(20, blocks, per);
    let peak = 0;
    const t0 = Date.now();
    while (Date.now() - t0 < 30_000) {
      peak = Math.max(peak, rssMiB(a.pid));
      await sleep(250);
    }
    rx.setStatus(200);
    const got = await waitAll(id, blocks, per);
    check(got.stdout, blocks, per);
    check(got.stderr, blocks, per);
    // Backlog: ~30 MB of json-file data (400,000 lines + 40 × 64 KiB) waits on disk.
    expect(peak).toBeLessThan(150);
    console.log(`peak RSS during 30 s of 503: ${peak.toFixed(1)} MiB`);
    await a.stop();
  });

  it('stopped while a container writes and rotates twice, then started: every line delivered', async () => {
    rx.reset();
    const dir = await newStateDir();
    let a = await agent(dir);
    const name = uniqueName('logs-restart');
    const id = (
      await runContainer([
        '-d',
        '--name',
        name,
        '--log-opt',
        'max-size=1m',
        '--log-opt',
        'max-file=3',
        TEST_IMAGE,
        'sh',
        '-c',
        'seq 1 1000; sleep 3; seq 1001 40000; sleep 1000',
      ])
    ).stdout.trim();
    await waitFor(() => received(rx, id).stdout.length >= 1000, 20_000, 100, 'first lines');
    await a.stop();
    await sleep(4000); // 39,000 lines ≈ 2.6 MB: two rotations while the agent is down
    a = await agent(dir);
    const got = await waitFor(
      () => {
        const g = received(rx, id);
        return new Set(g.stdout).size >= 40_000 ? g : undefined;
      },
      60_000,
      250,
      '40,000 lines',
    );
    const set = new Set(got.stdout);
    for (let i = 1; i <= 40_000; i++) if (!set.has(String(i))) throw new Error(`missing ${i}`);
    await a.stop();
    await getDocker().docker(['rm', '-f', id]);
  });
});
