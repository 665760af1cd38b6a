import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { expect } from 'vitest';
import type {
  ContainerInfo,
  ContainerSource,
  InventoryListener,
} from '../../../src/docker/types.js';
import { makeContainerInfo } from '../../support/container-info.js';

export const FIXTURES = fileURLToPath(new URL('../../fixtures/cgroup/', import.meta.url));
export const FIXTURE_ID = 'c0ffee00'.repeat(8);
export const FIXTURE_PID = 4242;

export const silentLogger = pino({ level: 'silent' });

export function containerInfo(
  over: Partial<ContainerInfo> & { driver?: string } = {},
): ContainerInfo {
  return makeContainerInfo({
    id: FIXTURE_ID,
    name: 'web-1',
    image: 'nginx:1.27',
    labels: {
      'com.docker.compose.project': 'shop',
      'com.docker.compose.service': 'web',
      'not.allowlisted': 'secret',
    },
    pid: FIXTURE_PID,
    createdAt: Date.UTC(2025, 0, 2, 3, 4, 5),
    startedAt: Date.UTC(2025, 0, 2, 3, 4, 6),
    ...over,
  });
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

/**
 * Compares text with a golden file. Goldens are written only on request and never under CI
 * (`UPDATE_GOLDEN=1 npx vitest run --project unit test/unit/collectors/containers.test.ts`, then
 * review the diff); a missing golden is a failure, so deleting one cannot make a test pass.
 */
export function expectGolden(file: string, text: string): void {
  if (process.env.UPDATE_GOLDEN && !process.env.CI) writeFileSync(file, text);
  if (!existsSync(file)) {
    throw new Error(
      `golden file ${file} is missing: create it with UPDATE_GOLDEN=1 (outside CI) and review it`,
    );
  }
  expect(text).toBe(readFileSync(file, 'utf8'));
}
