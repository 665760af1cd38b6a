import { Registry } from 'prom-client';

/** Something that renders its own exposition text (for collectors that bypass prom-client objects). */
export interface ExpositionProvider {
  /** Prometheus text format (0.0.4); OpenMetrics is derived from it. */
  render(): Promise<string> | string;
}

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
    const parts: string[] = [];
    for (const p of this.providers) {
      const text = await p.render();
      if (text) parts.push(text.endsWith('\n') ? text : text + '\n');
    }
    const text = await this.registry.metrics();
    if (text) parts.push(text.endsWith('\n') ? text : text + '\n');
    return parts.join('');
  }

  async render(openMetrics: boolean): Promise<{ contentType: string; body: string }> {
    const text = await this.renderText();
    if (openMetrics) return { contentType: OPENMETRICS_CONTENT_TYPE, body: toOpenMetrics(text) };
    return { contentType: PROMETHEUS_CONTENT_TYPE, body: text };
  }
}
