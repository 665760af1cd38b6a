import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import type {
  ContainerInfo,
  ContainerSource,
  InventoryListener,
} from '../../../src/docker/types.js';
import { containerCgroupPath } from '../../../src/docker/cgroup-path.js';

export const FIXTURES = fileURLToPath(new URL('../../fixtures/cgroup/', import.meta.url));
export const FIXTURE_ID = 'c0ffee00'.repeat(8);
export const FIXTURE_PID = 4242;

export const silentLogger = pino({ level: 'silent' });

export function containerInfo(
  over: Partial<ContainerInfo> & { driver?: string } = {},
): ContainerInfo {
  const { driver = 'cgroupfs', ...rest } = over;
  const id = rest.id ?? FIXTURE_ID;
  const path = containerCgroupPath(id, driver);
  return {
    id,
    name: 'web-1',
    image: 'nginx:1.27',
    imageId: 'sha256:' + 'ab'.repeat(32),
    labels: {
      'com.docker.compose.project': 'shop',
      'com.docker.compose.service': 'web',
      'not.allowlisted': 'secret',
    },
    state: 'running',
    pid: FIXTURE_PID,
    createdAt: Date.UTC(2025, 0, 2, 3, 4, 5),
    startedAt: Date.UTC(2025, 0, 2, 3, 4, 6),
    finishedAt: 0,
    restartCount: 0,
    exitCode: 0,
    oomKilled: false,
    health: 'none',
    healthFailingStreak: 0,
    networkMode: 'bridge',
    logDriver: 'json-file',
    logPath: '',
    cgroup: { v1: path, v2: path },
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
    ...rest,
  };
}

/** An in-memory ContainerSource (the inventory's read side) fed by the test. */
export class StaticSource implements ContainerSource {
  private readonly items = new Map<string, ContainerInfo>();
  private readonly listeners = new Set<InventoryListener>();
  constructor(list: ContainerInfo[] = []) {
    for (const c of list) this.items.set(c.id, c);
  }
  list(): ContainerInfo[] {
    return [...this.items.values()];
  }
  get(id: string): ContainerInfo | undefined {
    return this.items.get(id);
  }
  subscribe(l: InventoryListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  onDockerEvent(): () => void {
    return () => undefined;
  }
  ready(): boolean {
    return true;
  }
  set(c: ContainerInfo): void {
    const prev = this.items.get(c.id);
    this.items.set(c.id, c);
    for (const l of this.listeners)
      l(prev ? { type: 'updated', container: c, previous: prev } : { type: 'added', container: c });
  }
  remove(id: string): void {
    const c = this.items.get(id);
    if (!c) return;
    this.items.delete(id);
    for (const l of this.listeners) l({ type: 'removed', container: c });
  }
}

/** Runs `promtool check metrics` on text; returns its combined output and exit status. */
export function promtoolCheck(text: string): { code: number; output: string } {
  try {
    const out = execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    return { code: 0, output: out };
  } catch (e) {
    const err = e as { status?: number; stdout?: string; stderr?: string };
    return { code: err.status ?? 1, output: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}
