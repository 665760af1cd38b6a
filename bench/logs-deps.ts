/**
 * Logs export before/after the OpenTelemetry upgrade (issue 13 acceptance 6), measured in one run.
 *
 * Where the log path touches OpenTelemetry packages at all: the default OTLP/HTTP protobuf and the
 * gRPC exports encode with our own encoder (src/exporters/otlp-logs-encode.ts) and send with
 * node:http / @grpc/grpc-js, so the upgrade cannot change them. `OTEL_EXPORTER_OTLP_PROTOCOL=
 * http/json` serializes through `JsonLogsSerializer` of @opentelemetry/otlp-transformer: that is
 * what this bench compares, the installed 0.301 against 0.223.1 (the version before the upgrade,
 * installed side by side as the devDependency alias `otlp-transformer-0.223`). Both get the same
 * batches, built the way the exporter builds them (toSdkLogRecords), in alternating rounds so
 * load from elsewhere on the machine hits both alike; best of the rounds. The two outputs are
 * compared (parsed JSON) so the comparison is of the same work. The protobuf encoder of the
 * default path is timed on the same batches for reference.
 *
 *   npx tsx bench/logs-deps.ts [--quick] [--rounds=N]
 *   npm run bench -- --only=logs-deps
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isDeepStrictEqual } from 'node:util';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { JsonLogsSerializer as NewSerializer } from '@opentelemetry/otlp-transformer';
import { JsonLogsSerializer as OldSerializer } from 'otlp-transformer-0.223';
import { encodeLogsRequest } from '../src/exporters/otlp-logs-encode.js';
import { toSdkLogRecords } from '../src/exporters/otlp-logs.js';
import { newRecord } from '../src/logs/record.js';
import type { LogRecord, LogResource } from '../src/logs/types.js';

const require = createRequire(import.meta.url);
/** The version field of an installed package (by the name it is installed under). */
function versionOf(name: string): string {
  const main = require.resolve(name);
  let dir = path.dirname(main);
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === '@opentelemetry/otlp-transformer' && pkg.version) return pkg.version;
    } catch {
      // go up
    }
    const up = path.dirname(dir);
    if (up === dir) return 'unknown';
    dir = up;
  }
}

const BATCH = 4096; // logs.batch_max_records default until 2026-12-03 (the README figures use it)
const CONTAINERS = 16;

/** A batch as the pipeline hands it over: 16 containers, ~150-byte lines, 1 in 4 parsed (attributes). */
function batch(): LogRecord[] {
  const resources: LogResource[] = Array.from({ length: CONTAINERS }, (_, c) => ({
    key: `c${c}`,
    attributes: {
      'host.name': 'docker-host-1',
      'host.id': 'ABCD:EFGH:IJKL',
      'os.type': 'linux',
      'service.name': `svc-${c}`,
      'service.namespace': 'shop',
      'service.instance.id': `${c}`.padStart(64, 'a'),
      'container.id': `${c}`.padStart(64, 'a'),
      'container.name': `shop-svc-${c}-1`,
      'container.image.name': 'registry:5000/team/app',
      'container.image.tags': ['1.2.3'],
      'container.runtime.name': 'docker',
      'deployment.environment': 'prod',
    },
  }));
  const pad = 'x'.repeat(90);
  return Array.from({ length: BATCH }, (_, i) =>
    newRecord(
      resources[i % CONTAINERS]!,
      i % 5 === 0 ? 'stderr' : 'stdout',
      Buffer.from(`line ${i} level=info msg="request handled" ${pad}`),
      1_700_000_000 + Math.floor(i / 1000),
      (i % 1000) * 1_000_000,
      1_700_000_000_000 + i,
      undefined,
      i % 4 === 0 ? { level: 'info', 'http.status': 200, user: `u${i % 50}` } : undefined,
    ),
  );
}

type Serialize = (records: unknown[]) => Uint8Array | undefined;

function timeIt(fn: () => void, reps: number): number {
  const t0 = process.cpuUsage();
  for (let r = 0; r < reps; r++) fn();
  const d = process.cpuUsage(t0);
  return (d.user + d.system) / 1000 / reps; // ms CPU per batch
}

