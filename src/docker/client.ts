import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The newest Engine API version this client speaks; older daemons are used at their own version. */
export const MAX_API_VERSION = '1.51';
/** Engine 20.10. */
export const MIN_API_VERSION = '1.41';

export interface DockerEndpoint {
  /** Display form, e.g. unix:///var/run/docker.sock or tcp://127.0.0.1:2375. */
  url: string;
  socketPath?: string;
  host?: string;
  port?: number;
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer; verify: boolean };
}

export interface DockerClientOptions {
  /** unix:///path, tcp://host:port, or empty for the default socket. */
  host: string;
  tlsVerify?: boolean;
  certPath?: string;
  /** Fixed API version; empty/undefined negotiates from /_ping. */
  apiVersion?: string;
  requestTimeoutMs?: number;
}

/** A failure talking to the daemon, with a sentence an operator can act on. */
export class DockerError extends Error {
  constructor(
    message: string,
    /** A short, bounded cause for metrics and log-once keys. */
    readonly reason:
      | 'socket_missing'
      | 'permission_denied'
      | 'connection_refused'
      | 'timeout'
      | 'http_error'
      | 'protocol_error'
      | 'network_error'
      | 'not_found',
    readonly statusCode?: number,
  ) {
    super(message);
    this.name = 'DockerError';
  }
}

export function parseDockerHost(
  opts: Pick<DockerClientOptions, 'host' | 'tlsVerify' | 'certPath'>,
): DockerEndpoint {
  const raw = opts.host.trim() || 'unix:///var/run/docker.sock';
  if (raw.startsWith('unix://')) {
    const socketPath = raw.slice('unix://'.length);
    if (!socketPath.startsWith('/'))
      throw new Error(`DOCKER_HOST ${raw} is not valid: expected unix:///absolute/path`);
    return { url: raw, socketPath };
  }
  if (raw.startsWith('tcp://') || raw.startsWith('https://') || raw.startsWith('http://')) {
    let u: URL;
    try {
      u = new URL(raw.replace(/^tcp:/, 'http:'));
    } catch {
      throw new Error(`DOCKER_HOST ${raw} is not valid: expected tcp://host:port`);
    }
    const tlsWanted =
      opts.tlsVerify === true || raw.startsWith('https://') || Boolean(opts.certPath);
    const port = Number(u.port || (tlsWanted ? 2376 : 2375));
    const ep: DockerEndpoint = { url: raw, host: u.hostname.replace(/^\[|\]$/g, ''), port };
    if (tlsWanted) {
      const dir = opts.certPath || join(process.env.HOME ?? '/root', '.docker');
      const read = (f: string): Buffer | undefined => {
        try {
          return readFileSync(join(dir, f));
        } catch (err) {
          if (opts.tlsVerify)
            throw new Error(
              `cannot read ${join(dir, f)} for Docker TLS: ${(err as Error).message}`,
              { cause: err },
            );
          return undefined;
        }
      };
      ep.tls = {
        ca: read('ca.pem'),
        cert: read('cert.pem'),
        key: read('key.pem'),
        verify: opts.tlsVerify === true,
      };
    }
    return ep;
  }
  throw new Error(`DOCKER_HOST ${raw} is not supported: expected unix:///path or tcp://host:port`);
}

function compareVersions(a: string, b: string): number {
  const [a1 = 0, a2 = 0] = a.split('.').map(Number);
  const [b1 = 0, b2 = 0] = b.split('.').map(Number);
  return a1 - b1 || a2 - b2;
}

export interface StreamHandle {
  /** Resolves when the stream ends (daemon closed it or abort); rejects on error. */
  done: Promise<void>;
  abort(): void;
}

/**
 * A read-only Engine API client. It only issues GET requests: the agent never changes daemon state.
 */
export class DockerClient {
  readonly endpoint: DockerEndpoint;
  private version: string | undefined;
  private readonly fixedVersion: string | undefined;
  private readonly timeoutMs: number;
  private readonly agent: http.Agent;

