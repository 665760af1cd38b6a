/**
 * Size of each container's writable layer (cAdvisor's `container_fs_usage_bytes`), measured the
 * way `du` does: the layer's directory under the Docker data root is walked and the allocated
 * blocks of every entry are added up (hard links once). The directory comes from the daemon's own
 * files, no API call: `<docker_root>/image/<driver>/layerdb/mounts/<id>/mount-id` names the layer,
 * found at `<driver>/<mount-id>/diff` (overlay2, fuse-overlayfs), `vfs/dir/<mount-id>` or
 * `btrfs/subvolumes/<mount-id>`.
 *
 * Why it is written this way: a walk costs one lstat per file, far too much for every scrape. So
 * it runs on its own, longer interval (`metrics.fs_interval_seconds`), in slices of at most
 * {@link SLICE_MS} of synchronous work with a yield to the event loop between them (a scrape
 * never waits more than one slice), and stops when the refresh's time budget is spent; the
 * containers it did not reach keep their last size and go first next time. Scrapes only read the
 * cached sizes.
 *
 * The filesystem figures (size, inodes) come from statfs of the data root, its device name from
 * the `major:minor` of the data root looked up in /proc/diskstats.
 */
import { lstatSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { Counter, Gauge, type Registry } from 'prom-client';
import { OnceLogger, type Logger } from '../util/logger.js';
import { parseDiskstats } from './cgroup/read.js';

/** Longest stretch of synchronous walking before the event loop gets a turn. */
export const SLICE_MS = 5;

export interface LayerUsage {
  /** Bytes allocated by the layer's files (st_blocks × 512, hard links once). */
  bytes: number;
  /** Entries (files, directories, links) in the layer. */
  inodes: number;
  /** When the measurement finished (ms since the epoch). */
  at: number;
}

export interface FilesystemInfo {
  /** `/dev/vda1`, or `major:minor` when /proc/diskstats does not list it. */
  device: string;
  sizeBytes: number;
  inodesTotal: number;
  inodesFree: number;
}

export type FsSkipReason = 'layer_not_found' | 'read_error' | 'budget_exhausted';

export interface WritableLayersOptions {
  dockerRoot: string;
  procRoot: string;
  logger: Logger;
  registry?: Registry;
  /** Time between refreshes; 0 disables measuring. */
  intervalMs: number;
  /** Most wall time of one refresh. */
  budgetMs: number;
  /** Ids of the containers to measure (running and selected), asked at each refresh. */
  containers: () => Iterable<string>;
  now?: () => number;
}

const LAYER_DIRS: Record<string, (mountId: string) => string> = {
  overlay2: (m) => join('overlay2', m, 'diff'),
  'fuse-overlayfs': (m) => join('fuse-overlayfs', m, 'diff'),
  vfs: (m) => join('vfs', 'dir', m),
  btrfs: (m) => join('btrfs', 'subvolumes', m),
};

/** Linux dev_t → `major:minor` (glibc's gnu_dev_major / gnu_dev_minor). */
export function devNumbers(dev: bigint): string {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & 0xfffff000n);
  const minor = (dev & 0xffn) | ((dev >> 12n) & 0xffffff00n);
  return `${major}:${minor}`;
}

export class WritableLayers {
  private readonly opts: WritableLayersOptions;
  private readonly once: OnceLogger;
  private readonly now: () => number;
  private readonly sizes = new Map<string, LayerUsage>();
  /** Layer directory per container id ('' = none found yet). */
  private readonly dirs = new Map<string, string>();
  private fsInfo: FilesystemInfo | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly m:
    | {
        refreshes: Counter;
        skipped: Counter<'reason'>;
        duration: Gauge;
        entries: Counter;
      }
    | undefined;

  constructor(opts: WritableLayersOptions) {
    this.opts = opts;
    this.once = new OnceLogger(opts.logger.child({ component: 'fs-usage' }));
    this.now = opts.now ?? Date.now;
    if (opts.registry) {
      const registers = [opts.registry];
      this.m = {
        refreshes: new Counter({
          name: 'harbormaster_fs_usage_refreshes_total',
          help: 'Completed measurements of the containers’ writable layers (container_fs_usage_bytes).',
          registers,
        }),
        skipped: new Counter({
          name: 'harbormaster_fs_usage_skipped_total',
          help: 'Containers whose writable layer was not measured in a refresh, by reason (layer_not_found: no layer directory under docker_root; read_error; budget_exhausted: the refresh ran out of metrics.fs_walk_budget_seconds).',
          labelNames: ['reason'],
          registers,
        }),
        duration: new Gauge({
          name: 'harbormaster_fs_usage_refresh_duration_seconds',
          help: 'Wall time of the last writable-layer refresh (the walk yields to the event loop every few milliseconds).',
          registers,
        }),
        entries: new Counter({
          name: 'harbormaster_fs_usage_entries_walked_total',
          help: 'Files and directories examined by writable-layer refreshes.',
          registers,
        }),
      };
      for (const r of ['layer_not_found', 'read_error', 'budget_exhausted'] as const)
        this.m.skipped.inc({ reason: r }, 0);
    }
  }

  /** The last size of a container's writable layer, if it was measured. */
  usage(id: string): LayerUsage | undefined {
    return this.sizes.get(id);
  }

  /** The filesystem holding the data root (from the last refresh). */
  filesystem(): FilesystemInfo | undefined {
    return this.fsInfo;
  }

