// Small process helpers shared by the integration-test harness.
import { spawn, type SpawnOptions } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { access, constants, readFile, readdir, readlink } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface ExecOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Data written to the child's stdin (then closed). */
  input?: string | Buffer;
  /** Kill the child with SIGKILL after this many ms (default: no timeout). */
  timeoutMs?: number;
}

/** Runs a command to completion, never rejecting on a non-zero exit (code is -1 on a signal). */
export function exec(
  file: string,
  args: readonly string[],
  opts: ExecOptions = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const spawnOpts: SpawnOptions = {
      env: opts.env ?? process.env,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    };
    if (opts.cwd !== undefined) spawnOpts.cwd = opts.cwd;
    const child = spawn(file, args, spawnOpts);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs !== undefined) {
      timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    }
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const stderr = Buffer.concat(err).toString('utf8');
      resolve({
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: signal ? `${stderr}\n[killed by ${signal}]` : stderr,
        code: code ?? -1,
      });
    });
    if (opts.input !== undefined && child.stdin) {
      child.stdin.on('error', () => undefined);
      child.stdin.end(opts.input);
    }
  });
}

const EXTRA_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** PATH with the sbin directories appended (dockerd, runc, docker-proxy live there on Debian). */
export function pathWithSbin(current = process.env.PATH ?? ''): string {
  const parts = current.split(':').filter(Boolean);
  for (const p of EXTRA_PATH) if (!parts.includes(p)) parts.push(p);
  return parts.join(':');
}

/** Finds an executable on PATH (plus the sbin dirs); undefined when missing. */
export async function which(name: string): Promise<string | undefined> {
  for (const dir of pathWithSbin().split(':')) {
    const candidate = path.join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

/** Last `lines` lines of a text. */
export function tail(text: string, lines = 40): string {
  const all = text.trimEnd().split('\n');
  return all.slice(-lines).join('\n');
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves true when p settles within ms, false otherwise; never leaves a timer behind. */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => {
    timer = setTimeout(() => r(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * GET /_ping against a Docker host (`unix:///path` or `tcp://127.0.0.1:port`).
 * Resolves true on HTTP 200 "OK", false on any error.
 */
export function pingDocker(host: string, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    let reqOpts: http.RequestOptions;
    if (host.startsWith('unix://')) {
      reqOpts = { socketPath: host.slice('unix://'.length), path: '/_ping' };
    } else if (host.startsWith('tcp://') || host.startsWith('http://')) {
      const u = new URL(host.replace(/^tcp:/, 'http:'));
      reqOpts = { host: u.hostname, port: Number(u.port || 2375), path: '/_ping' };
    } else {
      resolve(false);
      return;
    }
    const req = http.get({ ...reqOpts, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(res.statusCode === 200 && body.trim() === 'OK'));
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** Environment for running the `docker` CLI against `host`, isolated from the user's CLI config. */
export function dockerCliEnv(host: string, configDir?: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: host };
  delete env.DOCKER_CONTEXT;
  delete env.DOCKER_TLS_VERIFY;
  delete env.DOCKER_CERT_PATH;
  if (configDir !== undefined) env.DOCKER_CONFIG = configDir;
  return env;
}

/**
 * TCP ports on 127.0.0.1 (or any address) a process listens on, read from /proc: how the harness
 * learns the port of a server it started with port 0 (Prometheus, dockerd) instead of picking a
 * "free" port first and hoping nobody takes it before the server binds it.
 */
export async function listeningPorts(pid: number): Promise<number[]> {
  const inodes = new Set<string>();
  const fdDir = `/proc/${pid}/fd`;
  for (const fd of await readdir(fdDir).catch(() => [] as string[])) {
    const target = await readlink(path.join(fdDir, fd)).catch(() => '');
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m?.[1]) inodes.add(m[1]);
  }
  const ports: number[] = [];
  for (const table of ['tcp', 'tcp6']) {
    const text = await readFile(`/proc/${pid}/net/${table}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // f[1] local address HEX:PORT, f[3] state (0A = LISTEN), f[9] inode
      if (f[3] === '0A' && f[9] !== undefined && inodes.has(f[9])) {
        ports.push(parseInt(f[1]?.split(':')[1] ?? '', 16));
      }
    }
  }
  return [...new Set(ports)].sort((a, b) => a - b);
}

/**
 * A loopback port that refuses connections, for "endpoint unreachable" tests. Port 1 (tcpmux) is
 * privileged and outside the ephemeral range, so no server of a test (all bind port 0) can get
 * it; the helper checks that it really refuses, so a host that serves it fails loudly.
 */
export async function refusedPort(): Promise<number> {
  const port = 1;
  const refused = await new Promise<boolean>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
  if (!refused) throw new Error(`127.0.0.1:${port} does not refuse connections on this host`);
  return port;
}

/**
 * A loopback port for a server that must be told its port up front (the agent image's
 * HEALTHCHECK reads it from HARBORMASTER_LISTEN; Swarm's Prometheus config names it). Chosen
 * below the kernel's ephemeral range, so no server bound to port 0 (every other server of the
 * tests) and no outgoing connection can hold it, and checked by a refused connection (not by
 * binding and closing it).
 */
export async function portOutsideEphemeralRange(): Promise<number> {
  const range = await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').catch(
    () => '32768 60999',
  );
  const low = Number(range.trim().split(/\s+/)[0]) || 32768;
  const from = Math.min(10_000, low - 1000);
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = from + randomInt(low - from);
    const free = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(false);
      });
      s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
    });
    if (free) return port;
  }
  throw new Error(`no free port below the ephemeral range (${low}) after 50 tries`);
}
