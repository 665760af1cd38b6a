/**
 * The HTTP(S) listener: the only place that owns client sockets. Why it is written this way:
 *
 * - Clients must never exhaust the agent. Node closes nothing that sends nothing (its header
 *   and request timeouts start with the first byte), so one sweep closes every connection whose
 *   byte counters have not moved for idle_timeout_seconds: before the first request, during a
 *   stalled TLS handshake, between keep-alive requests or while a response is not being read.
 * - Connections are capped at min(max_connections, open-files limit − reserved_descriptors), so
 *   the descriptors the agent needs for log files, cgroup files and exports stay free. At the
 *   cap, the connection quiet the longest makes room (a scraper that sends its request at once is
 *   never the quietest); when none has been quiet for a second, the new one is refused.
 * - TLS material is re-read when its files change (checked at most once a second, before a
 *   handshake starts), so rotated certificates are served without a restart; a half-written
 *   pair keeps the old context and is retried.
 * - Failures are counted, not logged per request: one log line per distinct reason.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Counter, Gauge, type Registry } from 'prom-client';
import { OnceLogger, type Logger } from '../util/logger.js';
import {
  clientAuthOptions,
  clientCertVerdict,
  secureContextOptions,
  tlsFilesStamp,
  type TlsSettings,
  type WebConfig,
} from './web-config.js';

export interface HttpLimits {
  idleTimeoutMs: number;
  headerTimeoutMs: number;
  requestTimeoutMs: number;
  maxConnections: number;
  reservedDescriptors: number;
}

export interface HttpListenerOptions {
  host: string;
  port: number;
  handler: http.RequestListener;
  web: WebConfig;
  limits: HttpLimits;
  logger: Logger;
  registry: Registry;
  /** Open-files soft limit; default: read from /proc/self/limits. */
  openFilesLimit?: number;
}

interface Conn {
  socket: Socket;
  read: number;
  written: number;
  /** When the byte counters last moved (ms). */
  changedAt: number;
}

/** The soft RLIMIT_NOFILE of this process, or undefined when it cannot be read. */
export function openFilesLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (!m?.[1] || m[1] === 'unlimited') return undefined;
    return Number(m[1]);
  } catch {
    return undefined;
  }
}

/** Reason label of a failed TLS handshake (bounded set). */
export function handshakeFailureReason(err: NodeJS.ErrnoException): string {
  const code = err.code ?? '';
  const text = `${code} ${err.message}`.toUpperCase();
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return 'timeout';
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'reset';
  if (text.includes('PEER_DID_NOT_RETURN_A_CERTIFICATE')) return 'no_client_certificate';
  if (text.includes('CERTIFICATE') || text.includes('UNKNOWN_CA') || text.includes('VERIFY'))
    return 'client_certificate';
  if (text.includes('VERSION') || text.includes('PROTOCOL') || text.includes('HTTP_REQUEST'))
    return 'protocol';
  return 'other';
}

const QUIET_ENOUGH_TO_EVICT_MS = 1000;

export class HttpListener {
  readonly server: http.Server | https.Server;
  readonly tlsEnabled: boolean;
  private tls: TlsSettings | undefined;
  private tlsStamp = '';
  private tlsCheckedAt = 0;
  private limits: HttpLimits;
  private cap: number;
  private readonly conns = new Map<Socket, Conn>();
  private sweeper: NodeJS.Timeout | undefined;
  private capCheckedAt = 0;
  private readonly once: OnceLogger;
  private readonly m: {
    connections: Gauge;
    closed: Counter<'reason'>;
    handshakes: Counter<'reason'>;
    certReloads: Counter<'result'>;
    cap: Gauge;
  };

