// Spawns the built agent (`dist/src/cli.js run`) for integration tests and watches its logs.
//
// Contract with the agent: pino JSON lines on stderr, one per line; once the HTTP server is up it
// logs `{"msg":"HTTP server listening","address":"127.0.0.1:PORT"}`.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';
import { AGENT_NODE_FLAGS } from '../../../src/node-flags.js';
import { settlesWithin, sleep, tail } from './exec.js';

export const READY_MSG = 'HTTP server listening';

export type LogRecord = Record<string, unknown>;

export interface AgentOptions {
  /** DOCKER_HOST for the agent, e.g. `unix:///tmp/hmd-x/d.sock`. */
  dockerHost: string;
  /** Extra CLI args after `run --listen 127.0.0.1:0 --state-dir DIR`. */
  args?: string[];
  /** Extra environment (on top of process.env and DOCKER_HOST). */
  env?: Record<string, string>;
  /** State dir; default: a fresh temp dir, removed when the agent is stopped. */
  stateDir?: string;
  /** Agent entry point; default env HARBORMASTER_TEST_AGENT_CLI, else <repo>/dist/src/cli.js. */
  cliPath?: string;
  /** How long to wait for the "HTTP server listening" line; default 30 s. */
  startTimeoutMs?: number;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Milliseconds from the stop signal to exit. */
  ms: number;
}

export interface HttpResult {
  status: number;
  text: string;
  headers: Headers;
}

export interface AgentProcess {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly stateDir: string;
  /** All stderr lines so far, parsed; a line that is not JSON appears as `{ raw: line }`. */
  logs(): LogRecord[];
  /** Raw stderr / stdout text so far. */
  stderr(): string;
  stdout(): string;
  /** Resolves with the first log record (past or future) matching pred; rejects on timeout/exit. */
  waitForLog(pred: (rec: LogRecord) => boolean, timeoutMs?: number): Promise<LogRecord>;
  /** GET url+path. */
  get(urlPath: string, init?: RequestInit): Promise<HttpResult>;
  waitFor: typeof waitFor;
  /** Sends signal (default SIGTERM) and waits for exit; SIGKILL and reject after timeoutMs (30 s). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<ExitInfo>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<ExitInfo>;
  /** Set once the process has exited. */
  readonly exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
}

/**
 * Polls fn until it returns a value other than undefined/null/false (resolving with it) or
 * timeoutMs passes (rejecting, with fn's last error or value in the message). Errors thrown by
 * fn count as "not yet".
 */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  timeoutMs = 10_000,
  intervalMs = 100,
  what = 'condition',
): Promise<Exclude<T, undefined | null | false>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== null && v !== false)
        return v as Exclude<T, undefined | null | false>;
      last = v;
      lastError = undefined;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= deadline) {
      const detail =
        lastError !== undefined
          ? `last error: ${lastError instanceof Error ? lastError.message : JSON.stringify(lastError)}`
          : `last value: ${String(last)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${detail})`);
    }
    await sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
}

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
/** Every agent process spawned by this test file that has not exited yet, with its exit promise. */
const live = new Map<ChildProcess, Promise<void>>();

/**
 * Registers an afterAll that SIGKILLs agents the test file left running. Call it at the top level
 * of a test file (importing the harness index does it for you); it is idempotent.
 */
let cleanupRegistered = false;
export function registerCleanup(): void {
  if (cleanupRegistered) return;
  cleanupRegistered = true;
  afterAll(async () => {
    await killAllAgents();
  });
}

/** SIGKILLs every agent (also ones still starting) and waits for them to exit. */
export async function killAllAgents(): Promise<void> {
  await Promise.all(
    [...live].map(async ([child, exited]) => {
      child.kill('SIGKILL');
      await exited;
    }),
  );
}

function splitLines(onLine: (line: string) => void): (chunk: string) => void {
  let buf = '';
  return (chunk) => {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  };
}

