// vitest globalSetup for the `integration` project: chooses the Docker engine, imports the test
// image, builds the agent, and hands the results to the test files (provide/inject + env).
//
// Engine choice:
//   1. HARBORMASTER_TEST_DOCKER_HOST set -> that engine (must answer /_ping).
//   2. root and `dockerd` installed      -> one private dockerd per integration worker
//      (maxWorkers of the project): the files running at the same time never share an engine;
//      the files of one worker use its engine one after the other.
//   3. otherwise: with CI set -> fail; without -> tests skip with the reason.
// HARBORMASTER_TEST_NO_PRIVATE_DOCKERD=1 disables 2 (to try the skip path, or as a non-root user).
import { access } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { ENV, type DockerInfo, type HarnessInfo } from './context.js';
import { dockerHandle, startPrivateDockerd, type PrivateDockerd } from './dockerd.js';
import { exec, pingDocker, tail, which } from './exec.js';
import { ensureTestImage } from './image.js';

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
  dockerd?: PrivateDockerd;
}

/** Starts `count` engines side by side (one per worker); all or nothing. */
async function chooseEngines(
  count: number,
  canStartPrivate: boolean,
  whyNotPrivate: string,
): Promise<Engine[]> {
  if (process.env[ENV.dockerHost] || !canStartPrivate || count <= 1) {
    return [await chooseEngine(canStartPrivate, whyNotPrivate)];
  }
  const started = await Promise.allSettled(
    Array.from({ length: count }, () => chooseEngine(canStartPrivate, whyNotPrivate)),
  );
  const ok = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  const unavailable = ok.find((e) => !e.info.available);
  if (failed || unavailable) {
    await Promise.all(
      ok.flatMap((e) => (e.dockerd ? [e.dockerd.destroy().catch(() => undefined)] : [])),
    );
    if (failed) throw failed.reason;
    return [unavailable!];
  }
  return ok;
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
    };
  }
  if (canStartPrivate) {
    const t0 = Date.now();
    let d: PrivateDockerd;
    try {
      d = await startPrivateDockerd();
    } catch (e) {
      const reason = `could not start a private dockerd: ${e instanceof Error ? e.message : String(e)}`;
      if (process.env.CI) throw new Error(reason, { cause: e });
      log(`WARNING: ${reason}`);
      return { info: { available: false, reason } };
    }
    try {
      const t1 = Date.now();
      const image = await ensureTestImage(d);
      log(
        `private dockerd ${d.host} (storage ${d.storageDriver}) ready in ${t1 - t0} ms, ` +
          `test image in ${Date.now() - t1} ms`,
      );
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
      await d.destroy().catch(() => undefined);
      throw e;
    }
  }
  const reason = `no Docker engine for the integration tests: ${whyNotPrivate} and ${ENV.dockerHost} is not set`;
  if (process.env.CI) throw new Error(`${reason} (CI is set: a missing engine is a failure)`);
  log(`WARNING: ${reason}; Docker tests will be skipped`);
  return { info: { available: false, reason } };
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

  // The integration files run in `maxWorkers` parallel workers; each gets an engine of its own.
  const workers = Math.max(1, project.config.maxWorkers);
  const [built, engine] = await Promise.allSettled([
    build(),
    chooseEngines(workers, canStartPrivateDockerd, whyNotPrivate),
  ]);
  if (built.status === 'rejected' || engine.status === 'rejected') {
    if (engine.status === 'fulfilled') {
      await Promise.all(
        engine.value.flatMap((e) =>
          e.dockerd ? [e.dockerd.destroy().catch(() => undefined)] : [],
        ),
      );
    }
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

  const engines = engine.value.map((e) => e.info);
  const info: HarnessInfo = {
    docker: engines[0]!,
    engines,
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
  } else {
    process.env[ENV.dockerUnavailable] = info.docker.reason;
  }

  return async () => {
    for (const [k, v] of Object.entries(savedEnv)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    const t0 = Date.now();
    const own = engine.value.flatMap((e) => (e.dockerd ? [e.dockerd] : []));
    await Promise.all(own.map((d) => d.destroy()));
    if (own.length > 0) log(`${own.length} private dockerd(s) destroyed in ${Date.now() - t0} ms`);
  };
}
