// SPDX-License-Identifier: Apache-2.0
// The soak of benchmarks/soak.ts at CI size: every outcome, sequential and concurrent, nothing left behind, no RSS growth.
//
// It runs as its own process, with the Node flags the benchmark uses (gc() and a young
// generation at its full size, so V8's heap sizing adds no step to RSS): ava's worker has neither.
import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { MAX_RSS_GROWTH_MB, type SoakReport } from '../../benchmarks/soak.js';

const RUNS = Number(process.env.NSBOX_SOAK_RUNS ?? 1000);
const script = new URL('../../benchmarks/soak.ts', import.meta.url).pathname;

test(`${RUNS} sandboxes of every outcome leave nothing behind and do not grow the host's memory`, async (t) => {
  t.timeout(300_000);
  const flags = ['--expose-gc', '--min-semi-space-size=16', '--import', 'tsx'];
  const { stdout, stderr } = await promisify(execFile)(process.execPath, [...flags, script, '--runs', String(RUNS), '--concurrency', '4', '--json'], { maxBuffer: 16 * 2 ** 20 }).catch(
    // Exit status 1 is a failed check: the report still comes on stdout.
    (error: { stdout?: string; stderr?: string }) => ({ stdout: error.stdout ?? '', stderr: error.stderr ?? String(error) }),
  );
  t.log(stderr.trim());
  const report = JSON.parse(stdout) as SoakReport;
  t.deepEqual(report.unexpected, [], 'every run ended as expected');
  t.deepEqual(report.leaks, [], 'no mount, cgroup, fd, process or directory left behind');
  t.true(report.rssGrowthMb <= MAX_RSS_GROWTH_MB, `RSS grew ${report.rssGrowthMb.toFixed(1)} MB`);
  t.is(Object.values(report.outcomes).reduce((sum, o) => sum + o.runs, 0), RUNS);
  t.true(report.ok);
});
