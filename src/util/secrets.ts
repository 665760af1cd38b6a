// Secrets never printed: `config check`, configuration errors and the agent's own log lines
// pass through here. Three rules, applied to any object shape:
// - a field whose key names a secret (authorization, password, token, api_key, …) is masked;
// - every value of a `headers` map is masked (OTLP headers carry vendors' credentials under
//   names no list can know: x-honeycomb-team, dd-api-key, …); the header names stay visible;
// - inside any string: bearer/basic credentials, passwords in URLs and secret=value pairs.
import { Pattern } from './pattern.js';

export const SECRET_MASK = '***';

/** Keys whose values are secrets (also matched as the last segment: otlp.x-api-key). */
const SECRET_KEY =
  /(^|[._-])(authorization|password|passwd|pwd|secret|secrets|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|cookie|credentials?)$/i;

const IN_STRING: readonly Pattern[] = [
  Pattern.compile('(?<=\\b(?:[Bb]earer|BEARER|[Bb]asic|BASIC)\\s+)[A-Za-z0-9\\-._~+/]+=*'),
  Pattern.compile('(?<=\\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\\s:@/]*:)([^\\s@/]+)@'),
  Pattern.compile(
    '(?<=\\b[\\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey)\\s*[=:]\\s*)(?:"[^"]*"|\'[^\']*\'|[^\\s"\',;&]+)',
    { caseInsensitive: true },
  ),
];

/** Whether a key (one path segment, e.g. a header name) names a secret. */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** Whether the value at this dotted path is a secret (a secret key, or any header value). */
export function isSecretPath(path: readonly PropertyKey[]): boolean {
  const last = path[path.length - 1];
  if (typeof last === 'string' && isSecretKey(last)) return true;
  return path.slice(0, -1).some((k) => k === 'headers');
}

/** The string with credentials it visibly carries masked. */
export function maskSecretsInString(s: string): string {
  for (const p of IN_STRING) s = p.mask(s, SECRET_MASK).s;
  return s;
}

/**
 * A copy of `value` with secrets masked (see the header). Plain objects and arrays are copied;
 * other objects (Errors, Buffers) are left as they are except an Error's message.
 */
export function redactSecrets<T>(value: T): T {
  return walk(value, [], 0) as T;
}

function walk(v: unknown, path: PropertyKey[], depth: number): unknown {
  if (typeof v === 'string') {
    if (path.length > 0 && isSecretPath(path)) return v === '' ? v : SECRET_MASK;
    return maskSecretsInString(v);
  }
  if (typeof v !== 'object' || v === null || depth > 16) return v;
  if (path.length > 0 && isSecretPath(path) && !Array.isArray(v) && !isPlain(v)) return SECRET_MASK;
  if (Array.isArray(v)) return v.map((x, i) => walk(x, [...path, i], depth + 1));
  if (v instanceof Error) {
    // Same class and own properties (message, stack, code, cause…), strings masked.
    const copy = Object.create(Object.getPrototypeOf(v) as object) as Error;
    for (const k of Object.getOwnPropertyNames(v)) {
      const d = Object.getOwnPropertyDescriptor(v, k)!;
      if ('value' in d) d.value = walk(d.value, [...path, k], depth + 1);
      Object.defineProperty(copy, k, d);
    }
    return copy;
  }
  if (!isPlain(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    const p = [...path, k];
    if (isSecretPath(p) && (typeof x === 'number' || typeof x === 'bigint')) out[k] = SECRET_MASK;
    else out[k] = walk(x, p, depth + 1);
  }
  return out;
}

function isPlain(v: object): boolean {
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}
