/**
 * Reads one container's cgroup counters (v1 controllers or the v2 unified hierarchy) into a
 * reusable record, with cAdvisor's semantics:
 * - working set = usage − inactive file (total_inactive_file on v1), never below 0;
 * - v1 uses the hierarchical `total_*` keys of memory.stat; v2 uses anon / file / file_mapped;
 * - CPU user/system on v1 come from cpuacct.stat in USER_HZ (100 per second) ticks;
 * - spec values: "unlimited" memory (above 2^62, or `max`) is reported as 0, a CPU quota of
 *   -1/`max` as 0 (absent), pids `max` as 0 (cAdvisor: "infinity if value is zero").
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CgroupLayout } from './detect.js';
import {
  countLines,
  parseBlkioV1,
  parseFlatKeyed,
  parseIoStatV2,
  parsePressure,
  readNumber,
  readText,
  type DeviceIo,
} from './read.js';

/** USER_HZ: the unit of cpuacct.stat; 100 on every Linux architecture Docker runs on. */
const USER_HZ = 100;
/** cAdvisor: memory limits above this are "unlimited" (kernel rounds the max to a page). */
const MAX_MEMORY = 2 ** 62;

export interface ContainerStats {
  cpuTotal: number;
  cpuUser: number;
  cpuSystem: number;
  cfsPeriods: number;
  cfsThrottledPeriods: number;
  cfsThrottledSeconds: number;
  memUsage: number;
  memWorkingSet: number;
  memRss: number;
  memCache: number;
  memMappedFile: number;
  memSwap: number;
  memFailcnt: number;
  /** NaN when the kernel does not report it (v2 without memory.peak). */
  memMaxUsage: number;
  /** NaN when unknown. */
  oomKills: number;
  devices: Map<string, DeviceIo>;
  processes: number;
  threads: number;
  /** NaN when the pids controller is absent. */
  threadsMax: number;
  /** PSI totals in seconds; NaN when not available. */
  psiCpuSome: number;
  psiCpuFull: number;
  psiMemSome: number;
  psiMemFull: number;
  psiIoSome: number;
  psiIoFull: number;
}

export function emptyStats(): ContainerStats {
  return {
    cpuTotal: 0,
    cpuUser: 0,
    cpuSystem: 0,
    cfsPeriods: 0,
    cfsThrottledPeriods: 0,
    cfsThrottledSeconds: 0,
    memUsage: 0,
    memWorkingSet: 0,
    memRss: 0,
    memCache: 0,
    memMappedFile: 0,
    memSwap: 0,
    memFailcnt: 0,
    memMaxUsage: NaN,
    oomKills: NaN,
    devices: new Map(),
    processes: 0,
    threads: 0,
    threadsMax: NaN,
    psiCpuSome: NaN,
    psiCpuFull: NaN,
    psiMemSome: NaN,
    psiMemFull: NaN,
    psiIoSome: NaN,
    psiIoFull: NaN,
  };
}

export interface ContainerSpecValues {
  /** CFS period in µs; 0 when unknown. */
  cpuPeriod: number;
  /** CFS quota in µs; 0 when unlimited. */
  cpuQuota: number;
  cpuShares: number;
  memLimit: number;
  memSwapLimit: number;
  memReservation: number;
}

/** Which optional files exist for one run of a container (probed once per run). */
export interface Probe {
  maxUsage: boolean;
  oom: boolean;
  swap: boolean;
  pids: boolean;
  blkioFile: string | undefined;
  blkioOpsFile: string | undefined;
  psiDir: string | undefined;
}

/** Absolute directories of one container's cgroup. */
export interface CgroupDirs {
  cpu?: string;
  cpuacct?: string;
  memory?: string;
  blkio?: string;
  pids?: string;
  /** v2 (or the hybrid unified dir, used for PSI only). */
  unified?: string;
}

export function cgroupDirs(layout: CgroupLayout, path: string): CgroupDirs {
  if (layout.mode === 'v2') return { unified: join(layout.root, path) };
  const d: CgroupDirs = {};
  for (const [c, mount] of Object.entries(layout.v1)) d[c as keyof CgroupDirs] = join(mount, path);
  if (layout.unified) d.unified = join(layout.unified, path);
  return d;
}