  /** Measures now, then every intervalMs. */
  start(): void {
    if (this.opts.intervalMs <= 0 || this.timer || this.stopped) return;
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.opts.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One refresh (concurrent calls share it). */
  refresh(): Promise<void> {
    this.running ??= this.refreshNow().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async refreshNow(): Promise<void> {
    const t0 = performance.now();
    await this.refreshFilesystem();
    const ids = [...this.opts.containers()];
    const want = new Set(ids);
    for (const id of this.sizes.keys()) if (!want.has(id)) this.sizes.delete(id);
    for (const id of this.dirs.keys()) if (!want.has(id)) this.dirs.delete(id);
    // never measured first, then the oldest measurement
    ids.sort((a, b) => (this.sizes.get(a)?.at ?? -1) - (this.sizes.get(b)?.at ?? -1));
    const deadline = t0 + this.opts.budgetMs;
    let sliceEnd = performance.now() + SLICE_MS;
    let walked = 0;
    for (let i = 0; i < ids.length; i++) {
      if (this.stopped) return;
      const id = ids[i] as string;
      const dir = this.layerDir(id);
      if (dir === '') {
        this.m?.skipped.inc({ reason: 'layer_not_found' });
        this.once.warn(
          'not-found',
          { container: id.slice(0, 12), dockerRoot: this.opts.dockerRoot },
          `No writable layer directory found for a container under ${this.opts.dockerRoot}; container_fs_usage_bytes is left out for it. Mount the Docker data root (read-only) and set docker_root to it.`,
        );
        continue;
      }
      // the walk of one layer (the directory itself counts, like du), paused at slice ends
      const stack = [dir];
      const seen = new Set<bigint>();
      let bytes = 0;
      let inodes = 0;
      let failed = false;
      let outOfBudget = false;
      let n = 0;
      while (stack.length > 0) {
        if ((++n & 63) === 0 && performance.now() >= sliceEnd) {
          await yieldToLoop();
          if (this.stopped) return;
          if (performance.now() >= deadline) {
            outOfBudget = true;
            break;
          }
          sliceEnd = performance.now() + SLICE_MS;
        }
        const p = stack.pop() as string;
        try {
          const st = lstatSync(p, { bigint: true });
          walked++;
          const isDir = st.isDirectory();
          if (st.nlink > 1n && !isDir) {
            if (seen.has(st.ino)) continue;
            seen.add(st.ino);
          }
          inodes++;
          bytes += Number(st.blocks) * 512;
          if (isDir) for (const name of readdirSync(p)) stack.push(join(p, name));
        } catch (err) {
          if (p !== dir) continue; // removed between readdir and lstat: not there any more
          failed = true;
          this.dirs.delete(id); // look it up again next time (the container may be gone)
          this.once.warn(
            `walk:${(err as NodeJS.ErrnoException).code ?? 'other'}`,
            { err: (err as Error).message, dir },
            'Reading a writable layer directory failed; its size is left out of this refresh.',
          );
          break;
        }
      }
      if (outOfBudget) {
        this.m?.skipped.inc({ reason: 'budget_exhausted' }, ids.length - i);
        this.once.warn(
          'budget',
          { budgetSeconds: this.opts.budgetMs / 1000, measured: i, containers: ids.length },
          'A writable-layer refresh ran out of its time budget; the containers not reached keep their last size and are measured first next time (raise metrics.fs_walk_budget_seconds).',
        );
        break;
      }
      if (failed) {
        this.m?.skipped.inc({ reason: 'read_error' });
        continue;
      }
      this.sizes.set(id, { bytes, inodes, at: this.now() });
    }
    this.m?.entries.inc(walked);
    this.m?.refreshes.inc();
    this.m?.duration.set((performance.now() - t0) / 1000);
  }

  /** The writable layer directory of a container ('' when there is none). */
  private layerDir(id: string): string {
    const cached = this.dirs.get(id);
    if (cached) return cached;
    const root = this.opts.dockerRoot;
    let drivers: string[];
    try {
      drivers = readdirSync(join(root, 'image'));
    } catch {
      return '';
    }
    for (const driver of drivers) {
      const toDir = LAYER_DIRS[driver];
      if (!toDir) continue;
      try {
        const mountId = readFileSync(
          join(root, 'image', driver, 'layerdb', 'mounts', id, 'mount-id'),
          'latin1',
        ).trim();
        if (!/^[A-Za-z0-9_.-]+$/.test(mountId)) continue; // never leave the driver directory
        const dir = join(root, toDir(mountId));
        if (statSync(dir).isDirectory()) {
          this.dirs.set(id, dir);
          return dir;
        }
      } catch {
        // not this driver
      }
    }
    return '';
  }

  private async refreshFilesystem(): Promise<void> {
    const root = this.opts.dockerRoot;
    try {
      const s = await statfs(root);
      let device = this.fsInfo?.device;
      if (device === undefined) {
        const dev = devNumbers(statSync(root, { bigint: true }).dev);
        let name: string | undefined;
        try {
          name = parseDiskstats(readFileSync(join(this.opts.procRoot, 'diskstats'), 'latin1')).get(
            dev,
          );
        } catch {
          // no diskstats: keep major:minor
        }
        device = name ? `/dev/${name}` : dev;
      }
      this.fsInfo = {
        device,
        sizeBytes: s.blocks * s.bsize,
        inodesTotal: s.files,
        inodesFree: s.ffree,
      };
      this.once.reset('statfs');
    } catch (err) {
      this.fsInfo = undefined;
      this.once.warn(
        'statfs',
        { err: (err as Error).message, path: root },
        `Cannot measure the filesystem of the Docker data root ${root}; container_fs_limit_bytes and the inode families are left out.`,
      );
    }
  }
}
