// SPDX-License-Identifier: Apache-2.0
// Scenario 3: completed /bin/true runs per second with 1, 2, 4 and 8 runs in flight at once.
import type { System } from '../lib/systems.js';

export const CONCURRENCY = [1, 2, 4, 8] as const;

export interface ThroughputRow {
  id: string;
  label: string;
  /** Runs per second at each concurrency (keys "1", "2", "4", "8"); empty when missing or failed. */
  runsPerSecond: Record<string, number>;
  missing?: string;
  error?: string;
}

export interface ThroughputReport {
  /** How long each cell kept `concurrency` runs in flight. */
  secondsPerCell: number;
  rows: ThroughputRow[];
}

/** The systems worth comparing under load: the floor a Node user knows, nsbox, and the peers. */
const SYSTEMS = ['node-spawn', 'nsbox', 'bwrap', 'crun', 'runc', 'docker'];

/** Keeps `concurrency` loops each starting a run as soon as its previous one exited, for `seconds`. */
async function cell(system: System, concurrency: number, seconds: number): Promise<number> {
  // Warm-up: a fifth of the cell's time at this concurrency, not counted.
  await loop(system, concurrency, performance.now() + seconds * 200);
  const start = performance.now();
  const completed = await loop(system, concurrency, start + seconds * 1000);
  // Runs started before the deadline count, and so does the time they took to finish.
  return (completed * 1000) / (performance.now() - start);
}

/** `concurrency` loops, each starting a run as soon as its previous one exited, until `end`; returns the runs completed. */
async function loop(system: System, concurrency: number, end: number): Promise<number> {
  let completed = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        await system.start('true').done;
        completed++;
      }
    }),
  );
  return completed;
}

export async function measureThroughput(systems: System[], seconds: number, warmup: number): Promise<ThroughputReport> {
  const report: ThroughputReport = { secondsPerCell: seconds, rows: [] };
  process.stderr.write(`throughput: ${seconds} s per concurrency\n`);
  for (const system of systems.filter((s) => SYSTEMS.includes(s.id))) {
    const row: ThroughputRow = { id: system.id, label: system.label, runsPerSecond: {} };
    report.rows.push(row);
    if (system.missing) {
      row.missing = system.missing;
      process.stderr.write(`  ${system.label}: missing (${system.missing})\n`);
      continue;
    }
    try {
      // First runs of a system in this process (JIT, first cgroup, page cache) are slow: warm it up sequentially.
      for (let i = 0; i < warmup; i++) await system.start('true').done;
      for (const concurrency of CONCURRENCY) row.runsPerSecond[concurrency] = Math.round(await cell(system, concurrency, seconds));
      process.stderr.write(`  ${system.label}: ${CONCURRENCY.map((c) => `${c}: ${row.runsPerSecond[c]}/s`).join(', ')}\n`);
    } catch (error) {
      if (system.id.startsWith('nsbox')) throw error;
      row.runsPerSecond = {};
      row.error = (error as Error).message;
      process.stderr.write(`  ${system.label}: failed (${row.error})\n`);
    }
  }
  return report;
}
