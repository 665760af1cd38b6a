// What integration test files import. Importing this module also registers per-file cleanup:
// containers labelled harbormaster.test=1 are removed and leftover agents are killed after the file.
import { randomBytes } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, inject } from 'vitest';
import { registerCleanup } from './agent.js';
import { ENV, type DockerInfo, type HarnessInfo } from './context.js';
import {
  dockerHandle,
  startPrivateDockerd,
  type DockerHandle,
  type PrivateDockerd,
  type PrivateDockerdOptions,
} from './dockerd.js';
import type { ExecOptions, ExecResult } from './exec.js';
import { acquireGroupLock, acquireHostLock, type HostLock } from './host-lock.js';
import { ensureTestImage } from './image.js';
import { apartGroup, runsAlone } from './sequencer.js';

export * from './agent.js';
export * from './context.js';
export * from './dockerd.js';
export {
  dockerCliEnv,
  exec,
  listeningPorts,
  pingDocker,
  portOutsideEphemeralRange,
  refusedPort,
  sleep,
  tail,
  type ExecOptions,
  type ExecResult,
} from './exec.js';
export * from './image.js';
export * from './prometheus.js';

export const TEST_LABEL = 'harbormaster.test';

/**
 * This file's engine. When the globalSetup says so (perFileEngine: root and dockerd here, no
 * HARBORMASTER_TEST_DOCKER_HOST), importing the harness starts a private dockerd for this test
 * file alone (own socket, data root, containerd namespace and cgroup parent; the test image
 * imported) and the afterAll below destroys it: files in parallel workers, or one after the
 * other in one worker, never see each other's containers, leftovers or daemon state. About a
 * second per file. With CI set a dockerd that does not start fails the file; outside CI its
 * tests skip with the reason.
 */
const fileEngine: { info: DockerInfo; dockerd?: PrivateDockerd } = await (async () => {
  const provided = inject('harbormaster');
  if (!provided.perFileEngine) return { info: provided.docker };
  let d: PrivateDockerd | undefined;
  try {
    d = await startPrivateDockerd();
    const image = await ensureTestImage(d);
    return {
      info: {
        available: true,
        host: d.host,
        kind: 'private',
        image,
        storageDriver: d.storageDriver,
        dataRoot: d.dataRoot,
      },
      dockerd: d,
    };
  } catch (e) {
    await d?.destroy().catch(() => undefined);
    const reason = `could not start this file's private dockerd: ${e instanceof Error ? e.message : String(e)}`;
    if (process.env.CI) throw new Error(reason, { cause: e });
    return { info: { available: false, reason } };
  }
})();

/** What the globalSetup found (agent path…), with `docker` this file's engine (see above). */
export function harness(): HarnessInfo {
  return { ...inject('harbormaster'), docker: fileEngine.info };
}

// Child processes (agents, docker CLI helpers) inherit this file's engine.
if (fileEngine.info.available) process.env[ENV.dockerHost] = fileEngine.info.host;

/** Undefined when Docker tests can run, else the reason they are skipped. */
export function dockerSkipReason(): string | undefined {
  const d = harness().docker;
  return d.available ? undefined : d.reason;
}

let handle: DockerHandle | undefined;

/**
 * The shared engine for this run. When there is none: calls ctx.skip(reason) if a test context is
 * given, else throws (describeDocker already skips such suites).
 */
export function getDocker(ctx?: { skip: (note?: string) => void }): DockerHandle {
  const d = harness().docker;
  if (!d.available) {
    ctx?.skip(d.reason);
    throw new Error(`Docker is not available: ${d.reason}`);
  }
  // the file's own dockerd carries a docker CLI config dir of its own
  handle ??= fileEngine.dockerd ?? dockerHandle(d.host);
  return handle;
}

/** describe() when an engine is available; otherwise describe.skip with the reason in the name. */
export function describeDocker(name: string, fn: () => void | Promise<void>): void {
  const reason = dockerSkipReason();
  if (reason === undefined) describe(name, fn);
  else describe.skip(`${name} [skipped: ${reason}]`, fn);
}

let seq = 0;
/** A name valid for containers/images/volumes, unique across files and runs: `prefix-<pid>-<n>-<rand>`. */
export function uniqueName(prefix = 'hm'): string {
  seq += 1;
  const safe = prefix.replace(/[^a-zA-Z0-9_.-]/g, '-').replace(/^[^a-zA-Z0-9]+/, '') || 'hm';
  return `${safe}-${process.pid}-${seq}-${randomBytes(3).toString('hex')}`;
}

export interface RunContainerOptions extends ExecOptions {
  /** Engine to use (default getDocker()). */
  docker?: DockerHandle;
  /** Resolve instead of throwing on a non-zero exit of `docker run`. */
  allowFailure?: boolean;
}

/**
 * `docker run --label harbormaster.test=1 --network none ...args`. `--network none` is added unless
 * args choose a network themselves (e.g. `--network host`). Pass `-d` to get the id on stdout,
 * `--rm` for one-shot commands. Throws on a non-zero exit unless allowFailure.
 * Note: busybox `sh`/`sleep` as PID 1 ignore SIGTERM, so `docker stop` waits the full stop
 * timeout (10 s) unless you pass e.g. `--stop-timeout 1` or `--init`.
 */
