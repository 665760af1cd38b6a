// vitest globalSetup for the `integration` project: chooses the Docker engine, imports the test
// image, builds the agent, and hands the results to the test files (provide/inject + env).
//
// Engine choice:
//   1. HARBORMASTER_TEST_DOCKER_HOST set -> that engine (must answer /_ping).
//   2. root and `dockerd` installed      -> one private dockerd per test FILE, started when the
//      file imports harness/index.ts and destroyed after it: no two files ever share an engine
//      (neither two running at once in parallel workers, nor one after the other), so no file
//      sees another's containers, leftovers or daemon state. Here only a check that one starts.
//   3. otherwise: with CI set -> fail; without -> tests skip with the reason.
// HARBORMASTER_TEST_NO_PRIVATE_DOCKERD=1 disables 2 (to try the skip path, or as a non-root user).
import { access, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { ENV, type DockerInfo, type HarnessInfo } from './context.js';
import { dockerHandle, startPrivateDockerd } from './dockerd.js';
import { exec, pingDocker, tail, which } from './exec.js';
import { LOCK_DIR_ENV } from './host-lock.js';
import { TEST_IMAGE, ensureTestImage, testRootfsTarball } from './image.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url)).replace(/\/$/, '');
const agentCli = path.join(repoRoot, 'dist', 'src', 'cli.js');

function log(msg: string): void {
  process.stderr.write(`[harbormaster integration] ${msg}\n`);
}

async function build(): Promise<void> {
  if (process.env[ENV.skipBuild] === '1') {
    log(`skipping npm run build (${ENV.skipBuild}=1)`);
    return;
  }
  const t0 = Date.now();
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const r = await exec(npm, ['run', 'build', '--silent'], { cwd: repoRoot, timeoutMs: 300_000 });
  if (r.code !== 0) {
    throw new Error(
      `npm run build failed (exit ${r.code}); the integration tests run the built agent:\n` +
        tail(`${r.stdout}\n${r.stderr}`, 60),
    );
  }
  log(`npm run build: ${Date.now() - t0} ms`);
}

interface Engine {
  info: DockerInfo;
  /** True: no shared engine; every test file starts a private dockerd of its own. */
  perFile: boolean;
}

/**
 * Checks once that a private dockerd starts here and runs the test image (so a broken machine
 * fails the run with one clear message instead of once per file), builds the image tarball
 * every file imports, and probes the storage driver for all of them.
 */
async function preparePrivateEngines(): Promise<void> {
  const t0 = Date.now();
  await testRootfsTarball();
  const d = await startPrivateDockerd();
  try {
    const t1 = Date.now();
    await ensureTestImage(d);
    const out = await d.dockerOk(['run', '--rm', '--network', 'none', TEST_IMAGE, 'echo', 'ok']);
    if (out.trim() !== 'ok') throw new Error(`the test image printed ${JSON.stringify(out)}`);
    process.env[ENV.storageDriver] ??= d.storageDriver;
    log(
      `private dockerd check (storage ${d.storageDriver}): ready in ${t1 - t0} ms, ` +
        `test image + one container in ${Date.now() - t1} ms; each test file starts its own`,
    );
  } finally {
    await d.destroy();
  }
}

async function chooseEngine(canStartPrivate: boolean, whyNotPrivate: string): Promise<Engine> {
  const explicit = process.env[ENV.dockerHost];
  if (explicit) {
    if (!(await pingDocker(explicit, 5000))) {
      throw new Error(`${ENV.dockerHost}=${explicit} does not answer GET /_ping`);
    }
    const image = await ensureTestImage(dockerHandle(explicit));
    log(`using the engine at ${explicit} (${ENV.dockerHost})`);
    return {
      info: {
        available: true,
        host: explicit,
        kind: 'external',
        image,
        storageDriver: '',
        dataRoot: '',
      },
      perFile: false,
    };
  }
  if (canStartPrivate) {
    try {
      await preparePrivateEngines();
    } catch (e) {
      const reason = `could not start a private dockerd: ${e instanceof Error ? e.message : String(e)}`;
      if (process.env.CI) throw new Error(reason, { cause: e });
      log(`WARNING: ${reason}`);
      return { info: { available: false, reason }, perFile: false };
    }
    return {
      // harness/index.ts replaces this with the file's own engine
      info: { available: false, reason: 'each test file starts a private dockerd of its own' },
      perFile: true,
    };
  }
  const reason = `no Docker engine for the integration tests: ${whyNotPrivate} and ${ENV.dockerHost} is not set`;
  if (process.env.CI) throw new Error(`${reason} (CI is set: a missing engine is a failure)`);
  log(`WARNING: ${reason}; Docker tests will be skipped`);
  return { info: { available: false, reason }, perFile: false };
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const isRoot = process.getuid?.() === 0;
  const dockerd = await which('dockerd');
  const disabled = process.env[ENV.noPrivateDockerd] === '1';
  const canStartPrivateDockerd = isRoot && dockerd !== undefined && !disabled;
  const whyNotPrivate = disabled
    ? `${ENV.noPrivateDockerd}=1`
    : !isRoot
      ? 'not running as root'
      : 'dockerd is not installed';

  const savedEnv: Record<string, string | undefined> = {};
  for (const k of Object.values(ENV)) savedEnv[k] = process.env[k];

  const [built, engine] = await Promise.allSettled([
    build(),
    chooseEngine(canStartPrivateDockerd, whyNotPrivate),
  ]);
  if (built.status === 'rejected' || engine.status === 'rejected') {
    const errors = [built, engine]
      .filter((r): r is PromiseRejectedResult => r.status === 'rejected')
      .map((r): unknown => r.reason);
    throw errors.length === 1 ? errors[0] : new AggregateError(errors, 'integration setup failed');
  }
  if (process.env[ENV.skipBuild] !== '1') {
    try {
      await access(agentCli);
    } catch {
      log(`note: ${path.relative(repoRoot, agentCli)} does not exist after the build`);
    }
  }

  // the run's host lock (harness/host-lock.ts), inherited by the workers
  const lockDir = await mkdtemp(path.join(os.tmpdir(), 'hm-lock-'));
  process.env[LOCK_DIR_ENV] = lockDir;

  const info: HarnessInfo = {
    docker: engine.value.info,
    perFileEngine: engine.value.perFile,
    canStartPrivateDockerd,
    agentCli,
    repoRoot,
  };
  project.provide('harbormaster', info);
  process.env[ENV.agentCli] = agentCli;
  if (info.docker.available) {
    process.env[ENV.dockerHost] = info.docker.host;
    process.env[ENV.dockerKind] = info.docker.kind;
    delete process.env[ENV.dockerUnavailable];
  } else if (!info.perFileEngine) {
    process.env[ENV.dockerUnavailable] = info.docker.reason;
  }

  return async () => {
    for (const [k, v] of Object.entries(savedEnv)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    delete process.env[LOCK_DIR_ENV];
    await rm(lockDir, { recursive: true, force: true });
  };
}
