// SPDX-License-Identifier: Apache-2.0
// Scenario 7: exec latency in a running sandbox, and a function run through the warm pool,
// next to a fresh run() of the same command, in one process, sequentially.
//
// Usage: tsx benchmarks/exec-pool.ts [--runs 300] [--warmup 30]
// Prints one JSON object ({ scenarios, poolOverheadMs }) on stdout; benchmarks/run.ts calls benchExecPool().
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { createPool, run, Sandbox } from '../src/index.js';

/** Percentiles of one scenario, in milliseconds. */
export interface ExecPoolStats {
  runs: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

/** What {@link benchExecPool} measures. */
export interface ExecPoolReport {
  scenarios: Array<{ id: string; label: string; note: string; stats: ExecPoolStats }>;
  /** pool.run p50 minus exec p50 (calls 10 ms apart): the target is ≤ 0.5 ms. */
  poolOverheadMs: number;
}

function summarize(samples: number[]): ExecPoolStats {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  const round = (n: number) => Math.round(n * 1000) / 1000;
  return { runs: sorted.length, p50: round(at(0.5)), p99: round(at(0.99)), max: round(sorted.at(-1)!), mean: round(sorted.reduce((a, b) => a + b, 0) / sorted.length) };
}

// `gapMs` between calls: a function runner's requests arrive apart, and the pool refills in
// those gaps. Back to back (0), the refill (a full sandbox start and a removal per call) competes
// with the measured call for this machine's two cores.
async function measure(runs: number, warmup: number, once: () => PromiseLike<unknown>, gapMs = 0): Promise<ExecPoolStats> {
  const pause = () => (gapMs > 0 ? new Promise((resolve) => setTimeout(resolve, gapMs)) : Promise.resolve());
  for (let i = 0; i < warmup; i++) {
    await once();
    await pause();
  }
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await once();
    samples.push(performance.now() - start);
    await pause();
  }
  return summarize(samples);
}

const GAP_MS = 10;

/** Runs scenario 7 and returns its rows. */
export async function benchExecPool(options: { runs?: number; warmup?: number } = {}): Promise<ExecPoolReport> {
  const runs = options.runs ?? 300;
  const warmup = options.warmup ?? 30;
  const command = ['/bin/true'];
  const image = 'host';

  const box = await Sandbox.create({ image });
  const exec = await measure(runs, warmup, () => box.exec(command), GAP_MS);
  const execBackToBack = await measure(runs, warmup, () => box.exec(command));
  await box.remove();

  const pool = await createPool({ image, size: 4 });
  const pooled = await measure(runs, warmup, () => pool.run(command), GAP_MS);
  const pooledBackToBack = await measure(runs, warmup, () => pool.run(command));
  await pool.close();

  const fresh = await measure(Math.min(runs, 200), warmup, () => run({ image, command }));
  return {
    scenarios: [
      { id: 'exec', label: 'exec in a running sandbox', note: `Sandbox.exec(/bin/true): setns into its namespaces + nsbox-init + exec, to exit; calls ${GAP_MS} ms apart`, stats: exec },
      { id: 'pool', label: 'pool.run (warm pool, size 4)', note: `a pre-started sandbox per call, exec /bin/true, sandbox removed and refilled in the background; calls ${GAP_MS} ms apart`, stats: pooled },
      { id: 'exec-b2b', label: 'exec, back to back', note: 'as exec, with no pause between calls', stats: execBackToBack },
      { id: 'pool-b2b', label: 'pool.run, back to back', note: 'as pool.run, with no pause: each call competes with the refill of the one before', stats: pooledBackToBack },
      { id: 'run', label: 'run() of a fresh sandbox', note: 'the same command in a new sandbox, for scale', stats: fresh },
    ],
    poolOverheadMs: Math.round((pooled.p50 - exec.p50) * 1000) / 1000,
  };
}

// Run as a script (not when bundled into dist/bench.js, where import.meta.url is bench.js's own).
if (/exec-pool\.[jt]s$/.test(process.argv[1] ?? '') && import.meta.url === pathToFileURL(process.argv[1]!).href) {
  const { values } = parseArgs({ options: { runs: { type: 'string' }, warmup: { type: 'string' } } });
  const report = await benchExecPool({ runs: values.runs ? Number(values.runs) : undefined, warmup: values.warmup ? Number(values.warmup) : undefined });
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
}
