/**
 * Daemon-wide metrics (`docker_engine_*`): engine info, containers by state (from the inventory),
 * image/volume/network counts (GET /info, /volumes, /networks on an interval) and, on a slow
 * interval because the daemon walks every layer for it, the disk usage of `docker system df`
 * (GET /system/df). Only GET requests are made.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ApiInfo } from '../docker/api-types.js';
import { DockerError, type DockerClient } from '../docker/client.js';
import type { EngineInfo } from '../docker/inventory.js';
import { CONTAINER_STATES, type ContainerSource } from '../docker/types.js';
import { OnceLogger, type Logger } from '../util/logger.js';

export interface EngineMetricsOptions {
  docker: Pick<DockerClient, 'get'>;
  inventory: ContainerSource & { engine(): EngineInfo | undefined };
  registry: Registry;
  logger: Logger;
  countsIntervalMs: number;
  /** 0 disables /system/df. */
  diskUsageIntervalMs: number;
  disabled?: readonly string[];
}

interface SystemDf {
  LayersSize?: number;
  Images?: Array<{ Size?: number; SharedSize?: number; Containers?: number }> | null;
  Containers?: Array<{ SizeRw?: number; State?: string }> | null;
  Volumes?: Array<{ UsageData?: { Size?: number; RefCount?: number } | null }> | null;
  BuildCache?: Array<{ Size?: number; InUse?: boolean; Shared?: boolean }> | null;
}

export class EngineMetrics {
  private readonly opts: EngineMetricsOptions;
  private readonly once: OnceLogger;
  private timers: NodeJS.Timeout[] = [];
  private controller = new AbortController();
  private counts: { images?: number; volumes?: number; networks?: number } = {};
  private df: SystemDf | undefined;
  private readonly errors: Counter<'request'>;

  constructor(opts: EngineMetricsOptions) {
    this.opts = opts;
    this.once = new OnceLogger(opts.logger.child({ component: 'engine-metrics' }));
    const off = new Set(opts.disabled ?? []);
    const on = (name: string, group = 'engine'): boolean => !off.has(group) && !off.has(name);
    const registers = [opts.registry];
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    this.errors = new Counter({
      name: 'harbormaster_engine_metrics_errors_total',
      help: 'Failed Docker API requests of the engine metrics, by request.',
      labelNames: ['request'],
      registers,
    });
    if (on('docker_engine_info')) {
      new Gauge({
        name: 'docker_engine_info',
        help: 'Docker engine facts as labels (always 1): version, API version, storage driver, cgroup driver and version.',
        labelNames: [
          'version',
          'api_version',
          'storage_driver',
          'cgroup_driver',
          'cgroup_version',
          'operating_system',
          'kernel_version',
        ],
        registers,
        collect() {
          this.reset();
          const e = opts.inventory.engine();
          if (!e) return;
          this.set(
            {
              version: e.serverVersion,
              api_version: e.apiVersion,
              storage_driver: e.storageDriver,
              cgroup_driver: e.cgroupDriver,
              cgroup_version: e.cgroupVersion,
              operating_system: e.info.OperatingSystem ?? '',
              kernel_version: e.info.KernelVersion ?? '',
            },
            1,
          );
        },
      });
    }
    if (on('docker_engine_containers')) {
      new Gauge({
        name: 'docker_engine_containers',
        help: 'Containers known to the engine, by state.',
        labelNames: ['state'],
        registers,
        collect() {
          const n: Record<string, number> = {};
          for (const s of CONTAINER_STATES) n[s] = 0;
          for (const c of opts.inventory.list()) n[c.state] = (n[c.state] ?? 0) + 1;
          for (const [state, v] of Object.entries(n)) this.set({ state }, v);
        },
      });
    }
    const countGauge = (key: 'images' | 'volumes' | 'networks', help: string): void => {
      const name = `docker_engine_${key}`;
      if (!on(name)) return;
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const v = self.counts[key];
          if (v === undefined) this.reset();
          else this.set(v);
        },
      });
    };
    countGauge('images', 'Images stored by the engine (as /info reports them).');
    countGauge('volumes', 'Volumes known to the engine.');
    countGauge('networks', 'Networks known to the engine.');
    if (on('docker_engine_disk_usage_bytes', 'engine_disk_usage') && !off.has('engine')) {
      new Gauge({
        name: 'docker_engine_disk_usage_bytes',
        help: 'Disk space used by the engine, by type (images, containers, volumes, build_cache), as `docker system df` reports it.',
        labelNames: ['type'],
        registers,
        collect() {
          this.reset();
          const df = self.df;
          if (!df) return;
          const sum = <T>(xs: T[] | null | undefined, f: (x: T) => number): number =>
            (xs ?? []).reduce((a, x) => a + Math.max(0, f(x) || 0), 0);
          this.set({ type: 'images' }, df.LayersSize ?? 0);
          this.set(
            { type: 'containers' },
            sum(df.Containers, (c) => c.SizeRw ?? 0),
          );
          this.set(
            { type: 'volumes' },
            sum(df.Volumes, (v) => v.UsageData?.Size ?? 0),
          );
          this.set(
            { type: 'build_cache' },
            sum(df.BuildCache, (b) => (b.Shared ? 0 : (b.Size ?? 0))),
          );
        },
      });
    }
  }

  start(): void {
    const { countsIntervalMs, diskUsageIntervalMs, disabled = [] } = this.opts;
    const off = new Set(disabled);
    if (!off.has('engine')) {
      void this.refreshCounts();
      if (countsIntervalMs > 0) this.every(countsIntervalMs, () => this.refreshCounts());
      if (diskUsageIntervalMs > 0 && !off.has('engine_disk_usage')) {
        void this.refreshDf();
        this.every(diskUsageIntervalMs, () => this.refreshDf());
      }
    }
  }

  stop(): void {
    this.controller.abort();
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }

  private every(ms: number, fn: () => Promise<void>): void {
    const t = setInterval(() => void fn(), ms);
    t.unref();
    this.timers.push(t);
  }

  private async fetch<T>(request: string, path: string): Promise<T | undefined> {
    try {
      return await this.opts.docker.get<T>(path, undefined, this.controller.signal);
    } catch (err) {
      if (this.controller.signal.aborted) return undefined;
      this.errors.inc({ request });
      const msg = err instanceof Error ? err.message : String(err);
      this.once.warn(
        `get:${request}:${err instanceof DockerError ? err.reason : 'other'}`,
        { err: msg, path },
        `Fetching ${path} for the engine metrics failed: ${msg}. Retrying at the next interval.`,
      );
      return undefined;
    }
  }

  async refreshCounts(): Promise<void> {
    const [info, vols, nets] = await Promise.all([
      this.fetch<ApiInfo>('info', '/info'),
      this.fetch<{ Volumes?: unknown[] | null }>('volumes', '/volumes'),
      this.fetch<unknown[]>('networks', '/networks'),
    ]);
    if (info?.Images !== undefined) this.counts.images = info.Images;
    if (vols) this.counts.volumes = vols.Volumes?.length ?? 0;
    if (Array.isArray(nets)) this.counts.networks = nets.length;
  }

  async refreshDf(): Promise<void> {
    const df = await this.fetch<SystemDf>('system_df', '/system/df');
    if (df) this.df = df;
  }
}
