/**
 * The process's file-descriptor limit and how it is shared.
 *
 * Node.js raises the soft RLIMIT_NOFILE to the hard limit when it starts (see
 * /proc/self/limits of any node process started under `prlimit --nofile=1024:N`), so the soft
 * limit read here is already the most the agent can have; there is nothing left to raise.
 *
 * The descriptors are shared by, in order of priority:
 * - the agent's own work: the runtime (stdio, epoll, the libuv thread pool's pipes), Docker API
 *   sockets (event stream and requests), OTLP export connections, checkpoint writes, the
 *   writable-layer walk, configuration reloads: {@link AGENT_RESERVED_FILES};
 * - log files: the tailer keeps every generation of a container's log open until it has read
 *   it, normally the live file, plus the rotated one while it is drained:
 *   {@link LOG_FILES_PER_CONTAINER} per container the daemon knows;
 * - HTTP clients: at most the server's connection cap (`http.max_connections`, itself never
 *   above the limit minus `http.reserved_descriptors`);
 * - cgroup and /proc files the metrics collector keeps open between collections: whatever is
 *   left. They are the only ones that give way: beyond their budget a file is opened, read and
 *   closed on every collection, which costs a few microseconds instead of one pread.
 */
import { readFileSync } from 'node:fs';

/** Descriptors kept for the runtime, Docker API and OTLP sockets, checkpoints, walks. */
export const AGENT_RESERVED_FILES = 256;
/** Log files the tailer may hold per container: the live file and one rotated generation. */
export const LOG_FILES_PER_CONTAINER = 2;
/** What an "unlimited" soft limit counts as. */
const UNLIMITED = 1 << 20;
/** Budget when the limit cannot be read (not Linux): a conservative share of the usual 1,024. */
export const FALLBACK_FILE_BUDGET = 512;

/** The soft RLIMIT_NOFILE of this process, or undefined when it cannot be read (not Linux). */
export function softOpenFilesLimit(limitsFile = '/proc/self/limits'): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(limitsFile, 'latin1'));
    if (!m?.[1]) return undefined;
    return m[1] === 'unlimited' ? UNLIMITED : Number(m[1]);
  } catch {
    return undefined;
  }
}

export interface CgroupFileBudgetInputs {
  /** Soft RLIMIT_NOFILE; undefined when unknown. */
  softLimit: number | undefined;
  /** Most HTTP client connections the server keeps open at once (its connection cap). */
  httpConnections: number;
  /** Containers the daemon knows (each may have log files open). */
  containers: number;
}

/**
 * How many cgroup and /proc files the metrics collector may keep open:
 *
 *   soft limit − 256 (agent) − HTTP connection cap − 2 × containers, at least 0.
 */
export function cgroupFileBudget(i: CgroupFileBudgetInputs): number {
  if (i.softLimit === undefined) return FALLBACK_FILE_BUDGET;
  const reserve =
    AGENT_RESERVED_FILES +
    Math.max(0, i.httpConnections) +
    LOG_FILES_PER_CONTAINER * Math.max(0, i.containers);
  return Math.max(0, i.softLimit - reserve);
}
