/**
 * The host as cAdvisor's root container (`id="/"`): CPU, memory, block I/O and the network of the
 * host namespace, read from /proc (under proc_root) once per collection, the same way on cgroup
 * v1 and v2 (the v2 root cgroup has no memory.current or io.stat, and /proc is what host panels
 * are compared with):
 * - CPU from the first lines of /proc/stat in USER_HZ ticks: usage = user + nice + system + irq +
 *   softirq + steal; user = user + nice; system = system + irq + softirq; per CPU from `cpuN`;
 * - memory from /proc/meminfo with cAdvisor's formula applied to the whole host: usage =
 *   MemTotal − MemFree, working set = usage − Inactive(file), rss = AnonPages, cache = Cached,
 *   mapped_file = Mapped, swap = SwapTotal − SwapFree, kernel = Slab + KernelStack + PageTables;
 * - page faults from /proc/vmstat (both scopes, as the root's subtree is everything);
 * - block I/O from /proc/diskstats, whole disks only (a partition is left out when its disk is
 *   listed: `sda1` of `sda`, `nvme0n1p1` of `nvme0n1`), so sums do not count bytes twice;
 * - network from /proc/1/net/dev (the host namespace).
 */
import { join } from 'node:path';
import { parseNetDev, readText, type DeviceIo, type InterfaceStats } from './cgroup/read.js';
import type { ContainerStats } from './cgroup/stats.js';

const USER_HZ = 100;
const SECTOR = 512;

/** Parses the `cpu` / `cpuN` lines of /proc/stat into stats (cpuTotal/User/System, perCpu). */
export function parseProcStat(text: string, s: ContainerStats, perCpu: boolean): void {
  const cpus: number[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('cpu')) {
      if (line !== '') break; // the cpu lines come first
      continue;
    }
    const f = line.trim().split(/\s+/);
    const n = (i: number): number => Number(f[i] ?? 0) || 0;
    const user = n(1) + n(2);
    const system = n(3) + n(6) + n(7);
    const total = user + system + n(8);
    if (f[0] === 'cpu') {
      s.cpuTotal = total / USER_HZ;
      s.cpuUser = user / USER_HZ;
      s.cpuSystem = system / USER_HZ;
    } else if (perCpu) {
      const idx = Number((f[0] as string).slice(3));
      if (Number.isInteger(idx) && idx >= 0 && idx < 4096) cpus[idx] = total / USER_HZ;
    }
  }
  s.perCpu = perCpu ? Array.from(cpus, (v) => v ?? 0) : undefined;
}

/** `Key:   123 kB` lines → bytes. */
export function parseMeminfo(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const [v = '', unit] = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/);
    const n = Number(v);
    if (Number.isFinite(n)) m.set(line.slice(0, colon), unit === 'kB' ? n * 1024 : n);
  }
  return m;
}

export function applyMeminfo(mem: Map<string, number>, s: ContainerStats): void {
  const g = (k: string): number => mem.get(k) ?? NaN;
  s.memUsage = Math.max(0, g('MemTotal') - g('MemFree'));
  const inactive = mem.get('Inactive(file)') ?? 0;
  s.memWorkingSet = Math.max(0, s.memUsage - inactive);
  s.memRss = g('AnonPages');
  s.memCache = g('Cached');
  s.memMappedFile = g('Mapped');
  s.memSwap = Math.max(0, (mem.get('SwapTotal') ?? 0) - (mem.get('SwapFree') ?? 0));
  s.memKernel = g('Slab') + (mem.get('KernelStack') ?? 0) + (mem.get('PageTables') ?? 0);
}

/** Whole disks of /proc/diskstats (partitions of a listed disk left out) as DeviceIo by major:minor. */
export function parseDiskstatsIo(text: string): Map<string, DeviceIo> {
  const rows: Array<{ major: string; name: string; io: DeviceIo }> = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const n = (i: number): number => Number(f[i]) || 0;
    rows.push({
      major: f[0] as string,
      name: f[2] as string,
      io: {
        dev: `${f[0]}:${f[1]}`,
        reads: n(3),
        readBytes: n(5) * SECTOR,
        writes: n(7),
        writeBytes: n(9) * SECTOR,
      },
    });
  }
  const names = new Set(rows.map((r) => `${r.major}/${r.name}`));
  const out = new Map<string, DeviceIo>();
  for (const r of rows) {
    if (r.io.reads === 0 && r.io.writes === 0) continue; // unused loop/ram devices
    // sda1 → sda, vda2 → vda, nvme0n1p1 → nvme0n1, mmcblk0p1 → mmcblk0
    const parent = /^(.*\d)p\d+$/.exec(r.name)?.[1] ?? /^(.*\D)\d+$/.exec(r.name)?.[1];
    const parentListed = parent !== undefined && names.has(`${r.major}/${parent}`);
    if (parentListed) continue;
    out.set(r.io.dev, r.io);
  }
  return out;
}

/** Fields of /proc/vmstat → stats page faults. */
export function applyVmstat(text: string, s: ContainerStats): void {
  for (const line of text.split('\n')) {
    const sp = line.indexOf(' ');
    const k = line.slice(0, sp);
    if (k === 'pgfault') s.pgfault = s.hierPgfault = Number(line.slice(sp + 1));
    else if (k === 'pgmajfault') s.pgmajfault = s.hierPgmajfault = Number(line.slice(sp + 1));
  }
}

/**
 * Reads the host's counters into s (and its interfaces). Throws when /proc/stat cannot be read;
 * the other files are optional (their families are left out).
 */
export function readRootStats(
  procRoot: string,
  s: ContainerStats,
  opts: { perCpu: boolean; memory: boolean; diskIo: boolean; network: boolean; loopback: boolean },
): InterfaceStats[] {
  parseProcStat(readText(join(procRoot, 'stat')), s, opts.perCpu);
  s.processes = NaN;
  s.memFailcnt = NaN;
  if (opts.memory) {
    try {
      applyMeminfo(parseMeminfo(readText(join(procRoot, 'meminfo'))), s);
    } catch {
      s.memUsage = s.memWorkingSet = NaN;
    }
    try {
      applyVmstat(readText(join(procRoot, 'vmstat')), s);
    } catch {
      // no page-fault series
    }
  }
  if (opts.diskIo) {
    try {
      s.devices = parseDiskstatsIo(readText(join(procRoot, 'diskstats')));
    } catch {
      s.devices.clear();
    }
  }
  if (!opts.network) return [];
  try {
    return parseNetDev(readText(join(procRoot, '1', 'net', 'dev')), opts.loopback);
  } catch {
    return [];
  }
}
