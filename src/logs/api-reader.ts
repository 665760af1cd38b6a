// Reads a container's logs through the Engine API logs stream (GET /containers/{id}/logs with
// follow, timestamps and since). Used for drivers the agent cannot tail as files (local,
// journald, and any driver served by Docker's dual-logging cache) and for every container when
// the daemon is remote (tcp://).
//
// Stream format: without a TTY every message is one frame with an 8-byte header
// [stream (1 stdout, 2 stderr), 0, 0, 0, uint32 big-endian length]; with a TTY the body is raw
// text (stdout only). With timestamps=1 each message starts with an RFC 3339 timestamp with
// nanoseconds and a space. A message the daemon recorded as partial (the 16 KiB split of long
// lines, kept by json-file, local and journald) arrives as a frame without the trailing "\n":
// consecutive partial frames of a stream are joined until a frame ends with "\n".
//
// Cursor: per stream, the timestamp (ns) of the last frame consumed and how many frames with
// exactly that timestamp were consumed. Resuming sends since=<earliest stream's timestamp> (the
// daemon treats since as inclusive) and skips frames at or before the cursor, so the boundary
// record is not delivered twice. Frames with the same nanosecond timestamp are told apart by
// their count. Limits (documented): a stream whose timestamps go backwards (wall clock stepped
// back) may lose those lines on resume; with a TTY, partial messages cannot be recognised.
//
// Acknowledgement: each record handed on gets a token from the reader's AckTracker holding the
// cursor after it; the tracker commits the longest unbroken acknowledged run (onCommit). Partial
// messages are joined by the shared PartialLines module (src/logs/partial.ts).
import http from 'node:http';
import https from 'node:https';
import type { DockerClient, DockerEndpoint } from '../docker/client.js';
import { sleep } from '../util/sleep.js';
import { AckTracker, acknowledge, type AckToken } from './ack.js';
import type { ApiCursor, StreamCursor } from './checkpoints.js';
import { PartialLines, type CompletedLine } from './partial.js';

export type { StreamCursor } from './checkpoints.js';

/** Where a container's API log stream has been delivered up to; persist it as JSON. */
export type ApiLogCursor = ApiCursor;

export interface ApiLogRecord {
  /** The message without its timestamp and trailing newline (partial frames joined). */
  body: Buffer;
  stream: 'stdout' | 'stderr';
  timeUnixNano: bigint;
  /** Cut at maxLineBytes. */
  truncated?: boolean;
  /** The cursor once this record is delivered. */
  cursor: ApiLogCursor;
  /** Acknowledge this record alone (the batch's ack() acknowledges all of them). */
  ack: AckToken;
}

export type ApiReadEnd =
  /** The daemon ended the stream (container stopped). Start a new reader when it runs again. */
  | 'ended'
  /** The signal was aborted. */
  | 'aborted'
  /** The container does not exist (404). */
  | 'gone';

export interface ApiLogReaderOptions {
  /** The endpoint fields and API version of this client are used (it is only read). */
  client: Pick<DockerClient, 'endpoint' | 'apiVersion' | 'get'>;
  containerId: string;
  /** Whether the container has a TTY; undefined: inspected before the first request. */
  tty?: boolean;
  /** Where to resume (a persisted cursor); undefined reads the container's whole log. */
  cursor?: ApiLogCursor;
  /**
   * Receives records in stream order. Returning a promise pauses reading until it settles
   * (backpressure). Call ack() once the batch is delivered: the committed cursor then moves past
   * it (acks may come out of order; the cursor only moves over contiguous acked batches).
   */
  onRecords(batch: ApiLogRecord[], ack: () => void): void | Promise<void>;
  /** Called after the committed cursor moved (persist it here). */
  onCommit?(cursor: ApiLogCursor): void;
  /** Longest record; longer messages are cut and flagged. Default 1 MiB. */
  maxLineBytes?: number;
  /** A partial message whose continuation does not come within this is emitted. Default 5000. */
  partialFlushMs?: number;
  /** Most records in one onRecords call. Default 1024. */
  batchMaxRecords?: number;
  /** Keep following (default true); false reads what is there and ends. */
  follow?: boolean;
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** Hot-path problems (counted by the caller; never thrown). */
  onProblem?(reason: ApiReadProblem, message: string): void;
  /** Bytes of partial messages held grew or shrank by delta (the queue's memory bound). */
  hold?(delta: number): void;
  clock?: () => number;
}

export type ApiReadProblem = 'request_failed' | 'bad_frame' | 'bad_timestamp' | 'line_truncated';

