// Issue 16, criterion 5: with the queue full (the receiver answers 503) and ~60 MB written across
// several json-file generations, harbormaster_log_file_bytes_behind is the real distance to the
// end of the newest generation while the tailer is paused: within 5 % of the truth computed from
// the files themselves (sizes of every generation Docker keeps, minus the checkpoint offset).
// harbormaster_log_oldest_unshipped_seconds meanwhile is the age of the oldest line not delivered
// (the json-file time of the line at the checkpoint, from the files), rising while the receiver
// refuses, and 0 once the receiver takes everything.
import { closeSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  describeDocker,
  getDocker,
  harness,
  runContainer,
  startAgent,
  TEST_IMAGE,
  uniqueName,
  waitFor,
  type AgentProcess,
} from './harness/index.js';
import { startOtlpReceiver, type OtlpReceiver } from '../support/otlp-receiver.js';

const QUEUE_MAX = 1024 * 1024;
const LINES = 380_000;
const PAD = 'y'.repeat(96);

/** Bytes not delivered, from the files: every generation newer than the checkpoint's, plus the
 * rest of the checkpoint's own generation (all of them when there is no checkpoint). */
function truth(logPath: string, stateDir: string, id: string): { bytes: number; gens: number } {
  const dir = path.dirname(logPath);
  const base = path.basename(logPath);
  const gens = readdirSync(dir)
    .filter((n) => n === base || new RegExp(`^${base}\\.\\d+$`).test(n))
    .map((n) => {
      const st = statSync(path.join(dir, n));
      return { n: n === base ? 0 : Number(n.slice(base.length + 1)), size: st.size, ino: st.ino };
    })
    .sort((a, b) => b.n - a.n); // oldest first
  let cp: { ino: number; offset: number } | undefined;
  try {
    const j = JSON.parse(readFileSync(path.join(stateDir, 'log-checkpoints.json'), 'utf8')) as {
      files: Record<string, { ino: number; offset: number }>;
    };
    cp = j.files[id];
  } catch {
    // no checkpoint written (nothing delivered)
  }
  const from = cp
    ? Math.max(
        0,
        gens.findIndex((g) => g.ino === cp.ino),
      )
    : 0;
  let bytes = 0;
  for (let i = from; i < gens.length; i++) bytes += gens[i]!.size;
  if (cp && gens[from]?.ino === cp.ino) bytes -= cp.offset;
  return { bytes, gens: gens.length };
}

/** When the oldest line not delivered was written (ms): the line at the checkpoint, or the first
 * line of the oldest generation when nothing was committed. */
function oldestUndelivered(logPath: string, stateDir: string, id: string): number {
  const dir = path.dirname(logPath);
  const base = path.basename(logPath);
  const gens = readdirSync(dir)
    .filter((n) => n === base || new RegExp(`^${base}\\.\\d+$`).test(n))
    .map((n) => ({ n: n === base ? 0 : Number(n.slice(base.length + 1)), file: path.join(dir, n) }))
    .sort((a, b) => b.n - a.n)
    .map((g) => ({ ...g, ino: statSync(g.file).ino, size: statSync(g.file).size }));
  let cp: { ino: number; offset: number } | undefined;
  try {
    const j = JSON.parse(readFileSync(path.join(stateDir, 'log-checkpoints.json'), 'utf8')) as {
      files: Record<string, { ino: number; offset: number }>;
    };
    cp = j.files[id];
  } catch {
    // nothing delivered yet
  }
  let i = cp
    ? Math.max(
        0,
        gens.findIndex((g) => g.ino === cp.ino),
      )
    : 0;
  let offset = cp && gens[i]?.ino === cp.ino ? cp.offset : 0;
  if (offset >= gens[i]!.size) {
    i++;
    offset = 0;
  }
  const fd = openSync(gens[i]!.file, 'r');
  try {
    const buf = Buffer.alloc(4096);
    const n = readSync(fd, buf, 0, buf.length, offset);
    const line = buf.subarray(0, n).toString('utf8').split('\n')[0]!;
    return Date.parse((JSON.parse(line) as { time: string }).time);
  } finally {
    closeSync(fd);
  }
}

