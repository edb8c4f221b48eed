// SPDX-License-Identifier: Apache-2.0
// Cancel a sandbox with an AbortSignal: the whole process tree goes, and the error says so.
import { run, RunError } from 'nsbox';

const controller = new AbortController();
setTimeout(() => controller.abort(), 200);
try {
  await run({ image: 'host', command: ['sh', '-c', 'sleep 100 & sleep 100 & wait'], signal: controller.signal });
} catch (error) {
  if (error instanceof RunError && error.isCanceled) console.log(`canceled after ${error.durationMs.toFixed(0)} ms (${error.code})`);
  else throw error;
}
