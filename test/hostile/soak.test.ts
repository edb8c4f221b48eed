// SPDX-License-Identifier: Apache-2.0
// The soak of benchmarks/soak.ts at CI size: every outcome, sequential and concurrent, nothing left behind, no RSS growth.
import test from 'ava';
import { MAX_RSS_GROWTH_MB, soak, summary } from '../../benchmarks/soak.js';

const RUNS = Number(process.env.NSBOX_SOAK_RUNS ?? 1000);

test.serial(`${RUNS} sandboxes of every outcome leave nothing behind and do not grow the host's memory`, async (t) => {
  t.timeout(300_000);
  const report = await soak({ runs: RUNS, concurrency: 4 });
  t.log(summary(report));
  t.deepEqual(report.unexpected, [], 'every run ended as expected');
  t.deepEqual(report.leaks, [], 'no mount, cgroup, fd, process or directory left behind');
  t.true(report.rssGrowthMb <= MAX_RSS_GROWTH_MB, `RSS grew ${report.rssGrowthMb.toFixed(1)} MB`);
  t.is(Object.values(report.outcomes).reduce((sum, o) => sum + o.runs, 0), RUNS);
});
