// Engine API reader cursors in the checkpoint store. They live in the same file as the json-file
// checkpoints (so one atomic write covers both), as entries of the same shape: no device, inode
// or offset, the path `engine-api:<container id>` and the cursor as JSON in `fp` (a changed
// cursor is a changed entry for the store's change detection).
import type { Checkpoint } from './checkpoints.js';
import type { ApiCursor } from './types.js';

const PREFIX = 'engine-api:';

export function apiCheckpoint(containerId: string, cursor: ApiCursor): Checkpoint {
  return {
    path: `${PREFIX}${containerId}`,
    dev: 0,
    ino: 0,
    fp: JSON.stringify(cursor),
    fpLen: 0,
    offset: 0,
  };
}

export function isApiCheckpoint(cp: Checkpoint | undefined): boolean {
  return cp !== undefined && cp.path.startsWith(PREFIX);
}

function streamCursor(v: unknown): { t: string; n: number } | undefined {
  if (v === null || typeof v !== 'object') return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.t !== 'string' || !/^\d{1,25}$/.test(o.t)) return undefined;
  if (typeof o.n !== 'number' || !Number.isInteger(o.n) || o.n < 0) return undefined;
  return { t: o.t, n: o.n };
}

/** The cursor of an API checkpoint entry; undefined for file checkpoints or damaged entries. */
export function cursorFromCheckpoint(cp: Checkpoint | undefined): ApiCursor | undefined {
  if (!cp || !isApiCheckpoint(cp)) return undefined;
  try {
    const v = JSON.parse(cp.fp) as Record<string, unknown>;
    const out: { stdout?: { t: string; n: number }; stderr?: { t: string; n: number } } = {};
    const so = streamCursor(v.stdout);
    const se = streamCursor(v.stderr);
    if (so) out.stdout = so;
    if (se) out.stderr = se;
    return out;
  } catch {
    return undefined;
  }
}
