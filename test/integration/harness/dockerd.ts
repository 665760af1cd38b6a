// A private dockerd for integration tests: own socket, data root, exec root, pidfile, containerd
// namespaces and cgroup parent under a fresh temp dir / name. It never touches
// /var/run/docker.sock and makes no host networking changes (no bridge, no iptables, no
// forwarding). Two of them (two test files at once, or another checkout's tests) share nothing:
// with Docker's default parent `/docker`, both daemons' containers would sit side by side in
// /sys/fs/cgroup/*/docker/ and cleanup or a host-wide look at that directory would mix them.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, openSync, closeSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  dockerCliEnv,
  exec,
  pathWithSbin,
  pingDocker,
  settlesWithin,
  sleep,
  tail,
  which,
  type ExecOptions,
  type ExecResult,
} from './exec.js';

/** Anything that can run the docker CLI against one engine. */
export interface DockerHandle {
  /** `unix:///…` (or `tcp://127.0.0.1:…` for a user-provided engine). */
  readonly host: string;
  /** Runs `docker -H host …args`; never rejects on a non-zero exit. */
  docker(args: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Like docker() but throws (with stderr) on a non-zero exit; resolves with stdout. */
  dockerOk(args: readonly string[], opts?: ExecOptions): Promise<string>;
}

export interface PrivateDockerd extends DockerHandle {
  readonly socketPath: string;
  /** The temp dir holding everything below. */
  readonly dir: string;
  readonly dataRoot: string;
  readonly execRoot: string;
  readonly logPath: string;
  readonly storageDriver: string;
  /**
   * The daemon's `--cgroup-parent` (cgroupfs driver): its containers' cgroups are
   * `<parent>/<id>` in each hierarchy, e.g. `/hm-abcd12-3f4e/<id>`. HostConfig.CgroupParent stays
   * empty in inspect; the agent learns the parent from /proc/<pid>/cgroup (src/docker/inventory.ts).
   */
  readonly cgroupParent: string;
  /** PID of the current dockerd process (changes after stop()/start()); 0 when stopped. */
  readonly pid: number;
  readonly running: boolean;
  /** SIGTERM, wait up to timeoutMs (default 40 s: dockerd stops containers first), then SIGKILL. */
  stop(opts?: { timeoutMs?: number }): Promise<void>;
  /** Starts dockerd again with the same data root (for daemon-restart tests). */
  start(): Promise<void>;
  /** Removes all containers, stops the daemon, unmounts leftovers and deletes the temp dir. */
  destroy(): Promise<void>;
  /** Last lines of dockerd's log. */
  logTail(lines?: number): Promise<string>;
}

export interface PrivateDockerdOptions {
  /** Default: env HARBORMASTER_TEST_STORAGE_DRIVER, else overlay2 when it works here, else vfs. */
  storageDriver?: string;
  /** Keep containers running while dockerd is down (`--live-restore`). Default false. */
  liveRestore?: boolean;
  /** Extra dockerd flags. */
  extraArgs?: string[];
  /** Readiness timeout for each start, default 60 s. */
  startTimeoutMs?: number;
  /** Parent of the temp dir, default os.tmpdir(). Keep it short (unix socket path limit). */
  tmpRoot?: string;
}

const UNIX_PATH_MAX = 107;

/** Builds a DockerHandle for an existing engine (e.g. a user-provided HARBORMASTER_TEST_DOCKER_HOST). */
export function dockerHandle(host: string, cliConfigDir = defaultCliConfigDir()): DockerHandle {
  const docker = (args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> =>
    exec('docker', ['-H', host, ...args], {
      ...opts,
      env: { ...dockerCliEnv(host, cliConfigDir), ...opts.env },
    });
  const dockerOk = async (args: readonly string[], opts?: ExecOptions): Promise<string> => {
    const r = await docker(args, opts);
    if (r.code !== 0) {
      throw new Error(`docker ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`);
    }
    return r.stdout;
  };
  return { host, docker, dockerOk };
}

/** A docker CLI config dir of our own, so the user's ~/.docker (contexts, plugins) is not used. */
export function defaultCliConfigDir(): string {
  return path.join(os.tmpdir(), `harbormaster-test-${process.getuid?.() ?? 0}`, 'docker-cli');
}

let overlayProbe: Promise<boolean> | undefined;

/** True when an overlay mount works in `dir`'s filesystem (fails e.g. on overlayfs-on-overlayfs). */
export function overlayWorks(dir: string): Promise<boolean> {
  overlayProbe ??= (async () => {
    const probe = path.join(dir, 'ovl-probe');
    const [l, u, w, m] = ['l', 'u', 'w', 'm'].map((d) => path.join(probe, d)) as [
      string,
      string,
      string,
      string,
    ];
    try {
      for (const d of [l, u, w, m]) await mkdir(d, { recursive: true });
      await writeFile(path.join(l, 'f'), 'x');
      const r = await exec(
        'mount',
        ['-t', 'overlay', 'overlay', '-o', `lowerdir=${l},upperdir=${u},workdir=${w}`, m],
        { timeoutMs: 10_000 },
      );
      if (r.code !== 0) return false;
      const ok = existsSync(path.join(m, 'f'));
      await exec('umount', [m], { timeoutMs: 10_000 });
      return ok;
    } catch {
      return false;
    } finally {
      await rm(probe, { recursive: true, force: true }).catch(() => undefined);
    }
  })();
  return overlayProbe;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort if the test process exits without destroy(): let dockerd shut down on its own.
  process.on('exit', () => {
    for (const c of live) {
      try {
        c.kill('SIGTERM');
      } catch {
        // already gone
      }
    }
  });
}

export async function startPrivateDockerd(
  opts: PrivateDockerdOptions = {},
): Promise<PrivateDockerd> {
  const dockerdBin = await which('dockerd');
  if (!dockerdBin) throw new Error('dockerd not found on PATH (install Debian package docker.io)');
  if (process.getuid?.() !== 0) throw new Error('a private dockerd needs root');

  const dir = await mkdtemp(path.join(opts.tmpRoot ?? os.tmpdir(), 'hmd-'));
  const socketPath = path.join(dir, 'd.sock');
  const dataRoot = path.join(dir, 'data');
  const execRoot = path.join(dir, 'x');
  const logPath = path.join(dir, 'dockerd.log');
  const pidFile = path.join(dir, 'd.pid');
  const configFile = path.join(dir, 'daemon.json');
  const cliConfig = path.join(dir, 'cli');
  // dockerd's managed containerd puts its socket at <exec-root>/containerd/containerd.sock.
  const longest = path.join(execRoot, 'containerd', 'containerd.sock.ttrpc');
  if (Buffer.byteLength(longest) > UNIX_PATH_MAX) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`temp dir path too long for unix sockets: ${longest}`);
  }
  await Promise.all([mkdir(dataRoot), mkdir(execRoot), mkdir(cliConfig)]);
  // An empty config file so /etc/docker/daemon.json on the host is never read.
  await writeFile(configFile, '{}\n');

