// Checks the labels a PromQL expression relies on against the label names the agent really
// exports: label matchers on a selector, `by`/`without` of an aggregation and `on`/`ignoring`
// of a binary operation. Parsed with Prometheus' own grammar (@prometheus-io/lezer-promql).
import { parser } from '@prometheus-io/lezer-promql';
import type { SyntaxNode } from '@lezer/common';

/** Labels Prometheus adds to every scraped series (and the metric name itself). */
export const TARGET_LABELS: ReadonlySet<string> = new Set(['instance', 'job', '__name__']);

/** Series Prometheus makes itself for every target (they carry only the target labels). */
export const SYNTHETIC: ReadonlyMap<string, ExportedFamily> = new Map(
  ['up', 'scrape_duration_seconds', 'scrape_samples_scraped'].map((n) => [
    n,
    { labels: new Set<string>(), samples: 1 },
  ]),
);

export interface ExportedFamily {
  /** Label names seen on the family's samples. */
  labels: Set<string>;
  /** Samples in the exposition: 0 means the labels could not be seen. */
  samples: number;
}

/** Label names per family, from Prometheus text expositions (histogram suffixes folded). */
export function exportedFamilies(texts: readonly string[]): Map<string, ExportedFamily> {
  const out = new Map<string, ExportedFamily>();
  const fam = (name: string): ExportedFamily => {
    let f = out.get(name);
    if (!f) out.set(name, (f = { labels: new Set(), samples: 0 }));
    return f;
  };
  for (const text of texts) {
    for (const line of text.split('\n')) {
      if (line.startsWith('# HELP ') || line.startsWith('# TYPE ')) {
        fam(line.slice(7).split(' ')[0] ?? '');
        continue;
      }
      if (!line || line.startsWith('#')) continue;
      const brace = line.indexOf('{');
      let name = line.slice(0, brace >= 0 ? brace : line.indexOf(' '));
      for (const s of ['_bucket', '_sum', '_count', '_created'])
        if (!out.has(name) && name.endsWith(s) && out.has(name.slice(0, -s.length)))
          name = name.slice(0, -s.length);
      const f = fam(name);
      f.samples++;
      if (brace >= 0)
        for (const m of line.slice(brace).matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g))
          f.labels.add(m[1] ?? '');
    }
  }
  return out;
}

export interface LabelCheck {
  /** Labels used on a metric that does not carry them, and metrics that are not exported. */
  problems: string[];
  /** Metrics whose labels could not be checked (exported without any sample). */
  unverified: string[];
}

function text(expr: string, n: SyntaxNode): string {
  return expr.slice(n.from, n.to);
}

function labelNames(expr: string, n: SyntaxNode | null): string[] {
  const out: string[] = [];
  for (let c = n?.firstChild ?? null; c; c = c.nextSibling)
    if (c.name === 'LabelName') out.push(text(expr, c));
  return out;
}

function selectors(expr: string, n: SyntaxNode): Array<{ metric: string; node: SyntaxNode }> {
  const out: Array<{ metric: string; node: SyntaxNode }> = [];
  const cursor = n.cursor();
  const end = n.to;
  do {
    if (cursor.from >= end) break;
    if (cursor.name === 'VectorSelector') {
      const id = cursor.node.getChild('Identifier');
      if (id) out.push({ metric: text(expr, id), node: cursor.node });
    }
  } while (cursor.next());
  return out.filter((s) => s.node.from >= n.from && s.node.to <= n.to);
}

/**
 * Every label an expression matches on, groups by or joins on must exist on (one of) the
 * metrics it applies to in `families`. Grafana variables must be substituted first.
 */
export function checkLabels(
  expr: string,
  families: ReadonlyMap<string, ExportedFamily>,
  where: string,
): LabelCheck {
  const problems: string[] = [];
  const unverified = new Set<string>();
  const tree = parser.parse(expr);
  // A histogram's series (`_bucket`, `_sum`, `_count`) are its family's (exportedFamilies folds them).
  const family = (metric: string): string => {
    if (families.has(metric) || SYNTHETIC.has(metric)) return metric;
    for (const s of ['_bucket', '_sum', '_count'])
      if (metric.endsWith(s) && families.has(metric.slice(0, -s.length)))
        return metric.slice(0, -s.length);
    return metric;
  };
  const has = (series: string, label: string): boolean | undefined => {
    if (TARGET_LABELS.has(label)) return true;
    const metric = family(series);
    const f = families.get(metric) ?? SYNTHETIC.get(metric);
    if (!f) return false;
    if (f.samples === 0) {
      unverified.add(metric);
      return undefined;
    }
    return f.labels.has(label);
  };
  const onSome = (scope: SyntaxNode, label: string, what: string): void => {
    const sels = selectors(expr, scope);
    if (sels.length === 0) return;
    const answers = sels.map((s) => has(s.metric, label));
    if (answers.some((a) => a !== false)) return;
    problems.push(
      `${where}: ${what} label "${label}" is on none of ${[...new Set(sels.map((s) => s.metric))].join(', ')}`,
    );
  };
  const cursor = tree.cursor();
  do {
    const node = cursor.node;
    if (node.name === '⚠') problems.push(`${where}: does not parse near "${text(expr, node)}"`);
    if (node.name === 'VectorSelector') {
      const id = node.getChild('Identifier');
      const metric = id ? text(expr, id) : '';
      if (!metric) continue;
      if (!families.has(family(metric)) && !SYNTHETIC.has(metric)) {
        problems.push(`${where}: metric ${metric} is not exported`);
        continue;
      }
      const matchers = node.getChild('LabelMatchers');
      for (let m = matchers?.firstChild ?? null; m; m = m.nextSibling) {
        const ln = m.getChild('LabelName');
        if (!ln) continue;
        const label = text(expr, ln);
        if (has(metric, label) === false)
          problems.push(`${where}: ${metric} has no label "${label}"`);
      }
    } else if (node.name === 'AggregateExpr') {
      const mod = node.getChild('AggregateModifier');
      const body = node.getChild('FunctionCallBody');
      if (mod && body) {
        const kind = mod.firstChild ? text(expr, mod.firstChild) : 'by';
        for (const label of labelNames(expr, mod.getChild('GroupingLabels')))
          onSome(body, label, kind);
      }
    } else if (node.name === 'BinaryExpr') {
      const clause = node.getChild('MatchingModifierClause');
      const left = node.firstChild;
      const right = node.lastChild;
      if (clause && left && right) {
        const kind = clause.firstChild ? text(expr, clause.firstChild) : 'on';
        const grouping = [
          ...labelNames(expr, clause.getChild('GroupingLabels')),
          // group_left/group_right(extra labels) come from the "one" side: either side here
        ];
        for (const label of grouping) {
          onSome(left, label, kind);
          onSome(right, label, kind);
        }
      }
    }
  } while (cursor.next());
  return { problems, unverified: [...unverified].sort() };
}