export function probe(layout: CgroupLayout, dirs: CgroupDirs): Probe {
  if (layout.mode === 'v2') {
    const u = dirs.unified as string;
    return {
      maxUsage: existsSync(join(u, 'memory.peak')),
      oom: existsSync(join(u, 'memory.events')),
      swap: existsSync(join(u, 'memory.swap.current')),
      pids: existsSync(join(u, 'pids.current')),
      blkioFile: existsSync(join(u, 'io.stat')) ? join(u, 'io.stat') : undefined,
      blkioOpsFile: undefined,
      psiDir: existsSync(join(u, 'cpu.pressure')) ? u : undefined,
    };
  }
  let blkioFile: string | undefined;
  let blkioOpsFile: string | undefined;
  if (dirs.blkio) {
    for (const base of [
      'blkio.throttle.io_service_bytes_recursive',
      'blkio.throttle.io_service_bytes',
    ]) {
      if (existsSync(join(dirs.blkio, base))) {
        blkioFile = join(dirs.blkio, base);
        blkioOpsFile = join(dirs.blkio, base.replace('io_service_bytes', 'io_serviced'));
        break;
      }
    }
  }
  return {
    maxUsage:
      dirs.memory !== undefined && existsSync(join(dirs.memory, 'memory.max_usage_in_bytes')),
    oom: dirs.memory !== undefined && existsSync(join(dirs.memory, 'memory.oom_control')),
    swap: true,
    pids: dirs.pids !== undefined && existsSync(join(dirs.pids, 'pids.current')),
    blkioFile,
    blkioOpsFile,
    psiDir:
      dirs.unified !== undefined && existsSync(join(dirs.unified, 'cpu.pressure'))
        ? dirs.unified
        : undefined,
  };
}

function readPsi(dir: string, s: ContainerStats): void {
  let p = parsePressure(readText(dir + '/cpu.pressure'));
  s.psiCpuSome = p.some / 1e6;
  s.psiCpuFull = p.full / 1e6;
  p = parsePressure(readText(dir + '/memory.pressure'));
  s.psiMemSome = p.some / 1e6;
  s.psiMemFull = p.full / 1e6;
  p = parsePressure(readText(dir + '/io.pressure'));
  s.psiIoSome = p.some / 1e6;
  s.psiIoFull = p.full / 1e6;
}

/** Which stat groups to read (disabled groups cost nothing). */
export interface ReadGroups {
  cpu: boolean;
  memory: boolean;
  diskIo: boolean;
  processes: boolean;
  pressure: boolean;
}

/**
 * Reads a v1 container. Throws (ENOENT) when a required file is gone: the caller treats that as
 * "cgroup vanished".
 */
export function readV1(dirs: CgroupDirs, pr: Probe, g: ReadGroups, s: ContainerStats): void {
  if (g.cpu) {
    if (dirs.cpuacct) {
      s.cpuTotal = readNumber(dirs.cpuacct + '/cpuacct.usage') / 1e9;
      parseFlatKeyed(readText(dirs.cpuacct + '/cpuacct.stat'), (k, v) => {
        if (k === 'user') s.cpuUser = v / USER_HZ;
        else if (k === 'system') s.cpuSystem = v / USER_HZ;
      });
    }
    if (dirs.cpu) {
      parseFlatKeyed(readText(dirs.cpu + '/cpu.stat'), (k, v) => {
        if (k === 'nr_periods') s.cfsPeriods = v;
        else if (k === 'nr_throttled') s.cfsThrottledPeriods = v;
        else if (k === 'throttled_time') s.cfsThrottledSeconds = v / 1e9;
      });
    }
  }
  if (g.memory && dirs.memory) {
    const m = dirs.memory;
    s.memUsage = readNumber(m + '/memory.usage_in_bytes');
    let inactiveFile = 0;
    parseFlatKeyed(readText(m + '/memory.stat'), (k, v) => {
      switch (k) {
        case 'total_rss':
          s.memRss = v;
          break;
        case 'total_cache':
          s.memCache = v;
          break;
        case 'total_mapped_file':
          s.memMappedFile = v;
          break;
        case 'total_swap':
          s.memSwap = v;
          break;
        case 'total_inactive_file':
          inactiveFile = v;
          break;
      }
    });
    s.memWorkingSet = s.memUsage > inactiveFile ? s.memUsage - inactiveFile : 0;
    s.memFailcnt = readNumber(m + '/memory.failcnt');
    if (pr.maxUsage) s.memMaxUsage = readNumber(m + '/memory.max_usage_in_bytes');
    if (pr.oom) {
      parseFlatKeyed(readText(m + '/memory.oom_control'), (k, v) => {
        if (k === 'oom_kill') s.oomKills = v;
      });
    }
  }
  if (g.diskIo && pr.blkioFile && pr.blkioOpsFile) {
    s.devices.clear();
    parseBlkioV1(readText(pr.blkioFile), s.devices, true);
    parseBlkioV1(readText(pr.blkioOpsFile), s.devices, false);
  }
  if (g.processes) {
    const procsDir = dirs.pids ?? dirs.cpuacct ?? dirs.memory;
    if (procsDir) s.processes = countLines(procsDir + '/cgroup.procs');
    if (pr.pids && dirs.pids) {
      s.threads = readNumber(dirs.pids + '/pids.current');
      const max = readNumber(dirs.pids + '/pids.max');
      s.threadsMax = Number.isFinite(max) ? max : 0;
    }
  }
  if (g.pressure && pr.psiDir) readPsi(pr.psiDir, s);
}