  constructor(opts: DockerClientOptions) {
    this.endpoint = parseDockerHost(opts);
    this.fixedVersion = opts.apiVersion || undefined;
    this.timeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.agent = this.endpoint.tls
      ? new https.Agent({ keepAlive: true, maxSockets: 16 })
      : new http.Agent({ keepAlive: true, maxSockets: 16 });
  }

  /** The API version in use (after negotiate()). */
  get apiVersion(): string | undefined {
    return this.version;
  }

  /** Negotiates the API version from /_ping: the daemon's version, capped at ours. */
  async negotiate(signal?: AbortSignal): Promise<string> {
    if (this.fixedVersion) {
      this.version = this.fixedVersion;
      return this.version;
    }
    const res = await this.raw('/_ping', signal);
    const header = res.headers['api-version'];
    const serverVersion = Array.isArray(header) ? header[0] : header;
    if (!serverVersion || !/^\d+\.\d+$/.test(serverVersion)) {
      this.version = MIN_API_VERSION;
    } else {
      this.version =
        compareVersions(serverVersion, MAX_API_VERSION) > 0 ? MAX_API_VERSION : serverVersion;
    }
    return this.version;
  }

  /** GET a JSON document from a versioned API path such as `/containers/json`. */
  async get<T>(path: string, query?: Record<string, string>, signal?: AbortSignal): Promise<T> {
    if (!this.version) await this.negotiate(signal);
    const res = await this.raw(this.versioned(path, query), signal);
    try {
      return JSON.parse(res.body.toString('utf8')) as T;
    } catch {
      throw new DockerError(
        `the Docker daemon at ${this.endpoint.url} sent invalid JSON for ${path}`,
        'protocol_error',
      );
    }
  }

  private versioned(path: string, query?: Record<string, string>): string {
    const qs = query ? '?' + new URLSearchParams(query).toString() : '';
    return `/v${this.version ?? MIN_API_VERSION}${path}${qs}`;
  }

  private requestOptions(path: string, signal?: AbortSignal): https.RequestOptions {
    const ep = this.endpoint;
    const base: https.RequestOptions = {
      method: 'GET',
      path,
      agent: this.agent,
      signal,
      headers: { 'user-agent': 'harbormaster' },
    };
    // a unix socket has no host name; over TCP the Host header must stay the real one (TLS SNI)
    if (ep.socketPath)
      return { ...base, socketPath: ep.socketPath, headers: { ...base.headers, host: 'docker' } };
    const opts: https.RequestOptions = { ...base, host: ep.host, port: ep.port };
    if (ep.tls) {
      opts.ca = ep.tls.ca;
      opts.cert = ep.tls.cert;
      opts.key = ep.tls.key;
      opts.rejectUnauthorized = ep.tls.verify;
    }
    return opts;
  }

  private send(path: string, signal?: AbortSignal): http.ClientRequest {
    const opts = this.requestOptions(path, signal);
    return this.endpoint.tls ? https.request(opts) : http.request(opts);
  }

  /** Translates a socket-level error into a sentence naming the endpoint and what to do. */
  describeError(err: unknown): DockerError {
    if (err instanceof DockerError) return err;
    const e = err as NodeJS.ErrnoException;
    const where = this.endpoint.url;
    const sock = this.endpoint.socketPath;
    switch (e.code) {
      case 'ENOENT':
        return new DockerError(
          `the Docker socket ${sock ?? where} does not exist: is dockerd running, and is the socket mounted into the agent's container?`,
          'socket_missing',
        );
      case 'EACCES':
      case 'EPERM':
        return new DockerError(
          `permission denied on the Docker socket ${sock ?? where}: the agent needs read and write permission on it (run as root or as a member of the socket's group, usually "docker")`,
          'permission_denied',
        );
      case 'ECONNREFUSED':
        return new DockerError(
          sock
            ? `the Docker socket ${sock} refused the connection: dockerd is not running (stale socket)`
            : `nothing accepts connections at ${where}: is dockerd listening there (check DOCKER_HOST)?`,
          'connection_refused',
        );
      case 'ETIMEDOUT':
      case 'ECONNRESET':
      case 'EPIPE':
      case 'EHOSTUNREACH':
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
        return new DockerError(
          `cannot talk to the Docker daemon at ${where}: ${e.code} ${e.message}`,
          'network_error',
        );
      default:
        if (e.name === 'AbortError')
          return new DockerError(`request to ${where} was aborted`, 'timeout');
        return new DockerError(
          `cannot talk to the Docker daemon at ${where}: ${e.message}`,
          'network_error',
        );
    }
  }

