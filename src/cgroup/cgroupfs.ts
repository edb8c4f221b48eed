// SPDX-License-Identifier: Apache-2.0
// Small synchronous helpers over cgroupfs files shared by the v1 and v2 cgroups: read, write, kill, rmdir.
//
// Everything here is synchronous on purpose: cgroupfs reads, writes, mkdir and rmdir are handled in
// the kernel without touching a disk, take microseconds, and run on the spawn latency path, where a
// round trip through the libuv threadpool would cost more than the operation itself.

import { closeSync, constants, mkdirSync, openSync, readFileSync, rmdirSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { SandboxError } from '../errors.js';

/** The CPU period nsbox uses for CPU limits on both versions: 100 ms, the kernel's default. */
export const CPU_PERIOD_US = 100_000;

/** Delays between rmdir attempts while a cgroup is still busy: about 2 s in all. */
const RMDIR_BACKOFF_MS = [5, 10, 20, 40, 80, 160, 320, 640, 725] as const;

function errnoOf(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | null)?.code;
}

/** Wraps a failed cgroupfs operation: EACCES/EPERM become ERR_PERMISSION with a hint, the rest ERR_CGROUP. */
function cgroupError(action: string, path: string, error: unknown): SandboxError {
  const code = errnoOf(error) ?? String(error);
  if (code === 'EACCES' || code === 'EPERM') {
    return new SandboxError(
      'ERR_PERMISSION',
      `Cannot ${action} \`${path}\`: ${code}. Run as root, or delegate a cgroup subtree to this user ` +
        '(for example with systemd-run --user -p Delegate=yes), or pass cgroup: false to run without limits.',
      { cause: error },
    );
  }
  return new SandboxError('ERR_CGROUP', `Cannot ${action} \`${path}\`: ${code}`, { cause: error });
}

/** Creates a directory; returns false if it already existed. */
export function makeDir(path: string): boolean {
  try {
    mkdirSync(path);
    return true;
  } catch (error) {
    if (errnoOf(error) === 'EEXIST') return false;
    throw cgroupError('create cgroup', path, error);
  }
}

/**
 * Creates `dir` and, only when that fails with ENOENT, its parent first: the parent exists after
 * the first sandbox, and a mkdir that fails with EEXIST on every start costs a syscall and an
 * Error object on the start path. Returns false if `dir` already existed.
 */
export function makeDirAndParent(dir: string): boolean {
  try {
    mkdirSync(dir);
    return true;
  } catch (error) {
    if (errnoOf(error) === 'EEXIST') return false;
    if (errnoOf(error) !== 'ENOENT') throw cgroupError('create cgroup', dir, error);
  }
  makeDir(dirname(dir));
  return makeDir(dir);
}

// One write(2) on an O_WRONLY fd: no O_CREAT (kernfs would answer a missing file with EACCES, not ENOENT)
// and no read access (write-only files such as cgroup.kill refuse O_RDWR).
function writeOnce(path: string, value: string): void {
  const fd = openSync(path, constants.O_WRONLY);
  try {
    writeSync(fd, value);
  } finally {
    closeSync(fd);
  }
}

/** Writes one value to a cgroupfs file. */
export function writeValue(path: string, value: string): void {
  try {
    writeOnce(path, value);
  } catch (error) {
    throw cgroupError(`write "${value}" to`, path, error);
  }
}

/** Writes one value to a cgroupfs file that this kernel may not have (returns false if it is missing). */
export function writeIfPresent(path: string, value: string): boolean {
  try {
    writeOnce(path, value);
    return true;
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return false;
    throw cgroupError(`write "${value}" to`, path, error);
  }
}

/** Reads a cgroupfs file, or returns null if it does not exist. */
export function readOptional(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return null;
    throw cgroupError('read', path, error);
  }
}

/** Reads a file holding one number, such as `memory.peak`; null if missing or not a number (`max`). */
export function readNumber(path: string): number | null {
  const text = readOptional(path);
  const value = text === null ? Number.NaN : Number(text.trim());
  return Number.isFinite(value) ? value : null;
}

/** Reads one `key value` line of a flat-keyed file such as `cpu.stat` or `memory.events`; null if missing. */
export function readKey(path: string, key: string): number | null {
  const text = readOptional(path);
  const line = text?.split('\n').find((entry) => entry.startsWith(`${key} `));
  return line === undefined ? null : Number(line.slice(key.length + 1));
}

/** The pids listed in `cgroup.procs` files (a removed cgroup lists none). */
function readPids(procsFiles: readonly string[]): number[] {
  return procsFiles.flatMap((file) => (readOptional(file) ?? '').split('\n').filter(Boolean).map(Number));
}

/** The live pids listed in `procsFiles` (each once), without 0 (a task outside our pid namespace). */
export function listProcs(procsFiles: readonly string[]): number[] {
  return [...new Set(readPids(procsFiles))].filter((pid) => pid > 0);
}

