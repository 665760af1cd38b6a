/**
 * `harbormaster status [--url URL] [--output table|json] [--ca-file FILE]`: asks a running agent
 * for its status (`GET /api/v1/status`) and prints it. Without --url the address comes from the
 * configuration (`listen`, and https when its web config file serves TLS), as `run` would use
 * it. Credentials for basic auth go in the URL (`https://user:password@host:9105`); --ca-file
 * verifies an agent whose certificate a private CA signed.
 *
 * Exit status: 0 the agent answered; 1 it answered with an error (e.g. 401) or nonsense;
 * 2 usage; 3 it could not be reached.
 */
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { loadConfig } from './config/load.js';
import { loadWebConfig } from './server/web-config.js';
import type { StatusContainer, StatusDocument } from './server/status/model.js';

export interface StatusCliOptions {
  flags: Record<string, string>;
  file?: string;
  env?: NodeJS.ProcessEnv;
  out?: (s: string) => void;
  err?: (s: string) => void;
  timeoutMs?: number;
}

/**
 * The agent's URL for a `listen` address (a wildcard host means this machine); https when the
 * web config serves TLS.
 */
export function urlForListen(listen: string, tls = false): string {
  const idx = listen.lastIndexOf(':');
  let host = listen.slice(0, idx);
  const port = listen.slice(idx + 1);
  if (host === '' || host === '0.0.0.0') host = '127.0.0.1';
  if (host === '[::]' || host === '::') host = '[::1]';
  return `${tls ? 'https' : 'http'}://${host}:${port}`;
}

interface Answer {
  status: number;
  body: string;
}

