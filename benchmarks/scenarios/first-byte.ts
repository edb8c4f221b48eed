// SPDX-License-Identifier: Apache-2.0
// Scenario 4: time from the start call to the first byte of `echo hi` on the caller's side.
import { summarize, type Stats } from '../lib/stats.js';
import type { System } from '../lib/systems.js';

export interface FirstByteRow {
  id: string;
  label: string;
  stats: Stats | null;
  missing?: string;
  error?: string;
}

const SYSTEMS = ['node-spawn', 'nsbox', 'bwrap', 'crun', 'runc', 'docker'];

export async function measureFirstByte(systems: System[], runs: number, warmup: number): Promise<FirstByteRow[]> {
  const rows: FirstByteRow[] = [];
  process.stderr.write(`first byte of echo hi: ${runs} runs after ${warmup} warm-up\n`);
  for (const system of systems.filter((s) => SYSTEMS.includes(s.id))) {
    const { id, label, missing } = system;
    if (missing) {
      rows.push({ id, label, stats: null, missing });
      continue;
    }
    try {
      const samples: number[] = [];
      for (let i = 0; i < warmup + runs; i++) {
        const start = performance.now();
        const started = system.start('echo');
        await started.firstByte;
        const elapsed = performance.now() - start;
        // Only the first byte is timed; the exit is awaited so that runs do not overlap.
        await started.done;
        if (i >= warmup) samples.push(elapsed);
      }
      const stats = summarize(samples);
      rows.push({ id, label, stats });
      process.stderr.write(`  ${label}: p50 ${stats.p50.toFixed(2)} ms, p99 ${stats.p99.toFixed(2)} ms\n`);
    } catch (error) {
      if (id.startsWith('nsbox')) throw error;
      rows.push({ id, label, stats: null, error: (error as Error).message });
      process.stderr.write(`  ${label}: failed (${(error as Error).message})\n`);
    }
  }
  return rows;
}
