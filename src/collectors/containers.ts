/**
 * Per-container resource metrics with cAdvisor's names, types, units and labels, read straight
 * from cgroupfs (v1, v2, hybrid) and /proc/<pid>/net/dev, rendered as exposition text by hand
 * (prom-client objects cost too much per series at thousands of containers; see bench/).
 *
 * Collection happens on scrape, at most once per `metrics.min_interval_seconds`: concurrent and
 * closely spaced scrapes share one collection and one rendered text.
 */
import { join } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { OomTracker } from './oom.js';
import type { ContainerPredicate } from '../docker/selection.js';
import type { ContainerInfo, ContainerSource } from '../docker/types.js';
import type { FilesystemInfo, LayerUsage } from './fs-usage.js';
import { readRootStats } from './root.js';
import { OnceLogger, type Logger } from '../util/logger.js';
import { cgroupFileBudget, softOpenFilesLimit } from '../util/open-files.js';
import { detectCgroupLayout, type CgroupLayout } from './cgroup/detect.js';
import {
  KeptFile,
  OpenFileBudget,
  bufNetDev,
  isMissing,
  parseDiskstats,
  readLink,
  readText,
  type DeviceIo,
  type InterfaceStats,
} from './cgroup/read.js';
import {
  CgroupReader,
  cgroupDirs,
  emptyStats,
  probe,
  readPidsMax,
  readSpec,
  type CgroupDirs,
  type ContainerSpecValues,
  type ContainerStats,
  type Probe,
  type ReadGroups,
} from './cgroup/stats.js';
import {
  ExpositionWriter,
  escapeLabelValue,
  header,
  openMetricsHeader,
  sanitizeLabelName,
  type MetricType,
} from './exposition.js';

export interface ContainerMetricsOptions {
  inventory: ContainerSource;
  logger: Logger;
  /** Registry for the agent's own harbormaster_* metrics of this collector. */
  registry?: Registry;
  oom?: OomTracker;
  cgroupRoot: string;
  procRoot: string;
  /** Docker's cgroup version/driver are not needed: paths come from the inventory. */
  minIntervalMs?: number;
  labelAllowlist?: readonly string[];
  /** Group names or family names that are switched off. */
  disabled?: readonly string[];
  includeLoopback?: boolean;
  now?: () => number;
  /** Overrides detection (tests). */
  layout?: CgroupLayout;
  /**
   * Cgroup and /proc files kept open between collections, fixed (tests, benchmarks). Default:
   * `cgroupFileBudget` of src/util/open-files.ts (the open-files limit minus what the agent,
   * log files and HTTP clients may need), followed as the limit and the container count change.
   * 0 opens and closes every file on every read.
   */
  maxOpenFiles?: number;
  /** The HTTP server's connection cap (http.max_connections), kept out of the budget (128). */
  httpConnections?: number;
  /** The soft open-files limit (tests); default: read from /proc/self/limits. */
  openFilesLimit?: () => number | undefined;
  /**
   * Which containers get series (metrics.include_containers / exclude_containers and the
   * harbormaster.metrics.enabled label); the others are not tracked at all: no cgroup reads.
   */
  selection?: ContainerPredicate;
  /** Per-CPU container_cpu_usage_seconds_total{cpu="cpuNN"} (v1 and the root only). */
  perCpu?: boolean;
  /** Sizes of the writable layers (container_fs_* families), measured elsewhere on an interval. */
  fsUsage?: {
    usage(id: string): LayerUsage | undefined;
    filesystem(): FilesystemInfo | undefined;
  };
  /**
   * Limits (cpu/memory/pids spec files) are read again when the inventory reports an update
   * (`docker update`) and at least this often (default 60 s).
   */
  specRefreshMs?: number;
}

/** One container's usage in the latest collection (see ContainerMetrics.usage). */
export interface ContainerUsage {
  id: string;
  /** Cumulative CPU time in seconds. */
  cpuSeconds: number;
  /** Memory working set in bytes. */
  memoryBytes: number;
}

/** Bounded reasons a container is left out of a collection. */
export type SkipReason = 'cgroup_vanished' | 'read_error';

interface Tracked {
  info: ContainerInfo;
  /** The host as cAdvisor's root container (`id="/"`), read from /proc. */
  root: boolean;
  /** cAdvisor `id` label: the cgroup path. */
  cgroupPath: string;
  /** Escaped label pairs shared by every series of this container (UTF-8). */
  labels: Buffer;
  /** `labels` followed by `} `: the usual end of a series' label set. */
  labelsClose: Buffer;
  dirs: CgroupDirs;
  probe: Probe | undefined;
  /** Reads the counters from kept-open files; made with the probe, closed when the run ends. */
  reader: CgroupReader | undefined;
  spec: ContainerSpecValues | undefined;
  specAt: number;
  stats: ContainerStats;
  net: InterfaceStats[];
  /** Network namespace link of the init process (cached per run, refreshed with the spec). */
  netns: string | undefined;
  netDev: KeptFile | undefined;
  ok: boolean;
}

type Group =
  | 'cpu'
  | 'cpu_cfs'
  | 'memory'
  | 'disk_io'
  | 'fs_usage'
  | 'network'
  | 'processes'
  | 'pressure'
  | 'spec'
  | 'misc';

interface ScalarFamily {
  kind: 'scalar';
  name: string;
  type: MetricType;
  help: string;
  group: Group;
  /** Extra label pairs after the container labels, e.g. `,cpu="total"`. */
  suffix?: string;
  /** NaN leaves the container out. */
  value: (t: Tracked, now: number) => number;
  /** Also one series per CPU (`cpu="cpuNN"`) when per-CPU usage is on. */
  perCpu?: boolean;
}
/** A fixed set of series per container, each with its own extra labels. */
interface MultiFamily {
  kind: 'multi';
  name: string;
  type: MetricType;
  help: string;
  group: Group;
  series: ReadonlyArray<{ labels: string; value: (t: Tracked) => number }>;
}
/** Per block device and operation (`device`, `major`, `minor`, `operation`). */
interface DeviceOpFamily {
  kind: 'device_op';
  name: string;
  type: MetricType;
  help: string;
  group: Group;
  ops: ReadonlyArray<{ op: string; value: (d: DeviceIo) => number }>;
}
/** The writable layer on the filesystem of the Docker data root (`device`). */
interface FsFamily {
  kind: 'fs';
  name: string;
  type: MetricType;
  help: string;
  group: Group;
  /** NaN leaves the container out. */
  value: (u: LayerUsage, fs: FilesystemInfo) => number;
}
interface DeviceFamily {
  kind: 'device';
  name: string;
  type: MetricType;
  help: string;
  group: Group;
  value: (d: DeviceIo) => number;
}
interface InterfaceFamily {
  kind: 'interface';
  name: string;
  type: MetricType;
  help: string;
  group: Group;
  value: (i: InterfaceStats) => number;
}
type Family =
  ScalarFamily | DeviceFamily | InterfaceFamily | MultiFamily | DeviceOpFamily | FsFamily;

