/** A metric family as it appears in an exposition. */
export interface FamilyInfo {
  name: string;
  type: string;
  help: string;
  labels: Set<string>;
}

const SUFFIXES = ['_bucket', '_sum', '_count', '_created'];

/** Reads families (name, type, help, label names) from Prometheus text expositions. */
export function parseFamilies(texts: string[]): Map<string, FamilyInfo> {
  const families = new Map<string, FamilyInfo>();
  const family = (name: string): FamilyInfo => {
    let f = families.get(name);
    if (!f) {
      f = { name, type: 'untyped', help: '', labels: new Set() };
      families.set(name, f);
    }
    return f;
  };
  for (const text of texts) {
    for (const line of text.split('\n')) {
      if (line.startsWith('# HELP ')) {
        const rest = line.slice(7);
        const sp = rest.indexOf(' ');
        family(rest.slice(0, sp)).help = rest
          .slice(sp + 1)
          .replaceAll('\\n', ' ')
          .replaceAll('\\\\', '\\');
      } else if (line.startsWith('# TYPE ')) {
        const [name = '', type = 'untyped'] = line.slice(7).split(' ');
        family(name).type = type;
      } else if (line && !line.startsWith('#')) {
        const brace = line.indexOf('{');
        const end = brace >= 0 ? brace : line.indexOf(' ');
        let name = line.slice(0, end);
        if (!families.has(name)) {
          const suffix = SUFFIXES.find((s) => name.endsWith(s));
          if (suffix && families.has(name.slice(0, -suffix.length)))
            name = name.slice(0, -suffix.length);
        }
        const f = family(name);
        if (brace >= 0) {
          for (const m of line.slice(brace).matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) {
            const label = m[1] ?? '';
            if (label === 'le' || label === 'quantile') continue;
            f.labels.add(label.startsWith('container_label_') ? 'container_label_*' : label);
          }
        }
      }
    }
  }
  return families;
}

/**
 * The metrics reference (Markdown) from expositions of a running agent. prom-client's standard
 * `process_*` and `nodejs_*` families are summarised in one line.
 */
export function renderMetricsReference(texts: string[]): string {
  const families = [...parseFamilies(texts).values()]
    .filter((f) => !f.name.startsWith('process_') && !f.name.startsWith('nodejs_'))
    .sort((a, b) => a.name.localeCompare(b.name));
  const lines = ['| metric | type | labels | help |', '| --- | --- | --- | --- |'];
  for (const f of families) {
    const order = ['id', 'name', 'image'];
    const labels = [...f.labels].sort((a, b) => {
      const ia = order.indexOf(a);
      const ib = order.indexOf(b);
      if (ia >= 0 || ib >= 0) return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
      if (a === 'container_label_*') return 1;
      if (b === 'container_label_*') return -1;
      return a.localeCompare(b);
    });
    lines.push(
      `| \`${f.name}\` | ${f.type} | ${labels.map((l) => `\`${l}\``).join(', ')} | ${f.help.replaceAll('|', '\\|')} |`,
    );
  }
  lines.push(
    '',
    "Plus prom-client's standard `process_*` and `nodejs_*` metrics about the agent itself (CPU, memory, event loop, GC).",
  );
  return lines.join('\n') + '\n';
}
