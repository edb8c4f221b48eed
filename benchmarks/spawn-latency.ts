// SPDX-License-Identifier: Apache-2.0
// Measures sequential start-to-exit latency of /bin/true: child_process.spawn, nsbox variants and peer sandboxes.
//
// Usage: tsx benchmarks/spawn-latency.ts [--heap small|1g] [--runs 200] [--warmup 20]
// Prints progress on stderr and one JSON object ({ heap, scenarios }) on stdout; benchmarks/run.ts
// runs it once per heap size (the 1g case in `node --max-old-space-size=4096`).
import { spawn as nodeSpawn } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { run, type SandboxOptions } from '../src/index.js';
import { detectCgroups } from '../src/cgroup/detect.js';
import { probeRootfs } from '../test/helpers/probe-image.js';

/** Summary statistics of one scenario, in milliseconds. */
export interface Stats {
  runs: number;
  min: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

/** One measured (or skipped) row. */
export interface ScenarioResult {
  id: string;
  label: string;
  /** How it was run, including what the numbers contain beyond the sandbox itself. */
  note: string;
  /** Null when the tool is not installed (see `missing`) or a run failed (see `error`). */
  stats: Stats | null;
  missing?: string;
  error?: string;
}

/** What the script prints on stdout. */
export interface LatencyReport {
  heap: 'small' | '1g';
  /** process.memoryUsage().heapUsed when the measurements started. */
  heapUsedBytes: number;
  rssBytes: number;
  scenarios: ScenarioResult[];
}

interface Scenario {
  id: string;
  label: string;
  note: string;
  /** The executable it needs on PATH (peers only). */
  needs?: string;
  /** Starts /bin/true and resolves when it has exited (rejects unless it exited 0). */
  once: () => Promise<void>;
}

/** Nearest-rank percentile of sorted samples. */
function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

function summarize(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const round = (ms: number) => Math.round(ms * 1000) / 1000;
  return {
    runs: sorted.length,
    min: round(sorted[0]),
    p50: round(percentile(sorted, 0.5)),
    p99: round(percentile(sorted, 0.99)),
    max: round(sorted[sorted.length - 1]),
    mean: round(sorted.reduce((a, b) => a + b, 0) / sorted.length),
  };
}

/** Runs `once` sequentially: `warmup` unmeasured runs, then `runs` timed ones. */
export async function measure(once: () => Promise<void>, runs: number, warmup: number): Promise<Stats> {
  for (let i = 0; i < warmup; i++) await once();
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await once();
    samples.push(performance.now() - start);
  }
  return summarize(samples);
}

/** Runs a host program through child_process.spawn (stdout/stderr piped, as by default) and waits for it to close. */
function exec(file: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = nodeSpawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stdout.resume();
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${file} ${args.join(' ')} exited with ${code ?? signal}: ${stderr.trim()}`));
    });
  });
}

/** The absolute path of `name` on PATH, or undefined. */
function which(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const file = path.join(dir, name);
    try {
      accessSync(file, fsConstants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** An OCI bundle (config.json from `crun spec` or `runc spec`) whose read-only root is `rootfs` and whose process is /bin/true. */
async function ociBundle(dir: string, rootfs: string, runtime: string): Promise<string> {
  const bundle = path.join(dir, 'bundle');
  await fs.mkdir(bundle);
  await new Promise<void>((resolve, reject) => {
    const child = nodeSpawn(runtime, ['spec'], { cwd: bundle, stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${runtime} spec exited with ${code}`))));
  });
  const file = path.join(bundle, 'config.json');
  const config = JSON.parse(await fs.readFile(file, 'utf8'));
  config.process.terminal = false;
  config.process.args = ['/bin/true'];
  config.root = { path: rootfs, readonly: true };
  await fs.writeFile(file, JSON.stringify(config, null, 2));
  return bundle;
}

const PEER_NOTE = 'spawned from Node with child_process, so it includes Node\'s own spawn cost (row "child_process.spawn")';

