/**
 * The status page: one HTML document with its CSS and script inline (no external assets), served
 * with a strict Content-Security-Policy that allows exactly these inline blocks by hash. The first
 * status document is embedded as JSON (a data block, never executed), so the page shows the
 * containers without a second request; the script then refreshes it in place from
 * /api/v1/status. Every value reaches the DOM through textContent: container names, images and
 * labels are hostile input.
 */
import { createHash } from 'node:crypto';

const STYLE = `
:root{color-scheme:light dark;--fg:#1d232b;--mut:#5d6875;--bg:#fff;--line:#d8dee4;--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--acc:#0969da}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--mut:#8d96a0;--bg:#0d1117;--line:#30363d;--ok:#3fb950;--bad:#f85149;--warn:#d29922;--acc:#4493f8}}
*{box-sizing:border-box}
body{margin:0;font:14px/1.4 system-ui,sans-serif;color:var(--fg);background:var(--bg)}
header{padding:12px 20px;border-bottom:1px solid var(--line);display:flex;gap:24px;flex-wrap:wrap;align-items:baseline}
header h1{font-size:18px;margin:0}
main{padding:12px 20px}
section{margin-bottom:18px}
h2{font-size:15px;margin:0 0 6px}
.facts{display:flex;gap:20px;flex-wrap:wrap;color:var(--mut)}
.facts b{color:var(--fg);font-weight:600}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);white-space:nowrap}
td.wrap{white-space:normal;word-break:break-all}
th{cursor:pointer;user-select:none;color:var(--mut);font-weight:600}
th[aria-sort=ascending]::after{content:" \\25B2"}
th[aria-sort=descending]::after{content:" \\25BC"}
td.num,th.num{text-align:right}
.ok{color:var(--ok)}.bad{color:var(--bad)}.warn{color:var(--warn)}.mut{color:var(--mut)}
input[type=search]{padding:5px 8px;width:320px;max-width:100%;border:1px solid var(--line);border-radius:6px;background:var(--bg);color:var(--fg)}
a{color:var(--acc)}
#banner{padding:6px 20px;background:var(--bad);color:#fff}
#detail{border:1px solid var(--line);border-radius:8px;padding:12px}
.charts{display:flex;gap:16px;flex-wrap:wrap}
.chart{flex:1 1 420px}
.chart svg{width:100%;height:160px;border:1px solid var(--line);border-radius:6px}
.chart polyline{fill:none;stroke:var(--acc);stroke-width:1.5}
.chart line.limit{stroke:var(--bad);stroke-dasharray:4 3}
.chart text{fill:var(--mut);font-size:11px}
.hidden{display:none}
.scroll{overflow-x:auto}
.pill{display:inline-block;padding:0 6px;border-radius:10px;border:1px solid var(--line)}
`;

