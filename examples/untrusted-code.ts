// SPDX-License-Identifier: Apache-2.0
// Running code you do not trust: hard limits, a clear verdict, never an exception for a bad program.
import { run } from 'nsbox';

const programs = {
  fine: 'console.log(21 * 2)',
  crash: 'throw new Error("boom")',
  memoryHog: 'const a = []; for (;;) a.push(Buffer.alloc(1 << 20, 1))',
  infiniteLoop: 'for (;;) {}',
  chatty: 'for (;;) require("fs").writeSync(1, "spam".repeat(100) + "\\n")',
};

for (const [name, code] of Object.entries(programs)) {
  const result = await run({
    image: 'host',
    command: ['node', '-e', code],
    limits: { memory: '128MiB', pids: 32, cpus: 0.5, timeout: '2s', output: '64KiB' },
    reject: false,
  });
  const verdict = result.oomKilled ? 'out of memory'
    : result.timedOut ? 'time limit'
    : result.outputTruncated ? 'output limit'
    : result.exitCode === 0 ? 'ok'
    : `exit ${result.exitCode ?? result.signal}`;
  console.log(`${name.padEnd(12)} ${verdict.padEnd(14)} ${result.usage.cpuTimeMs.toFixed(0)} ms CPU, peak ${((result.usage.memoryPeakBytes ?? 0) / 2 ** 20).toFixed(1)} MiB`);
}
