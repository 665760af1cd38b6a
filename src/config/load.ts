import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { SECRET_MASK, isSecretPath, maskSecretsInString } from '../util/secrets.js';
import { configSchema, type Config } from './schema.js';

export type LeafKind = 'string' | 'number' | 'boolean' | 'string[]' | 'record' | 'enum' | 'other';

export interface LeafInfo {
  /** Path in the file, e.g. ['metrics', 'min_interval_seconds']. */
  path: string[];
  kind: LeafKind;
  description: string;
  defaultValue: unknown;
  enumValues?: readonly string[];
  env: string;
  flag: string;
  /** Standard variables that also set this key (below HARBORMASTER_*). */
  aliases: string[];
}

/** Standard environment variables honoured besides HARBORMASTER_* (lower precedence). */
export const ENV_ALIASES: Record<string, string[]> = {
  'docker.host': ['DOCKER_HOST'],
  'docker.tls_verify': ['DOCKER_TLS_VERIFY'],
  'docker.cert_path': ['DOCKER_CERT_PATH'],
  'docker.api_version': ['DOCKER_API_VERSION'],
  'otlp.endpoint': ['OTEL_EXPORTER_OTLP_ENDPOINT'],
  'otlp.logs_endpoint': ['OTEL_EXPORTER_OTLP_LOGS_ENDPOINT'],
  'otlp.traces_endpoint': ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'],
  'otlp.protocol': ['OTEL_EXPORTER_OTLP_PROTOCOL'],
  'otlp.headers': ['OTEL_EXPORTER_OTLP_HEADERS'],
  'otlp.compression': ['OTEL_EXPORTER_OTLP_COMPRESSION'],
  'otlp.timeout_seconds': ['OTEL_EXPORTER_OTLP_TIMEOUT'],
  'otlp.headers_file': ['OTEL_EXPORTER_OTLP_HEADERS_FILE'],
  'otlp.certificate': ['OTEL_EXPORTER_OTLP_CERTIFICATE'],
  'otlp.client_key': ['OTEL_EXPORTER_OTLP_CLIENT_KEY'],
  'otlp.client_certificate': ['OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE'],
  ...signalAliases('logs'),
  ...signalAliases('traces'),
  'otlp.resource_attributes': ['OTEL_RESOURCE_ATTRIBUTES'],
  'otlp.service_name': ['OTEL_SERVICE_NAME'],
  'otlp.sdk_disabled': ['OTEL_SDK_DISABLED'],
  'otlp.logs_exporter': ['OTEL_LOGS_EXPORTER'],
  'otlp.traces_exporter': ['OTEL_TRACES_EXPORTER'],
};

/** OTEL_EXPORTER_OTLP_<SIGNAL>_* variables of the per-signal otlp keys. */
function signalAliases(signal: 'logs' | 'traces'): Record<string, string[]> {
  const v = `OTEL_EXPORTER_OTLP_${signal.toUpperCase()}`;
  const out: Record<string, string[]> = {};
  for (const [key, suffix] of [
    ['protocol', 'PROTOCOL'],
    ['headers', 'HEADERS'],
    ['headers_file', 'HEADERS_FILE'],
    ['compression', 'COMPRESSION'],
    ['timeout_seconds', 'TIMEOUT'],
    ['certificate', 'CERTIFICATE'],
    ['client_key', 'CLIENT_KEY'],
    ['client_certificate', 'CLIENT_CERTIFICATE'],
  ] as const)
    out[`otlp.${signal}_${key}`] = [`${v}_${suffix}`];
  return out;
}

interface ZodInternals {
  _zod: {
    def: {
      type: string;
      innerType?: z.ZodType;
      in?: z.ZodType;
      element?: z.ZodType;
      defaultValue?: unknown;
      shape?: Record<string, z.ZodType>;
    };
  };
  description?: string;
  options?: readonly string[];
}

function internals(t: z.ZodType): ZodInternals {
  return t;
}

