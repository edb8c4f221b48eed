// SPDX-License-Identifier: Apache-2.0
// The cgroup module against the real cgroupfs: detection, v1 limits/stats/OOM/kill, v2 mechanics, removal, leftovers.

import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isSandboxError } from '../../src/errors.js';
import { collectLeftoverCgroups, createCgroup, newCgroupId } from '../../src/cgroup/cgroup.js';
import { detectCgroups } from '../../src/cgroup/detect.js';

// Everything this file creates lives under a parent of its own, never under 'nsbox' or anyone else's cgroups.
const PARENT = `nsbox-test-${process.pid}`;
const MiB = 1024 * 1024;

const layout = detectCgroups();
const isRoot = process.getuid?.() === 0;
const hasV1 = ['memory', 'pids', 'cpu', 'cpuacct'].every((c) => layout.v1Controllers[c] !== undefined);
const hasV2 = layout.v2 !== null;

/** Serial (cgroupfs is shared state). A missing requirement fails the test, saying which: nothing is skipped. */
function cgroupTest(requirement: 'v1' | 'v2' | 'root', title: string, body: (t: ExecutionContext) => void | Promise<void>): void {
  const ok = isRoot && (requirement === 'root' || (requirement === 'v1' ? hasV1 : hasV2));
  if (ok) test.serial(title, body);
  else test.serial(title, (t) => t.fail(`needs root${requirement === 'root' ? '' : ` and cgroup ${requirement}`}`));
}

/** Every directory of the test parent in every hierarchy. */
function parentDirs(): string[] {
  const roots = [...layout.v1.map((h) => h.mountPoint), ...(layout.v2 ? [layout.v2.mountPoint] : [])];
  return roots.map((root) => join(root, PARENT)).filter((dir) => existsSync(dir));
}

function subdirs(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(dir, e.name));
}

function pidsIn(dir: string): number[] {
  return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
}

function spawnSleep(): ChildProcess {
  return spawn('sleep', ['30'], { stdio: 'ignore' });
}