  const storageDriver =
    opts.storageDriver ??
    process.env.HARBORMASTER_TEST_STORAGE_DRIVER ??
    ((await overlayWorks(dir)) ? 'overlay2' : 'vfs');

  // Unique containerd namespaces: if a system containerd is running at
  // /run/containerd/containerd.sock, dockerd 20.10 uses it instead of starting its own, and then
  // two private daemons (or the system dockerd) would otherwise share the "moby" namespace.
  const ns = `hm-${path.basename(dir).slice(4).toLowerCase()}-${randomBytes(2).toString('hex')}`;
  // A cgroup parent of its own (cgroupfs driver, the one a dockerd without systemd uses): see the
  // header. Removed again by destroy() once empty.
  const cgroupParent = `/${ns}`;
  const args = [
    '--config-file',
    configFile,
    '--host',
    `unix://${socketPath}`,
    '--data-root',
    dataRoot,
    '--exec-root',
    execRoot,
    '--pidfile',
    pidFile,
    '--bridge=none',
    '--iptables=false',
    '--ip-masq=false',
    '--ip-forward=false',
    '--userland-proxy=false',
    '--storage-driver',
    storageDriver,
    '--containerd-namespace',
    ns,
    '--containerd-plugins-namespace',
    `${ns}-plugins`,
    '--cgroup-parent',
    cgroupParent,
    ...(opts.liveRestore ? ['--live-restore'] : []),
    ...(opts.extraArgs ?? []),
  ];
  const host = `unix://${socketPath}`;
  const handle = dockerHandle(host, cliConfig);
  const startTimeoutMs = opts.startTimeoutMs ?? 60_000;

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let exitInfo: string | undefined;

  const logTail = async (lines = 40): Promise<string> => {
    try {
      return tail(await readFile(logPath, 'utf8'), lines);
    } catch {
      return '(no dockerd log)';
    }
  };

  const start = async (): Promise<void> => {
    if (child) throw new Error('private dockerd already running');
    installExitHook();
    const fd = openSync(logPath, 'a');
    let proc: ChildProcess;
    try {
      proc = spawn(dockerdBin, args, {
        stdio: ['ignore', fd, fd],
        env: { ...process.env, PATH: pathWithSbin() },
      });
    } finally {
      closeSync(fd);
    }
    child = proc;
    live.add(proc);
    exitInfo = undefined;
    exited = new Promise<void>((resolve) => {
      proc.once('exit', (code, signal) => {
        exitInfo = signal ? `signal ${signal}` : `exit code ${code ?? '?'}`;
        live.delete(proc);
        if (child === proc) child = undefined;
        resolve();
      });
      proc.once('error', (e) => {
        exitInfo = `spawn error: ${e.message}`;
        live.delete(proc);
        if (child === proc) child = undefined;
        resolve();
      });
    });
    const deadline = Date.now() + startTimeoutMs;
    const exitedWith = (): string | undefined => exitInfo; // (set by the exit handler)
    for (;;) {
      const ex = exitedWith();
      if (ex !== undefined) {
        throw new Error(
          `private dockerd exited during startup (${ex}); log ${logPath}:\n${await logTail()}`,
        );
      }
      if (await pingDocker(host, 1000)) return;
      if (Date.now() > deadline) {
        await stop({ timeoutMs: 10_000 });
        throw new Error(
          `private dockerd not ready after ${startTimeoutMs} ms; log ${logPath}:\n${await logTail()}`,
        );
      }
      await sleep(50);
    }
  };

