// SPDX-License-Identifier: Apache-2.0
// Scenario 5: what idle sandboxes cost the host. N sandboxes run `sleep` at once; the Node
// process's RSS, its threads and the host processes outside the sandboxes are counted before and
// after. Runs in its own Node process started with --expose-gc, so that RSS is read after a GC.
import { setTimeout as delay } from 'node:timers/promises';
import { spawn, type SandboxProcess } from '../../src/index.js';
import { hostDescendants, meminfo, processStatus } from '../lib/host.js';

export interface IdleMemoryReport {
  sandboxes: number;
  /** Node process RSS (after a GC) before and with every sandbox running. */
  rssBeforeBytes: number;
  rssAfterBytes: number;
  rssPerSandboxBytes: number;
  /** JS heap used (after a GC) before and with every sandbox running. */
  heapBeforeBytes: number;
  heapAfterBytes: number;
  threadsBefore: number;
  threadsAfter: number;
  /** Live descendants of the Node process in its own pid namespace, i.e. host processes outside every sandbox. */
  hostProcessesBefore: number;
  hostProcessesAfter: number;
  /** Machine-wide MemAvailable drop per sandbox: the sandbox's own processes, kernel namespaces and cgroups. Noisy: anything else on the machine counts too. */
  machinePerSandboxBytes: number;
  /** Seconds to start them all (4 in flight). */
  startSeconds: number;
  /** Host processes left after every sandbox was killed and reaped (must be 0). */
  leftAfterCleanup: number;
}

function collect(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  gc();
  gc();
}

async function settle(): Promise<void> {
  await delay(500);
  collect();
  await delay(100);
}

/**
 * Starts `count` idle sandboxes (nsbox defaults: every namespace, cgroup, init, `sleep 3600` with a
 * 5-minute timeout as a bound), measures, then kills and reaps them all, also when a start fails.
 */
export async function measureIdleMemory(rootfs: string, count: number): Promise<IdleMemoryReport> {
  // Bound: refuse to start when the machine cannot take them with a wide margin (about 2 MiB each measured, 8 MiB asked).
  const available = meminfo('MemAvailable');
  if (available < 1024 ** 3 + count * 8 * 1024 ** 2) throw new Error(`only ${Math.round(available / 2 ** 20)} MiB available for ${count} idle sandboxes`);
  process.stderr.write(`idle memory: ${count} sandboxes running sleep\n`);

  await settle();
  const before = { ...processStatus(), heap: process.memoryUsage().heapUsed, host: hostDescendants().length, available: meminfo('MemAvailable') };
  const sandboxes: SandboxProcess[] = [];
  const started = performance.now();
  try {
    let next = 0;
    const startOne = async () => {
      while (next < count) {
        next++;
        const child = spawn({ image: rootfs, command: ['sleep', '3600'], buffer: false, reject: false, limits: { timeout: '5m' } });
        sandboxes.push(child);
        await new Promise<void>((resolve, reject) => {
          child.once('spawn', () => resolve());
          child.result.then((result) => reject(new Error(`an idle sandbox ended before it was measured: ${JSON.stringify(result).slice(0, 300)}`)), reject);
        });
      }
    };
    await Promise.all([startOne(), startOne(), startOne(), startOne()]);
    const startSeconds = (performance.now() - started) / 1000;
    await settle();
    const after = { ...processStatus(), heap: process.memoryUsage().heapUsed, host: hostDescendants().length, available: meminfo('MemAvailable') };
    return {
      sandboxes: count,
      rssBeforeBytes: before.rssBytes,
      rssAfterBytes: after.rssBytes,
      rssPerSandboxBytes: Math.round((after.rssBytes - before.rssBytes) / count),
      heapBeforeBytes: before.heap,
      heapAfterBytes: after.heap,
      threadsBefore: before.threads,
      threadsAfter: after.threads,
      hostProcessesBefore: before.host,
      hostProcessesAfter: after.host,
      machinePerSandboxBytes: Math.round((before.available - after.available) / count),
      startSeconds: Math.round(startSeconds * 100) / 100,
      leftAfterCleanup: -1,
    };
  } finally {
    for (const child of sandboxes) child.kill('SIGKILL');
    await Promise.all(sandboxes.map((child) => child.result.catch(() => {})));
  }
}

/** Runs the measurement and checks that nothing outlived it. */
export async function idleMemory(rootfs: string, count: number): Promise<IdleMemoryReport> {
  const report = await measureIdleMemory(rootfs, count);
  report.leftAfterCleanup = hostDescendants().length - report.hostProcessesBefore;
  return report;
}