/** Which reader a container's logs need. */
export function logSourceFor(
  c: { logDriver: string; logPath?: string },
  endpoint: Pick<DockerEndpoint, 'socketPath'>,
  mode: 'auto' | 'file' | 'api' = 'auto',
): 'file' | 'api' | 'none' {
  if (c.logDriver === 'none') return 'none';
  if (mode === 'api') return 'api';
  if (c.logDriver === 'json-file' && (mode === 'file' || endpoint.socketPath)) {
    // Docker sets LogPath at the start: a container known only from its create event has none
    // yet. Its file is tailed once the start is seen, never streamed meanwhile (that would ship
    // its lines twice, once per source).
    return c.logPath === '' ? 'none' : 'file';
  }
  // local, journald, and (Docker ≥ 20.10 dual logging) any other driver; everything when remote.
  return 'api';
}

const TS_RE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/;

/** RFC 3339 with up to 9 fractional digits → ns since the epoch, or undefined. */
export function parseDockerTimestamp(s: string): bigint | undefined {
  const m = TS_RE.exec(s);
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (!Number.isFinite(ms)) return undefined;
  const frac = (m[2] ?? '').padEnd(9, '0');
  return BigInt(ms) * 1_000_000n + BigInt(frac);
}

/** since= value for a ns timestamp: "<seconds>.<9 digits>". */
export function sinceParam(ns: bigint): string {
  const sec = ns / 1_000_000_000n;
  const frac = ns % 1_000_000_000n;
  return `${sec}.${frac.toString().padStart(9, '0')}`;
}

export function compareCursor(a: StreamCursor | undefined, t: bigint): number {
  if (!a) return -1;
  const at = BigInt(a.t);
  return at < t ? -1 : at > t ? 1 : 0;
}

/** Splits a multiplexed stream into frames; keeps the incomplete tail. */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0);
  constructor(private readonly maxFrameBytes: number) {}

  /** Complete frames in `chunk` (plus what was buffered); 'bad' on a header that makes no sense. */
  push(chunk: Buffer): { frames: { stream: 1 | 2; payload: Buffer }[]; bad: boolean } {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const frames: { stream: 1 | 2; payload: Buffer }[] = [];
    let off = 0;
    let bad = false;
    while (this.buf.length - off >= 8) {
      const s = this.buf[off]!;
      if (s > 2 || this.buf[off + 1] !== 0 || this.buf[off + 2] !== 0 || this.buf[off + 3] !== 0) {
        bad = true;
        off = this.buf.length;
        break;
      }
      const len = this.buf.readUInt32BE(off + 4);
      if (len > this.maxFrameBytes) {
        bad = true;
        off = this.buf.length;
        break;
      }
      if (this.buf.length - off - 8 < len) break;
      const payload = this.buf.subarray(off + 8, off + 8 + len);
      off += 8 + len;
      if (s === 0) continue; // stdin: never sent for logs
      frames.push({ stream: s as 1 | 2, payload });
    }
    this.buf = off >= this.buf.length ? Buffer.alloc(0) : Buffer.from(this.buf.subarray(off));
    return { frames, bad };
  }
}

export class ApiLogReader {
  private committed: ApiLogCursor;
  /** Position after the last record handed to onRecords (resume point after a reconnect). */
  private emitted: ApiLogCursor;
  /** Position after the last frame consumed, per stream. */
  private readPos: ApiLogCursor;
  private readonly partials: PartialLines;
  private readonly tracker: AckTracker<ApiLogCursor>;
  private batch: ApiLogRecord[] = [];
  private delivering: Promise<void> = Promise.resolve();
  private readonly maxLine: number;
  private readonly clock: () => number;
  /** Per-connection de-duplication state: frames seen at the cursor timestamp. */
  private seenAtCursor = { stdout: 0, stderr: 0 };
  private skipFrom: ApiLogCursor = {};

  constructor(private readonly o: ApiLogReaderOptions) {
    this.committed = cloneCursor(o.cursor ?? {});
    this.emitted = cloneCursor(this.committed);
    this.readPos = cloneCursor(this.committed);
    this.maxLine = o.maxLineBytes ?? 1024 * 1024;
    this.clock = o.clock ?? Date.now;
    this.partials = new PartialLines({
      maxLineBytes: this.maxLine,
      flushMs: o.partialFlushMs ?? 5000,
      emit: (l) => this.push(l),
      hold: (d) => o.hold?.(d),
      now: this.clock,
    });
    this.tracker = new AckTracker<ApiLogCursor>((c) => {
      this.committed = c;
      this.o.onCommit?.(this.cursor);
    });
  }

  /** The committed cursor (everything up to it was acked). */
  get cursor(): ApiLogCursor {
    return cloneCursor(this.committed);
  }

  /** Sets where to resume; only before run(). */
  set cursor(c: ApiLogCursor) {
    this.committed = cloneCursor(c);
    this.emitted = cloneCursor(c);
    this.readPos = cloneCursor(c);
  }

