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
  KeptFile,
  bufBlkioV1,
  bufCountLines,
  bufFlatKeyed,
  bufIoStatV2,
  bufNumber,
  bufNumbers,
  bufPressure,
  keySet,
  readNumber,
  readText,
  type DeviceIo,
  type OpenFileBudget,
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
  /** Page faults (minor + major) of the cgroup's own processes, and of its whole subtree. */
  pgfault: number;
  pgmajfault: number;
  hierPgfault: number;
  hierPgmajfault: number;
  /** Kernel memory in bytes (v1 memory.kmem.usage_in_bytes, v2 memory.stat `kernel`); NaN when unknown. */
  memKernel: number;
  /** CPU time per CPU in seconds (v1 cpuacct.usage_percpu), when per-CPU usage is read. */
  perCpu: number[] | undefined;
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
    pgfault: NaN,
    pgmajfault: NaN,
    hierPgfault: NaN,
    hierPgmajfault: NaN,
    memKernel: NaN,
    perCpu: undefined,
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
  /** v1 memory.kmem.usage_in_bytes exists. */
  kmem: boolean;
  /** v1 cpuacct.usage_percpu exists. */
  perCpu: boolean;
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
      kmem: false,
      perCpu: false,
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
    kmem: dirs.memory !== undefined && existsSync(join(dirs.memory, 'memory.kmem.usage_in_bytes')),
    perCpu: dirs.cpuacct !== undefined && existsSync(join(dirs.cpuacct, 'cpuacct.usage_percpu')),
    pids: dirs.pids !== undefined && existsSync(join(dirs.pids, 'pids.current')),
    blkioFile,
    blkioOpsFile,
    psiDir:
      dirs.unified !== undefined && existsSync(join(dirs.unified, 'cpu.pressure'))
        ? dirs.unified
        : undefined,
  };
}

/** Which stat groups to read (disabled groups cost nothing). */
export interface ReadGroups {
  cpu: boolean;
  memory: boolean;
  diskIo: boolean;
  processes: boolean;
  pressure: boolean;
  /** container_memory_kernel_usage (v1: one more file). */
  kernel?: boolean;
  /** Per-CPU usage (v1: cpuacct.usage_percpu). */
  perCpu?: boolean;
}

const CPUACCT_STAT = keySet('user', 'system');
const CPU_STAT_V1 = keySet('nr_periods', 'nr_throttled', 'throttled_time');
const MEMORY_STAT_V1 = keySet(
  'total_rss',
  'total_cache',
  'total_mapped_file',
  'total_swap',
  'total_inactive_file',
  'pgfault',
  'pgmajfault',
  'total_pgfault',
  'total_pgmajfault',
);
const OOM_CONTROL = keySet('oom_kill');
const CPU_STAT_V2 = keySet(
  'usage_usec',
  'user_usec',
  'system_usec',
  'nr_periods',
  'nr_throttled',
  'throttled_usec',
);
const MEMORY_STAT_V2 = keySet(
  'anon',
  'file',
  'file_mapped',
  'inactive_file',
  'pgfault',
  'pgmajfault',
  'kernel',
);
const MEMORY_EVENTS = keySet('max', 'oom_kill');

/** Scratch space for parsed values (NaN = not present in the file). */
const vals = new Float64Array(12);
const clear = (): Float64Array => vals.fill(NaN);
const has = (i: number): boolean => !Number.isNaN(vals[i]);
const val = (i: number): number => vals[i] as number;
const psi = new Float64Array(2);

/**
 * Reads one container's counters on every collection, from files it keeps open (see
 * {@link KeptFile}). One reader per container run: the files to read are decided once from the
 * probe and the enabled groups. Throws (ENOENT/ENODEV) when a required file is gone: the caller
 * treats that as "cgroup vanished" and closes the reader.
 */
export class CgroupReader {
  private readonly files: KeptFile[] = [];
  private readonly v2: boolean;
  // v1 and v2 (undefined = not read)
  private readonly cpuStat: KeptFile | undefined;
  private readonly memUsage: KeptFile | undefined;
  private readonly memStat: KeptFile | undefined;
  private readonly memMaxUsage: KeptFile | undefined;
  private readonly memOom: KeptFile | undefined;
  private readonly blkio: KeptFile | undefined;
  private readonly procs: KeptFile | undefined;
  private readonly pidsCurrent: KeptFile | undefined;
  private readonly psiCpu: KeptFile | undefined;
  private readonly psiMem: KeptFile | undefined;
  private readonly psiIo: KeptFile | undefined;
  // v1 only
  private readonly cpuacctUsage: KeptFile | undefined;
  private readonly cpuacctStat: KeptFile | undefined;
  private readonly memFailcnt: KeptFile | undefined;
  private readonly memKmem: KeptFile | undefined;
  private readonly cpuPerCpu: KeptFile | undefined;
  private readonly blkioOps: KeptFile | undefined;
  // v2 only
  private readonly memSwap: KeptFile | undefined;

