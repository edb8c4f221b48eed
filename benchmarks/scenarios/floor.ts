// SPDX-License-Identifier: Apache-2.0
// The C floor: benchmarks/floor/floor.c, built with the system's cc, timing clone + namespaces +
// overlay + /proc + pivot_root + exec of /bin/true in a loop with no runtime around it.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { which } from '../lib/host.js';
import { summarize, type Stats } from '../lib/stats.js';

const execFileAsync = promisify(execFile);

export interface FloorRow {
  id: 'floor' | 'floor-nonet';
  label: string;
  note: string;
  stats: Stats | null;
  missing?: string;
  samples?: number[];
}

/** Compiles floor.c once per source into $TMPDIR/nsbox-bench-floor/<hash>. */
async function build(source: string): Promise<string> {
  const cc = which('cc') ?? which('gcc');
  if (!cc) throw new Error('no C compiler (cc) on PATH');
  const text = await fs.readFile(source);
  const dir = path.join(os.tmpdir(), 'nsbox-bench-floor');
  const binary = path.join(dir, createHash('sha256').update(text).digest('hex').slice(0, 16));
  if (existsSync(binary)) return binary;
  await fs.mkdir(dir, { recursive: true });
  const building = `${binary}.tmp-${process.pid}`;
  await execFileAsync(cc, ['-O2', '-Wall', '-o', building, source]);
  await fs.rename(building, binary);
  return binary;
}

/** Both floor rows (with and without a network namespace), or the reason they are missing. */
export async function measureFloor(source: string | undefined, rootfs: string, runs: number, warmup: number): Promise<FloorRow[]> {
  const rows: Array<Omit<FloorRow, 'stats'>> = [
    { id: 'floor', label: 'C floor: clone (mnt, pid, uts, ipc, net, cgroup ns) + overlay + /proc + pivot_root + exec', note: 'benchmarks/floor/floor.c, timed in C around clone → waitpid' },
    { id: 'floor-nonet', label: 'C floor without a network namespace', note: 'as above without CLONE_NEWNET' },
  ];
  let binary: string;
  try {
    if (!source) throw new Error('benchmarks/floor/floor.c is not part of this installation');
    binary = await build(source);
  } catch (error) {
    const missing = (error as Error).message;
    return rows.map((row) => ({ ...row, stats: null, missing }));
  }
  process.stderr.write(`C floor: ${runs} runs after ${warmup} warm-up\n`);
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'nsbox-bench-floor-'));
  try {
    const result: FloorRow[] = [];
    for (const row of rows) {
      const args = [rootfs, scratch, String(runs), String(warmup), ...(row.id === 'floor-nonet' ? ['--no-net'] : [])];
      const { stdout } = await execFileAsync(binary, args, { maxBuffer: 16 * 2 ** 20 });
      const samples = stdout.split('\n').filter(Boolean).map(Number);
      const stats = summarize(samples);
      result.push({ ...row, stats, samples });
      process.stderr.write(`  ${row.label}: p50 ${stats.p50.toFixed(2)} ms, p99 ${stats.p99.toFixed(2)} ms\n`);
    }
    return result;
  } finally {
    // Every mount was in the children's own mount namespaces: the directory is empty again.
    await fs.rm(scratch, { recursive: true, force: true });
  }
}
