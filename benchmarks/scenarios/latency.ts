// SPDX-License-Identifier: Apache-2.0
// Scenarios 1 and 2: sequential start-to-exit of /bin/true, at a small host heap and with 1 GB of live JS objects.
import { summarize, sample, type Stats } from '../lib/stats.js';
import type { System } from '../lib/systems.js';

/** One measured, missing or failed row. */
export interface LatencyRow {
  id: string;
  label: string;
  note: string;
  /** Null when the system is missing here (see `missing`) or a run failed (see `error`). */
  stats: Stats | null;
  missing?: string;
  error?: string;
  /** The timed samples (ms), for the chart; left out of the JSON file. */
  samples?: number[];
}

export interface LatencyReport {
  heap: 'small' | '1g';
  /** process.memoryUsage() when the measurements started. */
  heapUsedBytes: number;
  rssBytes: number;
  rows: LatencyRow[];
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

/** With a 1 GB heap only these rows: the floor a Node user knows, nsbox, and one CLI peer that pays Node's fork too. */
const AT_1G = ['node-spawn', 'nsbox', 'bwrap'];

export async function measureLatency(systems: System[], heap: 'small' | '1g', runs: number, warmup: number): Promise<LatencyReport> {
  if (heap === '1g') fillHeap();
  const memory = process.memoryUsage();
  const report: LatencyReport = { heap, heapUsedBytes: memory.heapUsed, rssBytes: memory.rss, rows: [] };
  process.stderr.write(`latency, heap ${heap}: heapUsed ${(memory.heapUsed / 1e6).toFixed(0)} MB, ${runs} runs after ${warmup} warm-up\n`);
  for (const system of heap === 'small' ? systems : systems.filter((s) => AT_1G.includes(s.id))) {
    const { id, label, note, missing } = system;
    if (missing) {
      report.rows.push({ id, label, note, stats: null, missing });
      process.stderr.write(`  ${label}: missing (${missing})\n`);
      continue;
    }
    try {
      const samples = await sample(() => system.start('true').done, runs, warmup);
      const stats = summarize(samples);
      report.rows.push({ id, label, note, stats, samples });
      process.stderr.write(`  ${label}: p50 ${stats.p50.toFixed(2)} ms, p99 ${stats.p99.toFixed(2)} ms, max ${stats.max.toFixed(2)} ms\n`);
    } catch (error) {
      // A peer that is installed but cannot run here is reported, not dropped; nsbox failing is fatal.
      if (id.startsWith('nsbox')) throw error;
      report.rows.push({ id, label, note, stats: null, error: (error as Error).message });
      process.stderr.write(`  ${label}: failed (${(error as Error).message})\n`);
    }
  }
  return report;
}