/**
 * Sends `signal` once to every process listed in `procsFiles` (not to ourselves, nor to those in
 * `except`); best effort. Once, though v1 lists each process in every hierarchy: a second signal
 * can reach a process that has already handled the first (a shell's trap would run twice).
 */
export function signalProcs(procsFiles: readonly string[], signal: NodeJS.Signals, except: ReadonlySet<number> = new Set()): void {
  for (const pid of listProcs(procsFiles)) {
    if (pid === process.pid || except.has(pid)) continue;
    try {
      process.kill(pid, signal);
    } catch {
      // gone meanwhile
    }
  }
}

/**
 * SIGKILLs every process in the given `cgroup.procs` files. It reads them again until a pass finds no
 * process it has not signalled yet, which catches children forked between a read and the kill.
 */
export function killProcs(procsFiles: readonly string[]): void {
  const signalled = new Set<number>();
  // A bounded number of passes: a fork bomb under SIGKILL dies out long before this.
  for (let pass = 0; pass < 100; pass++) {
    // 0 stands for a task outside our pid namespace; never signal it (kill(0) means our group) or ourselves.
    const fresh = readPids(procsFiles).filter((pid) => pid > 0 && pid !== process.pid && !signalled.has(pid));
    if (fresh.length === 0) return;
    for (const pid of fresh) {
      signalled.add(pid);
      try {
        process.kill(pid, 'SIGKILL');
      } catch (error) {
        if (errnoOf(error) !== 'ESRCH') throw error;
      }
    }
  }
}

/** Tries to rmdir a cgroup: true when it is gone (also if it was already), false while busy. */
function tryRmdir(dir: string): boolean {
  try {
    rmdirSync(dir);
    return true;
  } catch (error) {
    const code = errnoOf(error);
    if (code === 'ENOENT') return true;
    if (code === 'EBUSY') return false;
    throw cgroupError('remove cgroup', dir, error);
  }
}

/** Removes a cgroup, waiting out EBUSY (the kernel frees a cgroup a moment after its last process exits). */
async function rmdirPatiently(dir: string): Promise<boolean> {
  if (tryRmdir(dir)) return true;
  for (const ms of RMDIR_BACKOFF_MS) {
    await delay(ms);
    if (tryRmdir(dir)) return true;
  }
  return false;
}

/** {@link rmdirPatiently} for exit handlers and other places that cannot await: it blocks while it waits. */
export function rmdirPatientlySync(dir: string, backoffMs: readonly number[] = RMDIR_BACKOFF_MS): boolean {
  if (tryRmdir(dir)) return true;
  const cell = new Int32Array(new SharedArrayBuffer(4));
  for (const ms of backoffMs) {
    Atomics.wait(cell, 0, 0, ms);
    if (tryRmdir(dir)) return true;
  }
  return false;
}

/**
 * Removes a sandbox's cgroup directories. A directory still busy after the backoff gets `kill()` and
 * a second round; one busy even then is an ERR_CGROUP. Directories already gone count as removed.
 */
export async function removeDirs(dirs: readonly string[], kill: () => void): Promise<void> {
  for (const dir of dirs) {
    if (await rmdirPatiently(dir)) continue;
    kill();
    if (!(await rmdirPatiently(dir))) {
      throw new SandboxError('ERR_CGROUP', `Cannot remove cgroup \`${dir}\`: still busy after its processes were killed`);
    }
  }
}

/** Best-effort, blocking removal for exit handlers: `kill()` first, then a short wait per directory. Never throws. */
export function removeDirsSync(dirs: readonly string[], kill: () => void): void {
  try {
    kill();
  } catch {
    // Removal below is attempted anyway; what stays is collected by collectLeftoverCgroups().
  }
  for (const dir of dirs) {
    try {
      rmdirPatientlySync(dir, RMDIR_BACKOFF_MS.slice(0, 6));
    } catch {
      // Best effort, as above.
    }
  }
}

const FREEZE_TIMEOUT_MS = 10_000;

/**
 * Polls `done` with a growing delay until it holds; after 10 s calls `giveUp` and throws ERR_CGROUP
 * (a task stuck in an uninterruptible sleep cannot be frozen).
 */
export async function waitUntil(done: () => boolean, giveUp: () => void, dir: string): Promise<void> {
  const deadline = Date.now() + FREEZE_TIMEOUT_MS;
  for (let delay = 1; !done(); delay = Math.min(delay * 2, 50)) {
    if (Date.now() > deadline) {
      giveUp();
      throw new SandboxError('ERR_CGROUP', `Cannot freeze cgroup \`${dir}\`: its processes did not stop within ${FREEZE_TIMEOUT_MS / 1000} s`);
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}
