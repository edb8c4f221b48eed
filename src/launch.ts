// SPDX-License-Identifier: Apache-2.0
// From normalised options to a running sandbox: image, user, cgroup, plan, native spawn, stdio.
import { existsSync, mkdirSync, realpathSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { collectLeftoverCgroups, createCgroup, type SandboxCgroup } from './cgroup/cgroup.js';
import { detectCgroups } from './cgroup/detect.js';
import { isSandboxError, SandboxError } from './errors.js';
import { idMapping } from './idmap.js';
import { readImageFile, resolveImage } from './image/resolve.js';
import { track, untrack } from './live.js';
import { initPath, native } from './native/binding.js';
import { type NativeExit, type NativeSpawned, type NativeSpawnPlan } from './native/native.js';
import type { NormalizedOptions } from './options.js';
import { isRoot, scratchDir } from './paths.js';
import { releaseNetns, takeNetns } from './netns-pool.js';
import { buildPlan } from './plan.js';
import { setupError } from './result.js';
import { resolveUser } from './user-spec.js';

/** @internal A sandbox whose pid 1 runs. */
export interface Launched {
  pid: number;
  argv: string[];
  image: string;
  stdin: Socket | null;
  stdout: Socket | null;
  stderr: Socket | null;
  exited: Promise<NativeExit>;
  kill(signal: number): boolean;
  /** After exit: reads the cgroup's stats, removes it, releases the pidfd. */
  cleanup(): Promise<{ cpuTimeMs: number | null; memoryPeakBytes: number | null; pidsPeak: number | null; oomKilled: boolean }>;
}

let leftoversCollected = false;

// On a hybrid machine (v1 controllers + an empty v2) limits need v1. NSBOX_CGROUP_VERSION
// forces one (the tests use it to run the v2 mechanics on this hybrid machine).
function cgroupVersion(): 'v1' | 'v2' | undefined {
  const forced = process.env.NSBOX_CGROUP_VERSION;
  if (forced === 'v1' || forced === 'v2') return forced;
  const layout = detectCgroups();
  if (layout.v1Controllers.memory || layout.v1Controllers.pids) return 'v1';
  return layout.v2 ? 'v2' : undefined;
}

function makeCgroup(id: string, options: NormalizedOptions): SandboxCgroup | undefined {
  const { limits } = options;
  if (!options.cgroup) {
    if (options.explicitCgroupLimits)
      throw new SandboxError('ERR_INVALID_OPTION', 'Invalid sandbox option: limits.memory, limits.pids and limits.cpus need a cgroup; remove them or the `cgroup: false` option');
    return undefined;
  }
  const version = cgroupVersion();
  if (!version) throw new SandboxError('ERR_UNSUPPORTED', 'No cgroup hierarchy is mounted: mount cgroup2 on /sys/fs/cgroup, or pass `cgroup: false` to run without memory, pids and cpu limits');
  if (!leftoversCollected) {
    leftoversCollected = true;
    collectLeftoverCgroups();
  }
  try {
    return createCgroup({ id, version, limits: { memoryBytes: limits.memoryBytes, pids: limits.pids, cpus: limits.cpus } });
  } catch (error) {
    if (isSandboxError(error) && error.code === 'ERR_PERMISSION' && !isRoot()) {
      throw new SandboxError(
        'ERR_UNSUPPORTED',
        `Resource limits need a cgroup this user can write (${error.message}). Run as root, delegate a cgroup v2 subtree to this user (systemd: Delegate=yes), or pass \`cgroup: false\` to run without memory, pids and cpu limits.`,
        { cause: error },
      );
    }
    throw error;
  }
}

// Real paths: the addon binds without following symlinks (resolv.conf often is one).
function hostNetworkFiles(): Array<{ source: string; target: string }> {
  return ['/etc/resolv.conf', '/etc/hosts'].filter((file) => existsSync(file)).map((target) => ({ source: realpathSync(target), target }));
}

function nativeSpawn(plan: NativeSpawnPlan): Promise<NativeSpawned> {
  return new Promise((resolve, reject) => {
    native().spawn(plan, (failure, spawned) => (failure ? reject(setupError(failure)) : resolve(spawned!)));
  });
}

function socket(fd: number, readable: boolean): Socket | null {
  return fd < 0 ? null : new Socket({ fd, readable, writable: !readable });
}

/** @internal */
export async function launch(id: string, options: NormalizedOptions, stdio: [boolean, boolean, boolean]): Promise<Launched> {
  const userns = !isRoot() || options.userns;
  const image = await resolveImage(options.image, userns, options.pull);
  const argv = [...image.config.entrypoint, ...(options.command ?? image.config.cmd)];
  if (argv.length === 0) throw new SandboxError('ERR_INVALID_OPTION', `Invalid sandbox option: no command given and image \`${image.name}\` has no Entrypoint or Cmd`);
  const userSpec = options.user ?? (image.config.user || '0');
  const user = resolveUser(userSpec, readImageFile(image.layers, 'etc/passwd'), readImageFile(image.layers, 'etc/group'));
  const mapping = idMapping(options.userns, user.uid, user.gid);
  if (options.upperDir) {
    for (const dir of ['upper', 'work']) mkdirSync(join(options.upperDir, dir), { recursive: true, mode: 0o755 });
  }

  const cgroup = makeCgroup(id, options);
  let spawned: NativeSpawned;
  try {
    const plan = buildPlan({ id, options, image, argv, user, idMapping: mapping, cgroup, scratchDir: scratchDir(), initPath: initPath(), stdio, hostNetworkFiles: options.network === 'host' ? hostNetworkFiles() : [], seccomp: options.seccomp });
    // A pooled fresh network namespace (root without a user namespace only): closed once the spawn settled.
    const netnsFd = plan.newNet && !userns ? takeNetns() : -1;
    try {
      spawned = await nativeSpawn({ ...plan, netnsFd });
    } finally {
      releaseNetns(netnsFd);
    }
  } catch (error) {
    await cgroup?.remove();
    throw error;
  }

  const { pid, pidfd } = spawned;
  let exited = false;
  const exit = track(pid, pidfd, spawned.syncFd, cgroup).then((e) => {
    exited = true;
    return e;
  });
  return {
    pid,
    argv,
    image: image.name,
    stdin: socket(spawned.stdinFd, false),
    stdout: socket(spawned.stdoutFd, true),
    stderr: socket(spawned.stderrFd, true),
    exited: exit,
    kill: (signal) => !exited && native().kill(pidfd, signal) === 0,
    async cleanup() {
      try {
        const stats = cgroup?.stats();
        await cgroup?.remove();
        return stats ?? { cpuTimeMs: null, memoryPeakBytes: null, pidsPeak: null, oomKilled: false };
      } finally {
        native().close(pidfd);
        untrack(pid);
      }
    },
  };
}
