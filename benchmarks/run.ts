// SPDX-License-Identifier: Apache-2.0
// `npm run bench`: the suite (bench.ts) with its results in benchmarks/results/; a full run (no
// --quick, no --only) also rewrites the table between README.md's bench markers.
//
// Options after `npm run bench --`: see `nsbox bench --help` (--quick, --runs, --warmup, --sandboxes, --only, --out).
import fs from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { benchMain, readmeBlock } from './bench.js';

const RESULTS = fileURLToPath(new URL('results/', import.meta.url));
const README = fileURLToPath(new URL('../README.md', import.meta.url));
const START = '<!-- bench:start (written by benchmarks/run.ts) -->';
const END = '<!-- bench:end -->';

const argv = process.argv.slice(2);
const { code, report, out } = await benchMain(argv, { stdout: process.stdout, stderr: process.stderr, defaultOut: RESULTS });
const full = !argv.some((arg) => arg === '--quick' || arg.startsWith('--only') || arg.startsWith('--out'));
if (code === 0 && report && full && out) {
  const readme = await fs.readFile(README, 'utf8');
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) {
    process.stderr.write(`README.md has no ${START} … ${END} block: the table there was not updated\n`);
  } else {
    await fs.writeFile(README, `${readme.slice(0, start + START.length)}\n${readmeBlock(report)}\n${readme.slice(end)}`);
    process.stdout.write('Updated the table in README.md\n');
  }
}
process.exitCode = code;