function get(url: URL, auth: string | undefined, ca: Buffer | undefined, timeoutMs: number) {
  return new Promise<Answer>((resolve, reject) => {
    const mod = url.protocol === 'https:' ? https : http;
    const req = mod.get(
      url,
      {
        headers: { accept: 'application/json', ...(auth ? { authorization: auth } : {}) },
        ...(ca ? { ca } : {}),
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** Container names, images and errors are hostile input: no terminal control characters. */
function clean(s: string, max = 60): string {
  // eslint-disable-next-line no-control-regex
  const t = s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return t.length > max ? t.slice(0, max - 1) + '…' : t;
}

function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '-';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v.toFixed(0)}B` : `${v.toFixed(1)}${u[i]}`;
}

function duration(s: number | null | undefined): string {
  if (s === null || s === undefined) return '-';
  if (s < 60) return `${Math.floor(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${Math.floor(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)].join('\n') + '\n';
}

function exitText(c: StatusContainer): string {
  if (!c.lastExit) return '-';
  return `${c.lastExit.code}${c.lastExit.oomKilled ? ' OOM' : ''}`;
}

/** The status document as text for a terminal. */
export function renderStatusText(doc: StatusDocument, url: string): string {
  const a = doc.agent;
  const d = doc.daemon;
  let out = `Harbormaster ${clean(a.version)} on ${clean(a.hostName)} (${url}), up ${duration(a.uptimeSeconds)}\n`;
  out += `Docker daemon: ${d.connected ? 'connected' : 'NOT CONNECTED'} ${clean(d.url)}`;
  out += d.apiVersion ? `, API ${clean(d.apiVersion)}` : '';
  out += d.serverVersion ? `, engine ${clean(d.serverVersion)}` : '';
  out += d.connected || !d.detail ? '\n' : ` (${clean(d.detail, 200)})\n`;
  out +=
    'Components: ' +
    doc.components
      .map((c) => `${c.name} ${c.ok ? 'ok' : `FAILING (${clean(c.detail ?? '', 120)})`}`)
      .join(', ') +
    '\n';
  for (const o of doc.otlp)
    out +=
      `OTLP ${o.signal}: ${clean(o.url, 200)}${o.protocol ? ` (${clean(o.protocol, 20)})` : ''} ${o.ok ? 'ok' : 'FAILING'}` +
      (o.lastSuccessAt ? `, last success ${new Date(o.lastSuccessAt).toISOString()}` : '') +
      (o.lastError ? `, last error: ${clean(o.lastError, 200)}` : '') +
      '\n';
  const l = doc.logs;
  if (!l.enabled) out += 'Log shipping: off\n';
  else {
    const fails = Object.entries(l.exportFailures).filter(([, n]) => n > 0);
    const drops = Object.entries(l.drops).filter(([, n]) => n > 0);
    out +=
      `Log shipping: queue ${l.queue ? `${l.queue.records} records (${bytes(l.queue.bytes)})` : '-'}` +
      `, exported ${l.exported ?? '-'}` +
      (l.lastSuccessAt ? `, last export ${new Date(l.lastSuccessAt).toISOString()}` : '') +
      (l.lastError ? `, last export error: ${clean(l.lastError, 200)}` : '') +
      `, export failures ${fails.length ? fails.map(([k, n]) => `${k} ${n}`).join(', ') : 'none'}` +
      `, drops ${drops.length ? drops.map(([k, n]) => `${k} ${n}`).join(', ') : 'none'}\n`;
  }
  out += `\n${doc.containers.length} containers\n`;
  if (doc.containers.length === 0) return out;
  out += table(
    [
      'NAME',
      'IMAGE',
      'STATE',
      'HEALTH',
      'UPTIME',
      'RESTARTS',
      'LAST EXIT',
      'OOM',
      'CPU',
      'MEMORY/LIMIT',
      'LOG SHIPPED',
      'LOG BEHIND',
      'LOG ERROR',
      'FINDINGS',
    ],
    doc.containers.map((c) => [
      clean(c.name, 40),
      clean(c.image, 40),
      c.state,
      c.health,
      duration(c.uptimeSeconds),
      String(c.restarts),
      exitText(c),
      String(c.oomKills),
      c.cpuCores === null ? '-' : c.cpuCores.toFixed(2),
      bytes(c.memoryBytes) + (c.memoryLimitBytes ? `/${bytes(c.memoryLimitBytes)}` : ''),
      c.logs ? `${c.logs.linesShipped}/${c.logs.linesRead}` : '-',
      c.logs ? bytes(c.logs.bytesBehind) : '-',
      c.logs?.lastError ? clean(c.logs.lastError, 60) : '-',
      c.findings === null || c.findings === undefined ? '-' : String(c.findings),
    ]),
  );
  return out;
}

function isStatusDocument(x: unknown): x is StatusDocument {
  const d = x as Partial<StatusDocument> | null;
  return (
    typeof d === 'object' &&
    d !== null &&
    typeof d.schemaVersion === 'number' &&
    Array.isArray(d.containers) &&
    typeof d.agent === 'object'
  );
}

export async function runStatus(opts: StatusCliOptions): Promise<number> {
  const out = opts.out ?? ((s: string) => void process.stdout.write(s));
  const err = opts.err ?? ((s: string) => void process.stderr.write(s));
  const { output = 'table', url: urlFlag, 'ca-file': caFile, ...flags } = opts.flags;
  if (output !== 'table' && output !== 'json') {
    err(`status: --output must be table or json, not ${output}\n`);
    return 2;
  }
  let base = urlFlag;
  if (!base) {
    const { config } = loadConfig({ file: opts.file, env: opts.env ?? process.env, flags });
    // the web config says whether the agent serves TLS; an unreadable one is `run`'s problem
    // (it refuses to start), here the URL falls back to http and the answer tells the rest
    const web = loadWebConfig(config.web_config_file, []);
    base = urlForListen(config.listen, web?.tls !== undefined);
  }
  let url: URL;
  try {
    url = new URL(/^[a-z]+:\/\//i.test(base) ? base : `http://${base}`);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    err(`status: --url must be an http:// or https:// URL of the agent, not ${base}\n`);
    return 2;
  }
  let auth: string | undefined;
  try {
    auth =
      url.username || url.password
        ? 'Basic ' +
          Buffer.from(
            `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`,
          ).toString('base64')
        : undefined;
  } catch {
    // the credentials are not echoed: they may be a real password with one bad escape
    err('status: the user name or password in --url has a bad percent-encoding (like %E0)\n');
    return 2;
  }
  url.username = '';
  url.password = '';
  const shown = url.origin + url.pathname.replace(/\/+$/, '');
  const target = new URL(`${shown}/api/v1/status`);
  let ca: Buffer | undefined;
  if (caFile) {
    try {
      ca = readFileSync(caFile);
    } catch (e) {
      err(`status: cannot read --ca-file ${caFile}: ${(e as Error).message}\n`);
      return 2;
    }
  }
  let answer: Answer;
  try {
    answer = await get(target, auth, ca, opts.timeoutMs ?? 5000);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    err(
      `status: cannot reach the agent at ${target.href}: ${code ?? (e as Error).message}` +
        `${code && (e as Error).message && !(e as Error).message.includes(code) ? ` (${(e as Error).message})` : ''}.\n` +
        'Is `harbormaster run` running there? Point at it with --url http://HOST:PORT.\n',
    );
    return 3;
  }
  if (answer.status === 401) {
    err(
      `status: the agent at ${target.href} answered 401: it needs credentials` +
        `${auth ? ' (the ones given were refused)' : ''}; put them in the URL: --url ${url.protocol}//USER:PASSWORD@${url.host}\n`,
    );
    return 1;
  }
  if (answer.status !== 200) {
    err(
      `status: the agent at ${target.href} answered ${answer.status}: ${clean(answer.body, 200)}\n`,
    );
    return 1;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(answer.body);
  } catch {
    doc = undefined;
  }
  if (!isStatusDocument(doc)) {
    err(
      `status: ${target.href} did not answer with a Harbormaster status document (is it an older agent, or another server?)\n`,
    );
    return 1;
  }
  out(output === 'json' ? JSON.stringify(doc, null, 2) + '\n' : renderStatusText(doc, shown));
  return 0;
}