  constructor(private readonly o: HttpListenerOptions) {
    this.limits = o.limits;
    this.once = new OnceLogger(o.logger);
    this.tls = o.web.tls;
    this.tlsEnabled = this.tls !== undefined;
    const registers = [o.registry];
    this.m = {
      connections: new Gauge({
        name: 'harbormaster_http_connections',
        help: 'Client connections open on the HTTP server.',
        registers,
        collect: () => this.m.connections.set(this.conns.size),
      }),
      closed: new Counter({
        name: 'harbormaster_http_connections_closed_total',
        help: 'Client connections the agent closed, by reason (idle_timeout, evicted: the quietest one at the connection cap, over_capacity: refused at the cap, client_certificate: rejected after the handshake).',
        labelNames: ['reason'],
        registers,
      }),
      handshakes: new Counter({
        name: 'harbormaster_http_tls_handshake_failures_total',
        help: 'Failed TLS handshakes, by reason (client_certificate, no_client_certificate, protocol, timeout, reset, other).',
        labelNames: ['reason'],
        registers,
      }),
      certReloads: new Counter({
        name: 'harbormaster_http_tls_certificate_reloads_total',
        help: 'Times the TLS certificate, key or client CA were re-read after changing on disk, by result.',
        labelNames: ['result'],
        registers,
      }),
      cap: new Gauge({
        name: 'harbormaster_http_max_connections',
        help: 'The connection cap in force: min(http.max_connections, open-files limit minus http.reserved_descriptors).',
        registers,
      }),
    };
    for (const r of ['idle_timeout', 'evicted', 'over_capacity'])
      this.m.closed.inc({ reason: r }, 0);
    this.cap = this.computeCap();
    const handler = o.handler;
    if (this.tls) {
      this.tlsStamp = tlsFilesStamp(this.tls);
      this.server = https.createServer(
        {
          ...secureContextOptions(this.tls),
          ...clientAuthOptions(this.tls),
          handshakeTimeout: this.limits.idleTimeoutMs,
        },
        handler,
      );
      for (const r of ['client_certificate', 'no_client_certificate', 'protocol'])
        this.m.handshakes.inc({ reason: r }, 0);
      this.server.on('tlsClientError', (err: NodeJS.ErrnoException, s: TLSSocket) => {
        // Node verifies a client certificate once OpenSSL is done and then resets the socket:
        // the verification error is on the socket, the error itself only says ECONNRESET
        const reason = s.authorizationError ? 'client_certificate' : handshakeFailureReason(err);
        this.m.handshakes.inc({ reason });
        this.once.warn(
          `tls:${reason}`,
          { reason, err: err.message },
          'A TLS handshake failed; further failures for this reason are only counted in harbormaster_http_tls_handshake_failures_total.',
        );
      });
      this.server.on('secureConnection', (s: TLSSocket) => {
        const t = this.tls;
        const verdict = t ? clientCertVerdict(t, s) : undefined;
        if (verdict) {
          this.m.closed.inc({ reason: 'client_certificate' });
          this.m.handshakes.inc({
            reason: verdict === 'client_san' ? 'client_certificate' : verdict,
          });
          s.destroy();
        }
      });
    } else {
      this.server = http.createServer(handler);
    }
    this.applyTimeouts();
    // before the TLS layer wraps the socket, so a renewed certificate serves this very handshake
    this.server.prependListener('connection', (socket: Socket) => this.onConnection(socket));
  }

  private computeCap(quiet = false): number {
    const limit = this.o.openFilesLimit ?? openFilesLimit();
    let cap = this.limits.maxConnections;
    if (limit !== undefined) {
      const room = limit - this.limits.reservedDescriptors;
      if (room < cap) {
        cap = Math.max(1, room);
        if (!quiet)
          this.o.logger.info(
            {
              openFilesLimit: limit,
              reservedDescriptors: this.limits.reservedDescriptors,
              maxConnections: this.limits.maxConnections,
              cap,
            },
            'Client connections are capped below http.max_connections to keep descriptors for the agent.',
          );
      }
    }
    this.m.cap.set(cap);
    return cap;
  }

  private applyTimeouts(): void {
    const l = this.limits;
    const s = this.server;
    // our sweep owns inactivity; Node's own timers would fight it
    s.timeout = 0;
    s.keepAliveTimeout = l.idleTimeoutMs;
    s.requestTimeout = l.requestTimeoutMs;
    s.headersTimeout = Math.min(l.headerTimeoutMs, l.requestTimeoutMs);
  }

  private onConnection(socket: Socket): void {
    const now = Date.now();
    if (this.tls && now - this.tlsCheckedAt >= 1000) {
      this.tlsCheckedAt = now;
      this.refreshTls(false);
    }
    if (this.conns.size >= this.cap) {
      let quietest: Conn | undefined;
      for (const c of this.conns.values()) {
        this.observe(c, now);
        if (!quietest || c.changedAt < quietest.changedAt) quietest = c;
      }
      if (quietest && now - quietest.changedAt >= QUIET_ENOUGH_TO_EVICT_MS) {
        this.m.closed.inc({ reason: 'evicted' });
        this.drop(quietest.socket);
      } else {
        this.m.closed.inc({ reason: 'over_capacity' });
        this.once.warn(
          'http:over_capacity',
          { cap: this.cap },
          'The HTTP connection cap is reached and every connection is busy; new connections are refused (counted in harbormaster_http_connections_closed_total).',
        );
        socket.destroy();
        return;
      }
    }
    this.conns.set(socket, { socket, read: 0, written: 0, changedAt: now });
    socket.once('close', () => this.conns.delete(socket));
    socket.on('error', () => undefined);
  }