/** A shell that joins the cgroup itself, burns some CPU inside it, then sleeps; resolves once it is sleeping. */
async function spawnBusyThenSleep(procsFiles: readonly string[]): Promise<ChildProcess> {
  const joinAll = procsFiles.map((file) => `echo $$ > ${file}`).join('; ');
  const burn = 'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done';
  const child = spawn('/bin/sh', ['-c', `${joinAll}; ${burn}; echo ready; exec sleep 30`], { stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise((resolve) => child.stdout!.once('data', resolve));
  return child;
}

function moveInto(child: ChildProcess, procsFiles: readonly string[]): void {
  for (const file of procsFiles) writeFileSync(file, String(child.pid));
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** A pid that certainly belongs to no process now: a child that has exited and been reaped. */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  await exited(child);
  return child.pid!;
}

// Independent of the module under test: kill what is left under the test parent, then rmdir it all.
test.after.always('remove everything this file created', async () => {
  for (let attempt = 0; attempt < 50 && parentDirs().length > 0; attempt++) {
    for (const parent of parentDirs()) {
      for (const dir of subdirs(parent)) {
        for (const pid of pidsIn(dir)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // Already gone.
          }
        }
        try {
          rmdirSync(dir);
        } catch {
          // Busy a moment longer; the next attempt gets it.
        }
      }
      try {
        rmdirSync(parent);
      } catch {
        // Not empty yet.
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
});

test.serial('detection matches /proc/self/cgroup and this host\'s mounts', (t) => {
  t.true(['v1', 'v2', 'hybrid', 'none'].includes(layout.mode));
  t.is(detectCgroups(), layout, 'the layout is cached');

  // Every v1 hierarchy line of /proc/self/cgroup ("4:memory:/path", "3:cpu,cpuacct:/") is one detected hierarchy.
  const fromProc = readFileSync('/proc/self/cgroup', 'utf8').split('\n').filter(Boolean)
    .map((line) => line.split(':')[1]).filter((list) => list !== '' && !list.startsWith('name='))
    .map((list) => list.split(',').sort().join(','));
  t.deepEqual(layout.v1.map((h) => [...h.controllers].sort().join(',')).sort(), fromProc.sort());
  for (const h of layout.v1) t.true(existsSync(join(h.mountPoint, 'cgroup.procs')), h.mountPoint);
  if (layout.v2) t.true(existsSync(join(layout.v2.mountPoint, 'cgroup.controllers')));

  // This machine (hybrid): memory and pids on v1, an empty unified hierarchy.
  if (existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes')) t.is(layout.v1Controllers.memory, '/sys/fs/cgroup/memory');
  if (existsSync('/sys/fs/cgroup/pids/pids.current') || existsSync('/sys/fs/cgroup/pids/cgroup.procs')) {
    t.is(layout.v1Controllers.pids, '/sys/fs/cgroup/pids');
  }
  if (existsSync('/sys/fs/cgroup/unified/cgroup.controllers')) {
    t.is(layout.v2?.mountPoint, '/sys/fs/cgroup/unified');
    t.is(layout.mode, 'hybrid');
  }
});

cgroupTest('v1', 'v1: creates a directory per hierarchy and writes the limits', async (t) => {
  const cgroup = createCgroup({ id: newCgroupId(), parent: PARENT, version: 'v1', limits: { memoryBytes: 64 * MiB, pids: 50, cpus: 0.5 } });
  t.is(cgroup.version, 'v1');
  if (cgroup.version !== 'v1') return;
  const dirOf = (controller: string): string => join(layout.v1Controllers[controller], PARENT, cgroup.id);
  const read = (controller: string, file: string): string => readFileSync(join(dirOf(controller), file), 'utf8').trim();

  t.deepEqual([...cgroup.dirs].sort(), [...new Set(['memory', 'pids', 'cpu', 'cpuacct'].map(dirOf))].sort());
  t.deepEqual(cgroup.procsFiles, cgroup.dirs.map((dir) => join(dir, 'cgroup.procs')));
  t.is(read('memory', 'memory.limit_in_bytes'), String(64 * MiB));
  if (existsSync(join(dirOf('memory'), 'memory.memsw.limit_in_bytes'))) {
    t.is(read('memory', 'memory.memsw.limit_in_bytes'), String(64 * MiB));
  }
  t.is(read('pids', 'pids.max'), '50');
  t.is(read('cpu', 'cpu.cfs_period_us'), '100000');
  t.is(read('cpu', 'cpu.cfs_quota_us'), '50000');

  await cgroup.remove();
  for (const dir of cgroup.dirs) t.false(existsSync(dir), dir);
  await t.notThrowsAsync(cgroup.remove(), 'remove() is idempotent');
  t.notThrows(() => cgroup.removeSync());
});

cgroupTest('v1', 'v1: a joined process shows in stats, and kill() ends it', async (t) => {
  const cgroup = createCgroup({ id: newCgroupId(), parent: PARENT, version: 'v1' });
  const child = await spawnBusyThenSleep(cgroup.procsFiles);
  for (const file of cgroup.procsFiles) t.true(readFileSync(file, 'utf8').split('\n').includes(String(child.pid)), file);

  const stats = cgroup.stats();
  t.true(stats.cpuTimeMs > 0, `cpuTimeMs ${stats.cpuTimeMs}`);
  t.true((stats.memoryPeakBytes ?? 0) > 0, `memoryPeakBytes ${stats.memoryPeakBytes}`);
  if (existsSync(join(layout.v1Controllers.pids, PARENT, cgroup.id, 'pids.peak'))) t.true((stats.pidsPeak ?? 0) >= 1);
  t.false(stats.oomKilled);

  cgroup.kill();
  t.deepEqual(await exited(child), { code: null, signal: 'SIGKILL' });
  await cgroup.remove();
  t.false(existsSync(cgroup.procsFiles[0]));
  t.notThrows(() => cgroup.kill(), 'kill() after remove() is a no-op');
});

cgroupTest('v1', 'v1: removeSync() kills what is inside and removes every directory at once', async (t) => {
  const cgroup = createCgroup({ id: newCgroupId(), parent: PARENT, version: 'v1', limits: { pids: 10 } });
  const child = spawnSleep();
  moveInto(child, cgroup.procsFiles);
  cgroup.removeSync();
  for (const file of cgroup.procsFiles) t.false(existsSync(file), file);
  t.deepEqual(await exited(child), { code: null, signal: 'SIGKILL' });
});

cgroupTest('v1', 'v1: the pids limit holds and shows as the peak', async (t) => {
  const cgroup = createCgroup({ id: newCgroupId(), parent: PARENT, version: 'v1', limits: { pids: 3 } });
  const joinAll = cgroup.procsFiles.map((f) => `echo $$ > ${f}`).join('; ');
  const child = spawn('/bin/sh', ['-c', `${joinAll}; for i in 1 2 3 4 5 6; do sleep 1 & done; wait`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await exited(child);
  t.regex(stderr, /fork|resource temporarily unavailable/i);
  const { pidsPeak } = cgroup.stats();
  if (pidsPeak !== null) t.is(pidsPeak, 3);
  await cgroup.remove();
});

cgroupTest('v1', 'v1: a process over the memory limit is OOM-killed and stats say so', async (t) => {
  const cgroup = createCgroup({ id: newCgroupId(), parent: PARENT, version: 'v1', limits: { memoryBytes: 32 * MiB } });
  // The shell joins every hierarchy itself, then becomes python, which touches 200 MiB.
  const script = `for f in ${cgroup.procsFiles.join(' ')}; do echo $$ > $f; done; exec python3 -c "b = b'x' * (200 * 1024 * 1024)"`;
  const child = spawn('/bin/sh', ['-c', script], { stdio: 'ignore' });
  t.deepEqual(await exited(child), { code: null, signal: 'SIGKILL' });
  const stats = cgroup.stats();
  t.true(stats.oomKilled);
  t.true((stats.memoryPeakBytes ?? Infinity) <= 32 * MiB, `memoryPeakBytes ${stats.memoryPeakBytes}`);
  await cgroup.remove();
});

cgroupTest('v2', 'v2: create, join, cpu.stat, kill via cgroup.kill, remove', async (t) => {
  const cgroup = createCgroup({ id: newCgroupId(), parent: PARENT, version: 'v2' });
  t.is(cgroup.version, 'v2');
  if (cgroup.version !== 'v2') return;
  t.is(cgroup.dir, join(layout.v2!.mountPoint, PARENT, cgroup.id));
  t.deepEqual(cgroup.procsFiles, [join(cgroup.dir, 'cgroup.procs')]);

  const child = await spawnBusyThenSleep(cgroup.procsFiles);
  t.deepEqual(pidsIn(cgroup.dir), [child.pid]);
  const stats = cgroup.stats();
  t.true(stats.cpuTimeMs > 0, `cpuTimeMs ${stats.cpuTimeMs}`);
  if (!layout.v2!.controllers.includes('memory')) t.is(stats.memoryPeakBytes, null);
  t.false(stats.oomKilled);

  cgroup.kill();
  t.deepEqual(await exited(child), { code: null, signal: 'SIGKILL' });
  await cgroup.remove();
  t.false(existsSync(cgroup.dir));
  t.true(existsSync(join(layout.v2!.mountPoint, PARENT)), 'the shared parent stays');
});

cgroupTest('v2', 'v2: remove() of a cgroup that still has a process kills it after waiting', async (t) => {
  const cgroup = createCgroup({ id: newCgroupId(), parent: PARENT, version: 'v2' });
  const child = spawnSleep();
  moveInto(child, cgroup.procsFiles);
  await cgroup.remove();
  t.deepEqual(await exited(child), { code: null, signal: 'SIGKILL' });
  t.false(existsSync(cgroup.procsFiles[0]));
});

cgroupTest('v2', 'v2: a limit whose controller v2 lacks is ERR_UNSUPPORTED and creates nothing', (t) => {
  const missing = ['memory', 'pids', 'cpu'].find((c) => !layout.v2!.controllers.includes(c));
  if (missing === undefined) {
    t.pass('this host has memory, pids and cpu on v2');
    return;
  }
  const limits = { memory: { memoryBytes: 32 * MiB }, pids: { pids: 10 }, cpu: { cpus: 1 } }[missing];
  const id = newCgroupId();
  const error = t.throws(() => createCgroup({ id, parent: PARENT, version: 'v2', limits }));
  t.true(isSandboxError(error));
  t.is((error as { code?: string }).code, 'ERR_UNSUPPORTED');
  t.regex(error!.message, new RegExp(`"${missing}" controller`));
  t.regex(error!.message, /v2/);
  t.false(existsSync(join(layout.v2!.mountPoint, PARENT, id)));
});

cgroupTest('root', 'bad ids and parents are ERR_INVALID_OPTION', (t) => {
  for (const options of [
    { id: '../../memory', parent: PARENT },
    { id: 'nsbox-123x0123456789abcdef', parent: PARENT },
    { id: newCgroupId(), parent: '..' },
    { id: newCgroupId(), parent: 'a/b' },
  ]) {
    const error = t.throws(() => createCgroup({ ...options, version: 'v1' }));
    t.is((error as { code?: string }).code, 'ERR_INVALID_OPTION', JSON.stringify(options));
  }
  t.regex(newCgroupId(), new RegExp(`^${process.pid}x[0-9a-f]{16}$`));
});

cgroupTest('v1', 'creating a cgroup without permission is ERR_PERMISSION naming the path', (t) => {
  // Run the module as nobody in a child process; root always has permission.
  const moduleUrl = new URL('../../src/cgroup/cgroup.ts', import.meta.url).href;
  const script = `import { createCgroup } from '${moduleUrl}';
    try { createCgroup({ id: '1x0123456789abcdef', parent: '${PARENT}', version: 'v1' }); console.log('{}'); }
    catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
  const result = spawnSync(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], {
    uid: 65534, gid: 65534, cwd: fileURLToPath(new URL('../..', import.meta.url)), encoding: 'utf8', timeout: 30_000,
  });
  t.is(result.status, 0, result.stderr);
  const outcome = JSON.parse(result.stdout) as { code?: string; message?: string };
  t.is(outcome.code, 'ERR_PERMISSION');
  t.regex(outcome.message ?? '', new RegExp(`/sys/fs/cgroup/\\w+/${PARENT}`));
  t.regex(outcome.message ?? '', /root|delegate|cgroup: false/);
});

cgroupTest('v1', 'collectLeftoverCgroups removes dead owners\' cgroups (killing what is inside) and nothing else', async (t) => {
  const dead = await deadPid();
  t.throws(() => process.kill(dead, 0), { code: 'ESRCH' });
  const hex = (): string => newCgroupId().split('x')[1];

  const deadV1 = createCgroup({ id: `${dead}x${hex()}`, parent: PARENT, version: 'v1' });
  const busyV1 = createCgroup({ id: `${dead}x${hex()}`, parent: PARENT, version: 'v1' });
  const deadV2 = hasV2 ? createCgroup({ id: `${dead}x${hex()}`, parent: PARENT, version: 'v2' }) : undefined;
  const live = createCgroup({ id: newCgroupId(), parent: PARENT, version: 'v1' });
  const stranger = join(layout.v1Controllers.memory, PARENT, `${dead}x-not-an-id`);
  mkdirSync(stranger);
  const child = spawnSleep();
  moveInto(child, busyV1.procsFiles);

  const expected = deadV1.procsFiles.length + busyV1.procsFiles.length + (deadV2 ? 1 : 0);
  t.is(collectLeftoverCgroups(PARENT), expected);
  t.deepEqual(await exited(child), { code: null, signal: 'SIGKILL' });
  for (const file of [...deadV1.procsFiles, ...busyV1.procsFiles, ...(deadV2?.procsFiles ?? [])]) t.false(existsSync(file), file);
  for (const file of live.procsFiles) t.true(existsSync(file), file);
  t.true(existsSync(stranger));
  t.is(collectLeftoverCgroups(PARENT), 0, 'a second sweep finds nothing');

  rmdirSync(stranger);
  await live.remove();
});
