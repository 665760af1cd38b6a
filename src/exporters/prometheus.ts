import { Readable, pipeline } from 'node:stream';
import { createDeflate, createGzip } from 'node:zlib';
import { Registry } from 'prom-client';

/** Something that renders its own exposition text (for collectors that bypass prom-client objects). */
export interface ExpositionProvider {
  /** Prometheus text format (0.0.4); OpenMetrics is derived from it. */
  render(): Promise<string> | string;
  /**
   * Optional, for large outputs: the exposition as UTF-8 chunks, already in the requested format
   * (OpenMetrics without the final `# EOF`, which the exporter adds once). Used instead of
   * render() when present, so megabytes of samples are neither joined nor converted line by line.
   */
  renderChunks?(openMetrics: boolean): Promise<ExpositionChunks> | ExpositionChunks;
}

export interface ExpositionChunks {
  chunks: readonly Buffer[];
  /**
   * Call once the chunks have been written (or dropped): the provider may then reuse their
   * memory. Never calling it is safe (the memory is left to the garbage collector).
   */
  release?: () => void;
}

/** A rendered /metrics body: chunks to write in order, and their total size. */
export interface MetricsBody {
  contentType: string;
  chunks: Buffer[];
  length: number;
  /** Call once the body has been written or abandoned (idempotent); see ExpositionChunks. */
  release: () => void;
}

const LF = Buffer.from('\n');
const EOF_LINE = Buffer.from('# EOF\n');

export const PROMETHEUS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;
export const OPENMETRICS_CONTENT_TYPE = Registry.OPENMETRICS_CONTENT_TYPE;

/** Whether an Accept header asks for OpenMetrics (as Prometheus does when it prefers it). */
export function wantsOpenMetrics(accept: string | undefined): boolean {
  if (!accept) return false;
  let best: { om: boolean; q: number } | undefined;
  for (const part of accept.split(',')) {
    const [type = '', ...params] = part.split(';').map((s) => s.trim());
    let q = 1;
    for (const p of params) if (p.startsWith('q=')) q = Number(p.slice(2)) || 0;
    const om = type === 'application/openmetrics-text';
    const text = type === 'text/plain' || type === '*/*';
    if (!om && !text) continue;
    if (!best || q > best.q) best = { om, q };
  }
  return best?.om ?? false;
}

/**
 * Converts Prometheus text exposition to OpenMetrics 1.0: counter families lose their `_total`
 * suffix in HELP/TYPE (samples keep it), `untyped` becomes `unknown`, and `# EOF` ends the text.
 * (prom-client's own OpenMetrics mode renames shared metric objects in place, so it cannot serve
 * both formats from one registry.)
 */
export function toOpenMetrics(text: string): string {
  const lines = text.split('\n');
  const counters = new Set<string>();
  for (const line of lines) {
    if (line.startsWith('# TYPE ') && line.endsWith(' counter')) {
      counters.add(line.slice(7, -8));
    }
  }
  const out: string[] = [];
  for (const line of lines) {
    if (line === '') continue;
    if (line.startsWith('# HELP ') || line.startsWith('# TYPE ')) {
      const rest = line.slice(7);
      const sp = rest.indexOf(' ');
      const name = sp < 0 ? rest : rest.slice(0, sp);
      let tail = sp < 0 ? '' : rest.slice(sp);
      if (line.startsWith('# TYPE ') && tail === ' untyped') tail = ' unknown';
      const family = counters.has(name) && name.endsWith('_total') ? name.slice(0, -6) : name;
      out.push(`${line.slice(0, 7)}${family}${tail}`);
      continue;
    }
    out.push(line);
  }
  out.push('# EOF');
  return out.join('\n') + '\n';
}

/**
 * Removes whole families (HELP, TYPE and samples) whose name matches `drop` from Prometheus text.
 */
export function omitFamilies(text: string, drop: (family: string) => boolean): string {
  const out: string[] = [];
  let skipping = false;
  let current = '';
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# HELP ') || line.startsWith('# TYPE ')) {
      const rest = line.slice(7);
      const name = rest.slice(0, rest.indexOf(' ') < 0 ? undefined : rest.indexOf(' '));
      if (name !== current) {
        current = name;
        skipping = drop(name);
      }
    } else if (!line.startsWith('#')) {
      const end = line.search(/[{ ]/);
      const name = end < 0 ? line : line.slice(0, end);
      if (!name.startsWith(current)) skipping = drop(name);
    }
    if (!skipping) out.push(line);
  }
  return out.length ? out.join('\n') + '\n' : '';
}

