// SPDX-License-Identifier: Apache-2.0
// The smallest useful sandbox: node from the host's /usr, in fresh namespaces, nothing downloaded.
import { run } from 'nsbox';

const result = await run({
  image: 'host',
  command: ['node', '-e', 'console.log(`hello from pid ${process.pid} on ${require("os").hostname()}`)'],
});
console.log(result.stdout.trim());
console.log(`exit ${result.exitCode} in ${result.durationMs.toFixed(1)} ms, ${result.usage.cpuTimeMs.toFixed(1)} ms of CPU`);