/** Enumerates every configurable key of the schema (the config reference comes from this). */
export function listLeaves(schema: z.ZodType = configSchema, prefix: string[] = []): LeafInfo[] {
  const out: LeafInfo[] = [];
  let t = schema;
  let description = internals(t).description ?? '';
  let defaultValue: unknown = undefined;
  // unwrap default / prefault / optional wrappers
  for (;;) {
    const def = internals(t)._zod.def;
    if (def.type === 'default' || def.type === 'prefault') {
      if (def.type === 'default') defaultValue = def.defaultValue;
      t = def.innerType as z.ZodType;
    } else if (def.type === 'optional' || def.type === 'nullable') {
      t = def.innerType as z.ZodType;
    } else if (def.type === 'pipe') {
      t = def.in as z.ZodType;
    } else break;
    description ||= internals(t).description ?? '';
  }
  const def = internals(t)._zod.def;
  if (def.type === 'object' && def.shape) {
    for (const [key, child] of Object.entries(def.shape))
      out.push(...listLeaves(child, [...prefix, key]));
    return out;
  }
  let kind: LeafKind = 'other';
  let enumValues: readonly string[] | undefined;
  if (def.type === 'string') kind = 'string';
  else if (def.type === 'number') kind = 'number';
  else if (def.type === 'boolean') kind = 'boolean';
  else if (def.type === 'enum') {
    kind = 'enum';
    enumValues = internals(t).options;
  } else if (def.type === 'array') kind = 'string[]';
  else if (def.type === 'record') kind = 'record';
  const dotted = prefix.join('.');
  out.push({
    path: prefix,
    kind,
    description,
    defaultValue:
      typeof defaultValue === 'function' ? (defaultValue as () => unknown)() : defaultValue,
    enumValues,
    env: 'HARBORMASTER_' + prefix.join('_').toUpperCase(),
    flag: '--' + prefix.join('-').replaceAll('_', '-'),
    aliases: ENV_ALIASES[dotted] ?? [],
  });
  return out;
}

/** Converts a string from the environment or a flag to the type the key expects. */
export function coerce(kind: LeafKind, raw: string): unknown {
  switch (kind) {
    case 'number': {
      const n = Number(raw.trim());
      return raw.trim() !== '' && Number.isFinite(n) ? n : raw;
    }
    case 'boolean': {
      const v = raw.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(v)) return true;
      if (['0', 'false', 'no', 'off', ''].includes(v)) return false;
      return raw;
    }
    case 'string[]':
      return raw.trim() === ''
        ? []
        : raw
            .split(',')
            .map((s) => s.trim())
            .filter((s) => s !== '');
    case 'record': {
      // OTEL_EXPORTER_OTLP_HEADERS style: k1=v1,k2=v2 (values URL-encoded)
      const rec: Record<string, string> = {};
      for (const part of raw.split(',')) {
        if (part.trim() === '') continue;
        const eq = part.indexOf('=');
        if (eq <= 0) return raw;
        const k = safeDecode(part.slice(0, eq).trim());
        rec[k] = safeDecode(part.slice(eq + 1).trim());
      }
      return rec;
    }
    default:
      return raw;
  }
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export interface ConfigProblem {
  path: string;
  message: string;
  source?: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: ConfigProblem[]) {
    super(
      'Invalid configuration:\n' +
        problems
          .map(
            (p) =>
              `  - ${p.path || '(root)'}: ${p.message}${p.source ? ` (from ${p.source})` : ''}`,
          )
          .join('\n'),
    );
    this.name = 'ConfigError';
  }
}

export interface LoadOptions {
  /** Path of the YAML file, or undefined for none. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Flags already split into key → raw value (key without leading dashes, e.g. 'state-dir'). */
  flags?: Record<string, string>;
}

export interface LoadedConfig {
  config: Config;
  /** Where each explicitly-set key came from (dotted path → 'file', 'env VAR', 'flag --x'). */
  sources: Record<string, string>;
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let cur = target;
  for (const key of path.slice(0, -1)) {
    const next = cur[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) cur[key] = {};
    cur = cur[key] as Record<string, unknown>;
  }
  cur[path[path.length - 1] as string] = value;
}

