// Issue 16 (HTTP part) through the built agent: 2,000 connections that send nothing, against an
// agent whose open-files limit is 1,024 (prlimit on the running process). Connections are capped
// below the limit minus the reserved descriptors, idle ones are closed within the idle timeout,
// the agent never runs out of descriptors, and a scrape succeeds meanwhile.
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  describeDocker,
  exec,
  getDocker,
  startAgent,
  waitFor,
  type AgentProcess,
} from './harness/index.js';

const IDLE_SECONDS = 5;
const LIMIT = 1024;
const RESERVED = 256;
const CLIENTS = 2000;

const metric = (text: string, name: string): number => {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
};

describeDocker('HTTP bounds under a descriptor limit (issue 16)', () => {
  let agent: AgentProcess;

  beforeAll(async () => {
    agent = await startAgent({
      dockerHost: getDocker().host,
      args: [
        '--logs-enabled',
        'false',
        '--http-idle-timeout-seconds',
        String(IDLE_SECONDS),
        '--http-max-connections',
        '5000',
        '--http-reserved-descriptors',
        String(RESERVED),
      ],
    });
    const r = await exec('prlimit', ['--pid', String(agent.pid), `--nofile=${LIMIT}:${LIMIT}`]);
    expect(r.code, r.stderr).toBe(0);
  });

  afterAll(async () => {
    await agent?.stop();
  });

  it('closes 2,000 idle connections within the idle timeout and serves a scrape meanwhile', async () => {
    // the agent follows the new limit: cap = 1,024 - 256
    await waitFor(
      async () =>
        metric((await agent.get('/metrics')).text, 'harbormaster_http_max_connections') ===
        LIMIT - RESERVED,
      15_000,
      250,
      'the connection cap to follow the open-files limit',
    );
    // how long each connection stayed open, from its connect to its close (connects beyond the
    // listen backlog are retried by the kernel for seconds: their time starts when they connect)
    const openFor: number[] = [];
    let finished = 0;
    const fds = (): number => readdirSync(`/proc/${agent.pid}/fd`).length;
    const idleFds = fds();
    const sockets: net.Socket[] = [];
    for (let i = 0; i < CLIENTS; i++) {
      // in bursts of 100: beyond the listen backlog the kernel would hold connections the
      // agent never saw (the client believes it is connected, the agent cannot close it)
      if (i % 100 === 99) await new Promise((r) => setTimeout(r, 20));
      const s = net.connect(agent.port, '127.0.0.1');
      let connectedAt = 0;
      s.once('connect', () => (connectedAt = Date.now()));
      s.on('error', () => undefined);
      s.once('close', () => {
        finished++;
        if (connectedAt) openFor.push(Date.now() - connectedAt);
      });
      sockets.push(s);
    }
    let maxFds = 0;
    const sampleFds = (): void => {
      maxFds = Math.max(maxFds, fds());
    };
    const sampler = setInterval(sampleFds, 100);
    try {
      // a scrape gets in while the flood holds every slot (the agent's descriptors show the
      // slots taken; a few of its own may come and go meanwhile): the quietest connection makes
      // room
      await waitFor(
        () => fds() >= idleFds + (LIMIT - RESERVED) - 16,
        10_000,
        50,
        `the flood to hold every one of the ${LIMIT - RESERVED} connection slots`,
      );
      const scrape = await waitFor(
        async () => {
          const res = await agent.get('/metrics');
          return res.status === 200 ? res.text : undefined;
        },
        3000,
        100,
        'a scrape during the flood',
      );
      expect(scrape).toContain('harbormaster_build_info');
      expect((await agent.get('/healthz')).status).toBe(200);
      await waitFor(
        () => finished === CLIENTS,
        20_000,
        100,
        'every idle connection to be closed',
      ).catch(async (e: unknown) => {
        const m = (await agent.get('/metrics')).text;
        throw new Error(
          `${String(e)}; finished ${finished}, connected+closed ${openFor.length}; ` +
            m
              .split('\n')
              .filter((l) => l.startsWith('harbormaster_http_'))
              .join(' | '),
        );
      });
    } finally {
      clearInterval(sampler);
      for (const s of sockets) s.destroy();
    }
    expect(openFor.length).toBeGreaterThan(LIMIT - RESERVED);
    // closed by the idle timeout: measured from the client's connect, so it also holds the
    // agent's accept of a 2,000-connection flood (the sweep's clock starts at the accept), one
    // sweep (0.5 s here) and scheduling; 8.4 s was seen on a loaded 2-core machine against
    // 5 + 2 s. A connection the sweep missed stays open until the test destroys it (the wait for
    // every close above fails first).
    expect(Math.max(...openFor)).toBeLessThan(IDLE_SECONDS * 2 * 1000);
    expect(maxFds).toBeLessThan(LIMIT);
    const text = (await agent.get('/metrics')).text;
    const closedBy = (reason: string): number =>
      metric(text, `harbormaster_http_connections_closed_total\\{reason="${reason}"\\}`);
    expect(
      closedBy('idle_timeout') + closedBy('evicted') + closedBy('over_capacity'),
    ).toBeGreaterThanOrEqual(CLIENTS);
    expect(closedBy('idle_timeout')).toBeGreaterThan(0);
    expect(agent.stderr()).not.toMatch(/EMFILE/);
    expect(agent.exit).toBeUndefined();
  });
});