export async function startAgent(opts: AgentOptions): Promise<AgentProcess> {
  const cli =
    opts.cliPath ??
    process.env.HARBORMASTER_TEST_AGENT_CLI ??
    path.join(repoRoot, 'dist', 'src', 'cli.js');
  const ownStateDir = opts.stateDir === undefined;
  const stateDir = opts.stateDir ?? (await mkdtemp(path.join(os.tmpdir(), 'hm-agent-')));
  const args = [
    // the agent as shipped: the image and scripts/run-local.sh pass these too
    ...AGENT_NODE_FLAGS,
    cli,
    'run',
    '--listen',
    '127.0.0.1:0',
    '--state-dir',
    stateDir,
    ...(opts.args ?? []),
  ];
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: repoRoot,
    env: { ...process.env, DOCKER_HOST: opts.dockerHost, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  const records: LogRecord[] = [];
  let stderrText = '';
  let stdoutText = '';
  const waiters = new Set<() => void>();
  const notify = (): void => {
    for (const w of [...waiters]) w();
  };
  child.stderr?.setEncoding('utf8');
  child.stdout?.setEncoding('utf8');
  const onStderrLine = splitLines((line) => {
    if (line.trim() === '') return;
    let rec: LogRecord;
    try {
      const v: unknown = JSON.parse(line);
      rec =
        v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as LogRecord) : { raw: line };
    } catch {
      rec = { raw: line };
    }
    records.push(rec);
    notify();
  });
  child.stderr?.on('data', (c: string) => {
    stderrText += c;
    onStderrLine(c);
  });
  child.stdout?.on('data', (c: string) => {
    stdoutText += c;
  });

  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let spawnError: Error | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      live.delete(child);
      resolve();
      notify();
    });
    child.once('error', (e) => {
      spawnError = e;
      exit ??= { code: null, signal: null };
      live.delete(child);
      resolve();
      notify();
    });
  });
  live.set(child, exited);
  let stateDirRemoved = false;
  const removeStateDir = async (): Promise<void> => {
    if (!ownStateDir || stateDirRemoved) return;
    stateDirRemoved = true;
    await rm(stateDir, { recursive: true, force: true });
  };

  const describeExit = (): string =>
    spawnError
      ? `spawn error: ${spawnError.message}`
      : exit?.signal
        ? `killed by ${exit.signal}`
        : `exit code ${String(exit?.code)}`;
  const outputTail = (): string => {
    let s = `stderr tail:\n${tail(stderrText, 40) || '(empty)'}`;
    if (stdoutText.trim()) s += `\nstdout tail:\n${tail(stdoutText, 20)}`;
    return s;
  };

  const waitForLog = (pred: (rec: LogRecord) => boolean, timeoutMs = 10_000): Promise<LogRecord> =>
    new Promise<LogRecord>((resolve, reject) => {
      let seen = 0;
      const check = (): void => {
        for (; seen < records.length; seen++) {
          const rec = records[seen];
          if (rec !== undefined && pred(rec)) {
            finish();
            resolve(rec);
            return;
          }
        }
        if (exit) {
          finish();
          reject(
            new Error(
              `agent exited (${describeExit()}) before the expected log line\n${outputTail()}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(
          new Error(`timed out after ${timeoutMs} ms waiting for a log line\n${outputTail()}`),
        );
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  let ready: LogRecord;
  try {
    ready = await waitForLog((r) => r.msg === READY_MSG, opts.startTimeoutMs ?? 30_000);
  } catch (e) {
    if (!exit) {
      child.kill('SIGKILL');
      await exited;
    }
    await removeStateDir();
    let msg = `agent failed to start (${cli}): ${e instanceof Error ? e.message : String(e)}`;
    if (stdoutText.includes(READY_MSG)) {
      msg += `\nnote: "${READY_MSG}" was logged on stdout; the harness expects logs on stderr`;
    }
    throw new Error(msg, { cause: e });
  }
  const address = typeof ready.address === 'string' ? ready.address : '';
  const port = Number(address.slice(address.lastIndexOf(':') + 1));
  if (!address.startsWith('127.0.0.1:') || !Number.isInteger(port) || port <= 0) {
    child.kill('SIGKILL');
    await exited;
    await removeStateDir();
    throw new Error(
      `"${READY_MSG}" log line lacks address "127.0.0.1:PORT": ${JSON.stringify(ready)}`,
    );
  }
  const url = `http://127.0.0.1:${port}`;

  const waitExit = async (t0: number, timeoutMs: number): Promise<ExitInfo> => {
    const done = await settlesWithin(exited, timeoutMs);
    const ms = Date.now() - t0;
    if (!done) {
      child.kill('SIGKILL');
      await exited;
      await removeStateDir();
      throw new Error(`agent did not exit within ${timeoutMs} ms; killed\n${outputTail()}`);
    }
    await removeStateDir();
    return { code: exit?.code ?? null, signal: exit?.signal ?? null, ms };
  };

  const agent: AgentProcess = {
    url,
    port,
    pid: child.pid ?? 0,
    stateDir,
    logs: () => [...records],
    stderr: () => stderrText,
    stdout: () => stdoutText,
    waitForLog,
    async get(urlPath, init) {
      const res = await fetch(url + urlPath, { ...init, method: init?.method ?? 'GET' });
      return { status: res.status, text: await res.text(), headers: res.headers };
    },
    waitFor,
    async stop(signal = 'SIGTERM', timeoutMs = 30_000) {
      const t0 = Date.now();
      if (!exit) child.kill(signal);
      return waitExit(t0, timeoutMs);
    },
    async kill() {
      const t0 = Date.now();
      if (!exit) child.kill('SIGKILL');
      return waitExit(t0, 10_000);
    },
    get exit() {
      return exit;
    },
  };
  return agent;
}

// Last resort: never leave agents behind when the test process exits.
process.on('exit', () => {
  for (const child of live.keys()) {
    try {
      child.kill('SIGKILL');
    } catch {
      // gone
    }
  }
});