const SCRIPT = `
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const el = (tag, text, cls) => {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  };
  const REFRESH_MS = Number(document.body.dataset.refreshMs) || 3000;
  const fmtBytes = (n) => {
    if (n === null || n === undefined) return '\\u2013';
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (Math.abs(n) >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + ' ' + u[i];
  };
  const fmtDur = (s) => {
    if (s === null || s === undefined) return '\\u2013';
    if (s < 60) return Math.floor(s) + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + Math.floor(s % 60) + 's';
    if (s < 86400) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
    return Math.floor(s / 86400) + 'd ' + Math.floor((s % 86400) / 3600) + 'h';
  };
  const fmtCores = (c) => (c === null || c === undefined ? '\\u2013' : c.toFixed(c < 0.1 ? 3 : 2));
  const fmtTime = (ms) => (ms ? new Date(ms).toLocaleString() : '\\u2013');
  const fmtExit = (x) => (x ? String(x.code) + (x.oomKilled ? ' (OOM killed)' : '') : '\\u2013');
  const stateCls = (s) => (s === 'running' ? 'ok' : s === 'restarting' || s === 'paused' || s === 'created' ? 'warn' : s === 'exited' || s === 'dead' ? 'bad' : '');
  const healthCls = (h) => (h === 'healthy' ? 'ok' : h === 'unhealthy' ? 'bad' : h === 'starting' ? 'warn' : 'mut');

  const COLUMNS = [
    { key: 'name', title: 'Name', get: (c) => c.name, cell: (td, c) => { const a = el('a', c.name); a.href = '#/container/' + encodeURIComponent(c.id); td.append(a); } },
    { key: 'image', title: 'Image', get: (c) => c.image },
    { key: 'state', title: 'State', get: (c) => c.state, show: (c) => c.state, tone: (c) => stateCls(c.state) },
    { key: 'health', title: 'Health', get: (c) => c.health, tone: (c) => healthCls(c.health) },
    { key: 'uptime', title: 'Uptime', num: true, get: (c) => c.uptimeSeconds ?? -1, show: (c) => fmtDur(c.uptimeSeconds) },
    { key: 'restarts', title: 'Restarts', num: true, get: (c) => c.restarts, tone: (c) => (c.restarts > 0 ? 'warn' : '') },
    { key: 'exit', title: 'Last exit', get: (c) => (c.lastExit ? c.lastExit.code : -1), show: (c) => fmtExit(c.lastExit), tone: (c) => (c.lastExit && (c.lastExit.code !== 0 || c.lastExit.oomKilled) ? 'bad' : '') },
    { key: 'oom', title: 'OOM kills', num: true, get: (c) => c.oomKills, tone: (c) => (c.oomKills > 0 ? 'bad' : '') },
    { key: 'cpu', title: 'CPU (cores)', num: true, get: (c) => c.cpuCores ?? -1, show: (c) => fmtCores(c.cpuCores) },
    { key: 'mem', title: 'Memory / limit', num: true, get: (c) => c.memoryBytes ?? -1, show: (c) => fmtBytes(c.memoryBytes) + (c.memoryLimitBytes ? ' / ' + fmtBytes(c.memoryLimitBytes) : ''), tone: (c) => (c.memoryLimitBytes && c.memoryBytes > 0.9 * c.memoryLimitBytes ? 'bad' : '') },
    { key: 'lines', title: 'Log lines shipped', num: true, get: (c) => (c.logs ? c.logs.linesShipped : -1), show: (c) => (c.logs ? String(c.logs.linesShipped) : '\\u2013') },
    { key: 'behind', title: 'Log behind', num: true, get: (c) => (c.logs ? c.logs.bytesBehind : -1), show: (c) => (c.logs ? fmtBytes(c.logs.bytesBehind) : '\\u2013'), tone: (c) => (c.logs && c.logs.bytesBehind > 0 ? 'warn' : '') },
    { key: 'logerr', title: 'Log error', get: (c) => (c.logs && c.logs.lastError) || '', cls: 'wrap', tone: () => 'bad' },
    { key: 'findings', title: 'Findings', num: true, get: (c) => c.findings ?? -1, show: (c) => (c.findings === null || c.findings === undefined ? '\\u2013' : String(c.findings)), tone: (c) => (c.findings > 0 ? 'warn' : '') },
  ];

  let doc = JSON.parse($('hm-data').textContent);
  let sortKey = 'name';
  let sortDir = 1;
  const rows = new Map();

  function renderHead() {
    const tr = $('containers-head');
    tr.replaceChildren();
    for (const col of COLUMNS) {
      const th = el('th', col.title, col.num ? 'num' : '');
      th.dataset.key = col.key;
      if (col.key === sortKey) th.setAttribute('aria-sort', sortDir > 0 ? 'ascending' : 'descending');
      th.addEventListener('click', () => {
        if (sortKey === col.key) sortDir = -sortDir; else { sortKey = col.key; sortDir = 1; }
        renderHead();
        renderRows();
      });
      tr.append(th);
    }
  }

  function fillRow(tr, c) {
    COLUMNS.forEach((col, i) => {
      const td = tr.children[i];
      td.replaceChildren();
      td.className = [col.num ? 'num' : '', col.cls || '', col.tone ? col.tone(c) : ''].join(' ').trim();
      if (col.cell) col.cell(td, c);
      else td.textContent = col.show ? col.show(c) : String(col.get(c));
    });
  }

  function renderRows() {
    const body = $('containers-body');
    const q = $('filter').value.trim().toLowerCase();
    const col = COLUMNS.find((c) => c.key === sortKey) || COLUMNS[0];
    const list = doc.containers.slice().sort((a, b) => {
      const x = col.get(a), y = col.get(b);
      const r = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
      return (r || a.name.localeCompare(b.name)) * sortDir;
    });
    const seen = new Set();
    let shown = 0;
    for (const c of list) {
      seen.add(c.id);
      let tr = rows.get(c.id);
      if (!tr) {
        tr = el('tr');
        tr.dataset.id = c.id;
        for (let i = 0; i < COLUMNS.length; i++) tr.append(el('td'));
        rows.set(c.id, tr);
      }
      fillRow(tr, c);
      const hay = (c.name + ' ' + c.image + ' ' + c.state + ' ' + c.health).toLowerCase();
      const match = !q || hay.includes(q);
      tr.classList.toggle('hidden', !match);
      if (match) shown++;
      body.append(tr); // moves existing rows into sorted order, no re-creation
    }
    for (const [id, tr] of rows) if (!seen.has(id)) { tr.remove(); rows.delete(id); }
    $('count').textContent = shown === list.length ? list.length + ' containers' : shown + ' of ' + list.length + ' containers';
  }

  function renderAgent() {
    const a = doc.agent, d = doc.daemon;
    $('host').textContent = a.hostName;
    const facts = $('agent-facts');
    facts.replaceChildren();
    const fact = (k, v, tone) => { const s = el('span', k + ': '); s.append(el('b', v, tone)); facts.append(s); };
    fact('version', a.version);
    fact('uptime', fmtDur(a.uptimeSeconds));
    fact('daemon', d.connected ? 'connected' : 'disconnected', d.connected ? 'ok' : 'bad');
    fact('endpoint', d.url);
    fact('API', d.apiVersion || '\\u2013');
    fact('engine', d.serverVersion || '\\u2013');
    const comps = $('components');
    comps.replaceChildren();
    for (const c of doc.components) {
      const li = el('span', null, 'pill ' + (c.ok ? 'ok' : 'bad'));
      li.textContent = c.name + (c.ok ? ' ok' : ' failing');
      li.title = c.detail || '';
      comps.append(li, document.createTextNode(' '));
    }
    const ob = $('otlp-body');
    ob.replaceChildren();
    if (doc.otlp.length === 0) { const tr = el('tr'); const td = el('td', 'no OTLP endpoint configured', 'mut'); td.colSpan = 6; tr.append(td); ob.append(tr); }
    for (const o of doc.otlp) {
      const tr = el('tr');
      tr.append(el('td', o.signal), el('td', o.url, 'wrap'), el('td', o.protocol), el('td', o.ok ? 'ok' : 'failing', o.ok ? 'ok' : 'bad'), el('td', fmtTime(o.lastSuccessAt)), el('td', o.lastError || '\\u2013', o.lastError ? 'bad wrap' : 'mut'));
      ob.append(tr);
    }
    const l = doc.logs;
    const lf = $('logs-facts');
    lf.replaceChildren();
    const lfact = (k, v, tone) => { const s = el('span', k + ': '); s.append(el('b', v, tone)); lf.append(s); };
    if (!l.enabled) lfact('log shipping', 'off', 'mut');
    else {
      lfact('queue', l.queue ? l.queue.records + ' records, ' + fmtBytes(l.queue.bytes) : '\\u2013');
      lfact('exported', l.exported === null ? '\\u2013' : String(l.exported));
      lfact('last export', fmtTime(l.lastSuccessAt));
      if (l.lastError) lfact('last export error', l.lastError, 'bad');
      const f = Object.entries(l.exportFailures).filter(([, n]) => n > 0);
      lfact('export failures', f.length ? f.map(([k, n]) => k + ' ' + n).join(', ') : 'none', f.length ? 'bad' : 'ok');
      const dr = Object.entries(l.drops).filter(([, n]) => n > 0);
      lfact('drops', dr.length ? dr.map(([k, n]) => k + ' ' + n).join(', ') : 'none', dr.length ? 'warn' : 'ok');
    }
    $('updated').textContent = 'updated ' + new Date(doc.generatedAt).toLocaleTimeString();
  }

  const SVGNS = 'http://www.w3.org/2000/svg';
  function chart(svg, times, values, fmt, limit) {
    svg.replaceChildren();
    const W = 600, H = 160, L = 64, B = 18, T = 8;
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    const pts = [];
    let max = limit || 0;
    for (let i = 0; i < times.length; i++) if (values[i] !== null) { pts.push([times[i], values[i]]); if (values[i] > max) max = values[i]; }
    if (max <= 0) max = 1;
    const t0 = times.length ? times[0] : 0, t1 = times.length ? times[times.length - 1] : 1;
    const x = (t) => L + ((t - t0) / Math.max(1, t1 - t0)) * (W - L - 4);
    const y = (v) => H - B - (v / max) * (H - B - T);
    const mk = (tag, attrs, text) => { const e = document.createElementNS(SVGNS, tag); for (const k in attrs) e.setAttribute(k, String(attrs[k])); if (text !== undefined) e.textContent = text; svg.append(e); return e; };
    mk('text', { x: 2, y: T + 10 }, fmt(max));
    mk('text', { x: 2, y: H - B }, fmt(0));
    mk('text', { x: L, y: H - 4 }, times.length ? new Date(t0).toLocaleTimeString() : 'no samples yet');
    if (times.length) mk('text', { x: W - 70, y: H - 4 }, new Date(t1).toLocaleTimeString());
    if (limit) mk('line', { x1: L, x2: W - 4, y1: y(limit), y2: y(limit), class: 'limit' });
    mk('polyline', { points: pts.map(([t, v]) => x(t).toFixed(1) + ',' + y(v).toFixed(1)).join(' ') });
    svg.dataset.points = String(pts.length);
  }

  let detailId = null;
  // each call's number: a call that a newer one (a hash change, a refresh) overtook while it
  // fetched writes nothing, so a slow answer for the container shown before cannot overwrite
  // what the newer call showed
  let detailCall = 0;
  async function showDetail() {
    const call = ++detailCall;
    const m = /^#\\/container\\/(.+)$/.exec(location.hash);
    // a message in the view, and nothing left over from the container shown before
    const detailError = (msg) => {
      $('detail-title').textContent = msg;
      for (const id of ['detail-facts', 'detail-labels', 'detail-findings']) $(id).replaceChildren();
      $('detail-window').textContent = '';
    };
    try {
      detailId = m ? decodeURIComponent(m[1]) : null;
    } catch {
      // a hand-edited or truncated link (bad percent-encoding): say so instead of throwing
      detailId = null;
      $('detail').classList.remove('hidden');
      detailError('Not a valid container link: ' + m[1]);
      return;
    }
    $('detail').classList.toggle('hidden', !detailId);
    if (!detailId) return;
    let d;
    try {
      const res = await fetch('api/v1/status/container?id=' + encodeURIComponent(detailId), { headers: { accept: 'application/json' } });
      if (!res.ok) throw new Error(res.status + ' ' + res.statusText);
      d = await res.json();
    } catch (err) {
      if (call !== detailCall) return;
      detailError('Container ' + detailId + ': ' + err.message);
      return;
    }
    if (call !== detailCall) return;
    $('detail-title').textContent = d.name;
    const facts = $('detail-facts');
    facts.replaceChildren();
    const fact = (k, v, tone) => { const s = el('span', k + ': '); s.append(el('b', v, tone)); facts.append(s); };
    fact('image', d.image);
    fact('state', d.state, stateCls(d.state));
    fact('health', d.health, healthCls(d.health));
    fact('created', fmtTime(d.createdAt));
    fact('started', fmtTime(d.startedAt));
    fact('runs', String(d.runs));
    fact('restarts', String(d.restarts), d.restarts ? 'warn' : '');
    fact('last exit', fmtExit(d.lastExit), d.lastExit && (d.lastExit.code || d.lastExit.oomKilled) ? 'bad' : '');
    fact('OOM kills', String(d.oomKills), d.oomKills ? 'bad' : '');
    fact('log driver', d.logDriver);
    const lb = $('detail-labels');
    lb.replaceChildren();
    const keys = Object.keys(d.labels).sort();
    if (!keys.length) { const tr = el('tr'); const td = el('td', 'no allowlisted labels', 'mut'); td.colSpan = 2; tr.append(td); lb.append(tr); }
    for (const k of keys) { const tr = el('tr'); tr.append(el('td', k), el('td', d.labels[k], 'wrap')); lb.append(tr); }
    const fb = $('detail-findings');
    fb.replaceChildren();
    const fs = d.securityFindings;
    if (!fs || !fs.length) { const tr = el('tr'); const td = el('td', fs ? 'no findings' : 'not judged (security posture is off)', 'mut'); td.colSpan = 4; tr.append(td); fb.append(tr); }
    else for (const f of fs) {
      const tr = el('tr');
      tr.dataset.check = f.check;
      tr.append(el('td', f.check), el('td', f.severity, f.allowed ? 'mut' : f.severity === 'critical' || f.severity === 'high' ? 'bad' : 'warn'), el('td', f.what + ' (CIS ' + f.cis + ')', 'wrap'), el('td', f.allowed ? 'allowed' : '', 'mut'));
      fb.append(tr);
    }
    const h = d.history;
    $('detail-window').textContent = 'last ' + Math.round(h.windowSeconds / 60) + ' minutes, every ' + h.intervalSeconds + ' s';
    chart($('chart-cpu'), h.times, h.cpuCores, fmtCores, 0);
    chart($('chart-mem'), h.times, h.memoryBytes, fmtBytes, d.memoryLimitBytes);
  }

  function render() { renderAgent(); renderRows(); }

  async function refresh() {
    try {
      const res = await fetch('api/v1/status', { headers: { accept: 'application/json' } });
      if (!res.ok) throw new Error('the agent answered ' + res.status + ' ' + res.statusText);
      doc = await res.json();
      $('banner').classList.add('hidden');
      render();
      if (detailId) await showDetail();
    } catch (err) {
      $('banner').textContent = 'Refresh failed: ' + err.message + '. Showing the last status.';
      $('banner').classList.remove('hidden');
    } finally {
      setTimeout(refresh, REFRESH_MS);
    }
  }

  $('filter').addEventListener('input', renderRows);
  $('detail-close').addEventListener('click', (e) => { e.preventDefault(); location.hash = ''; });
  window.addEventListener('hashchange', () => { void showDetail(); });
  renderHead();
  render();
  void showDetail();
  setTimeout(refresh, REFRESH_MS);
})();
`;

