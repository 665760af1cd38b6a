/**
 * The web configuration file in the Prometheus exporter-toolkit format, so files written for
 * node_exporter and friends work unchanged:
 *
 *   tls_server_config: { cert_file, key_file, client_ca_file, client_auth_type, min_version, … }
 *   http_server_config: { headers: { Strict-Transport-Security: …, … }, http2 }
 *   basic_auth_users: { alice: $2y$10$… }            # bcrypt hashes (`harbormaster hash-password`)
 *
 * Relative paths are resolved against the file's directory, as the toolkit does. Loading checks
 * everything a handshake would need (the certificate and key pair up, the client CA parses), so a
 * broken file is rejected at startup or on SIGHUP instead of failing each connection later.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import bcrypt from 'bcryptjs';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import type { ConfigProblem } from '../config/load.js';

/** Go's crypto/tls client auth policies, as named in exporter-toolkit files. */
export const CLIENT_AUTH_TYPES = [
  'NoClientCert',
  'RequestClientCert',
  'RequireAnyClientCert',
  'VerifyClientCertIfGiven',
  'RequireAndVerifyClientCert',
] as const;
export type ClientAuthType = (typeof CLIENT_AUTH_TYPES)[number];

const TLS_VERSIONS = {
  TLS10: 'TLSv1',
  TLS11: 'TLSv1.1',
  TLS12: 'TLSv1.2',
  TLS13: 'TLSv1.3',
} as const;
type GoTlsVersion = keyof typeof TLS_VERSIONS;

/** Go cipher suite names → OpenSSL names (TLS 1.2 and below; TLS 1.3 suites are not configurable, as in Go). */
const CIPHER_SUITES: Record<string, string> = {
  TLS_RSA_WITH_AES_128_CBC_SHA: 'AES128-SHA',
  TLS_RSA_WITH_AES_256_CBC_SHA: 'AES256-SHA',
  TLS_RSA_WITH_AES_128_GCM_SHA256: 'AES128-GCM-SHA256',
  TLS_RSA_WITH_AES_256_GCM_SHA384: 'AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: 'ECDHE-ECDSA-AES128-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: 'ECDHE-ECDSA-AES256-SHA',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: 'ECDHE-RSA-AES128-SHA',
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: 'ECDHE-RSA-AES256-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305: 'ECDHE-RSA-CHACHA20-POLY1305',
};

const CURVES: Record<string, string> = {
  CurveP256: 'P-256',
  CurveP384: 'P-384',
  CurveP521: 'P-521',
  X25519: 'X25519',
};

/** The response headers exporter-toolkit lets a web config set (and the values it accepts). */
const HEADERS = {
  'Strict-Transport-Security': z.string().min(1),
  'X-Content-Type-Options': z.literal('nosniff'),
  'X-Frame-Options': z.enum(['deny', 'sameorigin', 'DENY', 'SAMEORIGIN']),
  'X-XSS-Protection': z.string().min(1),
  'Content-Security-Policy': z.string().min(1),
} as const;

const BCRYPT_RE = /^\$2[aby]?\$\d\d\$[./A-Za-z0-9]{53}$/;

/**
 * Why a bcrypt hash cannot be checked, or undefined when it can. A cost outside 4..31 or the
 * ancient `$2$` prefix would only fail at the first request (every login refused), so they are
 * rejected with the file instead.
 */
function bcryptProblem(hash: string): string | undefined {
  if (!BCRYPT_RE.test(hash))
    return 'expected a bcrypt hash (make one with harbormaster hash-password)';
  if (hash.startsWith('$2$'))
    return 'the bcrypt version $2$ is not supported; expected $2a$, $2b$ or $2y$ (make one with harbormaster hash-password)';
  const cost = Number(hash.slice(4, 6));
  if (cost < 4 || cost > 31)
    return `bcrypt cost ${hash.slice(4, 6)} is outside 04..31, so no password can ever match (make one with harbormaster hash-password)`;
  return undefined;
}

const tlsVersion = z.enum(Object.keys(TLS_VERSIONS) as [GoTlsVersion, ...GoTlsVersion[]]);