  private drop(socket: Socket): void {
    this.conns.delete(socket);
    socket.destroy();
  }

  private observe(c: Conn, now: number): void {
    const r = c.socket.bytesRead;
    const w = c.socket.bytesWritten;
    if (r !== c.read || w !== c.written) {
      c.read = r;
      c.written = w;
      c.changedAt = now;
    }
  }

  private sweep(): void {
    const now = Date.now();
    // the limit can change under a running process (prlimit): follow it
    if (now - this.capCheckedAt >= 5000) {
      this.capCheckedAt = now;
      const cap = this.computeCap(true);
      if (cap !== this.cap) {
        this.o.logger.info({ cap, was: this.cap }, 'The HTTP connection cap changed.');
        this.cap = cap;
      }
    }
    for (const c of [...this.conns.values()]) {
      this.observe(c, now);
      if (now - c.changedAt >= this.limits.idleTimeoutMs) {
        this.m.closed.inc({ reason: 'idle_timeout' });
        this.drop(c.socket);
      }
    }
  }

  private startSweeper(): void {
    clearInterval(this.sweeper);
    const every = Math.min(1000, Math.max(100, Math.floor(this.limits.idleTimeoutMs / 10)));
    this.sweeper = setInterval(() => this.sweep(), every);
    this.sweeper.unref();
  }

  /** Re-reads the TLS files when they changed (or always when forced); keeps the old context on failure. */
  private refreshTls(force: boolean): boolean {
    const t = this.tls;
    if (!t || !(this.server instanceof https.Server)) return true;
    const stamp = tlsFilesStamp(t);
    if (!force && stamp === this.tlsStamp) return true;
    try {
      this.server.setSecureContext(secureContextOptions(t));
      this.tlsStamp = stamp;
      this.m.certReloads.inc({ result: 'success' });
      this.once.reset('tls:reload');
      this.o.logger.info(
        { certFile: t.certFile, keyFile: t.keyFile, clientCaFile: t.clientCaFile },
        'TLS certificate files changed on disk; new connections use them.',
      );
      return true;
    } catch (err) {
      this.m.certReloads.inc({ result: 'failure' });
      this.once.warn(
        'tls:reload',
        { err: (err as Error).message, certFile: t.certFile, keyFile: t.keyFile },
        'TLS certificate files changed but cannot be used (yet); the previous certificate is served until they can.',
      );
      return false;
    }
  }

  async listen(): Promise<string> {
    const { host, port } = this.o;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    this.startSweeper();
    const addr = this.server.address() as AddressInfo;
    return `${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  }

  /**
   * Applies a new web config and limits. Returns the settings that cannot change while running
   * (they keep their old values until a restart).
   */
  reload(web: WebConfig, limits: HttpLimits): string[] {
    const restartNeeded: string[] = [];
    const next = web.tls;
    if ((next === undefined) !== (this.tls === undefined)) {
      restartNeeded.push(
        `web_config_file: tls_server_config ${next ? 'added' : 'removed'} (the server keeps ${this.tls ? 'HTTPS' : 'plain HTTP'} until a restart)`,
      );
    } else if (next && this.tls) {
      const a = clientAuthOptions(this.tls);
      const b = clientAuthOptions(next);
      if (a.requestCert !== b.requestCert || a.rejectUnauthorized !== b.rejectUnauthorized) {
        restartNeeded.push(
          `web_config_file: tls_server_config.client_auth_type ${this.tls.clientAuth} → ${next.clientAuth} (TLS settings unchanged until a restart)`,
        );
      } else {
        const prev = this.tls;
        this.tls = next;
        if (!this.refreshTls(true)) this.tls = prev;
      }
    }
    const capBefore = this.cap;
    this.limits = limits;
    this.applyTimeouts();
    this.cap = this.computeCap();
    if (this.cap !== capBefore)
      this.o.logger.info({ cap: this.cap }, 'The HTTP connection cap changed.');
    this.startSweeper();
    return restartNeeded;
  }

  /** Stops accepting, closes every connection. */
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
      for (const c of this.conns.values()) c.socket.destroy();
    });
  }
}
