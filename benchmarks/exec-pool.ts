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
  /** pool.run p50 minus exec p50: the target is ≤ 0.5 ms. */
  poolOverheadMs: number;
}

function summarize(samples: number[]): ExecPoolStats {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  const round = (n: number) => Math.round(n * 1000) / 1000;
  return { runs: sorted.length, p50: round(at(0.5)), p99: round(at(0.99)), max: round(sorted.at(-1)!), mean: round(sorted.reduce((a, b) => a + b, 0) / sorted.length) };
}

async function measure(runs: number, warmup: number, once: () => PromiseLike<unknown>): Promise<ExecPoolStats> {
  for (let i = 0; i < warmup; i++) await once();
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await once();
    samples.push(performance.now() - start);
  }
  return summarize(samples);
}

/** Runs scenario 7 and returns its rows. */
export async function benchExecPool(options: { runs?: number; warmup?: number } = {}): Promise<ExecPoolReport> {
  const runs = options.runs ?? 300;
  const warmup = options.warmup ?? 30;
  const command = ['/bin/true'];
  const image = 'host';

  const box = await Sandbox.create({ image });
  const exec = await measure(runs, warmup, () => box.exec(command));
  await box.remove();

  // Size 4: refills (a full sandbox start each, in the background) keep up with sequential calls.
  const pool = await createPool({ image, size: 4 });
  const pooled = await measure(runs, warmup, () => pool.run(command));
  await pool.close();

  const fresh = await measure(Math.min(runs, 200), warmup, () => run({ image, command }));
  return {
    scenarios: [
      { id: 'exec', label: 'exec in a running sandbox', note: 'Sandbox.exec(/bin/true): setns into its namespaces + nsbox-init + exec, to exit', stats: exec },
      { id: 'pool', label: 'pool.run (warm pool, size 4)', note: 'a pre-started sandbox per call, exec /bin/true, sandbox removed and refilled in the background', stats: pooled },
      { id: 'run', label: 'run() of a fresh sandbox', note: 'the same command in a new sandbox, for scale', stats: fresh },
    ],
    poolOverheadMs: Math.round((pooled.p50 - exec.p50) * 1000) / 1000,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({ options: { runs: { type: 'string' }, warmup: { type: 'string' } } });
  const report = await benchExecPool({ runs: values.runs ? Number(values.runs) : undefined, warmup: values.warmup ? Number(values.warmup) : undefined });
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
}