  /** Reads until the stream ends, the container is gone, or the signal aborts. Never rejects. */
  async run(signal: AbortSignal): Promise<ApiReadEnd> {
    let delay = this.o.retryInitialMs ?? 500;
    const maxDelay = this.o.retryMaxMs ?? 30_000;
    let tty = this.o.tty;
    while (!signal.aborted) {
      try {
        if (tty === undefined) {
          const info = await this.o.client.get<{ Config?: { Tty?: boolean } }>(
            `/containers/${encodeURIComponent(this.o.containerId)}/json`,
            undefined,
            signal,
          );
          tty = info.Config?.Tty === true;
        }
        const r = await this.readOnce(signal, tty, () => {
          delay = this.o.retryInitialMs ?? 500;
        });
        if (r !== 'retry') return r;
      } catch (err) {
        if (signal.aborted) break;
        const e = err as { statusCode?: number; reason?: string };
        if (e.statusCode === 404 || e.reason === 'not_found') return 'gone';
        this.o.onProblem?.('request_failed', (err as Error).message);
      }
      await sleep(delay, signal);
      delay = Math.min(maxDelay, delay * 2);
    }
    await this.delivering.catch(() => undefined);
    return 'aborted';
  }

  private async readOnce(
    signal: AbortSignal,
    tty: boolean,
    onConnected: () => void,
  ): Promise<ApiReadEnd | 'retry'> {
    // Resume after what was handed on; pending partials are dropped and read again.
    this.partials.discard();
    this.readPos = cloneCursor(this.emitted);
    this.skipFrom = cloneCursor(this.emitted);
    this.seenAtCursor = { stdout: 0, stderr: 0 };
    const q: Record<string, string> = {
      follow: this.o.follow === false ? '0' : '1',
      stdout: '1',
      stderr: '1',
      timestamps: '1',
    };
    const times = [this.emitted.stdout, this.emitted.stderr]
      .filter((c): c is StreamCursor => c !== undefined)
      .map((c) => BigInt(c.t));
    if (times.length > 0) q.since = sinceParam(times.reduce((a, b) => (a < b ? a : b)));
    const res = await this.request(
      `/containers/${encodeURIComponent(this.o.containerId)}/logs`,
      q,
      signal,
    );
    if (res.statusCode === 404) {
      res.resume();
      return 'gone';
    }
    if ((res.statusCode ?? 0) >= 300) {
      const body = await readSome(res);
      this.o.onProblem?.(
        'request_failed',
        `logs request failed with HTTP ${res.statusCode}: ${body}`,
      );
      return 'retry';
    }
    onConnected();
    const raw = tty;
    const frames = new FrameDecoder(this.maxLine + 64 + 1024 * 1024);
    let rawBuf: Buffer = Buffer.alloc(0);
    const timer = setInterval(
      () => this.flushStalePartials(),
      Math.min(1000, this.o.partialFlushMs ?? 5000),
    );
    timer.unref();
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        if (raw) {
          rawBuf = rawBuf.length === 0 ? chunk : Buffer.concat([rawBuf, chunk]);
          let start = 0;
          for (;;) {
            const nl = rawBuf.indexOf(10, start);
            if (nl < 0) break;
            this.onMessage('stdout', rawBuf.subarray(start, nl + 1), true);
            start = nl + 1;
          }
          rawBuf = Buffer.from(rawBuf.subarray(start));
          if (rawBuf.length > this.maxLine + 64) {
            this.onMessage('stdout', rawBuf, true);
            rawBuf = Buffer.alloc(0);
          }
        } else {
          const r = frames.push(chunk);
          if (r.bad) this.o.onProblem?.('bad_frame', 'the logs stream had an invalid frame header');
          for (const f of r.frames)
            this.onMessage(f.stream === 1 ? 'stdout' : 'stderr', f.payload, false);
        }
        if (this.batch.length > 0) await this.flushBatch();
      }
    } catch (err) {
      if (signal.aborted) return 'aborted';
      this.o.onProblem?.('request_failed', `the logs stream broke: ${(err as Error).message}`);
      return 'retry';
    } finally {
      clearInterval(timer);
    }
    if (signal.aborted) return 'aborted';
    if (raw && rawBuf.length > 0) this.onMessage('stdout', rawBuf, true);
    // End of stream: nothing more will complete the partials.
    this.partials.flushAll();
    await this.flushBatch();
    await this.delivering.catch(() => undefined);
    return 'ended';
  }

  private onMessage(stream: 'stdout' | 'stderr', msg: Buffer, raw: boolean): void {
    const sp = msg.indexOf(32);
    const ts = sp > 0 && sp <= 40 ? parseDockerTimestamp(msg.toString('latin1', 0, sp)) : undefined;
    if (ts === undefined) {
      this.o.onProblem?.('bad_timestamp', 'a logs stream message had no valid timestamp');
      return;
    }
    // De-duplicate against the resume cursor.
    const c = this.skipFrom[stream];
    if (c) {
      const cmp = compareCursor(c, ts);
      if (cmp > 0) return;
      if (cmp === 0 && this.seenAtCursor[stream] < c.n) {
        this.seenAtCursor[stream]++;
        return;
      }
    }
    const pos = this.readPos[stream];
    if (!pos || BigInt(pos.t) < ts) this.readPos[stream] = { t: ts.toString(), n: 1 };
    else if (BigInt(pos.t) === ts) pos.n++;
    let body = msg.subarray(sp + 1);
    let complete = body.length > 0 && body[body.length - 1] === 10;
    if (raw) complete = true;
    if (complete) body = body.subarray(0, body[body.length - 2] === 13 && raw ? -2 : -1);
    const sec = ts / 1_000_000_000n;
    const timeSec = Number(sec);
    const timeNanos = Number(ts - sec * 1_000_000_000n);
    // Fragments of one long line carry the timestamp of its first fragment; a frame with another
    // timestamp starts a new line (the local driver sends the last fragment without "\n" too).
    const p = this.partials.pendingTime(stream);
    if (p && (p.sec !== timeSec || p.nanos !== timeNanos)) this.partials.flush(stream);
    this.partials.push(
      stream,
      body,
      complete,
      timeSec,
      timeNanos,
      undefined,
      undefined,
      msg.buffer,
    );
  }

  private push(l: CompletedLine): void {
    const stream = l.stream;
    const pos = this.readPos[stream];
    if (pos) this.emitted[stream] = { ...pos };
    if (l.truncated)
      this.o.onProblem?.('line_truncated', 'a log line was longer than max_line_bytes and was cut');
    const cursor = cloneCursor(this.emitted);
    const rec: ApiLogRecord = {
      body: l.body,
      stream,
      timeUnixNano: BigInt(l.timeSec) * 1_000_000_000n + BigInt(l.timeNanos),
      cursor,
      ack: this.tracker.next(cursor, 0),
    };
    if (l.truncated) rec.truncated = true;
    this.batch.push(rec);
  }

  private flushStalePartials(): void {
    this.partials.flushStale();
    if (this.batch.length > 0) void this.flushBatch().catch(() => undefined);
  }

  private flushBatch(): Promise<void> {
    const max = this.o.batchMaxRecords ?? 1024;
    while (this.batch.length > 0) {
      const part = this.batch.splice(0, max);
      const ack = (): void => {
        for (const r of part) acknowledge(r.ack);
      };
      this.delivering = this.delivering.then(async () => {
        try {
          await this.o.onRecords(part, ack);
        } catch (err) {
          this.o.onProblem?.(
            'request_failed',
            `the records callback failed: ${(err as Error).message}`,
          );
        }
      });
    }
    return this.delivering;
  }

  private request(
    path: string,
    query: Record<string, string>,
    signal: AbortSignal,
  ): Promise<http.IncomingMessage> {
    const ep = this.o.client.endpoint;
    const v = this.o.client.apiVersion;
    const full = `${v ? `/v${v}` : ''}${path}?${new URLSearchParams(query).toString()}`;
    const opts: https.RequestOptions = {
      method: 'GET',
      path: full,
      signal,
      headers: {
        'user-agent': 'harbormaster',
        host: ep.socketPath ? 'docker' : `${ep.host}:${ep.port}`,
      },
    };
    if (ep.socketPath) opts.socketPath = ep.socketPath;
    else {
      opts.host = ep.host;
      opts.port = ep.port;
    }
    if (ep.tls) {
      opts.ca = ep.tls.ca;
      opts.cert = ep.tls.cert;
      opts.key = ep.tls.key;
      opts.rejectUnauthorized = ep.tls.verify;
    }
    return new Promise((resolve, reject) => {
      const req = (ep.tls ? https : http).request(opts, resolve);
      req.on('error', reject);
      req.end();
    });
  }
}

function cloneCursor(c: ApiLogCursor): ApiLogCursor {
  const out: ApiLogCursor = {};
  if (c.stdout) out.stdout = { t: c.stdout.t, n: c.stdout.n };
  if (c.stderr) out.stderr = { t: c.stderr.t, n: c.stderr.n };
  return out;
}

async function readSome(res: http.IncomingMessage): Promise<string> {
  let s = '';
  for await (const c of res as AsyncIterable<Buffer>) {
    if (s.length < 500) s += c.toString('utf8');
  }
  return s.slice(0, 500).trim();
}