  constructor(
    mode: CgroupLayout['mode'],
    dirs: CgroupDirs,
    pr: Probe,
    g: ReadGroups,
    budget: OpenFileBudget | undefined,
  ) {
    const f = (path: string): KeptFile => {
      const k = new KeptFile(path, budget);
      this.files.push(k);
      return k;
    };
    this.v2 = mode === 'v2';
    if (this.v2) {
      const u = dirs.unified as string;
      if (g.cpu) this.cpuStat = f(u + '/cpu.stat');
      if (g.memory) {
        this.memUsage = f(u + '/memory.current');
        this.memStat = f(u + '/memory.stat');
        if (pr.swap) this.memSwap = f(u + '/memory.swap.current');
        if (pr.maxUsage) this.memMaxUsage = f(u + '/memory.peak');
        if (pr.oom) this.memOom = f(u + '/memory.events');
      }
      if (g.diskIo && pr.blkioFile) this.blkio = f(pr.blkioFile);
      if (g.processes) {
        this.procs = f(u + '/cgroup.procs');
        if (pr.pids) this.pidsCurrent = f(u + '/pids.current');
      }
    } else {
      if (g.cpu) {
        if (dirs.cpuacct) {
          this.cpuacctUsage = f(dirs.cpuacct + '/cpuacct.usage');
          this.cpuacctStat = f(dirs.cpuacct + '/cpuacct.stat');
          if (g.perCpu && pr.perCpu) this.cpuPerCpu = f(dirs.cpuacct + '/cpuacct.usage_percpu');
        }
        if (dirs.cpu) this.cpuStat = f(dirs.cpu + '/cpu.stat');
      }
      if (g.memory && dirs.memory) {
        const m = dirs.memory;
        this.memUsage = f(m + '/memory.usage_in_bytes');
        this.memStat = f(m + '/memory.stat');
        this.memFailcnt = f(m + '/memory.failcnt');
        if (g.kernel && pr.kmem) this.memKmem = f(m + '/memory.kmem.usage_in_bytes');
        if (pr.maxUsage) this.memMaxUsage = f(m + '/memory.max_usage_in_bytes');
        if (pr.oom) this.memOom = f(m + '/memory.oom_control');
      }
      if (g.diskIo && pr.blkioFile && pr.blkioOpsFile) {
        this.blkio = f(pr.blkioFile);
        this.blkioOps = f(pr.blkioOpsFile);
      }
      if (g.processes) {
        const procsDir = dirs.pids ?? dirs.cpuacct ?? dirs.memory;
        if (procsDir) this.procs = f(procsDir + '/cgroup.procs');
        if (pr.pids && dirs.pids) this.pidsCurrent = f(dirs.pids + '/pids.current');
      }
    }
    if (g.pressure && pr.psiDir) {
      this.psiCpu = f(pr.psiDir + '/cpu.pressure');
      this.psiMem = f(pr.psiDir + '/memory.pressure');
      this.psiIo = f(pr.psiDir + '/io.pressure');
    }
  }

  /** Files read on every collection (kept open or not). */
  fileCount(): number {
    return this.files.length;
  }

  /** Files currently kept open. */
  openFiles(): number {
    let n = 0;
    for (const f of this.files) if (f.isOpen) n++;
    return n;
  }

  close(): void {
    for (const f of this.files) f.close();
  }

  read(s: ContainerStats): void {
    if (this.v2) this.readV2(s);
    else this.readV1(s);
    if (this.psiCpu && this.psiMem && this.psiIo) {
      bufPressure(this.psiCpu.read(), psi);
      s.psiCpuFull = (psi[1] as number) / 1e6;
      s.psiCpuSome = (psi[0] as number) / 1e6;
      bufPressure(this.psiMem.read(), psi);
      s.psiMemSome = (psi[0] as number) / 1e6;
      s.psiMemFull = (psi[1] as number) / 1e6;
      bufPressure(this.psiIo.read(), psi);
      s.psiIoSome = (psi[0] as number) / 1e6;
      s.psiIoFull = (psi[1] as number) / 1e6;
    }
  }