const fileSchema = z.strictObject({
  tls_server_config: z
    .strictObject({
      cert_file: z.string().optional(),
      key_file: z.string().optional(),
      cert: z.string().optional(),
      key: z.string().optional(),
      client_auth_type: z.enum(CLIENT_AUTH_TYPES).optional(),
      client_ca_file: z.string().optional(),
      client_allowed_sans: z.array(z.string().min(1)).optional(),
      min_version: tlsVersion.optional(),
      max_version: tlsVersion.optional(),
      cipher_suites: z
        .array(
          z.string().refine((s) => s in CIPHER_SUITES, {
            error: (iss) => `unknown cipher suite ${JSON.stringify(iss.input)}`,
          }),
        )
        .optional(),
      curve_preferences: z
        .array(
          z.string().refine((s) => s in CURVES, {
            error: (iss) =>
              `unknown curve ${JSON.stringify(iss.input)}; expected one of ${Object.keys(CURVES).join(', ')}`,
          }),
        )
        .optional(),
      prefer_server_cipher_suites: z.boolean().optional(),
    })
    .nullish(),
  http_server_config: z
    .strictObject({
      http2: z.boolean().optional(),
      headers: z.strictObject(HEADERS).partial().optional(),
    })
    .nullish(),
  basic_auth_users: z
    .record(
      z.string().min(1),
      z.string().superRefine((hash, c) => {
        const message = bcryptProblem(hash);
        if (message) c.addIssue({ code: 'custom', message });
      }),
    )
    .nullish(),
});

export interface TlsSettings {
  certFile?: string;
  keyFile?: string;
  /** Inline PEM (`cert`, `key`), used when the *_file form is absent. */
  certPem?: string;
  keyPem?: string;
  clientCaFile?: string;
  clientAuth: ClientAuthType;
  /** Subject alternative names a client certificate must carry one of (empty: any). */
  allowedSans: string[];
  minVersion: tls.SecureVersion;
  maxVersion?: tls.SecureVersion;
  ciphers?: string;
  ecdhCurve?: string;
  honorCipherOrder: boolean;
}

export interface WebConfig {
  /** The file it came from ('' for none). */
  file: string;
  tls?: TlsSettings;
  /** user → bcrypt hash; empty: no authentication. */
  users: Record<string, string>;
  headers: Record<string, string>;
}

export const EMPTY_WEB_CONFIG: WebConfig = { file: '', users: {}, headers: {} };

/**
 * Reads and validates a web config file. Problems are pushed (paths prefixed with `prefix`, e.g.
 * `web_config_file`), never thrown; undefined when there was any.
 */
export function loadWebConfig(
  file: string,
  problems: ConfigProblem[],
  prefix = 'web_config_file',
): WebConfig | undefined {
  if (file === '') return EMPTY_WEB_CONFIG;
  const at = (p: string): string => (p ? `${prefix}: ${p}` : prefix);
  const before = problems.length;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    problems.push({ path: at(''), message: `cannot read ${file}: ${(err as Error).message}` });
    return undefined;
  }
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    for (const e of doc.errors)
      problems.push({ path: at(''), message: `YAML syntax error in ${file}: ${e.message}` });
    return undefined;
  }
  const parsed = fileSchema.safeParse(doc.toJS() ?? {});
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const p = issue.path.map(String).join('.');
      if (issue.code === 'unrecognized_keys') {
        for (const k of issue.keys)
          problems.push({ path: at(p ? `${p}.${k}` : k), message: `unknown setting (in ${file})` });
      } else problems.push({ path: at(p), message: `${issue.message} (in ${file})` });
    }
    return undefined;
  }
  const data = parsed.data;
  const dir = path.dirname(path.resolve(file));
  const resolve = (p: string | undefined): string | undefined =>
    p === undefined || p === '' ? undefined : path.resolve(dir, p);

  let tlsSettings: TlsSettings | undefined;
  const t = data.tls_server_config;
  if (t) {
    const certFile = resolve(t.cert_file);
    const keyFile = resolve(t.key_file);
    const clientCaFile = resolve(t.client_ca_file);
    if (!certFile && !t.cert)
      problems.push({ path: at('tls_server_config.cert_file'), message: 'missing cert_file' });
    if (!keyFile && !t.key)
      problems.push({ path: at('tls_server_config.key_file'), message: 'missing key_file' });
    if (certFile && t.cert)
      problems.push({
        path: at('tls_server_config.cert'),
        message: 'set either cert or cert_file, not both',
      });
    if (keyFile && t.key)
      problems.push({
        path: at('tls_server_config.key'),
        message: 'set either key or key_file, not both',
      });
    // as in the toolkit: a client CA without an explicit policy means verified client certs
    const clientAuth: ClientAuthType =
      t.client_auth_type ?? (clientCaFile ? 'RequireAndVerifyClientCert' : 'NoClientCert');
    if (
      (clientAuth === 'VerifyClientCertIfGiven' || clientAuth === 'RequireAndVerifyClientCert') &&
      !clientCaFile
    )
      problems.push({
        path: at('tls_server_config.client_ca_file'),
        message: `client_auth_type ${clientAuth} needs client_ca_file`,
      });
    if (clientCaFile && (clientAuth === 'NoClientCert' || clientAuth === 'RequestClientCert'))
      problems.push({
        path: at('tls_server_config.client_auth_type'),
        message: `client_ca_file is set but client_auth_type ${clientAuth} never verifies client certificates; use RequireAndVerifyClientCert or VerifyClientCertIfGiven`,
      });
    const minVersion = TLS_VERSIONS[t.min_version ?? 'TLS12'];
    const maxVersion = t.max_version ? TLS_VERSIONS[t.max_version] : undefined;
    if (maxVersion && maxVersion < minVersion)
      problems.push({
        path: at('tls_server_config.max_version'),
        message: `max_version ${t.max_version} is below min_version ${t.min_version ?? 'TLS12'}`,
      });
    tlsSettings = {
      certFile,
      keyFile,
      certPem: t.cert,
      keyPem: t.key,
      clientCaFile,
      clientAuth,
      allowedSans: t.client_allowed_sans ?? [],
      minVersion,
      maxVersion,
      ciphers: t.cipher_suites?.map((c) => CIPHER_SUITES[c]).join(':'),
      ecdhCurve: t.curve_preferences?.map((c) => CURVES[c]).join(':'),
      honorCipherOrder: t.prefer_server_cipher_suites ?? false,
    };
    if (problems.length === before) {
      try {
        tls.createSecureContext(secureContextOptions(tlsSettings));
      } catch (err) {
        problems.push({
          path: at('tls_server_config'),
          message: `the certificate, key or client CA cannot be used: ${(err as Error).message}`,
        });
      }
    }
  }
  if (problems.length > before) return undefined;
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(data.http_server_config?.headers ?? {}))
    if (typeof v === 'string') headers[k] = v;
  return { file, tls: tlsSettings, users: { ...(data.basic_auth_users ?? {}) }, headers };
}

