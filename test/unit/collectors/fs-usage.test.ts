import { linkSync, mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { WritableLayers, devNumbers } from '../../../src/collectors/fs-usage.js';
import { silentLogger } from './helpers.js';

const MiB = 1024 * 1024;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A Docker data root with one overlay2 container layer (and its layerdb mount record). */
function dockerRoot(): { root: string; diff: string; id: string } {
  const root = mkdtempSync(join(tmpdir(), 'hm-fs-'));
  dirs.push(root);
  const id = 'ab'.repeat(32);
  const mounts = join(root, 'image/overlay2/layerdb/mounts', id);
  mkdirSync(mounts, { recursive: true });
  writeFileSync(join(mounts, 'mount-id'), 'f00d1234');
  const diff = join(root, 'overlay2/f00d1234/diff');
  mkdirSync(join(diff, 'var/log'), { recursive: true });
  return { root, diff, id };
}

function layers(root: string, ids: string[], registry?: Registry) {
  return new WritableLayers({
    dockerRoot: root,
    procRoot: '/nonexistent-proc',
    logger: silentLogger,
    registry,
    intervalMs: 0,
    budgetMs: 10_000,
    containers: () => ids,
  });
}

describe('writable layer sizes', () => {
  it('adds up allocated blocks of the upper directory, hard links once, and follows removals', async () => {
    const { root, diff, id } = dockerRoot();
    const l = layers(root, [id]);
    await l.refresh();
    const empty = l.usage(id);
    expect(empty?.bytes).toBeLessThan(64 * 1024); // directories only
    writeFileSync(join(diff, 'var/log/big.bin'), Buffer.alloc(4 * MiB, 1));
    linkSync(join(diff, 'var/log/big.bin'), join(diff, 'hardlink.bin'));
    await l.refresh();
    const full = l.usage(id);
    expect((full?.bytes ?? 0) - (empty?.bytes ?? 0)).toBeGreaterThanOrEqual(4 * MiB);
    expect((full?.bytes ?? 0) - (empty?.bytes ?? 0)).toBeLessThan(4.5 * MiB);
    expect(full?.inodes).toBe((empty?.inodes ?? 0) + 1);
    rmSync(join(diff, 'var/log/big.bin'));
    rmSync(join(diff, 'hardlink.bin'));
    await l.refresh();
    expect(l.usage(id)?.bytes).toBe(empty?.bytes);
    // the filesystem figures are the data root's
    const fs = l.filesystem();
    const s = statfsSync(root);
    expect(fs?.sizeBytes).toBe(s.blocks * s.bsize);
    expect(fs?.inodesTotal).toBe(s.files);
    expect(fs?.device).toMatch(/^\d+:\d+$/); // no diskstats here: major:minor
  });

  it('counts containers without a layer and never follows a hostile mount id', async () => {
    const { root, id } = dockerRoot();
    const other = 'cd'.repeat(32);
    const mounts = join(root, 'image/overlay2/layerdb/mounts', other);
    mkdirSync(mounts, { recursive: true });
    writeFileSync(join(mounts, 'mount-id'), '../../..');
    const registry = new Registry();
    const l = layers(root, [id, other, 'ef'.repeat(32)], registry);
    await l.refresh();
    expect(l.usage(id)).toBeDefined();
    expect(l.usage(other)).toBeUndefined();
    const m = await registry.getSingleMetricAsString('harbormaster_fs_usage_skipped_total');
    expect(m).toContain('harbormaster_fs_usage_skipped_total{reason="layer_not_found"} 2');
  });

  it('forgets containers that are no longer asked for', async () => {
    const { root, id } = dockerRoot();
    const ids = [id];
    const l = layers(root, ids);
    await l.refresh();
    expect(l.usage(id)).toBeDefined();
    ids.pop();
    await l.refresh();
    expect(l.usage(id)).toBeUndefined();
  });

  it('decodes dev_t like glibc', () => {
    expect(devNumbers(0x801n)).toBe('8:1');
    expect(devNumbers(0xfe00n)).toBe('254:0');
    expect(devNumbers((259n << 8n) | 3n)).toBe('259:3');
    // makedev(0x1234, 0x5678): the high bits of both numbers live above bit 19 / 31
    const dev = (0x234n << 8n) | (0x1000n << 32n) | 0x78n | (0x5600n << 12n);
    expect(devNumbers(dev)).toBe(`${0x1234}:${0x5678}`);
  });
});
