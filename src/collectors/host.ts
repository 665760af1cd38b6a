/**
 * Host facts: `machine_info` (OS, kernel, architecture, CPU count, total memory as labels, from
 * systeminformation), cAdvisor's `machine_cpu_cores` / `machine_memory_bytes`, and the free and
 * total size of the filesystem that holds Docker's data root (statfs of `docker_root`, refreshed
 * on an interval).
 */
import { statfs } from 'node:fs/promises';
import { Gauge, type Registry } from 'prom-client';
import si from 'systeminformation';
import { OnceLogger, type Logger } from '../util/logger.js';

export interface HostMetricsOptions {
  registry: Registry;
  logger: Logger;
  dockerRoot: string;
  intervalMs: number;
  disabled?: readonly string[];
}

interface HostFacts {
  os: string;
  osVersion: string;
  kernel: string;
  arch: string;
  hostname: string;
  cpus: number;
  memory: number;
}

export class HostMetrics {
  private readonly opts: HostMetricsOptions;
  private readonly once: OnceLogger;
  private facts: HostFacts | undefined;
  private fs: { free: number; size: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly enabled: boolean;

  constructor(opts: HostMetricsOptions) {
    this.opts = opts;
    this.once = new OnceLogger(opts.logger.child({ component: 'host-metrics' }));
    const off = new Set(opts.disabled ?? []);
    this.enabled = !off.has('host');
    if (!this.enabled) return;
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    const registers = [opts.registry];
    new Gauge({
      name: 'machine_info',
      help: 'Facts about the host as labels (always 1): OS, kernel, architecture, CPU count and total memory.',
      labelNames: [
        'os',
        'os_version',
        'kernel_version',
        'architecture',
        'hostname',
        'cpus',
        'memory_bytes',
      ],
      registers,
      collect() {
        this.reset();
        const f = self.facts;
        if (!f) return;
        this.set(
          {
            os: f.os,
            os_version: f.osVersion,
            kernel_version: f.kernel,
            architecture: f.arch,
            hostname: f.hostname,
            cpus: String(f.cpus),
            memory_bytes: String(f.memory),
          },
          1,
        );
      },
    });
    new Gauge({
      name: 'machine_cpu_cores',
      help: 'Number of logical CPU cores on the machine.',
      registers,
      collect() {
        if (self.facts) this.set(self.facts.cpus);
      },
    });
    new Gauge({
      name: 'machine_memory_bytes',
      help: 'Amount of memory installed on the machine.',
      registers,
      collect() {
        if (self.facts) this.set(self.facts.memory);
      },
    });
    new Gauge({
      name: 'docker_engine_data_root_free_bytes',
      help: "Space available to unprivileged users on the filesystem holding Docker's data root.",
      labelNames: ['path'],
      registers,
      collect() {
        this.reset();
        if (self.fs) this.set({ path: opts.dockerRoot }, self.fs.free);
      },
    });
    new Gauge({
      name: 'docker_engine_data_root_size_bytes',
      help: "Total size of the filesystem holding Docker's data root.",
      labelNames: ['path'],
      registers,
      collect() {
        this.reset();
        if (self.fs) this.set({ path: opts.dockerRoot }, self.fs.size);
      },
    });
  }

  async start(): Promise<void> {
    if (!this.enabled) return;
    try {
      const [os, mem, cpu] = await Promise.all([si.osInfo(), si.mem(), si.cpu()]);
      this.facts = {
        os: os.distro || os.platform,
        osVersion: os.release,
        kernel: os.kernel,
        arch: os.arch,
        hostname: os.hostname,
        cpus: cpu.cores,
        memory: mem.total,
      };
    } catch (err) {
      this.once.warn(
        'facts',
        { err: (err as Error).message },
        'Reading host facts failed; machine_* metrics are left out.',
      );
    }
    await this.refreshFs();
    if (this.opts.intervalMs > 0) {
      this.timer = setInterval(() => void this.refreshFs(), this.opts.intervalMs);
      this.timer.unref();
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private async refreshFs(): Promise<void> {
    try {
      const s = await statfs(this.opts.dockerRoot);
      this.fs = { free: s.bavail * s.bsize, size: s.blocks * s.bsize };
      this.once.reset('statfs');
    } catch (err) {
      this.fs = undefined;
      this.once.warn(
        'statfs',
        { err: (err as Error).message, path: this.opts.dockerRoot },
        `Cannot measure the filesystem of the Docker data root ${this.opts.dockerRoot}; set docker_root to where it is visible to the agent.`,
      );
    }
  }
}