const sha256 = (s: string): string => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;

/** The page's Content-Security-Policy: only its own inline style and script, fetches to itself. */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const escapeHtml = (s: string): string =>
  s.replace(
    /[&<>"']/g,
    (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch] ?? ch,
  );

/** JSON that is safe inside a `<script type="application/json">` data block. */
function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

const HEAD_1 = '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">';
const HEAD_2 =
  '<meta name="viewport" content="width=device-width, initial-scale=1">' +
  '<link rel="icon" href="data:,">' +
  `<style>${STYLE}</style></head>`;
const BODY_2 = `
<div id="banner" class="hidden" role="alert"></div>
<header><h1>Harbormaster on <span id="host"></span></h1><div id="agent-facts" class="facts"></div><span id="updated" class="mut"></span></header>
<main>
<section><h2>Components</h2><div id="components"></div></section>
<section><h2>OTLP endpoints</h2><table><thead><tr><th>signal</th><th>endpoint</th><th>protocol</th><th>status</th><th>last success</th><th>last error</th></tr></thead><tbody id="otlp-body"></tbody></table></section>
<section><h2>Log shipping</h2><div id="logs-facts" class="facts"></div></section>
<section id="detail" class="hidden"><h2><span id="detail-title"></span> <a href="#" id="detail-close">close</a></h2>
<div id="detail-facts" class="facts"></div>
<p class="mut" id="detail-window"></p>
<div class="charts"><div class="chart"><h2>CPU (cores)</h2><svg id="chart-cpu" role="img" aria-label="CPU over time"></svg></div>
<div class="chart"><h2>Memory (working set; dashed: limit)</h2><svg id="chart-mem" role="img" aria-label="Memory over time"></svg></div></div>
<h2>Security findings</h2><table><tbody id="detail-findings"></tbody></table>
<h2>Labels (allowlisted)</h2><table><tbody id="detail-labels"></tbody></table></section>
<section><h2>Containers <span id="count" class="mut"></span></h2>
<p><input id="filter" type="search" placeholder="Filter by name, image, state or health" aria-label="Filter containers"></p>
<div class="scroll"><table id="containers"><thead><tr id="containers-head"></tr></thead><tbody id="containers-body"></tbody></table></div></section>
</main>`;

/** The page with `doc` embedded (`doc` is serialized here, once). */
export function renderStatusPage(doc: { agent: { hostName: string } }, refreshMs: number): string {
  return (
    HEAD_1 +
    `<title>Harbormaster on ${escapeHtml(doc.agent.hostName)}</title>` +
    HEAD_2 +
    `<body data-refresh-ms="${Math.round(refreshMs)}">` +
    BODY_2 +
    `<script type="application/json" id="hm-data">${jsonForScript(doc)}</script>` +
    `<script>${SCRIPT}</script></body></html>\n`
  );
}