function collectFileSources(
  value: unknown,
  prefix: string[],
  out: Record<string, string>,
  file: string,
): void {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) collectFileSources(v, [...prefix, k], out, file);
  } else if (prefix.length > 0) out[prefix.join('.')] = `file ${file}`;
}

/** Parses a YAML config file; problems are returned, not thrown. */
export function readConfigFile(file: string, problems: ConfigProblem[]): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    problems.push({
      path: '',
      message: `cannot read config file ${file}: ${(err as Error).message}`,
    });
    return {};
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    for (const e of doc.errors)
      problems.push({ path: '', message: `YAML syntax error in ${file}: ${e.message}` });
    return {};
  }
  const data: unknown = doc.toJS();
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    problems.push({ path: '', message: `expected a mapping of settings at the top of ${file}` });
    return {};
  }
  return data as Record<string, unknown>;
}

/**
 * Loads the configuration: flag beats environment, which beats the file, which beats the default.
 * Throws ConfigError listing every problem with its path.
 */
export function loadConfig(opts: LoadOptions = {}): LoadedConfig {
  const env = opts.env ?? process.env;
  const flags = { ...(opts.flags ?? {}) };
  const problems: ConfigProblem[] = [];
  const sources: Record<string, string> = {};
  const merged: Record<string, unknown> = opts.file ? readConfigFile(opts.file, problems) : {};
  if (opts.file) collectFileSources(merged, [], sources, opts.file);

  const leaves = listLeaves();
  const known = new Set<string>();
  for (const leaf of leaves) {
    const dotted = leaf.path.join('.');
    const flagName = leaf.flag.slice(2);
    known.add(flagName);
    let raw: string | undefined;
    let source: string | undefined;
    if (flags[flagName] !== undefined) {
      raw = flags[flagName];
      source = `flag ${leaf.flag}`;
    } else if (env[leaf.env] !== undefined) {
      raw = env[leaf.env];
      source = `env ${leaf.env}`;
    } else {
      for (const alias of leaf.aliases) {
        const v = env[alias];
        if (v !== undefined && v !== '') {
          raw = v;
          source = `env ${alias}`;
          break;
        }
      }
    }
    if (raw === undefined || source === undefined) continue;
    let value = coerce(leaf.kind, raw);
    if (
      /^otlp\.(\w+_)?timeout_seconds$/.test(dotted) &&
      source.startsWith('env OTEL_') &&
      typeof value === 'number'
    )
      value = value / 1000; // the standard variables are in milliseconds
    setPath(merged, leaf.path, value);
    sources[dotted] = source;
  }
  for (const name of Object.keys(flags)) {
    if (!known.has(name))
      problems.push({ path: '', message: `unknown flag --${name}`, source: 'command line' });
  }

  const result = configSchema.safeParse(merged);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const path = issue.path.map(String).join('.');
      let message = issue.message;
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) {
          const full = path ? `${path}.${key}` : key;
          problems.push({ path: full, message: 'unknown setting', source: sources[full] });
        }
        continue;
      }
      if (issue.code === 'invalid_value' && 'values' in issue)
        message = `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
      const got = valueAt(merged, issue.path);
      if (got !== undefined && (typeof got !== 'object' || got === null))
        message += `, got ${isSecretPath(issue.path) ? SECRET_MASK : maskSecretsInString(JSON.stringify(got).slice(0, 200))}`;
      problems.push({ path, message, source: findSource(sources, path) });
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  if (!result.success) throw new ConfigError([{ path: '', message: 'invalid configuration' }]);
  return { config: result.data, sources };
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = root;
  for (const key of path) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return cur;
}

function findSource(sources: Record<string, string>, path: string): string | undefined {
  let p = path;
  while (p) {
    if (sources[p]) return sources[p];
    const dot = p.lastIndexOf('.');
    if (dot < 0) break;
    p = p.slice(0, dot);
  }
  return undefined;
}
