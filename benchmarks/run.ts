// SPDX-License-Identifier: Apache-2.0
// `npm run bench`: runs spawn-latency.ts at a small and a 1 GB heap, prints a markdown table and writes benchmarks/results/.
//
// Options (after `npm run bench --`): --runs N (default 200), --warmup N (default 20).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { detectCgroups } from '../src/cgroup/detect.js';
import type { LatencyReport, ScenarioResult } from './spawn-latency.js';

const SCRIPT = fileURLToPath(new URL('spawn-latency.ts', import.meta.url));
const RESULTS = fileURLToPath(new URL('results/', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Machine {
  cpu: string;
  cores: number;
  memoryBytes: number;
  kernel: string;
  cgroups: string;
  node: string;
  date: string;
  /** 1-minute load average when the run started: other work on the machine skews every row. */
  loadAverage: number;
}

function describeMachine(): Machine {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  return {
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? 'unknown',
    cores: cpuinfo.match(/^processor\s*:/gm)?.length ?? os.cpus().length,
    memoryBytes: os.totalmem(),
    kernel: os.release(), // what `uname -r` prints
    cgroups: detectCgroups().mode,
    node: process.version,
    date: new Date().toISOString(),
    loadAverage: os.loadavg()[0],
  };
}

/** Runs spawn-latency.ts in a fresh Node process (with a 4 GB heap limit for the 1 GB case) and parses its report. */
function measureAt(heap: 'small' | '1g', runs: number, warmup: number): Promise<LatencyReport> {
  const nodeArgs = heap === '1g' ? ['--max-old-space-size=4096'] : [];
  const args = [...nodeArgs, '--import', 'tsx', SCRIPT, '--heap', heap, '--runs', String(runs), '--warmup', String(warmup)];
  return new Promise((resolve, reject) => {
    // From the package root, where `--import tsx` resolves.
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code !== 0) reject(new Error(`spawn-latency.ts --heap ${heap} exited with ${code ?? signal}`));
      else resolve(JSON.parse(stdout) as LatencyReport);
    });
  });
}

const ms = (value: number) => value.toFixed(2);
const mb = (bytes: number) => `${Math.round(bytes / 1e6)} MB`;
const heapLabel = (report: LatencyReport) => `${report.heap === '1g' ? '1 GB' : 'small'} (heap ${mb(report.heapUsedBytes)}, RSS ${mb(report.rssBytes)})`;

function table(reports: LatencyReport[]): string {
  const lines = ['| system | heap | p50 ms | p99 ms | max ms | p50 ratio to child_process.spawn |', '|---|---|---:|---:|---:|---:|'];
  for (const report of reports) {
    const floor = report.scenarios.find((s) => s.id === 'node-spawn')?.stats;
    for (const { label, stats, missing } of report.scenarios) {
      const absent = missing ? 'missing' : 'failed';
      const cells = stats
        ? [ms(stats.p50), ms(stats.p99), ms(stats.max), floor ? `${(stats.p50 / floor.p50).toFixed(2)}×` : '']
        : [absent, absent, absent, ''];
      lines.push(`| ${label} | ${heapLabel(report)} | ${cells.join(' | ')} |`);
    }
  }
  return lines.join('\n');
}

function notes(reports: LatencyReport[]): string {
  const lines = new Map<string, string>();
  for (const report of reports) {
    for (const s of report.scenarios) {
      const status = s.missing ? ` — missing: ${s.missing}` : s.error ? ` — failed at heap ${report.heap}: ${s.error}` : '';
      const line = lines.get(s.id) ?? `- **${s.label}**: ${s.note}`;
      lines.set(s.id, line.endsWith(status) ? line : line + status);
    }
  }
  return [...lines.values()].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '200' }, warmup: { type: 'string', default: '20' } } });
  const runs = Number(values.runs);
  const warmup = Number(values.warmup);
  const machine = describeMachine();
  if (machine.loadAverage > machine.cores / 2) {
    process.stderr.write(`note: load average ${machine.loadAverage.toFixed(2)} on ${machine.cores} cores: other work is running, expect noisy numbers\n`);
  }

  const reports = [await measureAt('small', runs, warmup), await measureAt('1g', runs, warmup)];

  const header = [
    `Sequential start-to-exit of \`/bin/true\`, ${runs} runs after ${warmup} warm-up, ${machine.date}.`,
    `Machine: ${machine.cpu}, ${machine.cores} cores, ${(machine.memoryBytes / 2 ** 30).toFixed(0)} GiB, kernel ${machine.kernel}, cgroups ${machine.cgroups}, Node ${machine.node}, load average ${machine.loadAverage.toFixed(2)} at start.`,
  ].join('\n');
  const markdown = `${header}\n\n${table(reports)}\n\n${notes(reports)}\n`;
  process.stdout.write(`\n${markdown}`);

  await fs.mkdir(RESULTS, { recursive: true });
  await fs.writeFile(`${RESULTS}latest.json`, `${JSON.stringify({ machine, runs, warmup, reports }, null, 2)}\n`);
  await fs.writeFile(`${RESULTS}latest.md`, `# nsbox spawn latency\n\n${markdown}`);
  process.stdout.write('\nWrote benchmarks/results/latest.json and latest.md\n');
}

await main();