/** Reads the certificate files now (they may have been replaced since the last call). */
export function secureContextOptions(t: TlsSettings): tls.SecureContextOptions {
  return {
    cert: t.certFile ? readFileSync(t.certFile) : t.certPem,
    key: t.keyFile ? readFileSync(t.keyFile) : t.keyPem,
    ca: t.clientCaFile ? readFileSync(t.clientCaFile) : undefined,
    minVersion: t.minVersion,
    maxVersion: t.maxVersion,
    ciphers: t.ciphers,
    ecdhCurve: t.ecdhCurve,
    honorCipherOrder: t.honorCipherOrder,
  };
}

/** Identity of the files a TLS context was built from: when it changes, rebuild the context. */
export function tlsFilesStamp(t: TlsSettings): string {
  return [t.certFile, t.keyFile, t.clientCaFile]
    .map((f) => {
      if (!f) return '-';
      try {
        const s = statSync(f);
        return `${s.ino}:${s.size}:${s.mtimeMs}`;
      } catch {
        return 'missing';
      }
    })
    .join('|');
}

/** Server options for the client-certificate policy (checks Node cannot do in the handshake happen after it). */
export function clientAuthOptions(t: TlsSettings): {
  requestCert: boolean;
  rejectUnauthorized: boolean;
} {
  switch (t.clientAuth) {
    case 'NoClientCert':
      return { requestCert: false, rejectUnauthorized: false };
    case 'RequireAndVerifyClientCert':
      return { requestCert: true, rejectUnauthorized: true };
    default:
      return { requestCert: true, rejectUnauthorized: false };
  }
}

/**
 * After the handshake: the part of the policy the handshake itself does not enforce. Returns why
 * the connection must be closed, or undefined to keep it.
 */
export function clientCertVerdict(t: TlsSettings, socket: tls.TLSSocket): string | undefined {
  const cert = socket.getPeerCertificate();
  const present = cert !== null && typeof cert === 'object' && Object.keys(cert).length > 0;
  switch (t.clientAuth) {
    case 'RequireAnyClientCert':
      if (!present) return 'no_client_certificate';
      break;
    case 'VerifyClientCertIfGiven':
      if (present && !socket.authorized) return 'client_certificate';
      break;
    default:
  }
  if (t.allowedSans.length > 0 && present) {
    const sans = subjectAltNames(cert.subjectaltname ?? '');
    if (!t.allowedSans.some((a) => sans.includes(canonicalIp(a)))) return 'client_san';
  }
  return undefined;
}

