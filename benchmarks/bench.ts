// SPDX-License-Identifier: Apache-2.0
// The benchmark suite behind `npm run bench` and `nsbox bench`: runs every scenario of issue 5
// against the peers, then writes latest.json, latest.md and latency.svg.
//
// Each measuring scenario runs in a fresh Node process (this file again, with --worker), so that
// heap sizes and GC flags apply to it alone, and one scenario's sandboxes never share a process
// with another's. From source the workers run under tsx; built into dist/bench.js they run as is.
import { spawn as nodeSpawn } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { detectCgroups } from '../src/cgroup/detect.js';
import { latencyChart, type ChartRow } from './lib/chart.js';
import { describeMachine } from './lib/host.js';
import { benchReport, readmeBlock, type BenchReport, type SuiteSettings } from './lib/report.js';
import { benchRootfs } from './lib/rootfs.js';
import { measureFloor, type FloorRow } from './scenarios/floor.js';
import type { FirstByteRow } from './scenarios/first-byte.js';
import type { IdleMemoryReport } from './scenarios/idle-memory.js';
import type { LatencyReport } from './scenarios/latency.js';
import type { PullUnpackReport } from './scenarios/pull-unpack-hook.js';
import type { ExecPoolReport } from './exec-pool.js';
import type { ThroughputReport } from './scenarios/throughput.js';

const SELF = fileURLToPath(import.meta.url);

/** Scenario names for --only. */
export const SCENARIOS = ['floor', 'latency', 'latency-1g', 'throughput', 'first-byte', 'idle-memory', 'pull-unpack', 'exec-pool'] as const;
type ScenarioName = (typeof SCENARIOS)[number];

const USAGE = `Usage: nsbox bench [OPTIONS]

Runs the benchmark suite: start-to-exit latency (small and 1 GB host heap) against
child_process.spawn, bwrap, crun, runc and docker, the C floor, throughput at concurrency
1/2/4/8, time to first byte, host cost of idle sandboxes, pull + unpack. Needs root, a static
busybox (the rootfs every system runs) and cc (the C floor). Peers that are not installed are
reported as missing. Writes latest.json, latest.md and latency.svg to --out.

Options:
      --quick           a short run (~1 min): fewer runs, 20 idle sandboxes
      --runs N          timed runs per latency row (default 200)
      --warmup N        warm-up runs per latency row (default 20)
      --sandboxes N     idle sandboxes for the memory scenario (default 500)
      --only LIST       comma-separated: ${SCENARIOS.join(',')}
      --out DIR         where to write the results (default ./nsbox-bench)
  -h, --help            show this help
`;

/** Where the report goes and how it is shown. */
export interface BenchIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** The output directory when --out is not given. */
  defaultOut: string;
}

function packageRoot(): string {
  let dir = path.dirname(SELF);
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
  return dir;
}

/** floor.c from source (benchmarks/floor/) or next to dist/ in the package. */
function floorSource(): string | undefined {
  return [new URL('floor/floor.c', import.meta.url), new URL('../benchmarks/floor/floor.c', import.meta.url)].map((url) => fileURLToPath(url)).find((file) => existsSync(file));
}