export interface LogsDepsResult {
  records_per_batch: number;
  rounds: number;
  json_new_ms_per_batch: number;
  json_old_ms_per_batch: number;
  json_new_ns_per_record: number;
  json_old_ns_per_record: number;
  /** new / old: ≤ 1 means no regression. */
  json_ratio: number;
  same_output: boolean;
  protobuf_ns_per_record: number;
  versions: { new: string; old: string };
}

export function runLogsDepsBench(opts: { quick?: boolean; rounds?: number } = {}): LogsDepsResult {
  const rounds = opts.rounds ?? (opts.quick ? 5 : 15);
  const reps = opts.quick ? 3 : 10;
  const records = batch();
  const sdk = toSdkLogRecords(records);
  const ser = {
    new: ((r) => NewSerializer.serializeRequest(r as never)) as Serialize,
    old: ((r) => OldSerializer.serializeRequest(r as never)) as Serialize,
  };
  const text = (b: Uint8Array | undefined) => Buffer.from(b ?? []).toString('utf8');
  const outNew = text(ser.new(sdk));
  const outOld = text(ser.old(sdk));
  const same = isDeepStrictEqual(JSON.parse(outNew), JSON.parse(outOld));
  // warm-up (JIT) of both, then alternate
  for (let i = 0; i < 3; i++) {
    ser.new(toSdkLogRecords(records));
    ser.old(toSdkLogRecords(records));
    encodeLogsRequest(records);
  }
  let bestNew = Infinity;
  let bestOld = Infinity;
  let bestProto = Infinity;
  for (let r = 0; r < rounds; r++) {
    // the exporter's whole http/json step: the SDK shape, then the serializer
    bestNew = Math.min(
      bestNew,
      timeIt(() => ser.new(toSdkLogRecords(records)), reps),
    );
    bestOld = Math.min(
      bestOld,
      timeIt(() => ser.old(toSdkLogRecords(records)), reps),
    );
    bestProto = Math.min(
      bestProto,
      timeIt(() => {
        for (const rec of records) rec.resource.encoded = undefined;
        encodeLogsRequest(records);
      }, reps),
    );
  }
  const ns = (ms: number) => (ms * 1e6) / BATCH;
  return {
    records_per_batch: BATCH,
    rounds,
    json_new_ms_per_batch: bestNew,
    json_old_ms_per_batch: bestOld,
    json_new_ns_per_record: ns(bestNew),
    json_old_ns_per_record: ns(bestOld),
    json_ratio: bestNew / bestOld,
    same_output: same,
    protobuf_ns_per_record: ns(bestProto),
    versions: {
      new: versionOf('@opentelemetry/otlp-transformer'),
      old: `${versionOf('otlp-transformer-0.223')} (alias otlp-transformer-0.223)`,
    },
  };
}

export function printLogsDeps(r: LogsDepsResult): void {
  const f = (v: number) => v.toFixed(0);
  process.stdout.write(
    `\nLogs export before/after the OpenTelemetry upgrade (${r.records_per_batch}-record batches, best of ${r.rounds} rounds, CPU)\n` +
      `  http/json, @opentelemetry/otlp-transformer ${r.versions.new}: ${f(r.json_new_ns_per_record)} ns/record\n` +
      `  http/json, @opentelemetry/otlp-transformer ${r.versions.old}: ${f(r.json_old_ns_per_record)} ns/record\n` +
      `  ratio new/old ${r.json_ratio.toFixed(2)} (≤ 1.00: no regression); same output: ${r.same_output ? 'yes' : 'NO'}\n` +
      `  http/protobuf and grpc (our encoder, no OpenTelemetry package): ${f(r.protobuf_ns_per_record)} ns/record, unchanged by the upgrade\n`,
  );
}

const isMain =
  process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1]);
if (isMain) {
  const rounds = process.argv.find((a) => a.startsWith('--rounds='))?.slice('--rounds='.length);
  const r = runLogsDepsBench({
    quick: process.argv.includes('--quick'),
    ...(rounds ? { rounds: Number(rounds) } : {}),
  });
  printLogsDeps(r);
  process.stdout.write(JSON.stringify({ name: 'logs-deps', ...r }) + '\n');
}
