// Grafana dashboards: generated, current, structurally valid, datasource by variable, no
// hard-coded UIDs, and every PromQL expression parses (promtool, via a rules file).
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  DASHBOARDS,
  allExpressions,
  renderDashboard,
  substitute,
} from '../../scripts/dashboards.js';
import { tempDir } from '../support/tmp.js';

const dir = new URL('../../dashboards/', import.meta.url).pathname;
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
const promtool = spawnSync('promtool', ['--version']).status === 0;
const needPromtool = promtool || process.env.CI ? it : it.skip;

type Json = Record<string, unknown>;

describe('dashboards', () => {
  it('are the generator output (run `npm run dashboards` after editing scripts/dashboards.ts)', () => {
    expect(files.sort()).toEqual(DASHBOARDS.map((d) => d.file).sort());
    for (const d of DASHBOARDS) {
      const onDisk = JSON.parse(readFileSync(join(dir, d.file), 'utf8')) as Json;
      expect(onDisk, d.file).toEqual(renderDashboard(d));
    }
  });

  it.each(files)('%s is a valid Grafana dashboard', (file) => {
    const text = readFileSync(join(dir, file), 'utf8');
    const dash = JSON.parse(text) as Json;
    expect(typeof dash.title).toBe('string');
    expect(dash.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dash.uid ?? null).toBeNull(); // Grafana assigns one on import
    const vars = (dash.templating as { list: Json[] }).list;
    expect(vars[0]).toMatchObject({ name: 'datasource', type: 'datasource', query: 'prometheus' });
    const panels = dash.panels as Json[];
    expect(panels.length).toBeGreaterThan(3);
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of panels) {
      const g = p.gridPos as { x: number; y: number; w: number; h: number };
      expect(g.x + g.w, String(p.title)).toBeLessThanOrEqual(24);
      if (p.type === 'row') continue;
      expect(p.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
      const targets = p.targets as Json[];
      expect(targets.length, String(p.title)).toBeGreaterThan(0);
      for (const t of targets) {
        expect(t.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
        expect(typeof t.expr).toBe('string');
        expect(t.refId).toMatch(/^[A-H]$/);
      }
    }
    // no datasource or dashboard UID of anyone's Grafana
    const uids = [...text.matchAll(/"uid":\s*"([^"]*)"/g)].map((m) => m[1]);
    expect(uids.every((u) => u === '${datasource}')).toBe(true);
    for (const v of vars.slice(1))
      expect(v.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
  });

  needPromtool('every expression parses as PromQL', () => {
    const exprs = allExpressions();
    const rules = {
      groups: [
        {
          name: 'dashboards',
          rules: exprs.map((e, i) => ({ record: `dashboard:expr_${i}`, expr: substitute(e.expr) })),
        },
      ],
    };
    const tmp = tempDir('hm-dash');
    writeFileSync(join(tmp, 'rules.yml'), stringify(rules));
    const r = spawnSync('promtool', ['check', 'rules', join(tmp, 'rules.yml')], {
      encoding: 'utf8',
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });
});