/** Runs this file with `--worker name` in a fresh Node process and parses the JSON it prints. */
function worker<T>(name: string, config: object, nodeFlags: string[], stderr: NodeJS.WritableStream): Promise<T> {
  const loader = SELF.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const args = [...nodeFlags, ...loader, SELF, '--worker', name, '--config', JSON.stringify(config)];
  return new Promise((resolve, reject) => {
    // From the package root, where `--import tsx` resolves.
    const child = nodeSpawn(process.execPath, args, { cwd: packageRoot(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => stderr.write(chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code !== 0) reject(new Error(`benchmark worker ${name} exited with ${code ?? signal}`));
      else resolve(JSON.parse(stdout) as T);
    });
  });
}

interface WorkerConfig {
  rootfs: string;
  runs: number;
  warmup: number;
  seconds: number;
  sandboxes: number;
  quick: boolean;
}

/** The worker side: measures one scenario in this process and prints its JSON on stdout. */
async function runWorker(name: string, config: WorkerConfig): Promise<void> {
  const { nsboxSystems, peerSystems, cleanupDocker } = await import('./lib/systems.js');
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'nsbox-bench-'));
  let result: unknown;
  try {
    const peers = await peerSystems(config.rootfs, work);
    const nsbox = nsboxSystems(config.rootfs);
    // Table order: the Node floor, nsbox, then the peers.
    const systems = [peers[0], ...nsbox, ...peers.slice(1)];
    try {
      switch (name) {
        case 'latency':
        case 'latency-1g': {
          const { measureLatency } = await import('./scenarios/latency.js');
          result = await measureLatency(systems, name === 'latency' ? 'small' : '1g', config.runs, config.warmup);
          break;
        }
        case 'throughput': {
          const { measureThroughput } = await import('./scenarios/throughput.js');
          result = await measureThroughput(systems, config.seconds, config.warmup);
          break;
        }
        case 'first-byte': {
          const { measureFirstByte } = await import('./scenarios/first-byte.js');
          result = await measureFirstByte(systems, Math.max(10, Math.round(config.runs / 2)), config.warmup);
          break;
        }
        case 'idle-memory': {
          const { idleMemory } = await import('./scenarios/idle-memory.js');
          result = await idleMemory(config.rootfs, config.sandboxes);
          break;
        }
        case 'pull-unpack': {
          const { measurePullUnpack } = await import('./scenarios/pull-unpack-hook.js');
          result = await measurePullUnpack(import.meta.url, config.quick);
          break;
        }
        case 'exec-pool': {
          const { benchExecPool } = await import('./exec-pool.js');
          process.stderr.write('exec and pool\n');
          result = await benchExecPool({ runs: config.runs, warmup: config.warmup });
          break;
        }
        default:
          throw new Error(`unknown worker ${name}`);
      }
    } finally {
      await cleanupDocker(peers);
    }
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** Runs the suite and writes latest.json, latest.md and latency.svg; resolves with the report. */
export async function runSuite(settings: SuiteSettings, out: string, stderr: NodeJS.WritableStream): Promise<BenchReport> {
  const machine = describeMachine(detectCgroups().mode);
  if (machine.loadAverage > machine.cores / 2) {
    stderr.write(`note: load average ${machine.loadAverage.toFixed(2)} on ${machine.cores} cores: other work is running, expect noisy numbers\n`);
  }
  const rootfs = await benchRootfs();
  const config: WorkerConfig = { rootfs, runs: settings.runs, warmup: settings.warmup, seconds: settings.throughputSeconds, sandboxes: settings.sandboxes, quick: settings.quick };
  const wanted = (name: ScenarioName) => settings.only.includes(name);

  const floor: FloorRow[] = wanted('floor') ? await measureFloor(floorSource(), rootfs, settings.runs, settings.warmup) : [];
  const latency: LatencyReport[] = [];
  if (wanted('latency')) latency.push(await worker<LatencyReport>('latency', config, [], stderr));
  if (wanted('latency-1g')) latency.push(await worker<LatencyReport>('latency-1g', config, ['--max-old-space-size=4096'], stderr));
  const throughput = wanted('throughput') ? await worker<ThroughputReport>('throughput', config, [], stderr) : undefined;
  const firstByte = wanted('first-byte') ? await worker<FirstByteRow[]>('first-byte', config, [], stderr) : undefined;
  // A young generation at full size from the start, so that its one-time growth does not read as per-sandbox memory.
  const idleMemory = wanted('idle-memory') ? await worker<IdleMemoryReport>('idle-memory', config, ['--expose-gc', '--min-semi-space-size=16'], stderr) : undefined;
  const pullUnpack = wanted('pull-unpack') ? await worker<PullUnpackReport>('pull-unpack', config, [], stderr) : undefined;
  const execPool = wanted('exec-pool') ? await worker<ExecPoolReport>('exec-pool', config, [], stderr) : undefined;

  const chartRows: ChartRow[] = [
    ...floor.map((row) => ({ label: row.id === 'floor' ? 'C floor (all namespaces)' : 'C floor, no net namespace', samples: row.samples, note: row.missing })),
    ...latency.flatMap((report) =>
      report.rows.map((row) => ({
        label: `${row.label}${report.heap === '1g' ? ' — 1 GB heap' : ''}`,
        samples: row.samples,
        note: row.missing ? `missing: ${row.missing}` : row.error ? 'failed' : undefined,
        accent: row.id.startsWith('nsbox'),
      })),
    ),
  ];
  const report = benchReport({ machine, settings, floor, latency, throughput, firstByte, idleMemory, pullUnpack, execPool });
  await fs.mkdir(out, { recursive: true });
  await fs.writeFile(path.join(out, 'latest.json'), `${JSON.stringify(report.json, null, 2)}\n`);
  await fs.writeFile(path.join(out, 'latest.md'), report.markdown);
  if (chartRows.length > 0) {
    const subtitle = `${machine.date.slice(0, 16).replace('T', ' ')} UTC, ${machine.cpu}, ${machine.cores} cores, kernel ${machine.kernel}, Node ${machine.node}; box p25–p75, whiskers p1–p99, dots min/max`;
    await fs.writeFile(path.join(out, 'latency.svg'), latencyChart(`Start-to-exit of /bin/true, ${settings.runs} sequential runs`, subtitle, chartRows));
  }
  return report;
}

/** Parses the command line; resolves with an exit code. `nsbox bench` and `npm run bench` both land here. */
export async function benchMain(argv: string[], io: BenchIo): Promise<{ code: number; report?: BenchReport; out?: string }> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        quick: { type: 'boolean', default: false },
        runs: { type: 'string' },
        warmup: { type: 'string' },
        sandboxes: { type: 'string' },
        only: { type: 'string' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    io.stderr.write(`nsbox bench: ${(error as Error).message}\n${USAGE}`);
    return { code: 125 };
  }
  if (values.help) {
    io.stdout.write(USAGE);
    return { code: 0 };
  }
  const count = (name: string, text: string | undefined, fallback: number, min: number) => {
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isInteger(value) || value < min) throw new Error(`--${name} must be an integer of at least ${min}, got '${text}'`);
    return value;
  };
  let settings: SuiteSettings;
  try {
    const only = values.only === undefined ? [...SCENARIOS] : values.only.split(',');
    const unknown = only.filter((name) => !(SCENARIOS as readonly string[]).includes(name));
    if (unknown.length > 0) throw new Error(`--only: unknown scenario ${unknown.join(', ')} (known: ${SCENARIOS.join(', ')})`);
    const quick = values.quick;
    settings = {
      quick,
      runs: count('runs', values.runs, quick ? 30 : 200, 1),
      warmup: count('warmup', values.warmup, quick ? 5 : 20, 0),
      sandboxes: count('sandboxes', values.sandboxes, quick ? 20 : 500, 1),
      throughputSeconds: quick ? 0.3 : 2,
      only,
    };
    if (settings.sandboxes > 2000) throw new Error('--sandboxes is at most 2000');
  } catch (error) {
    io.stderr.write(`nsbox bench: ${(error as Error).message}\n`);
    return { code: 125 };
  }
  if (process.getuid?.() !== 0) {
    io.stderr.write('nsbox bench: run as root (the suite compares full sandboxes: namespaces, overlay roots and cgroups)\n');
    return { code: 1 };
  }
  const out = path.resolve(values.out ?? io.defaultOut);
  try {
    const report = await runSuite(settings, out, io.stderr);
    io.stdout.write(`\n${report.markdown}\nWrote ${path.join(out, 'latest.json')}, latest.md and latency.svg\n`);
    return { code: 0, report, out };
  } catch (error) {
    io.stderr.write(`nsbox bench: ${(error as Error).stack ?? String(error)}\n`);
    return { code: 1 };
  }
}

export { readmeBlock };

// Started as a worker (or directly): `node [--import tsx] bench.ts --worker NAME --config JSON`.
function isEntry(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(SELF);
  } catch {
    return false;
  }
}
if (isEntry()) {
  const index = process.argv.indexOf('--worker');
  if (index > 0) {
    const config = JSON.parse(process.argv[process.argv.indexOf('--config') + 1]) as WorkerConfig;
    runWorker(process.argv[index + 1], config).then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
        process.exit(1);
      },
    );
  } else {
    benchMain(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, defaultOut: path.join(process.cwd(), 'nsbox-bench') }).then(({ code }) => process.exit(code));
  }
}
