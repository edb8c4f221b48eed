// SPDX-License-Identifier: Apache-2.0
// Soak: thousands of sandboxes of every outcome, sequential and concurrent; then nothing may be left behind and RSS may not have grown.
//
// Usage: npx tsx benchmarks/soak.ts [--runs 20000] [--concurrency 4] [--json]
// Run as root with the addon built. It re-runs itself with --expose-gc --min-semi-space-size=16. Prints progress and a summary on stderr (with --json, the
// report as JSON on stdout) and exits 1 when a check fails: an outcome other than the expected
// one, a leaked mount, cgroup, fd, process or directory, or host RSS growth above 20 MB after a
// GC. test/hostile/soak.test.ts runs the same soak with fewer runs.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as delay } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { isSandboxError, run, spawn, type RunResult } from '../src/index.js';
import { leakSnapshot, settledLeaksSince } from '../test/helpers/leaks.js';
import { probeRootfs } from '../test/helpers/probe-image.js';

/** RSS growth allowed between the warm-up and the end, after a GC. */
export const MAX_RSS_GROWTH_MB = 20;

/** What {@link soak} did and found. */
export interface SoakReport {
  runs: number;
  concurrency: number;
  durationMs: number;
  /** Runs per expected outcome, and how many of them ended otherwise. */
  outcomes: Record<string, { runs: number; unexpected: number }>;
  /** Sandboxes per second in the sequential and the concurrent phases. */
  rates: { sequential: number; concurrent: number };
  /** The first unexpected outcomes, described. */
  unexpected: string[];
  /** What was left behind (empty when nothing was). */
  leaks: string[];
  rssBeforeMb: number;
  rssAfterMb: number;
  rssPeakMb: number;
  rssGrowthMb: number;
  heapGrowthMb: number;
  /** V8's reserved heap (heapTotal) growth: part of the RSS growth that is heap sizing, not a leak. */
  heapTotalGrowthMb: number;
  /** Unmeasured runs before the baseline. */
  warmupRuns: number;
  /** RSS in MB after a GC at the end of each pair of phases: flat when nothing leaks. */
  rssSeriesMb: number[];
  ok: boolean;
}

interface Outcome {
  name: string;
  /** The error code the run must end with, or 'ok'. */
  expect: string;
  start: (image: string) => Promise<RunResult>;
}

/** The probe's attacks only run where the hostname matches this env (limits.test.ts does the same). */
const guarded = (name: string) => ({ hostname: name, env: { PROBE_GUARD_HOSTNAME: name } });

const OUTCOMES: Outcome[] = [
  { name: 'success', expect: 'ok', start: (image) => run({ image, command: ['true'] }) },
  { name: 'success, init: false', expect: 'ok', start: (image) => run({ image, command: ['true'], init: false }) },
  {
    name: 'success, spawn with stdin',
    expect: 'ok',
    start: async (image) => {
      const child = spawn({ image, command: ['probe', 'stdin'] });
      let echoed = '';
      child.stdout.on('data', (chunk: Buffer) => (echoed += chunk.toString()));
      child.stdin!.end('soak\n');
      const result = await child;
      if (echoed !== 'soak\n') throw new Error(`stdin came back as ${JSON.stringify(echoed)}`);
      return result;
    },
  },
  { name: 'non-zero exit', expect: 'ERR_NON_ZERO_EXIT', start: (image) => run({ image, command: ['probe', 'exit', '3'] }) },
  { name: 'OOM', expect: 'ERR_OOM', start: (image) => run({ image, command: ['probe', 'memhog', '64'], limits: { memory: '16MiB' }, ...guarded('soak-oom') }) },
  { name: 'timeout', expect: 'ERR_TIMEOUT', start: (image) => run({ image, command: ['probe', 'sleep', '5'], limits: { timeout: 30 } }) },
  { name: 'timeout of a process tree', expect: 'ERR_TIMEOUT', start: (image) => run({ image, command: ['probe', 'sleep-tree', '3', '5'], limits: { timeout: 60 }, init: false }) },
  {
    name: 'abort',
    expect: 'ERR_CANCELED',
    start: (image) => {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 10);
      return run({ image, command: ['probe', 'sleep', '5'], signal: controller.signal });
    },
  },
  { name: 'output limit', expect: 'ERR_OUTPUT_LIMIT', start: (image) => run({ image, command: ['probe', 'flood', '1m'], limits: { output: 4096 } }) },
  { name: 'missing command', expect: 'ERR_EXEC', start: (image) => run({ image, command: ['no-such-command'] }) },
  { name: 'setup failure', expect: 'ERR_SETUP', start: (image) => run({ image, command: ['true'], mounts: [{ type: 'tmpfs', target: '/etc/passwd' }] }) },
];