  /**
   * GET /_ping within timeoutMs: the heartbeat of an idle event stream (whose connection cannot
   * carry another request). Rejects with a DockerError (reason timeout) when there is no answer.
   */
  async ping(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    await this.raw('/_ping', signal, timeoutMs);
  }

  private raw(
    path: string,
    signal?: AbortSignal,
    timeoutMs = this.timeoutMs,
  ): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const req = this.send(path, signal);
      // A timer, not only the socket idle timeout: a daemon that trickles bytes still times out.
      const timer = setTimeout(() => {
        req.destroy(
          new DockerError(
            `the Docker daemon at ${this.endpoint.url} did not answer ${path} within ${timeoutMs} ms`,
            'timeout',
          ),
        );
      }, timeoutMs);
      timer.unref();
      req.on('close', () => clearTimeout(timer));
      req.on('error', (err) => reject(this.describeError(err)));
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(this.describeError(err)));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            resolve({ status, headers: res.headers, body });
            return;
          }
          let detail = body.toString('utf8').slice(0, 500);
          try {
            const parsed = JSON.parse(detail) as { message?: string };
            if (parsed.message) detail = parsed.message;
          } catch {
            /* plain text body */
          }
          reject(
            new DockerError(
              `the Docker daemon at ${this.endpoint.url} answered ${status} for GET ${path}: ${detail.trim()}`,
              status === 404 ? 'not_found' : 'http_error',
              status,
            ),
          );
        });
      });
      req.end();
    });
  }

  /**
   * Opens a streaming GET (e.g. /events) and calls onLine for each newline-delimited JSON line.
   * `onOpen` runs once the daemon has answered with 200.
   */
  stream(
    path: string,
    query: Record<string, string> | undefined,
    onLine: (line: string) => void,
    onOpen?: () => void,
  ): StreamHandle {
    const controller = new AbortController();
    const done = (async () => {
      if (!this.version) await this.negotiate(controller.signal);
      await new Promise<void>((resolve, reject) => {
        const req = this.send(this.versioned(path, query), controller.signal);
        req.on('error', (err) => {
          if (controller.signal.aborted) resolve();
          else reject(this.describeError(err));
        });
        req.on('response', (res) => {
          const status = res.statusCode ?? 0;
          if (status !== 200) {
            res.resume();
            reject(
              new DockerError(
                `the Docker daemon at ${this.endpoint.url} answered ${status} for GET ${path}`,
                'http_error',
                status,
              ),
            );
            return;
          }
          onOpen?.();
          let buf = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            buf += chunk;
            let nl: number;
            while ((nl = buf.indexOf('\n')) >= 0) {
              const line = buf.slice(0, nl).trim();
              buf = buf.slice(nl + 1);
              if (line) onLine(line);
            }
          });
          res.on('error', (err) => {
            if (controller.signal.aborted) resolve();
            else reject(this.describeError(err));
          });
          res.on('close', () => resolve());
          res.on('end', () => resolve());
        });
        req.end();
      });
    })();
    return { done, abort: () => controller.abort() };
  }

  close(): void {
    this.agent.destroy();
  }
}
