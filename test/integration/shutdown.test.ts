// SIGTERM stops the agent cleanly within 10 s even when the OTLP receiver hangs mid-export.
import net from 'node:net';
import { expect, it } from 'vitest';
import {
  TEST_IMAGE,
  describeDocker,
  getDocker,
  runContainer,
  startAgent,
  waitFor,
} from './harness/index.js';

describeDocker('shutdown', () => {
  it('exits 0 within 10 s while an export to a hanging receiver is in flight', async () => {
    const sockets = new Set<net.Socket>();
    let received = 0;
    const hanging = net.createServer((s) => {
      sockets.add(s); // accept, read, never answer
      s.on('data', (b: Buffer) => (received += b.length));
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r));
    const port = (hanging.address() as net.AddressInfo).port;
    try {
      const agent = await startAgent({
        dockerHost: getDocker().host,
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` },
      });
      await waitFor(async () => (await agent.get('/readyz')).status === 200, 15_000, 100, 'ready');
      await runContainer(['--rm', TEST_IMAGE, 'sh', '-c', 'echo a line to ship; exit 3'], {
        allowFailure: true,
      });
      await waitFor(
        () => received > 0,
        15_000,
        50,
        'an export request to reach the hanging receiver',
      );
      const exit = await agent.stop('SIGTERM', 20_000);
      expect(exit.code).toBe(0);
      expect(exit.ms).toBeLessThan(10_000);
    } finally {
      for (const s of sockets) s.destroy();
      hanging.close();
    }
  });
});