  const stop = async ({ timeoutMs = 40_000 }: { timeoutMs?: number } = {}): Promise<void> => {
    const proc = child;
    if (!proc) return;
    proc.kill('SIGTERM');
    const done = await settlesWithin(exited, timeoutMs);
    if (!done) {
      proc.kill('SIGKILL');
      await exited;
      // dockerd's managed containerd normally dies with it; make sure.
      await killProcessesUnder(dir);
    }
  };

  const destroy = async (): Promise<void> => {
    if (child) {
      const ids = await handle.docker(['ps', '-aq'], { timeoutMs: 30_000 }).catch(() => undefined);
      const list = ids?.stdout.split('\n').filter(Boolean) ?? [];
      if (list.length > 0) {
        await handle
          .docker(['rm', '-f', '-v', ...list], { timeoutMs: 60_000 })
          .catch(() => undefined);
      }
      await stop();
    }
    const ids = await readdir(path.join(dataRoot, 'containers')).catch(() => [] as string[]);
    await killProcessesUnder(dir);
    await unmountUnder(dir);
    await removeContainerCgroups(cgroupParent, ids);
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  };

  try {
    await start();
  } catch (e) {
    await killProcessesUnder(dir);
    await unmountUnder(dir);
    // Keep the dir (and its log) only when asked to, for post-mortems.
    if (!process.env.HARBORMASTER_TEST_KEEP_DOCKERD) {
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
    throw e;
  }

  return {
    ...handle,
    socketPath,
    dir,
    dataRoot,
    execRoot,
    logPath,
    storageDriver,
    cgroupParent,
    get pid() {
      return child?.pid ?? 0;
    },
    get running() {
      return child !== undefined;
    },
    stop,
    start,
    destroy,
    logTail,
  };
}

/**
 * Kills processes whose command line mentions `dir` (a leftover containerd or shim of a private
 * dockerd that was SIGKILLed), and the shims' direct children (container init processes).
 */
async function killProcessesUnder(dir: string): Promise<void> {
  const victims = new Set<number>();
  const parents = new Map<number, number>();
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return;
  }
  for (const e of entries) {
    const pid = Number(e);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const [cmdline, stat] = await Promise.all([
        readFile(`/proc/${pid}/cmdline`, 'utf8'),
        readFile(`/proc/${pid}/stat`, 'utf8'),
      ]);
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(pid, ppid);
      if (cmdline.split('\0').some((a) => a === dir || a.includes(`${dir}/`))) {
        victims.add(pid);
      }
    } catch {
      // raced with exit
    }
  }
  if (victims.size === 0) return;
  for (const [pid, ppid] of parents) if (victims.has(ppid)) victims.add(pid);
  for (const pid of victims) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  await sleep(200);
}

/**
 * Removes the daemon's own cgroup parent and the (empty) cgroups of its containers left behind
 * when it was killed, in every hierarchy, so they do not show up as ghosts later. Only this
 * daemon's parent is touched: another daemon's containers live under another parent. rmdir of a
 * cgroup that still has processes fails (EBUSY) and is left alone.
 */
async function removeContainerCgroups(parent: string, ids: readonly string[]): Promise<void> {
  if (!/^\/hm-[a-z0-9-]+$/.test(parent)) return; // only ever a parent made by this harness
  const valid = ids.filter((id) => /^[0-9a-f]{64}$/.test(id));
  const root = '/sys/fs/cgroup';
  const hierarchies = ['', ...(await readdir(root).catch(() => [] as string[]))];
  for (const h of hierarchies) {
    const dir = path.join(root, h, parent);
    for (const id of valid) await rmdir(path.join(dir, id)).catch(() => undefined);
    await rmdir(dir).catch(() => undefined);
  }
}

function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Lazily unmounts every mount point at or below `dir`, deepest first. */
async function unmountUnder(dir: string): Promise<void> {
  for (let round = 0; round < 3; round++) {
    let info: string;
    try {
      info = await readFile('/proc/self/mountinfo', 'utf8');
    } catch {
      return;
    }
    const points = info
      .split('\n')
      .map((l) => l.split(' ')[4])
      .filter((p): p is string => p !== undefined)
      .map(unescapeMountPath)
      .filter((p) => p === dir || p.startsWith(`${dir}/`))
      .sort((a, b) => b.length - a.length);
    if (points.length === 0) return;
    for (const p of points) await exec('umount', ['-l', p], { timeoutMs: 10_000 });
  }
}