const hasQuota = (t: Tracked): boolean => (t.spec?.cpuQuota ?? 0) !== 0;

/** Every per-container family, in output order. */
export const CONTAINER_FAMILIES: readonly Family[] = [
  {
    kind: 'scalar',
    name: 'container_cpu_usage_seconds_total',
    type: 'counter',
    help: 'Cumulative cpu time consumed in seconds.',
    group: 'cpu',
    suffix: ',cpu="total"',
    value: (t) => t.stats.cpuTotal,
    perCpu: true,
  },
  {
    kind: 'scalar',
    name: 'container_cpu_user_seconds_total',
    type: 'counter',
    help: 'Cumulative user cpu time consumed in seconds.',
    group: 'cpu',
    value: (t) => t.stats.cpuUser,
  },
  {
    kind: 'scalar',
    name: 'container_cpu_system_seconds_total',
    type: 'counter',
    help: 'Cumulative system cpu time consumed in seconds.',
    group: 'cpu',
    value: (t) => t.stats.cpuSystem,
  },
  {
    kind: 'scalar',
    name: 'container_cpu_cfs_periods_total',
    type: 'counter',
    help: 'Number of elapsed enforcement period intervals.',
    group: 'cpu_cfs',
    value: (t) => (hasQuota(t) ? t.stats.cfsPeriods : NaN),
  },
  {
    kind: 'scalar',
    name: 'container_cpu_cfs_throttled_periods_total',
    type: 'counter',
    help: 'Number of throttled period intervals.',
    group: 'cpu_cfs',
    value: (t) => (hasQuota(t) ? t.stats.cfsThrottledPeriods : NaN),
  },
  {
    kind: 'scalar',
    name: 'container_cpu_cfs_throttled_seconds_total',
    type: 'counter',
    help: 'Total time duration the container has been throttled.',
    group: 'cpu_cfs',
    value: (t) => (hasQuota(t) ? t.stats.cfsThrottledSeconds : NaN),
  },
  {
    kind: 'scalar',
    name: 'container_memory_cache',
    type: 'gauge',
    help: 'Number of bytes of page cache memory.',
    group: 'memory',
    value: (t) => t.stats.memCache,
  },
  {
    kind: 'scalar',
    name: 'container_memory_rss',
    type: 'gauge',
    help: 'Size of RSS in bytes.',
    group: 'memory',
    value: (t) => t.stats.memRss,
  },
  {
    kind: 'scalar',
    name: 'container_memory_mapped_file',
    type: 'gauge',
    help: 'Size of memory mapped files in bytes.',
    group: 'memory',
    value: (t) => t.stats.memMappedFile,
  },
  {
    kind: 'scalar',
    name: 'container_memory_swap',
    type: 'gauge',
    help: 'Container swap usage in bytes.',
    group: 'memory',
    value: (t) => t.stats.memSwap,
  },
  {
    kind: 'scalar',
    name: 'container_memory_failcnt',
    // cAdvisor types this as a counter; a counter without _total fails `promtool check metrics`,
    // so the name stays (dashboards use it) and the type is gauge.
    type: 'gauge',
    help: 'Number of memory usage hits limits',
    group: 'memory',
    value: (t) => t.stats.memFailcnt,
  },
  {
    kind: 'multi',
    name: 'container_memory_failures_total',
    type: 'counter',
    help: 'Cumulative count of memory allocation failures.',
    group: 'memory',
    series: [
      { labels: ',failure_type="pgfault",scope="container"', value: (t) => t.stats.pgfault },
      { labels: ',failure_type="pgfault",scope="hierarchy"', value: (t) => t.stats.hierPgfault },
      { labels: ',failure_type="pgmajfault",scope="container"', value: (t) => t.stats.pgmajfault },
      {
        labels: ',failure_type="pgmajfault",scope="hierarchy"',
        value: (t) => t.stats.hierPgmajfault,
      },
    ],
  },
  {
    kind: 'scalar',
    name: 'container_memory_kernel_usage',
    type: 'gauge',
    help: 'Size of kernel memory allocated in bytes.',
    group: 'memory',
    value: (t) => t.stats.memKernel,
  },
  {
    kind: 'scalar',
    name: 'container_memory_usage_bytes',
    type: 'gauge',
    help: 'Current memory usage in bytes, including all memory regardless of when it was accessed',
    group: 'memory',
    value: (t) => t.stats.memUsage,
  },
  {
    kind: 'scalar',
    name: 'container_memory_max_usage_bytes',
    type: 'gauge',
    help: 'Maximum memory usage recorded in bytes',
    group: 'memory',
    value: (t) => t.stats.memMaxUsage,
  },
  {
    kind: 'scalar',
    name: 'container_memory_working_set_bytes',
    type: 'gauge',
    help: 'Current working set in bytes.',
    group: 'memory',
    value: (t) => t.stats.memWorkingSet,
  },
  {
    kind: 'device',
    name: 'container_fs_reads_bytes_total',
    type: 'counter',
    help: 'Cumulative count of bytes read',
    group: 'disk_io',
    value: (d) => d.readBytes,
  },
  {
    kind: 'device',
    name: 'container_fs_reads_total',
    type: 'counter',
    help: 'Cumulative count of reads completed',
    group: 'disk_io',
    value: (d) => d.reads,
  },
  {
    kind: 'device',
    name: 'container_fs_writes_bytes_total',
    type: 'counter',
    help: 'Cumulative count of bytes written',
    group: 'disk_io',
    value: (d) => d.writeBytes,
  },
  {
    kind: 'device',
    name: 'container_fs_writes_total',
    type: 'counter',
    help: 'Cumulative count of writes completed',
    group: 'disk_io',
    value: (d) => d.writes,
  },
  {
    kind: 'device_op',
    name: 'container_blkio_device_usage_total',
    type: 'counter',
    help: 'Blkio device bytes usage, by operation.',
    group: 'disk_io',
    ops: [
      { op: 'Read', value: (d) => d.readBytes },
      { op: 'Write', value: (d) => d.writeBytes },
    ],
  },
  {
    kind: 'fs',
    name: 'container_fs_usage_bytes',
    type: 'gauge',
    help: 'Number of bytes that are consumed by the container on this filesystem (its writable layer, measured every metrics.fs_interval_seconds).',
    group: 'fs_usage',
    value: (u) => u.bytes,
  },
  {
    kind: 'fs',
    name: 'container_fs_limit_bytes',
    type: 'gauge',
    help: 'Number of bytes that can be consumed by the container on this filesystem (the size of the filesystem holding the Docker data root).',
    group: 'fs_usage',
    value: (_u, fs) => fs.sizeBytes,
  },
  {
    kind: 'fs',
    name: 'container_fs_inodes_total',
    // cAdvisor types this as a gauge; a gauge ending in _total fails `promtool check metrics`,
    // so the name stays (dashboards use it) and the type is counter (the value is a constant).
    type: 'counter',
    help: 'Number of inodes of the filesystem holding the container’s writable layer.',
    group: 'fs_usage',
    value: (_u, fs) => fs.inodesTotal,
  },
  {
    kind: 'fs',
    name: 'container_fs_inodes_free',
    type: 'gauge',
    help: 'Number of available inodes of the filesystem holding the container’s writable layer.',
    group: 'fs_usage',
    value: (_u, fs) => fs.inodesFree,
  },
  {
    kind: 'interface',
    name: 'container_network_receive_bytes_total',
    type: 'counter',
    help: 'Cumulative count of bytes received',
    group: 'network',
    value: (i) => i.rxBytes,
  },
  {
    kind: 'interface',
    name: 'container_network_receive_packets_total',
    type: 'counter',
    help: 'Cumulative count of packets received',
    group: 'network',
    value: (i) => i.rxPackets,
  },
  {
    kind: 'interface',
    name: 'container_network_receive_packets_dropped_total',
    type: 'counter',
    help: 'Cumulative count of packets dropped while receiving',
    group: 'network',
    value: (i) => i.rxDropped,
  },
  {
    kind: 'interface',
    name: 'container_network_receive_errors_total',
    type: 'counter',
    help: 'Cumulative count of errors encountered while receiving',
    group: 'network',
    value: (i) => i.rxErrors,
  },
  {
    kind: 'interface',
    name: 'container_network_transmit_bytes_total',
    type: 'counter',
    help: 'Cumulative count of bytes transmitted',
    group: 'network',
    value: (i) => i.txBytes,
  },
  {
    kind: 'interface',
    name: 'container_network_transmit_packets_total',
    type: 'counter',
    help: 'Cumulative count of packets transmitted',
    group: 'network',
    value: (i) => i.txPackets,
  },
  {
    kind: 'interface',
    name: 'container_network_transmit_packets_dropped_total',
    type: 'counter',
    help: 'Cumulative count of packets dropped while transmitting',
    group: 'network',
    value: (i) => i.txDropped,
  },
  {
    kind: 'interface',
    name: 'container_network_transmit_errors_total',
    type: 'counter',
    help: 'Cumulative count of errors encountered while transmitting',
    group: 'network',
    value: (i) => i.txErrors,
  },
  {
    kind: 'scalar',
    name: 'container_processes',
    type: 'gauge',
    help: 'Number of processes running inside the container.',
    group: 'processes',
    value: (t) => t.stats.processes,
  },
  {
    kind: 'scalar',
    name: 'container_threads',
    type: 'gauge',
    help: 'Number of threads running inside the container',
    group: 'processes',
    value: (t) => (Number.isNaN(t.stats.threadsMax) ? NaN : t.stats.threads),
  },
  {
    kind: 'scalar',
    name: 'container_threads_max',
    type: 'gauge',
    help: 'Maximum number of threads allowed inside the container, infinity if value is zero',
    group: 'processes',
    value: (t) => t.stats.threadsMax,
  },
  {
    kind: 'scalar',
    name: 'container_pressure_cpu_stalled_seconds_total',
    type: 'counter',
    help: 'Total time duration no tasks in the container could make progress due to CPU congestion.',
    group: 'pressure',
    value: (t) => t.stats.psiCpuFull,
  },
  {
    kind: 'scalar',
    name: 'container_pressure_cpu_waiting_seconds_total',
    type: 'counter',
    help: 'Total time duration tasks in the container have waited due to CPU congestion.',
    group: 'pressure',
    value: (t) => t.stats.psiCpuSome,
  },
  {
    kind: 'scalar',
    name: 'container_pressure_memory_stalled_seconds_total',
    type: 'counter',
    help: 'Total time duration no tasks in the container could make progress due to memory congestion.',
    group: 'pressure',
    value: (t) => t.stats.psiMemFull,
  },
  {
    kind: 'scalar',
    name: 'container_pressure_memory_waiting_seconds_total',
    type: 'counter',
    help: 'Total time duration tasks in the container have waited due to memory congestion.',
    group: 'pressure',
    value: (t) => t.stats.psiMemSome,
  },
  {
    kind: 'scalar',
    name: 'container_pressure_io_stalled_seconds_total',
    type: 'counter',
    help: 'Total time duration no tasks in the container could make progress due to IO congestion.',
    group: 'pressure',
    value: (t) => t.stats.psiIoFull,
  },
  {
    kind: 'scalar',
    name: 'container_pressure_io_waiting_seconds_total',
    type: 'counter',
    help: 'Total time duration tasks in the container have waited due to IO congestion.',
    group: 'pressure',
    value: (t) => t.stats.psiIoSome,
  },
  {
    kind: 'scalar',
    name: 'container_spec_cpu_period',
    type: 'gauge',
    help: 'CPU period of the container.',
    group: 'spec',
    value: (t) => t.spec?.cpuPeriod ?? NaN,
  },
  {
    kind: 'scalar',
    name: 'container_spec_cpu_quota',
    type: 'gauge',
    help: 'CPU quota of the container.',
    group: 'spec',
    value: (t) => (hasQuota(t) ? (t.spec?.cpuQuota ?? NaN) : NaN),
  },
  {
    kind: 'scalar',
    name: 'container_spec_cpu_shares',
    type: 'gauge',
    help: 'CPU share of the container.',
    group: 'spec',
    value: (t) => t.spec?.cpuShares ?? NaN,
  },
  {
    kind: 'scalar',
    name: 'container_spec_memory_limit_bytes',
    type: 'gauge',
    help: 'Memory limit for the container.',
    group: 'spec',
    value: (t) => t.spec?.memLimit ?? NaN,
  },
  {
    kind: 'scalar',
    name: 'container_spec_memory_swap_limit_bytes',
    type: 'gauge',
    help: 'Memory swap limit for the container.',
    group: 'spec',
    value: (t) => t.spec?.memSwapLimit ?? NaN,
  },
  {
    kind: 'scalar',
    name: 'container_spec_memory_reservation_limit_bytes',
    type: 'gauge',
    help: 'Memory reservation limit for the container.',
    group: 'spec',
    value: (t) => t.spec?.memReservation ?? NaN,
  },
  {
    kind: 'scalar',
    name: 'container_start_time_seconds',
    type: 'gauge',
    help: 'Start time of the container since unix epoch in seconds.',
    group: 'misc',
    value: (t) => (t.root ? NaN : (t.info.startedAt || t.info.createdAt) / 1000),
  },
  {
    kind: 'scalar',
    name: 'container_last_seen',
    type: 'gauge',
    help: 'Last time a container was seen by the exporter',
    group: 'misc',
    value: (_t, now) => Math.floor(now / 1000),
  },
];