/** Reads a v2 container (unified hierarchy). */
export function readV2(dirs: CgroupDirs, pr: Probe, g: ReadGroups, s: ContainerStats): void {
  const u = dirs.unified as string;
  if (g.cpu) {
    parseFlatKeyed(readText(u + '/cpu.stat'), (k, v) => {
      switch (k) {
        case 'usage_usec':
          s.cpuTotal = v / 1e6;
          break;
        case 'user_usec':
          s.cpuUser = v / 1e6;
          break;
        case 'system_usec':
          s.cpuSystem = v / 1e6;
          break;
        case 'nr_periods':
          s.cfsPeriods = v;
          break;
        case 'nr_throttled':
          s.cfsThrottledPeriods = v;
          break;
        case 'throttled_usec':
          s.cfsThrottledSeconds = v / 1e6;
          break;
      }
    });
  }
  if (g.memory) {
    s.memUsage = readNumber(u + '/memory.current');
    let inactiveFile = 0;
    parseFlatKeyed(readText(u + '/memory.stat'), (k, v) => {
      switch (k) {
        case 'anon':
          s.memRss = v;
          break;
        case 'file':
          s.memCache = v;
          break;
        case 'file_mapped':
          s.memMappedFile = v;
          break;
        case 'inactive_file':
          inactiveFile = v;
          break;
      }
    });
    s.memWorkingSet = s.memUsage > inactiveFile ? s.memUsage - inactiveFile : 0;
    if (pr.swap) s.memSwap = readNumber(u + '/memory.swap.current');
    if (pr.maxUsage) s.memMaxUsage = readNumber(u + '/memory.peak');
    if (pr.oom) {
      parseFlatKeyed(readText(u + '/memory.events'), (k, v) => {
        if (k === 'max') s.memFailcnt = v;
        else if (k === 'oom_kill') s.oomKills = v;
      });
    }
  }
  if (g.diskIo && pr.blkioFile) {
    s.devices.clear();
    parseIoStatV2(readText(pr.blkioFile), s.devices);
  }
  if (g.processes) {
    s.processes = countLines(u + '/cgroup.procs');
    if (pr.pids) {
      s.threads = readNumber(u + '/pids.current');
      const max = readNumber(u + '/pids.max');
      s.threadsMax = Number.isFinite(max) ? max : 0;
    }
  }
  if (g.pressure && pr.psiDir) readPsi(pr.psiDir, s);
}

function memSpec(v: number): number {
  return !Number.isFinite(v) || v > MAX_MEMORY || v < 0 ? 0 : v;
}

function tryNumber(path: string): number {
  try {
    return readNumber(path);
  } catch {
    return NaN;
  }
}

/** cAdvisor's conversion of a v2 cpu.weight back to v1 shares. */
export function weightToShares(weight: number): number {
  return 2 + Math.floor(((weight - 1) * 262142) / 9999);
}

/** Reads the spec (limits) of a container; missing files give 0. */
export function readSpec(mode: CgroupLayout['mode'], dirs: CgroupDirs): ContainerSpecValues {
  const spec: ContainerSpecValues = {
    cpuPeriod: 0,
    cpuQuota: 0,
    cpuShares: 0,
    memLimit: 0,
    memSwapLimit: 0,
    memReservation: 0,
  };
  if (mode === 'v2') {
    const u = dirs.unified as string;
    const weight = tryNumber(join(u, 'cpu.weight'));
    if (Number.isFinite(weight)) spec.cpuShares = weightToShares(weight);
    try {
      const [quota = 'max', period = '100000'] = readText(join(u, 'cpu.max')).trim().split(' ');
      spec.cpuPeriod = Number(period) || 0;
      spec.cpuQuota = quota === 'max' ? 0 : Number(quota) || 0;
    } catch {
      // no cpu controller enabled for this cgroup
    }
    spec.memLimit = memSpec(tryNumber(join(u, 'memory.max')));
    spec.memSwapLimit = memSpec(tryNumber(join(u, 'memory.swap.max')));
    // Docker writes --memory-reservation to memory.low on v2.
    spec.memReservation = memSpec(tryNumber(join(u, 'memory.low')));
    return spec;
  }
  if (dirs.cpu) {
    spec.cpuShares = tryNumber(join(dirs.cpu, 'cpu.shares')) || 0;
    spec.cpuPeriod = tryNumber(join(dirs.cpu, 'cpu.cfs_period_us')) || 0;
    const q = tryNumber(join(dirs.cpu, 'cpu.cfs_quota_us'));
    spec.cpuQuota = q > 0 ? q : 0;
  }
  if (dirs.memory) {
    spec.memLimit = memSpec(tryNumber(join(dirs.memory, 'memory.limit_in_bytes')));
    spec.memSwapLimit = memSpec(tryNumber(join(dirs.memory, 'memory.memsw.limit_in_bytes')));
    spec.memReservation = memSpec(tryNumber(join(dirs.memory, 'memory.soft_limit_in_bytes')));
  }
  return spec;
}