/** An IPv6 address as Go prints it (`::1`, not `0:0:0:0:0:0:0:1`); anything else unchanged. */
function canonicalIp(s: string): string {
  if (isIPv6(s)) {
    try {
      return new URL(`http://[${s}]/`).hostname.slice(1, -1);
    } catch {
      return s;
    }
  }
  return s;
}

/**
 * The values of Node's `subjectaltname` string (`DNS:a, IP Address:0:0:0:0:0:0:0:1,
 * URI:"x\u002cy"`): Node quotes a value holding a comma or quote as a JSON string, so a SAN
 * cannot pose as two; IP addresses are compared in Go's form, as exporter-toolkit does.
 */
export function subjectAltNames(text: string): string[] {
  const out: string[] = [];
  const re = /([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/gy;
  let m: RegExpExecArray | null;
  while (re.lastIndex < text.length && (m = re.exec(text)) !== null) {
    const [, type = '', raw = ''] = m;
    let v = raw;
    if (raw.startsWith('"')) {
      try {
        v = String(JSON.parse(raw));
      } catch {
        v = raw;
      }
    }
    out.push(type === 'IP Address' ? canonicalIp(v) : v);
  }
  return out;
}

export type AuthResult = 'ok' | 'missing' | 'invalid' | 'busy';

// compared against when the user is unknown and no user is configured (auth is off then)
const DUMMY_HASH = '$2a$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi';

/** The cost factor of a bcrypt hash (`$2b$12$…` → 12), or 0 when it has none. */
function bcryptCost(hash: string): number {
  const m = /^\$2[aby]?\$(\d\d)\$/.exec(hash);
  return m ? Number(m[1]) : 0;
}
const CACHE_MAX = 256;
/** bcrypt compares at once, and waiting behind them; beyond that, answer 'busy' at once. */
const COMPARES_RUNNING = 2;
const COMPARES_WAITING = 32;

/**
 * Basic auth against bcrypt hashes. bcrypt is slow on purpose (tens of milliseconds): verified
 * credentials are remembered (by a SHA-256 of user, password and hash, like the toolkit), so a
 * scraper's every request does not pay it; the async compare keeps the event loop responsive.
 * Compares run two at a time with a short queue: a flood of wrong passwords costs at most two
 * compares' worth of CPU and gets 'busy', while remembered credentials never wait.
 */
export class BasicAuth {
  private readonly ok = new Set<string>();
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  /**
   * What an unknown user's password is compared against: the configured hash with the highest
   * cost, so a wrong user name takes as long as a wrong password of the most expensive user and
   * user names do not leak through timing (a fixed cost-10 dummy answered faster than cost-12
   * hashes). The result of that compare is never trusted: an unknown user is always 'invalid'.
   */
  private readonly unknownUserHash: string;
  constructor(private readonly users: Readonly<Record<string, string>>) {
    let best = DUMMY_HASH;
    for (const hash of Object.values(users)) {
      if (bcryptCost(hash) > bcryptCost(best) || best === DUMMY_HASH) best = hash;
    }
    this.unknownUserHash = best;
  }

  get enabled(): boolean {
    return Object.keys(this.users).length > 0;
  }

  async check(authorization: string | undefined): Promise<AuthResult> {
    if (!authorization || !/^basic /i.test(authorization)) return 'missing';
    const decoded = Buffer.from(authorization.slice(6).trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return 'invalid';
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const hash = Object.hasOwn(this.users, user) ? this.users[user] : undefined;
    const key = createHash('sha256')
      .update(user)
      .update('\0')
      .update(password)
      .update('\0')
      .update(hash ?? '')
      .digest('hex');
    if (hash !== undefined && this.ok.has(key)) return 'ok';
    if (this.running >= COMPARES_RUNNING) {
      if (this.waiting.length >= COMPARES_WAITING) return 'busy';
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    this.running++;
    let match: boolean;
    try {
      match = await bcrypt.compare(password, hash ?? this.unknownUserHash);
    } catch {
      // a hash bcrypt cannot use (loadWebConfig rejects those): no password matches it
      match = false;
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
    if (!match || hash === undefined) return 'invalid';
    if (this.ok.size >= CACHE_MAX) this.ok.clear();
    this.ok.add(key);
    return 'ok';
  }
}

/** A bcrypt hash for a web config's basic_auth_users (`harbormaster hash-password`). */
export function hashPassword(password: string, cost = 10): Promise<string> {
  return bcrypt.hash(password, cost);
}
