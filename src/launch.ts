// SPDX-License-Identifier: Apache-2.0
// From normalised options to a running sandbox: image, user, cgroup, plan, native spawn, stdio.
import { existsSync, mkdirSync, realpathSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { join } from 'node:path';
import { collectLeftoverCgroups, createCgroup, type SandboxCgroup } from './cgroup/cgroup.js';
import { detectCgroups } from './cgroup/detect.js';
import { isSandboxError, SandboxError, SetupError } from './errors.js';
import { idMapping, type IdMapping } from './idmap.js';
import { readImageFile, resolveImage } from './image/resolve.js';
import { track, untrack } from './live.js';
import { initPath, native } from './native/binding.js';
import { type NativeExit, type NativeSpawned, type NativeSpawnPlan } from './native/native.js';
import type { NormalizedOptions } from './options.js';
import { isRoot, scratchDir } from './paths.js';
import { buildPlan, hostnameFor } from './plan.js';
import { useVolume } from './volume/volumes.js';
import { populateVolume } from './volume/populate.js';
import { attachSandbox, type NetworkAttachment } from './network/attach.js';
import { DEFAULT_NETWORK } from './network/networks.js';
import { attachUserMode, type UserModeAttachment } from './network/user-mode.js';
import { attachRootlessMember, type RootlessMemberAttachment } from './network/rootless-network.js';
import { UsernsMode } from './native/native.js';
import { setupError } from './result.js';
import { resolveUser, type ResolvedUser } from './user-spec.js';
import type { ResolvedImage } from './image/resolve.js';

/** @internal A sandbox whose pid 1 runs. */
export interface Launched {
  pid: number;
  argv: string[];
  image: string;
  stdin: Socket | null;
  stdout: Readable | null;
  stderr: Readable | null;
  exited: Promise<NativeExit>;
  kill(signal: number): boolean;
  /** With a terminal: sets its size; false once it is gone. */
  resize?: (columns: number, rows: number) => boolean;
  /** After exit: reads the cgroup's stats, removes it, releases the pidfd. */
  cleanup(): Promise<{ cpuTimeMs: number | null; memoryPeakBytes: number | null; pidsPeak: number | null; oomKilled: boolean }>;
  /** What an exec into this sandbox needs (valid until cleanup). */
  context: SandboxContext;
}

/** @internal A running sandbox as exec sees it. */
export interface SandboxContext {
  /** Its place on a bridged network, if any. */
  network: NetworkAttachment | undefined;
  id: string;
  /** pidfd of pid 1 (owned by the Launched; closed by cleanup). */
  pidfd: number;
  cgroup: SandboxCgroup | undefined;
  /** The sandbox runs in its own user namespace. */
  userns: boolean;
  idMapping: IdMapping;
  image: ResolvedImage;
  user: ResolvedUser;
  hostname: string;
  options: NormalizedOptions;
}

/** @internal How {@link launch} starts pid 1. */
export interface LaunchMode {
  /** No workload: nsbox-init alone holds the sandbox open for exec (Sandbox.create). */
  hold?: boolean;
  /** The cgroup can be frozen (pause/resume). */
  freezable?: boolean;
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

function makeCgroup(id: string, options: NormalizedOptions, freezable: boolean): SandboxCgroup | undefined {
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
    return createCgroup({ id, version, freezable, limits: { memoryBytes: limits.memoryBytes, pids: limits.pids, cpus: limits.cpus } });
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

// A bridged network is wired up in a namespace of its own before the sandbox starts; the
// child joins it. That namespace belongs to the host's user namespace, which a child in a new
// user namespace cannot enter: such a sandbox gets its own namespace connected in user mode by
// pasta ('bridge'), or, on a named network, is made inside the network keeper's user namespace
// and given a veth on the keeper's bridge. Their commands run while the child waits.
async function attachNetwork(id: string, options: NormalizedOptions, name: string, mapping: IdMapping): Promise<NetworkAttachment | UserModeAttachment | undefined> {
  if (options.network === 'none' || options.network === 'host') return undefined;
  const egress = options.egress && { egress: options.egress };
  if (mapping.mode === UsernsMode.None) return attachSandbox({ id, name, network: options.network, publish: options.publish, ...egress });
  if (options.network !== DEFAULT_NETWORK) {
    return attachRootlessMember({ id, name, network: options.network, publish: options.publish, ...egress });
  }
  return attachUserMode({ id, name, publish: options.publish, ...egress });
}

// Real paths: the addon binds without following symlinks (resolv.conf often is one).
function hostNetworkFiles(): Array<{ source: string; target: string }> {
  return ['/etc/resolv.conf', '/etc/hosts'].filter((file) => existsSync(file)).map((target) => ({ source: realpathSync(target), target }));
}

// pasta's and nft's own words, as the errors the rootful path gives for the same problems.
function networkSetupError(error: unknown, attachment: NetworkAttachment | undefined): unknown {
  if (!(error instanceof SetupError) || error.stage !== 'network-setup') return error;
  const message = error.path;
  if (/bind any port/i.test(message)) {
    const ports = (attachment?.publish ?? []).map((m) => `${m.hostIp}:${m.host}/${m.protocol}`).join(', ');
    return new SandboxError('ERR_PORT_IN_USE', `A published host port (${ports}) is already in use on the host: ${message}`, { cause: error });
  }
  return new SandboxError('ERR_NETWORK', `Setting up the sandbox's user-mode network failed: ${error.syscall}: ${message || error.errnoCode}`, { cause: error });
}

/** @internal The addon's spawn as a promise; a setup failure rejects with a SetupError. */
export function nativeSpawn(plan: NativeSpawnPlan): Promise<NativeSpawned> {
  return new Promise((resolve, reject) => {
    native().spawn(plan, (failure, spawned) => (failure ? reject(setupError(failure)) : resolve(spawned!)));
  });
}

/** @internal One end of a stdio pipe the addon handed out, as a socket (null for none). */
export function socket(fd: number, readable: boolean): Socket | null {
  return fd < 0 ? null : new Socket({ fd, readable, writable: !readable });
}

// Empty named volumes take the image's content at their target before they are mounted.
async function populateVolumes(options: NormalizedOptions, image: ResolvedImage): Promise<void> {
  for (const mount of options.mounts) {
    if (mount.type !== 'bind' || !mount.volume || !mount.populate) continue;
    try {
      await populateVolume(mount.source, image.layers, mount.target);
    } catch (error) {
      if (isSandboxError(error)) throw error;
      throw new SandboxError('ERR_FILE', `Cannot fill volume \`${mount.volume}\` with the image's ${mount.target}: ${(error as Error).message}`, { cause: error });
    }
  }
}

/** @internal */
export async function launch(id: string, options: NormalizedOptions, stdio: [boolean, boolean, boolean], mode: LaunchMode = {}): Promise<Launched> {
  const userns = !isRoot() || options.userns;
  const image = await resolveImage(options.image, userns, options.pull);
  const argv = mode.hold ? [] : [...image.config.entrypoint, ...(options.command ?? image.config.cmd)];
  if (argv.length === 0 && !mode.hold) throw new SandboxError('ERR_INVALID_OPTION', `Invalid sandbox option: no command given and image \`${image.name}\` has no Entrypoint or Cmd`);
  const userSpec = options.user ?? (image.config.user || '0');
  const user = resolveUser(userSpec, readImageFile(image.layers, 'etc/passwd'), readImageFile(image.layers, 'etc/group'));
  let mapping = idMapping(options.userns, user.uid, user.gid);
  if (options.upperDir) {
    for (const dir of ['upper', 'work']) mkdirSync(join(options.upperDir, dir), { recursive: true, mode: 0o755 });
  }

  await populateVolumes(options, image);
  const cgroup = makeCgroup(id, options, mode.freezable ?? false);
  const volumeUses = options.mounts.flatMap((mount) => (mount.type === 'bind' && mount.volume ? [useVolume(mount.volume)] : []));
  const releaseVolumes = () => volumeUses.forEach((release) => release());
  let spawned: NativeSpawned;
  let attachment: NetworkAttachment | undefined;
  try {
    attachment = await attachNetwork(id, options, hostnameFor(id, options), mapping);
    const networkFiles = options.network === 'host' ? hostNetworkFiles()
      : attachment ? [{ source: attachment.hostsFile, target: '/etc/hosts' }, { source: attachment.resolvConf, target: '/etc/resolv.conf' }]
      : [];
    const plan = buildPlan({ id, options: mode.hold ? { ...options, init: true } : options, image, argv, user, idMapping: mapping, cgroup, scratchDir: scratchDir(), initPath: initPath(), stdio, hostNetworkFiles: networkFiles, seccomp: options.seccomp });
    if (attachment) plan.netnsPath = attachment.netnsPath;
    if (attachment && 'setupCommands' in attachment) {
      // Its own new namespace, which pasta connects while the child waits.
      plan.newNet = true;
      plan.setupCommands = (attachment as UserModeAttachment).setupCommands;
    }
    if (attachment && 'keeperUsernsPath' in attachment) {
      // Made inside the keeper's user namespace, where the host's uid is 0: a one-id map of
      // that, written by the sandbox itself (the host is not in the keeper's namespace).
      plan.keeperUsernsPath = (attachment as RootlessMemberAttachment).keeperUsernsPath;
      // Seen from the host (what files the host writes for the sandbox are owned by), that is
      // the user's own uid and gid: the keeper maps them to 0.
      Object.assign(plan, { usernsMode: UsernsMode.Self, uidMap: `${user.uid} 0 1\n`, gidMap: `${user.gid} 0 1\n`, newuidmapPath: '', newgidmapPath: '' });
      mapping = { mode: UsernsMode.Self, uidMap: `${user.uid} ${process.geteuid!()} 1\n`, gidMap: `${user.gid} ${process.getegid!()} 1\n`, newuidmapPath: '', newgidmapPath: '' };
    }
    spawned = await nativeSpawn(plan).catch((error: unknown) => {
      throw networkSetupError(error, attachment);
    });
  } catch (error) {
    releaseVolumes();
    await attachment?.release();
    await cgroup?.remove();
    throw error;
  }

  const { pid, pidfd } = spawned;
  // Only an exec's init hands one over; a pid 1's workload ends with its pid namespace.
  if (spawned.workloadPidfd >= 0) native().close(spawned.workloadPidfd);
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
    context: { network: attachment, id, pidfd, cgroup, userns, idMapping: mapping, image, user, hostname: hostnameFor(id, options), options },
    async cleanup() {
      try {
        const stats = cgroup?.stats();
        await cgroup?.remove();
        return stats ?? { cpuTimeMs: null, memoryPeakBytes: null, pidsPeak: null, oomKilled: false };
      } finally {
        releaseVolumes();
        await attachment?.release();
        native().close(pidfd);
        untrack(pid);
      }
    },
  };
}