describeDocker('bytes behind while paused on a full queue (issue 16, criterion 5)', () => {
  let rx: OtlpReceiver;
  let agent: AgentProcess | undefined;
  let stateDir: string;
  beforeAll(async () => {
    rx = await startOtlpReceiver();
    stateDir = await mkdtemp(path.join(os.tmpdir(), 'hm-behind-'));
  });
  afterAll(async () => {
    await agent?.kill().catch(() => undefined);
    await rx?.close();
    await rm(stateDir, { recursive: true, force: true });
  });

  it('harbormaster_log_file_bytes_behind is within 5 % of the unread bytes of every generation', async () => {
    rx.setStatus(503, { retryAfter: 1 });
    const info = harness().docker;
    agent = await startAgent({
      dockerHost: getDocker().host,
      stateDir,
      args: ['--docker-root', info.available ? info.dataRoot : '/var/lib/docker'],
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
        HARBORMASTER_LOGS_QUEUE_MAX_BYTES: String(QUEUE_MAX),
        HARBORMASTER_LOGS_BATCH_MAX_BYTES: String(256 * 1024),
        HARBORMASTER_LOGS_READ_CHUNK_BYTES: '4096',
        HARBORMASTER_LOGS_BATCH_DELAY_SECONDS: '0.05',
        HARBORMASTER_LOGS_POLL_INTERVAL_SECONDS: '0.2',
        HARBORMASTER_LOGS_RETRY_MAX_SECONDS: '1',
        HARBORMASTER_METRICS_ENABLED: 'false',
      },
    });
    const a = agent;
    const name = uniqueName('behind');
    const id = (
      await runContainer([
        '-d',
        '--name',
        name,
        '--log-driver',
        'json-file',
        '--log-opt',
        'max-size=10m',
        '--log-opt',
        'max-file=10',
        TEST_IMAGE,
        'sh',
        '-c',
        `seq 1 ${LINES} | sed 's/$/ ${PAD}/'; sleep 600`,
      ])
    ).stdout.trim();
    const logPath = (await getDocker().dockerOk(['inspect', '-f', '{{.LogPath}}', id])).trim();
    await waitFor(
      async () =>
        (await getDocker().docker(['logs', '--tail', '1', id])).stdout.startsWith(`${LINES} `),
      120_000,
      250,
      'the container to write its lines',
    );
    const written = truth(logPath, stateDir, id);
    expect(written.bytes).toBeGreaterThan(55 * 1024 * 1024);
    expect(written.gens).toBeGreaterThanOrEqual(6);

    const behind = (t: string): number | undefined => {
      const m = new RegExp(
        `^harbormaster_log_file_bytes_behind\\{container_name="${name}"\\} (\\d+)$`,
        'm',
      ).exec(t);
      return m ? Number(m[1]) : undefined;
    };
    const oldest = (t: string): number | undefined => {
      const m = /^harbormaster_log_oldest_unshipped_seconds ([\d.e+-]+)$/m.exec(t);
      return m ? Number(m[1]) : undefined;
    };
    const queueBytes = (t: string): number =>
      Number(/^harbormaster_log_queue_bytes (\d+)$/m.exec(t)?.[1] ?? NaN);
    let last = '';
    const ages: number[] = [];
    // Paused: the queue holds records, nothing is delivered, and the gauge tracks the truth.
    for (let i = 0; i < 3; i++) {
      const ok = await waitFor(
        async () => {
          const t = (await a.get('/metrics')).text;
          const real = truth(logPath, stateDir, id).bytes;
          const g = behind(t);
          last = `gauge ${g} B, truth ${real} B, queue ${queueBytes(t)} B`;
          return g !== undefined && queueBytes(t) > 0 && Math.abs(g - real) <= 0.05 * real
            ? { g, real }
            : undefined;
        },
        30_000,
        250,
        'bytes behind within 5 % of the truth',
      ).catch((e: unknown) => {
        console.log(last);
        throw e;
      });
      console.log(
        `paused: bytes_behind ${ok.g} B, truth ${ok.real} B (${((100 * (ok.g - ok.real)) / ok.real).toFixed(2)} %), ${written.gens} generations`,
      );
      expect(rx.logs()).toEqual([]);
      // The age of the oldest undelivered line, against its json-file time read from the file
      // right after the scrape. Tolerance 2 s: the time between the scrape and that read (well
      // under a second here), plus the gauge's granularity of one read chunk (4 KiB here: lines
      // that seq | sed wrote within milliseconds of each other). Rising a poll later.
      const t = await waitFor(
        async () => {
          const text = (await a.get('/metrics')).text;
          const g = oldest(text);
          return g !== undefined && (ages.length === 0 || g > ages[ages.length - 1]!)
            ? text
            : undefined;
        },
        10_000,
        100,
        'the oldest unshipped age to rise',
      );
      const real = (Date.now() - oldestUndelivered(logPath, stateDir, id)) / 1000;
      const age = oldest(t)!;
      console.log(`paused: oldest_unshipped ${age} s, truth ${real.toFixed(3)} s`);
      expect(Math.abs(age - real)).toBeLessThanOrEqual(2);
      ages.push(age);
    }
    // The receiver is back: everything is delivered, and the gauge falls to 0.
    rx.setStatus(200);
    await waitFor(
      async () => {
        rx.reset(); // keep the receiver's memory small: 60 MB of records are on their way
        const t = (await a.get('/metrics')).text;
        last = `oldest_unshipped ${oldest(t)} s, bytes_behind ${behind(t)} B`;
        return oldest(t) === 0 && behind(t) === 0;
      },
      180_000,
      500,
      'everything delivered (oldest unshipped 0)',
    ).catch((e: unknown) => {
      console.log(last);
      throw e;
    });
    await getDocker().docker(['rm', '-f', id]);
    await a.stop();
    agent = undefined;
  });
});