function getGc(): () => void {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (existing) return existing;
  // Without --expose-gc on the command line: the flag can still be set, and gc taken from a fresh context.
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

async function settledRss(gc: () => void): Promise<{ rss: number; heap: number; heapTotal: number }> {
  for (let i = 0; i < 3; i++) {
    gc();
    await delay(50);
  }
  const usage = process.memoryUsage();
  return { rss: usage.rss / 2 ** 20, heap: usage.heapUsed / 2 ** 20, heapTotal: usage.heapTotal / 2 ** 20 };
}

/** Runs `runs` sandboxes, cycling through every outcome, in alternating sequential and concurrent phases. */
export async function soak(options: { runs: number; concurrency: number; image?: string; log?: (line: string) => void }): Promise<SoakReport> {
  const { runs, concurrency } = options;
  const log = options.log ?? (() => {});
  const image = options.image ?? (await probeRootfs());
  const gc = getGc();
  const outcomes: SoakReport['outcomes'] = Object.fromEntries(OUTCOMES.map((o) => [o.name, { runs: 0, unexpected: 0 }]));
  const unexpected: string[] = [];

  const once = async (n: number): Promise<void> => {
    const outcome = OUTCOMES[n % OUTCOMES.length]!;
    let got: string;
    let detail = '';
    try {
      const result = await outcome.start(image);
      got = result.failed ? 'failed without rejecting' : 'ok';
    } catch (error) {
      got = isSandboxError(error) ? error.code : 'a non-SandboxError';
      detail = error instanceof Error ? error.message : String(error);
    }
    const tally = outcomes[outcome.name]!;
    tally.runs++;
    if (got !== outcome.expect) {
      tally.unexpected++;
      if (unexpected.length < 20) unexpected.push(`run ${n} (${outcome.name}): expected ${outcome.expect}, got ${got}${detail ? `: ${detail.slice(0, 300)}` : ''}`);
    }
  };

  // Warm-up, not counted: a sequential and a concurrent stretch like the phases below, so what
  // lives as long as the process exists before the baseline: the addon and its threads, the
  // threadpool threads' malloc arenas (glibc's adaptive mmap threshold keeps freed memory in
  // them), JIT code, and V8's young generation, which grows by 16 MB of heap once the
  // allocation rate has been high for a while.
  const warmup = Math.min(2000, Math.max(400, Math.round(runs / 10)));
  let w = 0;
  while (w < warmup / 2) await once(w++);
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (w < warmup) await once(w++);
  }));
  for (const tally of Object.values(outcomes)) tally.runs = tally.unexpected = 0;
  const warmupUnexpected = unexpected.splice(0);
  if (warmupUnexpected.length > 0) unexpected.push(...warmupUnexpected.map((line) => `warm-up ${line}`));
  const before = await settledRss(gc);
  const baseline = leakSnapshot();
  let rssPeak = before.rss;
  /** RSS after a GC at the end of every sequential + concurrent pair of phases. */
  const rssSeries: number[] = [];

  const phaseSize = Math.max(OUTCOMES.length, Math.ceil(runs / 10));
  const time = { sequential: 0, concurrent: 0 };
  const count = { sequential: 0, concurrent: 0 };
  const start = performance.now();
  let done = 0;
  let lastLog = start;
  for (let phase = 0; done < runs; phase++) {
    const kind = phase % 2 === 0 ? 'sequential' : 'concurrent';
    const size = Math.min(phaseSize, runs - done);
    const first = done;
    const began = performance.now();
    let next = first;
    const workers = kind === 'sequential' ? 1 : concurrency;
    await Promise.all(
      Array.from({ length: workers }, async () => {
        while (next < first + size) {
          await once(next++);
          done++;
          if (done % 250 === 0) rssPeak = Math.max(rssPeak, process.memoryUsage.rss() / 2 ** 20);
          if (performance.now() - lastLog > 10_000) {
            lastLog = performance.now();
            log(`${done}/${runs} runs, ${((lastLog - start) / 1000).toFixed(0)} s, RSS ${(process.memoryUsage.rss() / 2 ** 20).toFixed(1)} MB`);
          }
        }
      }),
    );
    time[kind] += performance.now() - began;
    count[kind] += size;
    if (kind === 'concurrent' || done === runs) rssSeries.push(Math.round((await settledRss(gc)).rss * 10) / 10);
  }
  const durationMs = performance.now() - start;
  const leaks = await settledLeaksSince(baseline, 5000);
  const after = await settledRss(gc);
  const rssGrowthMb = after.rss - before.rss;
  const ok = unexpected.length === 0 && leaks.length === 0 && rssGrowthMb <= MAX_RSS_GROWTH_MB;
  return {
    runs,
    concurrency,
    durationMs,
    outcomes,
    rates: { sequential: count.sequential / (time.sequential / 1000 || 1), concurrent: count.concurrent / (time.concurrent / 1000 || 1) },
    unexpected,
    leaks,
    rssBeforeMb: before.rss,
    rssAfterMb: after.rss,
    rssPeakMb: Math.max(rssPeak, after.rss),
    rssGrowthMb,
    heapGrowthMb: after.heap - before.heap,
    heapTotalGrowthMb: after.heapTotal - before.heapTotal,
    warmupRuns: warmup,
    rssSeriesMb: rssSeries,
    ok,
  };
}