const ACTIVE_STATES = new Set(['running', 'paused']);

/** The identity of cAdvisor's root container: only `id="/"`. */
const ROOT_INFO: ContainerInfo = {
  id: '/',
  name: '',
  image: '',
  imageId: '',
  labels: {},
  state: 'running',
  pid: 1,
  createdAt: 0,
  startedAt: 0,
  finishedAt: 0,
  restartCount: 0,
  exitCode: 0,
  oomKilled: false,
  health: 'none',
  healthFailingStreak: 0,
  networkMode: 'host',
  logDriver: '',
  logPath: '',
  cgroup: { v1: '/', v2: '/' },
  spec: {
    cpuShares: 0,
    cpuPeriod: 0,
    cpuQuota: 0,
    nanoCpus: 0,
    memoryLimit: 0,
    memorySwap: 0,
    memoryReservation: 0,
    pidsLimit: 0,
  },
};

/** Builds the escaped label pairs of a container: id, image, name, then allowlisted labels. */
export function containerLabels(
  info: ContainerInfo,
  cgroupPath: string,
  allowlist: readonly string[],
): string {
  let s = `id="${escapeLabelValue(cgroupPath)}"`;
  if (info.image) s += `,image="${escapeLabelValue(info.image)}"`;
  if (info.name) s += `,name="${escapeLabelValue(info.name)}"`;
  const seen = new Set<string>();
  for (const key of allowlist) {
    const v = info.labels[key];
    if (v === undefined || v === '') continue;
    const ln = 'container_label_' + sanitizeLabelName(key);
    if (seen.has(ln)) continue;
    seen.add(ln);
    s += `,${ln}="${escapeLabelValue(v)}"`;
  }
  return s;
}

