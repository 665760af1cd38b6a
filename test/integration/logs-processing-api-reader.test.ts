// Issue 6 acceptance 5 at reader level: containers with the local driver (and journald where the
// daemon supports it) are read through the Engine API logs stream; every numbered line arrives
// once and in order per stream, also across a reader restart that resumes from the committed
// cursor; long lines split by Docker into 16 KiB partial messages arrive whole.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DockerClient } from '../../src/docker/client.js';
import { ApiLogReader, type ApiLogCursor, type ApiLogRecord } from '../../src/logs/api-reader.js';
import {
  describeDocker,
  getDocker,
  logDriverSkipNote,
  runContainer,
  TEST_IMAGE,
  uniqueName,
  waitFor,
} from './harness/index.js';

interface Collected {
  records: ApiLogRecord[];
  cursor: ApiLogCursor;
}

/** Runs a reader until `until` holds for the records, acking every batch; returns what it saw. */
async function readUntil(
  client: DockerClient,
  id: string,
  cursor: ApiLogCursor | undefined,
  until: (recs: ApiLogRecord[]) => boolean,
  opts: { follow?: boolean; ackAll?: boolean } = {},
): Promise<Collected> {
  const records: ApiLogRecord[] = [];
  const ac = new AbortController();
  const reader = new ApiLogReader({
    client,
    containerId: id,
    cursor,
    follow: opts.follow,
    batchMaxRecords: 7,
    onRecords(batch, ack) {
      records.push(...batch);
      ack();
      if (until(records)) ac.abort();
    },
  });
  const done = reader.run(ac.signal);
  await Promise.race([
    done,
    waitFor(() => until(records), 60_000, 20, 'records to arrive').then(() => ac.abort()),
  ]);
  await done;
  return { records, cursor: reader.cursor };
}

const lines = (recs: ApiLogRecord[], stream: 'stdout' | 'stderr'): string[] =>
  recs.filter((r) => r.stream === stream).map((r) => r.body.toString('utf8'));

describeDocker('Engine API log reader', () => {
  let client: DockerClient;

  beforeAll(async () => {
    client = new DockerClient({ host: getDocker().host });
    await client.negotiate();
  });
  afterAll(() => client?.close());

  it('reads every numbered line of a local-driver container once, in order, across a reader restart', async () => {
    const N = 400;
    const name = uniqueName('apilocal');
    // Lines on both streams, with pauses so the first reader stops in the middle of the output.
    const script = `i=0; while [ $i -lt ${N} ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); if [ $((i % 50)) -eq 0 ]; then usleep 200000; fi; done; sleep 600`;
    const id = (
      await runContainer([
        '-d',
        '--name',
        name,
        '--log-driver',
        'local',
        '--stop-timeout',
        '1',
        TEST_IMAGE,
        'sh',
        '-c',
        script,
      ])
    ).stdout.trim();

    // First reader: stops (abort, like an agent stop) after about a third of the lines.
    const first = await readUntil(client, id, undefined, (r) => r.length >= 270);
    expect(first.records.length).toBeGreaterThanOrEqual(270);
    // Second reader resumes from the committed cursor.
    const second = await readUntil(client, id, first.cursor, (r) => {
      const all = [...first.records, ...r];
      return lines(all, 'stdout').length >= N && lines(all, 'stderr').length >= N;
    });
    const all = [...first.records, ...second.records];
    const expectOut = Array.from({ length: N }, (_, i) => `out ${i}`);
    const expectErr = Array.from({ length: N }, (_, i) => `err ${i}`);
    // Nothing missing, nothing duplicated (the acked cursor is exact), order kept per stream.
    expect(lines(all, 'stdout')).toEqual(expectOut);
    expect(lines(all, 'stderr')).toEqual(expectErr);
    // Timestamps are Docker's, at nanosecond precision, non-decreasing per stream.
    for (const s of ['stdout', 'stderr'] as const) {
      const ts = all.filter((r) => r.stream === s).map((r) => r.timeUnixNano);
      for (let i = 1; i < ts.length; i++) expect(ts[i]! >= ts[i - 1]!).toBe(true);
      expect(Number(ts[0]! / 1_000_000n)).toBeGreaterThan(Date.now() - 600_000);
    }
  });

  it('resumes exactly at a cursor inside a burst of lines written within one second', async () => {
    const name = uniqueName('apiburst');
    const id = (
      await runContainer([
        '-d',
        '--name',
        name,
        '--log-driver',
        'local',
        TEST_IMAGE,
        'sh',
        '-c',
        'i=0; while [ $i -lt 100 ]; do echo "line $i"; i=$((i+1)); done',
      ])
    ).stdout.trim();
    await getDocker().dockerOk(['wait', id]);
    // Every possible boundary: resume after k records must yield exactly the rest.
    const full = await readUntil(client, id, undefined, () => false, { follow: false });
    expect(lines(full.records, 'stdout')).toEqual(
      Array.from({ length: 100 }, (_, i) => `line ${i}`),
    );
    for (const k of [1, 37, 99, 100]) {
      const rest = await readUntil(client, id, full.records[k - 1]!.cursor, () => false, {
        follow: false,
      });
      expect(lines(rest.records, 'stdout')).toEqual(
        Array.from({ length: 100 - k }, (_, i) => `line ${i + k}`),
      );
    }
  });

  it('joins a line longer than 16 KiB that Docker stored as partial messages', async () => {
    const name = uniqueName('apilong');
    const id = (
      await runContainer([
        '-d',
        '--name',
        name,
        '--log-driver',
        'local',
        TEST_IMAGE,
        'sh',
        '-c',
        "echo before; head -c 40000 /dev/zero | tr '\\0' x; echo; echo after",
      ])
    ).stdout.trim();
    await getDocker().dockerOk(['wait', id]);
    const r = await readUntil(client, id, undefined, () => false, { follow: false });
    const out = lines(r.records, 'stdout');
    expect(out).toEqual(['before', 'x'.repeat(40000), 'after']);
  });

  it('reads a TTY container (raw stream)', async () => {
    const name = uniqueName('apitty');
    const id = (
      await runContainer([
        '-d',
        '-t',
        '--name',
        name,
        '--log-driver',
        'local',
        TEST_IMAGE,
        'sh',
        '-c',
        'echo one; echo two',
      ])
    ).stdout.trim();
    await getDocker().dockerOk(['wait', id]);
    const r = await readUntil(client, id, undefined, () => false, { follow: false });
    expect(lines(r.records, 'stdout')).toEqual(['one', 'two']);
  });

  it('reads a journald container (skips outside CI only when the daemon refuses journald)', async (ctx) => {
    const name = uniqueName('apijournald');
    const run = await runContainer(
      [
        '-d',
        '--name',
        name,
        '--log-driver',
        'journald',
        TEST_IMAGE,
        'sh',
        '-c',
        'echo j1; echo j2',
      ],
      { allowFailure: true },
    );
    if (run.code !== 0) {
      ctx.skip(logDriverSkipNote('journald', run));
      return;
    }
    const id = run.stdout.trim();
    await getDocker().docker(['wait', id]);
    const r = await readUntil(client, id, undefined, () => false, { follow: false });
    expect(lines(r.records, 'stdout')).toEqual(['j1', 'j2']);
  });
});