/** A human summary, one line per check. */
export function summary(report: SoakReport): string {
  const lines = [
    `soak: ${report.runs} runs (after ${report.warmupRuns} warm-up runs; concurrency ${report.concurrency} in the concurrent phases) in ${(report.durationMs / 1000).toFixed(1)} s, ` +
      `${report.rates.sequential.toFixed(0)}/s sequential, ${report.rates.concurrent.toFixed(0)}/s concurrent`,
    ...Object.entries(report.outcomes).map(([name, t]) => `  ${name.padEnd(28)} ${String(t.runs).padStart(6)} runs${t.unexpected ? `, ${t.unexpected} UNEXPECTED` : ''}`),
    `  unexpected outcomes: ${report.unexpected.length === 0 ? 'none' : `\n    ${report.unexpected.join('\n    ')}`}`,
    `  leaks (mounts, cgroups, fds, processes, directories): ${report.leaks.length === 0 ? 'none' : `\n    ${report.leaks.join('\n    ')}`}`,
    `  RSS after GC: ${report.rssBeforeMb.toFixed(1)} MB → ${report.rssAfterMb.toFixed(1)} MB (growth ${report.rssGrowthMb.toFixed(1)} MB, limit ${MAX_RSS_GROWTH_MB}; peak ${report.rssPeakMb.toFixed(1)} MB); JS heap used ${report.heapGrowthMb >= 0 ? '+' : ''}${report.heapGrowthMb.toFixed(1)} MB, reserved ${report.heapTotalGrowthMb >= 0 ? '+' : ''}${report.heapTotalGrowthMb.toFixed(1)} MB`,
    `  RSS after GC along the way (MB): ${report.rssBeforeMb.toFixed(1)} | ${report.rssSeriesMb.join(' ')}`,
    `  ${report.ok ? 'PASS' : 'FAIL'}`,
  ];
  return lines.join('\n');
}

function machine(): string {
  const cpus = os.cpus();
  let load = os.loadavg()[0]!.toFixed(2);
  try {
    load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    // keep os.loadavg()
  }
  return `${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, kernel ${os.release()}, Node ${process.version}, load ${load}`;
}

// gc() for the RSS checks, and V8's young generation at the size it reaches anyway under this
// load (16 MB semi-spaces): left to grow, it adds a 16 MB step to RSS at a random moment of the run.
const NODE_FLAGS = ['--expose-gc', '--min-semi-space-size=16'];

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href && !NODE_FLAGS.every((flag) => process.execArgv.includes(flag))) {
  // Started without them (npx tsx benchmarks/soak.ts): run again, under the same loader, with them.
  const flags = [...process.execArgv, ...NODE_FLAGS.filter((flag) => !process.execArgv.includes(flag))];
  const again = spawnSync(process.execPath, [...flags, process.argv[1]!, ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(again.status ?? 1);
} else if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '20000' }, concurrency: { type: 'string', default: '4' }, json: { type: 'boolean', default: false } } });
  const runs = Number(values.runs);
  const concurrency = Number(values.concurrency);
  if (!Number.isSafeInteger(runs) || runs < 1 || !Number.isSafeInteger(concurrency) || concurrency < 1) {
    console.error('usage: tsx benchmarks/soak.ts [--runs N] [--concurrency C] [--json]');
    process.exit(2);
  }
  console.error(`${new Date().toISOString()} on ${machine()}`);
  const report = await soak({ runs, concurrency, log: (line) => console.error(line) });
  console.error(summary(report));
  if (values.json) console.log(JSON.stringify(report, null, 2));
  process.exit(report.ok ? 0 : 1);
}