/** Header lines of one family in both formats (OpenMetrics: counters without `_total`). */
interface FamilyOut {
  family: Family;
  /** `name{` */
  prefix: Buffer;
  /** `,cpu="total"} ` etc. for scalar families with extra labels. */
  suffixClose: Buffer | undefined;
  /** Extra labels of each series of a multi family, closed. */
  multi: Buffer[] | undefined;
  text: Buffer;
  openMetrics: Buffer;
}

/** One collection's exposition: per family, its sample bytes (headers are added per format). */
interface Rendered {
  at: number;
  families: Array<{ out: FamilyOut; samples: Buffer[] }>;
  bytes: number;
  text?: Buffer[];
  openMetrics?: Buffer[];
  /** Memory blocks holding the samples; recycled once retired and no longer read. */
  blocks: Buffer[];
  /** Readers (responses being written) that have not released the chunks yet. */
  refs: number;
  /** Replaced by a newer collection (or invalidated). */
  retired: boolean;
}

/** Blocks kept for reuse (two collections' worth: one being served while the next renders). */
const POOL_BLOCKS = 2;
/** Block sizes are rounded up to this, so a block fits the next collection of a similar size. */
const BLOCK_ROUNDING = 1 << 20;

export class ContainerMetrics {
  readonly layout: CgroupLayout;
  private readonly inventory: ContainerSource;
  private readonly once: OnceLogger;
  private readonly oom: OomTracker | undefined;
  private readonly procRoot: string;
  private readonly minIntervalMs: number;
  private readonly specRefreshMs: number;
  private allowlist: readonly string[];
  private readonly families: readonly FamilyOut[];
  private readonly groups: ReadGroups;
  private readonly networkOn: boolean;
  private readonly includeLoopback: boolean;
  private readonly now: () => number;
  private readonly budget: OpenFileBudget;
  /** Undefined when maxOpenFiles fixes the budget. */
  private readonly budgetInputs:
    | {
        httpConnections: number;
        limit: () => number | undefined;
        softLimit: number | undefined;
        at: number;
        mutations: number;
      }
    | undefined;
  private readonly tracked = new Map<string, Tracked>();
  private unsubscribe: (() => void) | undefined;
  private last: Rendered | undefined;
  /** Bumped on every inventory change, to detect changes during a collection. */
  private mutations = 0;
  private readonly pool: Buffer[] = [];
  /** Size of the last rendered output: the next one is written into one block of about that. */
  private sizeHint = 1 << 16;
  private inflight: Promise<Rendered> | undefined;
  private hostNetns: string | undefined;
  private devNames = new Map<string, string>();
  private devNamesAt = 0;
  /** `,device="/dev/sda"} ` per `major:minor`, valid for the current devNames. */
  private devLabels = new Map<string, Buffer>();
  private fsDevice: [string, Buffer] | undefined;
  /** `,interface="eth0"} ` per interface name. */
  private readonly ifLabels = new Map<string, Buffer>();
  /** `,device=...,major=...,minor=...,operation="Read"} ` per `major:minor` and operation. */
  private devOpLabels = new Map<string, Buffer[]>();
  /** `,cpu="cpu00"} `... by CPU index. */
  private readonly cpuLabels: Buffer[] = [];
  private readonly selected: ContainerPredicate;
  private readonly perCpu: boolean;
  private readonly fsUsage: ContainerMetricsOptions['fsUsage'];
  /** The host as the root container (`id="/"`); undefined when the `root` group is off. */
  private readonly rootT: Tracked | undefined;
  private readonly m: {
    skipped: Counter<'reason'>;
    collections: Counter;
    duration: Gauge;
    containers: Gauge;
  };