export async function runContainer(
  args: readonly string[],
  opts: RunContainerOptions = {},
): Promise<ExecResult> {
  const { docker = getDocker(), allowFailure = false, ...execOpts } = opts;
  await ensureTestImage(docker);
  const hasNetwork = args.some(
    (a) =>
      a === '--network' || a === '--net' || a.startsWith('--network=') || a.startsWith('--net='),
  );
  const full = [
    'run',
    '--label',
    `${TEST_LABEL}=1`,
    ...(hasNetwork ? [] : ['--network', 'none']),
    ...args,
  ];
  const r = await docker.docker(full, execOpts);
  if (r.code !== 0 && !allowFailure) {
    throw new Error(`docker ${full.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`);
  }
  return r;
}

/** The daemon's own refusal of the journald driver (moby: daemon/logger/journald). */
const JOURNALD_REFUSAL = /journald is not enabled on this host/;

/**
 * Decides what a failed `docker run --log-driver <driver>` means. The `local` driver needs nothing
 * from the host, so its failure always fails the test. The journald driver needs a running
 * systemd-journald (`.ci/run` starts one): with CI set its failure fails the test too; outside CI
 * the test may skip, but only for the daemon's journald-specific refusal. Returns the skip note,
 * or throws with the daemon's error.
 */
export function logDriverSkipNote(driver: string, run: ExecResult): string {
  const err = run.stderr.trim();
  if (driver === 'journald' && !process.env.CI && JOURNALD_REFUSAL.test(err)) {
    return `the daemon refuses the journald driver here (no systemd-journald; .ci/run starts one): ${err.split('\n')[0] ?? ''}`;
  }
  throw new Error(
    `docker run --log-driver ${driver} failed (exit ${run.code})` +
      (process.env.CI && driver === 'journald'
        ? ' (CI is set: journald must work' +
          (JOURNALD_REFUSAL.test(err)
            ? '; no systemd-journald runs: start it as .ci/run does, `mkdir -p /run/systemd/journal` ' +
              'then `/lib/systemd/systemd-journald &`)'
            : ')')
        : '') +
      `: ${err}`,
  );
}

/** Removes every container labelled harbormaster.test=1 on the engine. */
export async function removeTestContainers(docker: DockerHandle = getDocker()): Promise<void> {
  const ids = await docker.docker(['ps', '-aq', '--filter', `label=${TEST_LABEL}=1`]);
  const list = ids.stdout.split('\n').filter(Boolean);
  if (list.length > 0) await docker.docker(['rm', '-f', '-v', ...list]);
}

const ownDockerds = new Set<PrivateDockerd>();

/**
 * Starts a private dockerd owned by the calling test file (destroyed in this file's afterAll),
 * e.g. for daemon-restart tests that must not disturb the shared engine. The test image is
 * imported. Call from beforeAll/tests of a describeDocker suite.
 */
export async function startOwnDockerd(opts?: PrivateDockerdOptions): Promise<PrivateDockerd> {
  if (!harness().canStartPrivateDockerd) {
    throw new Error('cannot start a private dockerd here (needs root and dockerd)');
  }
  const d = await startPrivateDockerd(opts);
  ownDockerds.add(d);
  await ensureTestImage(d);
  return d;
}

/** Destroys a dockerd from startOwnDockerd now (instead of at the end of the file). */
export async function destroyOwnDockerd(d: PrivateDockerd): Promise<void> {
  ownDockerds.delete(d);
  await d.destroy();
}

// Per-file cleanup, registered when a test file imports this module. vitest runs afterAll hooks
// last-registered first: the file's own hooks (agents stopped, receivers closed) come before this.
registerCleanup();
let hostLock: HostLock | undefined;
/** A file .ci/run waits for: created when a RUN_ALONE file has the host to itself. */
const ALONE_SIGNAL_ENV = 'HARBORMASTER_TEST_ALONE_SIGNAL';
let groupLock: HostLock | undefined;
// Files in RUN_ALONE (sequencer.ts) hold the run's host lock exclusively, all others shared
// (harness/host-lock.ts): a file-level hook, so it runs before any of the file's own hooks.
// (vitest wants the first argument of a hook as a destructuring pattern; the suite is the second)
// eslint-disable-next-line no-empty-pattern
beforeAll(async ({}, suite) => {
  // an APART group's lock first (sequencer.ts): a file waiting for it holds nothing else
  const group = apartGroup(suite.file.filepath);
  if (group) {
    groupLock = await acquireGroupLock(group);
    if (groupLock.waitedMs > 1000)
      process.stderr.write(
        `[harbormaster integration] ${suite.file.name}: waited ${groupLock.waitedMs} ms for the other files of "${group}"\n`,
      );
  }
  hostLock = await acquireHostLock(runsAlone(suite.file.filepath) ? 'exclusive' : 'shared');
  if (hostLock.mode === 'exclusive' || hostLock.waitedMs > 1000) {
    process.stderr.write(
      `[harbormaster integration] ${suite.file.name}: host lock (${hostLock.mode}) after ${hostLock.waitedMs} ms\n`,
    );
  }
  // .ci/run starts lint and the unit project at nice 19 when this file appears (CPU-only work
  // the idle agent of the RUN_ALONE file does not feel; see .ci/run, beside_alone_start)
  const signal = process.env[ALONE_SIGNAL_ENV];
  if (hostLock.mode === 'exclusive' && signal) {
    writeFileSync(`${signal}.tmp`, suite.file.name);
    renameSync(`${signal}.tmp`, signal); // whole, for .ci/run's cat
  }
}, 1_800_000);
afterAll(async () => {
  try {
    await Promise.all([...ownDockerds].map((d) => destroyOwnDockerd(d)));
    if (fileEngine.dockerd) await fileEngine.dockerd.destroy();
    else if (dockerSkipReason() === undefined) await removeTestContainers();
  } finally {
    hostLock?.release();
    groupLock?.release();
  }
});
