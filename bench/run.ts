// `npm run bench [-- --quick | --smoke]`: runs every benchmark, prints tables with baselines and
// ratios, and writes machine-readable results to bench/results/latest.json. `--quick` (about two
// minutes) gives figures worth comparing; `--smoke` (CI, about a minute) only shows that
// every benchmark still runs end to end: the slow ones (real containers, logs) run tiny sizes.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { printLogsDeps, runLogsDepsBench } from './logs-deps.js';
import { runLogsBench } from './logs-throughput.js';
import { runMetricsBench } from './metrics-collection.js';
import { runPatternsBench } from './patterns.js';
import { runCompressionBench } from './metrics-compression.js';
import { runRealContainersBench } from './real-containers.js';
import { runSecurityBench } from './security-posture.js';
import { runStatusBench } from './status-page.js';

const smoke = process.argv.includes('--smoke');
const quick = smoke || process.argv.includes('--quick');
const tag = smoke ? '-smoke' : quick ? '-quick' : '';
const only = process.argv
  .find((a) => a.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',');
const want = (name: string): boolean => !only || only.includes(name);

const results: Record<string, unknown> = {
  date: new Date().toISOString(),
  quick,
  smoke,
  machine: {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
  },
};

if (want('metrics'))
  results.metricsCollection = await runMetricsBench({
    quick,
    ...(smoke ? { rounds: 1, sizes: [200] } : {}),
  });
if (want('compression'))
  results.metricsCompression = await runCompressionBench({
    quick,
    ...(smoke ? { containers: 200 } : {}),
  });
if (want('real')) results.realContainers = await runRealContainersBench({ quick, smoke });
if (want('logs')) results.logs = await runLogsBench({ quick, smoke });
if (want('logs-deps')) {
  const r = runLogsDepsBench({ quick });
  printLogsDeps(r);
  results.logsDeps = r;
}
if (want('patterns')) results.patterns = runPatternsBench({ quick });
if (want('security'))
  results.securityPosture = await runSecurityBench({ quick, ...(smoke ? { rounds: 1 } : {}) });
if (want('status'))
  results.statusPage = await runStatusBench({ quick, ...(smoke ? { rounds: 1 } : {}) });

const dir = fileURLToPath(new URL('../../bench/results/', import.meta.url));
mkdirSync(dir, { recursive: true });
writeFileSync(`${dir}/latest${tag}.json`, JSON.stringify(results, null, 2) + '\n');
process.stdout.write(`\nresults written to bench/results/latest${tag}.json\n`);