function scenarios(rootfs: string, work: string, bundle: string | undefined, heap: 'small' | '1g'): Scenario[] {
  const sandbox = (options: Partial<SandboxOptions>) => async () => {
    await run({ image: rootfs, command: ['/bin/true'], ...options });
  };
  let containers = 0;
  const containerId = () => `nsbox-bench-${process.pid}-${containers++}`;
  // crun 1.8 refuses a hybrid machine (v1 controllers next to an empty cgroup2 mount).
  const cgroups = detectCgroups();
  const unified = cgroups.mode === 'hybrid' ? cgroups.v2?.mountPoint : undefined;
  const crunState = path.join(work, 'crun-state');
  const runcState = path.join(work, 'runc-state');

  const all: Scenario[] = [
    {
      id: 'node-spawn',
      label: '(a) child_process.spawn',
      note: "child_process.spawn('/bin/true'), no isolation: the floor a Node user knows",
      once: () => exec('/bin/true', []),
    },
    {
      id: 'nsbox',
      label: '(b) nsbox full sandbox',
      note: 'run(): all namespaces incl. network, overlay root on the busybox rootfs, cgroup with limits, nsbox-init as pid 1',
      once: sandbox({}),
    },
    {
      id: 'nsbox-noinit',
      label: '(c) nsbox init: false',
      note: 'as (b), the workload is pid 1',
      once: sandbox({ init: false }),
    },
    {
      id: 'nsbox-nocgroup',
      label: '(d) nsbox init: false, cgroup: false',
      note: 'namespaces (incl. network) + overlay root only',
      once: sandbox({ init: false, cgroup: false }),
    },
    {
      id: 'nsbox-hostnet',
      label: "(e) nsbox init: false, cgroup: false, network: 'host'",
      note: 'as (d) without a network namespace',
      once: sandbox({ init: false, cgroup: false, network: 'host' }),
    },
    {
      id: 'bwrap',
      label: 'bwrap --unshare-all',
      note: `bwrap --unshare-all --die-with-parent --ro-bind ROOTFS / --proc /proc --dev /dev /bin/true; no cgroup, no overlay; ${PEER_NOTE}`,
      needs: 'bwrap',
      once: () => exec('bwrap', ['--unshare-all', '--die-with-parent', '--ro-bind', rootfs, '/', '--proc', '/proc', '--dev', '/dev', '/bin/true']),
    },
    {
      id: 'crun',
      label: 'crun run',
      note: unified
        ? `crun run on an OCI bundle of the same rootfs (read-only root, spec defaults); crun 1.8 refuses hybrid cgroups, so each run is \`unshare -m sh -c 'umount ${unified} && exec crun run …'\`: the unshare + sh + umount is included, as a user of this machine pays it per sandbox; ${PEER_NOTE}`
        : `crun run on an OCI bundle of the same rootfs (read-only root, spec defaults); ${PEER_NOTE}`,
      needs: 'crun',
      once: () => {
        const args = ['--root', crunState, 'run', '--bundle', bundle!, containerId()];
        return unified ? exec('unshare', ['-m', 'sh', '-c', 'umount "$0" && exec crun "$@"', unified, ...args]) : exec('crun', args);
      },
    },
    {
      id: 'runc',
      label: 'runc run',
      note: `runc run on the same OCI bundle; ${PEER_NOTE}`,
      needs: 'runc',
      once: () => exec('runc', ['--root', runcState, 'run', '--bundle', bundle!, containerId()]),
    },
  ];
  // With a 1 GB heap: the floor, nsbox, and one CLI peer to show that peers pay Node's fork cost too.
  return heap === 'small' ? all : all.filter((s) => ['node-spawn', 'nsbox', 'bwrap'].includes(s.id));
}

/** Allocates about 1 GB of live JS objects (small objects in arrays kept in a global) and checks heapUsed. */
function fillHeap(): void {
  const keep: Array<Array<{ i: number; s: string }>> = [];
  (globalThis as { benchmarkBallast?: unknown }).benchmarkBallast = keep;
  while (process.memoryUsage().heapUsed < 1.05e9) {
    const chunk = new Array<{ i: number; s: string }>(1_000_000);
    for (let i = 0; i < chunk.length; i++) chunk[i] = { i, s: 'x' };
    keep.push(chunk);
  }
  const used = process.memoryUsage().heapUsed;
  if (used < 1e9) throw new Error(`heapUsed is ${used}, expected at least 1e9`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      heap: { type: 'string', default: 'small' },
      runs: { type: 'string', default: '200' },
      warmup: { type: 'string', default: '20' },
    },
  });
  const heap = values.heap === '1g' ? '1g' : 'small';
  const runs = Number(values.runs);
  const warmup = Number(values.warmup);

  const rootfs = await probeRootfs();
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'nsbox-bench-'));
  try {
    const runtime = which('crun') ?? which('runc');
    const bundle = runtime ? await ociBundle(work, rootfs, runtime) : undefined;
    if (heap === '1g') fillHeap();
    const memory = process.memoryUsage();
    const report: LatencyReport = { heap, heapUsedBytes: memory.heapUsed, rssBytes: memory.rss, scenarios: [] };
    process.stderr.write(`heap ${heap}: heapUsed ${(memory.heapUsed / 1e6).toFixed(0)} MB, ${runs} runs after ${warmup} warm-up\n`);

    for (const scenario of scenarios(rootfs, work, bundle, heap)) {
      const { id, label, note } = scenario;
      const missing = scenario.needs && !which(scenario.needs) ? `${scenario.needs} is not installed` : undefined;
      if (missing) {
        report.scenarios.push({ id, label, note, stats: null, missing });
        process.stderr.write(`  ${label}: missing (${missing})\n`);
        continue;
      }
      try {
        const stats = await measure(scenario.once, runs, warmup);
        report.scenarios.push({ id, label, note, stats });
        process.stderr.write(`  ${label}: p50 ${stats.p50.toFixed(2)} ms, p99 ${stats.p99.toFixed(2)} ms, max ${stats.max.toFixed(2)} ms\n`);
      } catch (error) {
        // A peer that is installed but cannot run here is reported, not dropped; nsbox failing is fatal.
        if (id.startsWith('nsbox')) throw error;
        const message = (error as Error).message;
        report.scenarios.push({ id, label, note, stats: null, error: message });
        process.stderr.write(`  ${label}: failed (${message})\n`);
      }
    }
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

await main();