  constructor(opts: ContainerMetricsOptions) {
    this.inventory = opts.inventory;
    this.once = new OnceLogger(opts.logger.child({ component: 'container-metrics' }));
    this.oom = opts.oom;
    this.procRoot = opts.procRoot;
    this.layout = opts.layout ?? detectCgroupLayout(opts.cgroupRoot);
    this.minIntervalMs = opts.minIntervalMs ?? 1000;
    this.specRefreshMs = opts.specRefreshMs ?? 60_000;
    this.allowlist = opts.labelAllowlist ?? [];
    this.includeLoopback = opts.includeLoopback ?? false;
    this.now = opts.now ?? Date.now;
    if (opts.maxOpenFiles !== undefined) {
      this.budget = new OpenFileBudget(opts.maxOpenFiles);
    } else {
      this.budgetInputs = {
        httpConnections: opts.httpConnections ?? 128,
        limit: opts.openFilesLimit ?? (() => softOpenFilesLimit()),
        softLimit: undefined,
        at: -Infinity,
        mutations: -1,
      };
      this.budget = new OpenFileBudget(0); // set at the first collection
    }
    this.selected = opts.selection ?? (() => true);
    this.perCpu = opts.perCpu ?? false;
    this.fsUsage = opts.fsUsage;
    const off = new Set(opts.disabled ?? []);
    const enabled = CONTAINER_FAMILIES.filter((f) => !off.has(f.group) && !off.has(f.name));
    this.families = enabled
      .filter((f) => f.kind !== 'fs' || opts.fsUsage !== undefined)
      .map((f) => ({
        family: f,
        prefix: Buffer.from(f.name + '{'),
        suffixClose: f.kind === 'scalar' && f.suffix ? Buffer.from(f.suffix + '} ') : undefined,
        multi: f.kind === 'multi' ? f.series.map((x) => Buffer.from(x.labels + '} ')) : undefined,
        text: Buffer.from(header(f.name, f.type, f.help)),
        openMetrics: Buffer.from(openMetricsHeader(f.name, f.type, f.help)),
      }));
    const on = (g: Group): boolean => enabled.some((f) => f.group === g);
    this.groups = {
      cpu: on('cpu') || on('cpu_cfs'),
      memory: on('memory'),
      diskIo: on('disk_io'),
      processes: on('processes'),
      pressure: on('pressure'),
      kernel: enabled.some((f) => f.name === 'container_memory_kernel_usage'),
      perCpu: this.perCpu && enabled.some((f) => f.name === 'container_cpu_usage_seconds_total'),
    };
    this.networkOn = on('network');
    const registers = opts.registry ? [opts.registry] : [];
    this.m = {
      skipped: new Counter({
        name: 'harbormaster_cgroup_skipped_total',
        help: 'Containers left out of a metrics collection, by reason (cgroup_vanished: the cgroup disappeared before or while it was read).',
        labelNames: ['reason'],
        registers,
      }),
      collections: new Counter({
        name: 'harbormaster_metrics_collections_total',
        help: 'Container metric collections performed (scrapes within the minimum interval reuse the last one).',
        registers,
      }),
      duration: new Gauge({
        name: 'harbormaster_metrics_collection_duration_seconds',
        help: 'Wall time of the last container metrics collection, rendering included.',
        registers,
      }),
      containers: new Gauge({
        name: 'harbormaster_metrics_containers',
        help: 'Containers with series in the last container metrics collection.',
        registers,
      }),
    };
    for (const r of ['cgroup_vanished', 'read_error'] as const)
      this.m.skipped.inc({ reason: r }, 0);
    if (opts.registry) {
      const mode = new Gauge({
        name: 'harbormaster_cgroup_mode',
        help: 'The cgroup layout detected under cgroup_root (v1, v2 or hybrid), always 1.',
        labelNames: ['mode'],
        registers,
      });
      mode.set({ mode: this.layout.mode }, 1);
    }
    try {
      this.hostNetns = readLink(join(this.procRoot, '1', 'ns', 'net'));
    } catch {
      this.hostNetns = undefined;
    }
    if (!off.has('root')) {
      const labels = Buffer.from(containerLabels(ROOT_INFO, '/', []));
      this.rootT = {
        ...this.newTracked(ROOT_INFO, '/', labels),
        root: true,
        dirs: {},
      };
    }
  }

  private newTracked(info: ContainerInfo, cgroupPath: string, labels: Buffer): Tracked {
    return {
      info,
      root: false,
      cgroupPath,
      labels,
      labelsClose: Buffer.concat([labels, CLOSE]),
      dirs: {},
      probe: undefined,
      reader: undefined,
      spec: undefined,
      specAt: 0,
      stats: emptyStats(),
      net: [],
      netns: undefined,
      netDev: undefined,
      ok: false,
    };
  }

  /** Ids of the containers whose series are collected now (running or paused, selected). */
  *activeIds(): Iterable<string> {
    for (const t of this.tracked.values()) if (ACTIVE_STATES.has(t.info.state)) yield t.info.id;
  }

