// Issue 16: the event stream of a tcp:// daemon that vanishes silently (no FIN, no RST: a frozen
// network path) is noticed by the /_ping heartbeat and reconnected once the daemon is back.
import net from 'node:net';
import { afterAll, expect, it } from 'vitest';
import {
  describeDocker,
  getDocker,
  runContainer,
  startAgent,
  TEST_IMAGE,
  uniqueName,
  waitFor,
  type AgentProcess,
} from './harness/index.js';

/** A TCP proxy on 127.0.0.1 to the private dockerd's unix socket that can be frozen. */
async function freezableProxy(socketPath: string) {
  let frozen = false;
  const pairs = new Set<{ a: net.Socket; b?: net.Socket }>();
  const server = net.createServer((a) => {
    const pair: { a: net.Socket; b?: net.Socket } = { a };
    pairs.add(pair);
    a.on('error', () => undefined);
    a.on('close', () => {
      pairs.delete(pair);
      pair.b?.destroy();
    });
    if (frozen) {
      a.pause(); // accepted, never answered
      return;
    }
    const b = net.connect(socketPath);
    pair.b = b;
    b.on('error', () => a.destroy());
    b.on('close', () => a.destroy());
    a.pipe(b);
    b.pipe(a);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    /** Every byte stops, in both directions, on every connection; nothing is closed. */
    freeze() {
      frozen = true;
      for (const { a, b } of pairs) {
        a.unpipe();
        b?.unpipe();
        a.pause();
        b?.pause();
      }
    },
    /** The daemon is back: new connections work; the frozen ones are dropped. */
    thaw() {
      frozen = false;
      for (const { a, b } of [...pairs]) {
        a.destroy();
        b?.destroy();
      }
    },
    async close() {
      for (const { a, b } of pairs) {
        a.destroy();
        b?.destroy();
      }
      await new Promise((r) => server.close(r));
    },
  };
}

describeDocker('tcp:// daemon that vanishes silently (issue 16)', () => {
  let agent: AgentProcess | undefined;
  let proxy: Awaited<ReturnType<typeof freezableProxy>> | undefined;
  afterAll(async () => {
    await agent?.stop();
    await proxy?.close();
  });

  it('an idle event stream is noticed by the heartbeat, reported, and reconnected', async () => {
    const d = getDocker();
    proxy = await freezableProxy(d.host.replace(/^unix:\/\//, ''));
    agent = await startAgent({
      dockerHost: `tcp://127.0.0.1:${proxy.port}`,
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: '',
        HARBORMASTER_LOGS_ENABLED: 'false',
        HARBORMASTER_DOCKER_HEARTBEAT_SECONDS: '1',
        HARBORMASTER_DOCKER_HEARTBEAT_TIMEOUT_SECONDS: '1',
        HARBORMASTER_DOCKER_REQUEST_TIMEOUT_SECONDS: '2',
        HARBORMASTER_DOCKER_RECONNECT_MAX_BACKOFF_SECONDS: '1',
      },
    });
    const a = agent;
    await waitFor(async () => (await a.get('/readyz')).status === 200, 30_000, 100, 'ready');

    proxy.freeze();
    await waitFor(async () => (await a.get('/readyz')).status === 503, 15_000, 100, 'not ready');
    const rec = await a.waitForLog(
      (r) => /did not answer \/_ping/.test(String(r.err ?? r.msg)),
      5000,
    );
    expect(String(rec.err)).toContain(`tcp://127.0.0.1:${proxy.port}`);
    expect((await a.get('/metrics')).text).toMatch(/harbormaster_docker_up 0/);

    // While the path is frozen the daemon goes on; the agent catches up after reconnecting.
    const name = uniqueName('hb');
    await runContainer(['-d', '--name', name, TEST_IMAGE, 'sleep', '60']);
    proxy.thaw();
    await waitFor(async () => (await a.get('/readyz')).status === 200, 20_000, 100, 'ready again');
    await waitFor(
      async () => (await a.get('/containers')).text.includes(name),
      10_000,
      100,
      'the container started during the freeze',
    );
    expect((await a.get('/metrics')).text).toMatch(/harbormaster_docker_reconnects_total [1-9]/);
    await d.docker(['rm', '-f', name]);
  }, 120_000);
});
