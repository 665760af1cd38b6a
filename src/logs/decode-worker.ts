// The decode thread's worker (see decode-thread.ts): reads a tailer's chunk and turns its leading
// whole lines into runs of encoded lines, exactly as Tailer.lineAt/decodedLine/toRun would with
// the same checks, in slabs of shared memory. It stops at the first line it does not make a run
// line of; the tailer goes on from there.
import { readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import type { ByteCheckSpec, FromWorker, ToWorker } from './decode-thread.js';
import {
  configureSlabs,
  decodeJsonFileLineInto,
  decodedBytes,
  holdSlabRun,
  releaseSlabRun,
  slabEndAt,
} from './jsonfile.js';
import { autoMayParse } from './processing/body.js';
import { ByteLiterals } from './processing/redact.js';
import { TRAILER_BYTES, frameLine, headerBytes } from './run.js';

const port = parentPort;
if (!port) throw new Error('decode-worker.ts runs as a worker thread');

const slabIds = new Map<Buffer, number>();
const slabsById = new Map<number, Buffer>();
let nextSlabId = 0;
let fresh: (number | SharedArrayBuffer)[] = [];
let dropped: number[] = [];
configureSlabs({
  alloc: (n) => Buffer.from(new SharedArrayBuffer(n)),
  dropped: (b) => {
    const id = slabIds.get(b);
    if (id === undefined) return;
    slabIds.delete(b);
    slabsById.delete(id);
    dropped.push(id);
  },
});

function slabId(b: Buffer): number {
  let id = slabIds.get(b);
  if (id === undefined) {
    id = ++nextSlabId;
    slabIds.set(b, id);
    slabsById.set(id, b);
    fresh.push(id, b.buffer as SharedArrayBuffer);
  }
  return id;
}

type Check = (b: Buffer, start: number, end: number) => boolean;
const checks = new Map<number, Check>();
/** processor.ts passesBytes for these settings: parser auto's look, then the literals. */
function checkOf(spec: ByteCheckSpec): Check {
  const lits = spec.literals.length > 0 ? new ByteLiterals(spec.literals) : undefined;
  const auto = spec.auto;
  return (b, s, e) => !(auto && autoMayParse(b, s, e)) && !(lits && lits.test(b, s, e));
}

const bufs = new Map<number, Buffer>();
const d = decodedBytes();

function read(m: Extract<ToWorker, { op: 'read' }>): FromWorker {
  if (m.bufSab) bufs.set(m.buf, Buffer.from(m.bufSab));
  if (m.checksSpec) checks.set(m.checks, checkOf(m.checksSpec));
  const buf = bufs.get(m.buf)!;
  const passes = checks.get(m.checks)!;
  const out: FromWorker = {
    id: m.id,
    bytesRead: 0,
    stop: 0,
    whole: false,
    runs: [],
    lastHeader: m.reserve,
    lastLen: m.lastLen,
    outLines: 0,
    outBytes: 0,
    errLines: 0,
    errBytes: 0,
    firstMs: -1,
    slabs: [],
    dropped: [],
  };
  let n: number;
  try {
    n = readSync(m.fd, buf, 0, m.len, m.pos);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    out.error = { message: e.message, ...(e.code !== undefined ? { code: e.code } : {}) };
    return out;
  }
  out.bytesRead = n;
  const chunk = buf.subarray(0, n);
  const runs = out.runs;
  let reserve = m.reserve;
  let lastLen = m.lastLen;
  let i = 0;
  let runSrc: Buffer | undefined;
  let runView: DataView | undefined;
  let runStart = 0;
  let runEnd = 0;
  let runLines = 0;
  let runOffset = 0;
  const close = (): void => {
    if (runLines === 0) return;
    runs.push(slabId(runSrc!), runStart, runEnd, runLines, runOffset);
    runLines = 0;
  };
  for (;;) {
    // Tailer.lineAt: the record's end found by the decoder, room sized like the last header.
    if (!decodeJsonFileLineInto(chunk, i, -1, d, reserve, TRAILER_BYTES, lastLen * 2 + 128)) break;
    // Tailer.decodedLine: only a line the tailer would make a run line of (no fragment; nothing
    // pending is known here: the tailer asks only when no line is being reassembled).
    if (
      !d.framed ||
      !d.complete ||
      d.attrs !== undefined ||
      d.end - d.start > m.maxLineBytes ||
      !passes(d.src, d.start, d.end)
    )
      break;
    const e = d.recordEnd;
    lastLen = e - i;
    if (d.stream === 'stdout') {
      out.outLines++;
      out.outBytes += e - i + 1;
    } else {
      out.errLines++;
      out.errBytes += e - i + 1;
    }
    if (out.firstMs < 0) out.firstMs = d.timeSec * 1000 + d.timeNanos / 1e6;
    // Tailer.toRun
    const src = d.src;
    const bl = d.end - d.start;
    const h = headerBytes(bl);
    const at = d.start - reserve;
    const recEnd = at + h + bl + TRAILER_BYTES;
    if (h !== reserve) {
      src.copyWithin(at + h, d.start, d.end);
      slabEndAt(src, recEnd);
    }
    reserve = h;
    if (
      runLines > 0 &&
      (src !== runSrc || at !== runEnd || runLines >= m.maxLines || recEnd - runStart > m.maxBytes)
    )
      close();
    if (runLines === 0) {
      if (src !== runSrc) {
        runSrc = src;
        runView = new DataView(src.buffer, src.byteOffset, src.length);
      }
      runStart = at;
      holdSlabRun(src);
    }
    runEnd = frameLine(src, runView!, at, bl, d.stream, d.timeSec, d.timeNanos, m.obsLo, m.obsHi);
    runLines++;
    runOffset = e + 1;
    i = e + 1;
  }
  close();
  out.stop = i;
  out.whole = chunk.indexOf(10, i) < 0;
  out.lastHeader = reserve;
  out.lastLen = lastLen;
  return out;
}

port.on('message', (m: ToWorker) => {
  if (m.op === 'release') {
    for (const id of m.ids) {
      const b = slabsById.get(id);
      if (b) releaseSlabRun(b);
    }
    return;
  }
  const out = read(m);
  out.slabs = fresh;
  out.dropped = dropped;
  fresh = [];
  dropped = [];
  port.postMessage(out);
});
// Running: the main thread's DecodeThread.ready.
port.postMessage({ id: 0 });