  private readV1(s: ContainerStats): void {
    if (this.cpuacctUsage && this.cpuacctStat) {
      s.cpuTotal = bufNumber(this.cpuacctUsage.read()) / 1e9;
      bufFlatKeyed(this.cpuacctStat.read(), CPUACCT_STAT, clear());
      if (has(0)) s.cpuUser = val(0) / USER_HZ;
      if (has(1)) s.cpuSystem = val(1) / USER_HZ;
    }
    if (this.cpuPerCpu) s.perCpu = bufNumbers(this.cpuPerCpu.read(), 1e9, s.perCpu);
    if (this.cpuStat) {
      bufFlatKeyed(this.cpuStat.read(), CPU_STAT_V1, clear());
      if (has(0)) s.cfsPeriods = val(0);
      if (has(1)) s.cfsThrottledPeriods = val(1);
      if (has(2)) s.cfsThrottledSeconds = val(2) / 1e9;
    }
    if (this.memUsage && this.memStat && this.memFailcnt) {
      s.memUsage = bufNumber(this.memUsage.read());
      bufFlatKeyed(this.memStat.read(), MEMORY_STAT_V1, clear());
      if (has(0)) s.memRss = val(0);
      if (has(1)) s.memCache = val(1);
      if (has(2)) s.memMappedFile = val(2);
      if (has(3)) s.memSwap = val(3);
      const inactiveFile = has(4) ? val(4) : 0;
      s.memWorkingSet = s.memUsage > inactiveFile ? s.memUsage - inactiveFile : 0;
      s.pgfault = val(5);
      s.pgmajfault = val(6);
      s.hierPgfault = val(7);
      s.hierPgmajfault = val(8);
      s.memFailcnt = bufNumber(this.memFailcnt.read());
      if (this.memKmem) s.memKernel = bufNumber(this.memKmem.read());
      if (this.memMaxUsage) s.memMaxUsage = bufNumber(this.memMaxUsage.read());
      if (this.memOom) {
        bufFlatKeyed(this.memOom.read(), OOM_CONTROL, clear());
        if (has(0)) s.oomKills = val(0);
      }
    }
    if (this.blkio && this.blkioOps) {
      s.devices.clear();
      bufBlkioV1(this.blkio.read(), s.devices, true);
      bufBlkioV1(this.blkioOps.read(), s.devices, false);
    }
    this.readProcs(s);
  }

  private readV2(s: ContainerStats): void {
    if (this.cpuStat) {
      bufFlatKeyed(this.cpuStat.read(), CPU_STAT_V2, clear());
      if (has(0)) s.cpuTotal = val(0) / 1e6;
      if (has(1)) s.cpuUser = val(1) / 1e6;
      if (has(2)) s.cpuSystem = val(2) / 1e6;
      if (has(3)) s.cfsPeriods = val(3);
      if (has(4)) s.cfsThrottledPeriods = val(4);
      if (has(5)) s.cfsThrottledSeconds = val(5) / 1e6;
    }
    if (this.memUsage && this.memStat) {
      s.memUsage = bufNumber(this.memUsage.read());
      bufFlatKeyed(this.memStat.read(), MEMORY_STAT_V2, clear());
      if (has(0)) s.memRss = val(0);
      if (has(1)) s.memCache = val(1);
      if (has(2)) s.memMappedFile = val(2);
      const inactiveFile = has(3) ? val(3) : 0;
      s.memWorkingSet = s.memUsage > inactiveFile ? s.memUsage - inactiveFile : 0;
      // v2 has no per-cgroup-only counters: both scopes are the subtree's (as cAdvisor does)
      s.pgfault = s.hierPgfault = val(4);
      s.pgmajfault = s.hierPgmajfault = val(5);
      s.memKernel = val(6);
      if (this.memSwap) s.memSwap = bufNumber(this.memSwap.read());
      if (this.memMaxUsage) s.memMaxUsage = bufNumber(this.memMaxUsage.read());
      if (this.memOom) {
        bufFlatKeyed(this.memOom.read(), MEMORY_EVENTS, clear());
        if (has(0)) s.memFailcnt = val(0);
        if (has(1)) s.oomKills = val(1);
      }
    }
    if (this.blkio) {
      s.devices.clear();
      bufIoStatV2(this.blkio.read(), s.devices);
    }
    this.readProcs(s);
  }

  private readProcs(s: ContainerStats): void {
    if (this.procs) s.processes = bufCountLines(this.procs.read());
    if (this.pidsCurrent) s.threads = bufNumber(this.pidsCurrent.read());
  }
}

/**
 * Reads `pids.max` (a limit: it changes only with `docker update`, so it is read with the spec).
 * Sets threadsMax (0 = unlimited), NaN without the pids controller.
 */
export function readPidsMax(
  mode: CgroupLayout['mode'],
  dirs: CgroupDirs,
  pr: Probe,
  s: ContainerStats,
): void {
  const dir = mode === 'v2' ? dirs.unified : dirs.pids;
  if (!pr.pids || !dir) return;
  const max = readNumber(dir + '/pids.max');
  s.threadsMax = Number.isFinite(max) ? max : 0;
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