/**
 * The agent's metrics: one prom-client registry shared by every component, plus providers that
 * render text themselves. Renders the Prometheus text format or OpenMetrics.
 */
export class MetricsExporter {
  readonly registry: Registry;
  private readonly providers: ExpositionProvider[] = [];

  constructor(registry?: Registry) {
    this.registry = registry ?? new Registry();
  }

  addProvider(p: ExpositionProvider): void {
    this.providers.push(p);
  }

  /** Prometheus text format of everything. */
  async renderText(): Promise<string> {
    return (await this.render(false)).body;
  }

  /**
   * Everything as chunks for the HTTP response to write in order (no joined copy of the text).
   * Providers with renderChunks contribute their Buffers as they are; text from the others (and
   * the registry) is converted to OpenMetrics per provider, which is the same as converting the
   * whole text: a family's HELP, TYPE and samples always come from one provider.
   */
  async renderBody(openMetrics: boolean): Promise<MetricsBody> {
    const chunks: Buffer[] = [];
    let length = 0;
    const add = (b: Buffer): void => {
      if (b.length === 0) return;
      chunks.push(b);
      length += b.length;
    };
    const addText = (text: string): void => {
      if (!text) return;
      if (openMetrics) {
        // toOpenMetrics ends with `# EOF`: the exporter adds it once, at the very end
        const om = toOpenMetrics(text);
        add(Buffer.from(om.slice(0, om.length - 6)));
      } else add(Buffer.from(text.endsWith('\n') ? text : text + '\n'));
    };
    const releases: Array<() => void> = [];
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      for (const r of releases) r();
    };
    for (const p of this.providers) {
      if (p.renderChunks) {
        const got = await p.renderChunks(openMetrics);
        if (got.release) releases.push(got.release);
        const parts = got.chunks;
        for (const b of parts) add(b);
        const tail = chunks[chunks.length - 1];
        if (parts.length && tail && tail[tail.length - 1] !== 0x0a) add(LF);
      } else addText(await p.render());
    }
    addText(await this.registry.metrics());
    if (openMetrics) add(EOF_LINE);
    return {
      contentType: openMetrics ? OPENMETRICS_CONTENT_TYPE : PROMETHEUS_CONTENT_TYPE,
      chunks,
      length,
      release,
    };
  }

  /** The whole body as one string (tests, tools); the HTTP route writes renderBody's chunks. */
  async render(openMetrics: boolean): Promise<{ contentType: string; body: string }> {
    const { contentType, chunks, release } = await this.renderBody(openMetrics);
    try {
      return { contentType, body: Buffer.concat(chunks).toString('utf8') };
    } finally {
      release();
    }
  }
}

export type ContentEncoding = 'gzip' | 'deflate' | 'identity';

/**
 * The encoding for a /metrics response from Accept-Encoding (q-values honoured; gzip preferred,
 * as every Prometheus sends `Accept-Encoding: gzip`).
 */
export function negotiateEncoding(acceptEncoding: string | undefined): ContentEncoding {
  if (!acceptEncoding) return 'identity';
  const q: Record<string, number> = {};
  for (const part of acceptEncoding.split(',')) {
    const [name = '', ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    if (!name) continue;
    let v = 1;
    for (const p of params) if (p.startsWith('q=')) v = Number(p.slice(2)) || 0;
    q[name] = v;
  }
  const star = q['*'];
  for (const enc of ['gzip', 'deflate'] as const) {
    const v = q[enc] ?? star;
    if (v !== undefined && v > 0) return enc;
  }
  return 'identity';
}

/**
 * zlib level for /metrics. Level 1 is the knee of the curve for exposition text (see
 * bench/metrics-compression.ts: a few percent larger than level 6 at a fraction of the CPU).
 */
export const METRICS_COMPRESSION_LEVEL = 1;

/**
 * The body chunks compressed as a stream: each chunk is compressed as it is written, so neither
 * the plain text nor the compressed body is ever held joined in memory.
 */
export function compressChunks(
  chunks: readonly Buffer[],
  encoding: 'gzip' | 'deflate',
  level = METRICS_COMPRESSION_LEVEL,
): Readable {
  const z = encoding === 'gzip' ? createGzip({ level }) : createDeflate({ level });
  pipeline(Readable.from(chunks, { objectMode: false }), z, () => undefined);
  return z;
}
