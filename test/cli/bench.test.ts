// SPDX-License-Identifier: Apache-2.0
// `nsbox bench --quick` from the built CLI (dist/cli.js loading dist/bench.js): every scenario
// runs against the real peers and writes the JSON, markdown and SVG it promises.
import { existsSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { collect, type Collected } from '../helpers/collect.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const bin = path.join(repoRoot, 'bin', 'nsbox.js');

function nsbox(args: string[], cwd: string): Promise<Collected> {
  return collect(process.execPath, [bin, ...args], { cwd, timeoutMs: 240_000 });
}

interface Row {
  id: string;
  stats: { runs: number; p50: number; p99: number } | null;
  missing?: string;
}

test.before(() => {
  if (!existsSync(path.join(repoRoot, 'dist', 'bench.js'))) throw new Error('dist/bench.js is missing: build first (`npx tsup`, or `npm test`)');
});

test('nsbox bench --quick writes latest.json, latest.md and latency.svg with every scenario', async (t) => {
  t.timeout(300_000);
  const cwd = await fs.mkdtemp(path.join(os.tmpdir(), 'nsbox-bench-test-'));
  t.teardown(() => fs.rm(cwd, { recursive: true, force: true }));
  const r = await nsbox(['bench', '--quick'], cwd);
  t.is(r.code, 0, r.stderr);
  const out = path.join(cwd, 'nsbox-bench');

  const json = JSON.parse(readFileSync(path.join(out, 'latest.json'), 'utf8'));
  t.regex(json.machine.kernel, /^\d+\.\d+/);
  t.true(json.machine.cores >= 1);
  t.regex(json.machine.cgroups, /^(v1|v2|hybrid|none)$/);
  t.is(json.machine.node, process.version);
  t.false(Number.isNaN(Date.parse(json.machine.date)));
  t.true(json.settings.quick);

  // Scenarios 1 and 2: nsbox and the Node floor measured at both heaps, with the run count asked for.
  const [small, big] = json.latency as Array<{ heap: string; heapUsedBytes: number; rows: Row[] }>;
  t.is(small.heap, 'small');
  t.is(big.heap, '1g');
  t.true(big.heapUsedBytes >= 1e9);
  for (const report of [small, big]) {
    for (const id of ['node-spawn', 'nsbox']) {
      const row = report.rows.find((x) => x.id === id);
      t.is(row?.stats?.runs, json.settings.runs, `${report.heap} ${id}`);
      t.true(row!.stats!.p50 > 0 && row!.stats!.p50 <= row!.stats!.p99);
    }
  }
  // Every peer has a row: measured, or missing with its reason (no Docker engine on the test machines).
  for (const id of ['bwrap', 'crun', 'runc', 'docker']) {
    const row = small.rows.find((x) => x.id === id);
    t.truthy(row, id);
    t.true(row!.stats !== null || typeof row!.missing === 'string' || typeof (row as { error?: string }).error === 'string', id);
  }
  // The C floor, built from benchmarks/floor/floor.c with cc.
  t.true(json.floor.find((x: Row) => x.id === 'floor').stats.p50 > 0);
  // Scenario 3: runs per second at each concurrency.
  const throughput = json.throughput.rows.find((x: { id: string }) => x.id === 'nsbox');
  for (const c of ['1', '2', '4', '8']) t.true(throughput.runsPerSecond[c] > 0, `concurrency ${c}`);
  // Scenario 4: first byte of echo hi.
  t.true(json.firstByte.find((x: Row) => x.id === 'nsbox').stats.p50 > 0);
  // Scenario 5: the quick run's 20 idle sandboxes, all gone afterwards.
  t.is(json.idleMemory.sandboxes, 20);
  t.is(json.idleMemory.leftAfterCleanup, 0);
  t.is(json.idleMemory.hostProcessesAfter, json.idleMemory.hostProcessesBefore);
  // Scenarios 6 and 7 are reported, never dropped.
  t.true(json.pullUnpack.available);
  t.true(json.pullUnpack.result.rows.length > 0);
  for (const id of ['exec', 'pool', 'run']) t.true(json.execPool.scenarios.find((x: { id: string }) => x.id === id).stats.p50 > 0, id);
  t.is(typeof json.execPool.poolOverheadMs, 'number');
  t.is(json.targets.length, 8);

  const markdown = readFileSync(path.join(out, 'latest.md'), 'utf8');
  for (const heading of ['## Targets (issue 5)', '## 1–2. Start-to-exit', '## 3. Throughput', '## 4. Time to first byte', '## 5. Idle sandboxes', '## 6. Pull + unpack', '## 7. Exec latency'])
    t.true(markdown.includes(heading), heading);
  t.regex(markdown, /\| \(b\) nsbox full sandbox \| small .*\| \d+\.\d\d \|/);
  t.true(r.stdout.includes(markdown));

  const svg = readFileSync(path.join(out, 'latency.svg'), 'utf8');
  t.regex(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  t.true(svg.includes('(b) nsbox full sandbox'));
  t.true(svg.trimEnd().endsWith('</svg>'));
});

test('nsbox bench rejects bad options with exit 125', async (t) => {
  const cwd = os.tmpdir();
  const unknown = await nsbox(['bench', '--only', 'latency,nope'], cwd);
  t.is(unknown.code, 125);
  t.regex(unknown.stderr, /--only: unknown scenario nope/);
  const runs = await nsbox(['bench', '--runs', '0'], cwd);
  t.is(runs.code, 125);
  t.regex(runs.stderr, /--runs must be an integer of at least 1, got '0'/);
  const help = await nsbox(['bench', '--help'], cwd);
  t.is(help.code, 0);
  t.regex(help.stdout, /^Usage: nsbox bench/);
});
