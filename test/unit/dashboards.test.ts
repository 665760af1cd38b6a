// Grafana dashboards: generated, current, structurally valid, datasource by variable, no
// hard-coded UIDs, and every PromQL expression parses (promtool, via a rules file).
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  DASHBOARDS,
  PROJECT_LABEL,
  UIDS,
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
    // a stable uid: links and bookmarks survive a re-import
    expect(dash.uid).toBe(DASHBOARDS.find((d) => d.file === file)?.uid);
    expect(dash.uid).toMatch(/^harbormaster-[a-z-]+$/);
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
    // no datasource UID of anyone's Grafana: only the variable, and the dashboard's own uid
    const uids = [...text.matchAll(/"uid":\s*"([^"]*)"/g)].map((m) => m[1]);
    expect(uids.filter((u) => u !== '${datasource}')).toEqual([dash.uid]);
    for (const v of vars.slice(1))
      expect(v.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
  });

  it('have unique uids, and links between them that resolve and keep the time range', () => {
    const uids = DASHBOARDS.map((d) => d.uid);
    expect(new Set(uids).size).toBe(uids.length);
    const byUid = new Map(DASHBOARDS.map((d) => [d.uid, renderDashboard(d)]));
    const overview = byUid.get(UIDS.overview)!;
    const container = byUid.get(UIDS.container)!;
    // overview -> container (dashboard link and per-series data links) and back
    expect(overview.links?.map((l) => l.url)).toContain(`/d/${UIDS.container}`);
    expect(container.links?.map((l) => l.url)).toContain(`/d/${UIDS.overview}`);
    for (const dash of byUid.values())
      for (const l of dash.links ?? []) {
        expect(byUid.has((l.url ?? '').replace('/d/', '')), l.url).toBe(true);
        expect(l.keepTime, l.url).toBe(true);
        expect(l.includeVars, l.url).toBe(true);
      }
    const dataLinks = JSON.stringify(overview.panels).match(/"url":"[^"]+"/g) ?? [];
    expect(dataLinks.length).toBeGreaterThanOrEqual(2);
    for (const u of dataLinks) {
      expect(u).toContain(`/d/${UIDS.container}?`);
      expect(u).toContain('${__url_time_range}');
      expect(u).toContain('var-container=${__field.labels.name}');
    }
  });

  it('select the job and compose project by variables, never a hard-coded job', () => {
    for (const d of DASHBOARDS) {
      const dash = renderDashboard(d);
      const names = dash.templating?.list?.map((v) => v.name);
      expect(names, d.file).toContain('job');
      expect(names, d.file).toContain('instance');
    }
    const overview = renderDashboard(DASHBOARDS.find((d) => d.uid === UIDS.overview)!);
    expect(overview.templating?.list?.map((v) => v.name)).toContain('project');
    for (const { dashboard, panel, expr } of allExpressions()) {
      expect(expr, `${dashboard} / ${panel}`).not.toMatch(/job=~?"[^$]/);
      // every selector of the expression is scoped to the picked job(s)
      const selectors = expr.match(/[a-z_:]+\{[^}]*\}/g) ?? [];
      expect(selectors.length, `${dashboard} / ${panel}`).toBeGreaterThan(0);
      for (const s of selectors) expect(s, `${dashboard} / ${panel}`).toContain('job=~"$job"');
      if (dashboard === 'docker-host-overview.json' && /\bcontainer_/.test(expr))
        expect(expr, panel).toContain(`${PROJECT_LABEL}=~"$project"`);
    }
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