  /** Starts following the inventory. */
  start(): void {
    if (this.unsubscribe) return;
    this.unsubscribe = this.inventory.subscribe((ev) => {
      this.mutations++;
      if (ev.type === 'removed') {
        const t = this.tracked.get(ev.container.id);
        if (t) closeRun(t);
        this.tracked.delete(ev.container.id);
        this.setLast(undefined);
      } else this.upsert(ev.container);
    });
    for (const c of this.inventory.list()) this.upsert(c);
  }

  /** Stops following the inventory and closes every kept-open file. */
  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    for (const t of this.tracked.values()) closeRun(t);
  }

  /** SIGHUP: a new label allowlist; every container's label block is rebuilt for the next scrape. */
  setLabelAllowlist(allowlist: readonly string[]): void {
    this.allowlist = [...allowlist];
    for (const t of this.tracked.values()) {
      t.labels = Buffer.from(containerLabels(t.info, t.cgroupPath, this.allowlist));
      t.labelsClose = Buffer.concat([t.labels, CLOSE]);
    }
    this.setLast(undefined);
  }

  /** Cgroup and /proc files currently kept open. */
  openFiles(): number {
    return this.budget.open;
  }

  /**
   * The open-file budget and the cgroup and /proc (net/dev) files read per collection: files
   * beyond the budget are opened, read and closed on every collection (several microseconds
   * each instead of one pread).
   */
  fileBudget(): { limit: number; kept: number; cgroupFiles: number; procFiles: number } {
    let cgroupFiles = 0;
    let procFiles = 0;
    for (const t of this.tracked.values()) {
      cgroupFiles += t.reader?.fileCount() ?? 0;
      if (t.netDev) procFiles++;
    }
    return { limit: this.budget.limit, kept: this.budget.open, cgroupFiles, procFiles };
  }

  private upsert(info: ContainerInfo): void {
    const prev = this.tracked.get(info.id);
    if (!this.selected(info)) {
      // excluded (or renamed into an exclude rule): not tracked, nothing read or kept open
      if (prev) {
        closeRun(prev);
        this.tracked.delete(info.id);
        this.setLast(undefined);
      }
      return;
    }
    const cgroupPath = this.layout.mode === 'v2' ? info.cgroup.v2 : info.cgroup.v1;
    const sameRun =
      prev !== undefined &&
      prev.info.startedAt === info.startedAt &&
      prev.cgroupPath === cgroupPath &&
      prev.info.pid === info.pid;
    if (prev && !sameRun) closeRun(prev);
    // the label block is escaped once per identity, not once per series
    const sameLabels =
      prev !== undefined &&
      prev.cgroupPath === cgroupPath &&
      prev.info.name === info.name &&
      prev.info.image === info.image &&
      this.allowlist.every((k) => prev.info.labels[k] === info.labels[k]);
    const labels = sameLabels
      ? prev.labels
      : Buffer.from(containerLabels(info, cgroupPath, this.allowlist));
    const t: Tracked = {
      info,
      root: false,
      cgroupPath,
      labels,
      labelsClose: sameLabels ? prev.labelsClose : Buffer.concat([labels, CLOSE]),
      dirs: sameRun ? prev.dirs : cgroupDirs(this.layout, cgroupPath),
      probe: sameRun ? prev.probe : undefined,
      reader: sameRun ? prev.reader : undefined,
      // limits may change with `docker update` (an inventory update): read them again
      spec: undefined,
      specAt: 0,
      stats: sameRun ? prev.stats : emptyStats(),
      net: [],
      netns: undefined,
      netDev: sameRun ? prev.netDev : undefined,
      ok: false,
    };
    this.tracked.set(info.id, t);
    this.setLast(undefined);
  }

  /** Exposition text, collected at most once per min interval; concurrent callers share it. */
  async render(): Promise<string> {
    const { chunks, release } = await this.renderChunks(false);
    try {
      return Buffer.concat(chunks).toString('utf8');
    } finally {
      release();
    }
  }

  /**
   * The exposition as Buffers (Prometheus text, or OpenMetrics without the final `# EOF`),
   * collected at most once per min interval; concurrent callers share one collection.
   */
  async renderChunks(openMetrics: boolean): Promise<{ chunks: Buffer[]; release: () => void }> {
    const now = this.now();
    let r = this.last;
    if (!r || now - r.at >= this.minIntervalMs) r = await this.collectShared();
    const held = r;
    held.refs++;
    let done = false;
    return {
      chunks: assemble(held, openMetrics),
      release: () => {
        if (done) return;
        done = true;
        held.refs--;
        this.recycle(held);
      },
    };
  }

  private setLast(r: Rendered | undefined): void {
    const prev = this.last;
    this.last = r;
    if (prev && prev !== r) {
      prev.retired = true;
      this.recycle(prev);
    }
  }

  /** Returns the blocks of a retired, unread collection to the pool. */
  private recycle(r: Rendered): void {
    if (!r.retired || r.refs > 0 || r.blocks.length === 0) return;
    // keep the largest blocks: they fit a whole collection
    this.pool.push(...r.blocks);
    this.pool.sort((x, y) => y.length - x.length);
    this.pool.length = Math.min(this.pool.length, POOL_BLOCKS);
    r.blocks = [];
  }

  /** A block for the writer: a recycled one when it is large enough (no page faults). */
  private readonly allocBlock = (size: number): Buffer => {
    for (let i = 0; i < this.pool.length; i++) {
      const b = this.pool[i] as Buffer;
      if (b.length >= size) {
        this.pool.splice(i, 1);
        return b;
      }
    }
    return Buffer.allocUnsafe(Math.ceil(size / BLOCK_ROUNDING) * BLOCK_ROUNDING);
  };

  private collectShared(): Promise<Rendered> {
    this.inflight ??= this.collectNow().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  /**
   * CPU and memory of every container in the latest collection, for the status page. A collection
   * younger than `maxAgeMs` (usually a scrape's) is reused; otherwise one is made now.
   */
  async usage(maxAgeMs: number): Promise<{ at: number; containers: ContainerUsage[] }> {
    let r = this.last;
    if (!r || this.now() - r.at >= Math.max(maxAgeMs, this.minIntervalMs))
      r = await this.collectShared();
    const containers: ContainerUsage[] = [];
    for (const t of this.tracked.values())
      if (t.ok)
        containers.push({
          id: t.info.id,
          cpuSeconds: t.stats.cpuTotal,
          memoryBytes: t.stats.memWorkingSet,
        });
    return { at: r.at, containers };
  }

  /** One full collection (reads every active container and renders its series), now. */
  async collect(): Promise<void> {
    await this.collectShared();
  }

  /** One full collection, as text (kept for callers of the former API). */
  async collectAndRender(): Promise<string> {
    const r = await this.collectShared();
    r.refs++;
    try {
      return Buffer.concat(assemble(r, false)).toString('utf8');
    } finally {
      r.refs--;
      this.recycle(r);
    }
  }

  private deviceName(dev: string): string {
    let n = this.devNames.get(dev);
    if (n === undefined && this.devNamesAt !== this.now()) {
      this.devNamesAt = this.now();
      try {
        this.devNames = parseDiskstats(readText(join(this.procRoot, 'diskstats')));
        this.devLabels = new Map();
        this.devOpLabels = new Map();
      } catch {
        // keep the old map
      }
      n = this.devNames.get(dev);
    }
    return n === undefined ? dev : `/dev/${n}`;
  }

  private deviceLabel(dev: string): Buffer {
    let b = this.devLabels.get(dev);
    if (b === undefined) {
      const name = this.deviceName(dev); // may reset devLabels
      b = Buffer.from(`,device="${escapeLabelValue(name)}"} `);
      if (this.devNames.has(dev)) this.devLabels.set(dev, b);
    }
    return b;
  }

  private fsDeviceLabel(device: string): Buffer {
    if (this.fsDevice?.[0] !== device)
      this.fsDevice = [device, Buffer.from(`,device="${escapeLabelValue(device)}"} `)];
    return this.fsDevice[1];
  }

  private interfaceLabel(name: string): Buffer {
    let b = this.ifLabels.get(name);
    if (b === undefined) {
      b = Buffer.from(`,interface="${escapeLabelValue(name)}"} `);
      if (this.ifLabels.size > 10_000) this.ifLabels.clear();
      this.ifLabels.set(name, b);
    }
    return b;
  }

  private collectOne(t: Tracked, now: number): void {
    try {
      t.probe ??= probe(this.layout, t.dirs);
      if (!t.spec || now - t.specAt >= this.specRefreshMs) {
        t.spec = readSpec(this.layout.mode, t.dirs);
        if (this.groups.processes) readPidsMax(this.layout.mode, t.dirs, t.probe, t.stats);
        t.specAt = now;
        t.netns = undefined;
      }
      t.reader ??= new CgroupReader(this.layout.mode, t.dirs, t.probe, this.groups, this.budget);
      t.reader.read(t.stats);
      t.ok = true;
    } catch (err) {
      t.ok = false;
      closeRun(t);
      t.probe = undefined;
      const reason: SkipReason = isMissing(err) ? 'cgroup_vanished' : 'read_error';
      this.m.skipped.inc({ reason });
      if (reason === 'read_error')
        this.once.warn(
          `read:${(err as NodeJS.ErrnoException).code ?? 'other'}`,
          { err: (err as Error).message, container: t.info.name },
          'Reading a container cgroup failed; the container is left out of this collection.',
        );
      return;
    }
    if (this.oom && !Number.isNaN(t.stats.oomKills)) {
      this.oom.noteCgroup(t.info.id, t.info.startedAt, t.stats.oomKills);
    }
  }

  private collectNetwork(active: Tracked[]): void {
    const owners = new Set<string>();
    // containers with their own namespace mode first, so a joined namespace is credited to its owner
    for (const t of active) {
      t.net = [];
      const mode = t.info.networkMode;
      if (mode === 'host' || mode.startsWith('container:') || t.info.pid <= 0) continue;
      const pidDir = join(this.procRoot, String(t.info.pid));
      try {
        // the init process keeps its namespace: the link is read once per run and spec refresh
        t.netns ??= readLink(join(pidDir, 'ns', 'net'));
        const ns = t.netns;
        if (ns === this.hostNetns || owners.has(ns)) continue;
        owners.add(ns);
        t.netDev ??= new KeptFile(join(pidDir, 'net', 'dev'), this.budget);
        t.net = bufNetDev(t.netDev.read(), this.includeLoopback);
      } catch {
        // the process exited meanwhile: no network series this time
        t.netns = undefined;
        t.netDev?.close();
        t.netDev = undefined;
      }
    }
  }

  private async collectNow(): Promise<Rendered> {
    const started = process.hrtime.bigint();
    const active: Tracked[] = [];
    let i = 0;
    const now0 = this.now();
    const mutations0 = this.mutations;
    this.refreshBudget(now0);
    for (const t of this.tracked.values()) {
      if (!ACTIVE_STATES.has(t.info.state)) {
        // stopped: its cgroup is gone, do not hold its files
        if (t.reader || t.netDev) closeRun(t);
        t.ok = false;
        continue;
      }
      this.collectOne(t, now0);
      if (t.ok) active.push(t);
      if (++i % 250 === 0) await yieldToLoop();
    }
    // The inventory may have changed while we yielded: a container removed (its files were
    // closed) or replaced by a new run must not be reported or have files reopened.
    const changed = this.mutations !== mutations0;
    if (changed) {
      const live = active.filter((t) => this.tracked.get(t.info.id) === t);
      active.length = 0;
      active.push(...live);
    }
    if (this.networkOn) this.collectNetwork(active);
    if (this.budget.open > this.budget.limit) this.trimOpenFiles();
    if (this.rootT) this.collectRoot(this.rootT, active);
    const now = this.now();
    const r = this.renderSamples(active, now);
    this.m.collections.inc();
    this.m.containers.set(active.length);
    this.m.duration.set(Number(process.hrtime.bigint() - started) / 1e9);
    // a collection that raced with inventory changes is served once, not cached
    if (!changed) this.setLast(r);
    return r;
  }

  /** Reads the host's counters into the root container and puts it first. */
  private collectRoot(t: Tracked, active: Tracked[]): void {
    try {
      t.net = readRootStats(this.procRoot, t.stats, {
        perCpu: this.groups.perCpu === true,
        memory: this.groups.memory,
        diskIo: this.groups.diskIo,
        network: this.networkOn,
        loopback: this.includeLoopback,
      });
      active.unshift(t);
      this.once.reset('root');
    } catch (err) {
      this.m.skipped.inc({ reason: isMissing(err) ? 'cgroup_vanished' : 'read_error' });
      this.once.warn(
        'root',
        { err: (err as Error).message, procRoot: this.procRoot },
        'Reading the host counters (/proc/stat) failed; the id="/" series are left out.',
      );
    }
  }

  private cpuLabel(i: number): Buffer {
    let b = this.cpuLabels[i];
    if (b === undefined) {
      b = Buffer.from(`,cpu="cpu${String(i).padStart(2, '0')}"} `);
      this.cpuLabels[i] = b;
    }
    return b;
  }

  /** Label blocks of container_blkio_device_usage_total for one device, one per operation. */
  private deviceOpLabels(dev: string, ops: DeviceOpFamily['ops']): Buffer[] {
    let b = this.devOpLabels.get(dev);
    if (b === undefined) {
      const name = this.deviceName(dev); // may reset devLabels
      const [major = '', minor = ''] = dev.split(':');
      b = ops.map((o) =>
        Buffer.from(
          `,device="${escapeLabelValue(name)}",major="${escapeLabelValue(major)}",minor="${escapeLabelValue(minor)}",operation="${o.op}"} `,
        ),
      );
      if (this.devNames.has(dev)) {
        if (this.devOpLabels.size > 10_000) this.devOpLabels.clear();
        this.devOpLabels.set(dev, b);
      }
    }
    return b;
  }

  /**
   * The open-file budget from the formula, again when the container count changed or every 5 s
   * (the open-files limit can change under a running process: prlimit). Files over a lower
   * budget are closed at the end of the collection.
   */
  private refreshBudget(now: number): void {
    const b = this.budgetInputs;
    if (!b || (b.mutations === this.mutations && now - b.at < 5000)) return;
    if (now - b.at >= 5000) {
      b.softLimit = b.limit();
      b.at = now;
    }
    b.mutations = this.mutations;
    this.budget.set(
      cgroupFileBudget({
        softLimit: b.softLimit,
        httpConnections: b.httpConnections,
        containers: this.inventory.list().length,
      }),
    );
  }

  /** After running out of descriptors: close kept files until the (shrunk) budget holds. */
  private trimOpenFiles(): void {
    for (const t of this.tracked.values()) {
      if (this.budget.open <= this.budget.limit) return;
      closeRun(t);
    }
  }

  private renderSamples(active: Tracked[], now: number): Rendered {
    const w = new ExpositionWriter(this.sizeHint + (this.sizeHint >> 3), this.allocBlock);
    const families: Rendered['families'] = [];
    for (const out of this.families) {
      const f = out.family;
      const { prefix } = out;
      w.begin();
      if (f.kind === 'scalar') {
        const close = out.suffixClose;
        const perCpu = f.perCpu === true && this.groups.perCpu === true;
        for (const t of active) {
          const v = f.value(t, now);
          if (v !== v) continue; // NaN: not available
          if (close) w.series(prefix, t.labels, close, v);
          else w.series2(prefix, t.labelsClose, v);
          const cpus = perCpu ? t.stats.perCpu : undefined;
          if (cpus)
            for (let i = 0; i < cpus.length; i++)
              w.series(prefix, t.labels, this.cpuLabel(i), cpus[i] as number);
        }
      } else if (f.kind === 'multi') {
        const labels = out.multi as Buffer[];
        for (const t of active) {
          for (let i = 0; i < labels.length; i++) {
            const v = (f.series[i] as MultiFamily['series'][number]).value(t);
            if (v === v) w.series(prefix, t.labels, labels[i] as Buffer, v);
          }
        }
      } else if (f.kind === 'device_op') {
        for (const t of active) {
          for (const d of t.stats.devices.values()) {
            const labels = this.deviceOpLabels(d.dev, f.ops);
            for (let i = 0; i < labels.length; i++)
              w.series(
                prefix,
                t.labels,
                labels[i] as Buffer,
                (f.ops[i] as DeviceOpFamily['ops'][number]).value(d),
              );
          }
        }
      } else if (f.kind === 'fs') {
        const fs = this.fsUsage?.filesystem();
        if (fs) {
          const close = this.fsDeviceLabel(fs.device);
          for (const t of active) {
            const u = t.root ? undefined : this.fsUsage?.usage(t.info.id);
            if (!u) continue;
            const v = f.value(u, fs);
            if (v === v) w.series(prefix, t.labels, close, v);
          }
        }
      } else if (f.kind === 'device') {
        for (const t of active) {
          for (const d of t.stats.devices.values()) {
            w.series(prefix, t.labels, this.deviceLabel(d.dev), f.value(d));
          }
        }
      } else {
        for (const t of active) {
          for (const n of t.net) {
            w.series(prefix, t.labels, this.interfaceLabel(n.name), f.value(n));
          }
        }
      }
      const samples = w.end();
      if (samples.length) families.push({ out, samples }); // no samples: no header either
    }
    this.sizeHint = w.total;
    return { at: now, families, bytes: w.total, blocks: w.blocks, refs: 0, retired: false };
  }
}

const CLOSE = Buffer.from('} ');

/** Closes the files a container run keeps open (its cgroup is gone or about to be). */
function closeRun(t: Tracked): void {
  t.reader?.close();
  t.reader = undefined;
  t.netDev?.close();
  t.netDev = undefined;
}

/** The chunks of a rendered collection in one format (cached on the collection). */
function assemble(r: Rendered, openMetrics: boolean): Buffer[] {
  const cached = openMetrics ? r.openMetrics : r.text;
  if (cached) return cached;
  const chunks: Buffer[] = [];
  for (const { out, samples } of r.families) {
    chunks.push(openMetrics ? out.openMetrics : out.text);
    for (const s of samples) chunks.push(s);
  }
  if (openMetrics) r.openMetrics = chunks;
  else r.text = chunks;
  return chunks;
}
