// SPDX-License-Identifier: Apache-2.0
// Normalised options + resolved image + cgroup → the plan the addon's child walks. Pure.
import { join } from 'node:path';
import type { SandboxCgroup } from './cgroup/cgroup.js';
import type { IdMapping } from './idmap.js';
import type { ResolvedImage } from './image/resolve.js';
import { MountFlag, MountOp, StdioMode, UsernsMode, type NativeMountOp, type NativeSpawnPlan } from './native/native.js';
import type { NormalizedOptions } from './options.js';
import { defaultCapabilities, procProtection, rlimitsFor } from './security.js';
import type { ResolvedUser } from './user-spec.js';

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** @internal Everything decided before the plan is written down. */
export interface PlanInput {
  id: string;
  options: NormalizedOptions;
  image: ResolvedImage;
  argv: string[];
  user: ResolvedUser;
  idMapping: IdMapping;
  cgroup: SandboxCgroup | undefined;
  scratchDir: string;
  initPath: string;
  /** The compiled seccomp filter (empty: none). */
  seccomp: Buffer;
  /** With network 'host': the host's resolv.conf and hosts (real paths) to bind read-only. */
  hostNetworkFiles: Array<{ source: string; target: string }>;
  /** Whether fds 0..2 are pipes to the host. */
  stdio: [boolean, boolean, boolean];
}

const op = (kind: MountOp, dst: string, extra: Partial<NativeMountOp> = {}): NativeMountOp => ({ op: kind, src: '', dst, data: '', flags: 0, mode: 0, ...extra });

// A minimal /dev: a few host device nodes bound in, a private devpts, and shm.
function devOps(): NativeMountOp[] {
  return [
    // nodev: nodes a workload makes with CAP_MKNOD cannot open host devices; the binds below are their own mounts.
    op(MountOp.Tmpfs, '/dev', { data: 'mode=755,size=65536', flags: MountFlag.NoSuid | MountFlag.NoDev | MountFlag.NoExec, mode: 0o755 }),
    ...['null', 'zero', 'full', 'random', 'urandom', 'tty'].map((name) => op(MountOp.Bind, `/dev/${name}`, { src: `/dev/${name}`, flags: MountFlag.NoSuid | MountFlag.NoExec })),
    op(MountOp.Devpts, '/dev/pts', { data: 'newinstance,ptmxmode=0666,mode=0620', flags: MountFlag.NoSuid | MountFlag.NoExec }),
    op(MountOp.Symlink, '/dev/ptmx', { src: 'pts/ptmx' }),
    op(MountOp.Tmpfs, '/dev/shm', { data: 'mode=1777,size=67108864', flags: MountFlag.NoSuid | MountFlag.NoDev | MountFlag.NoExec }),
    op(MountOp.Symlink, '/dev/fd', { src: '/proc/self/fd' }),
    op(MountOp.Symlink, '/dev/stdin', { src: '/proc/self/fd/0' }),
    op(MountOp.Symlink, '/dev/stdout', { src: '/proc/self/fd/1' }),
    op(MountOp.Symlink, '/dev/stderr', { src: '/proc/self/fd/2' }),
  ];
}

/** @internal The workload's environment: the image's, then the caller's, then the defaults Docker adds. */
export function workloadEnv(input: Pick<PlanInput, 'options' | 'image' | 'user'>, hostname: string): string[] {
  const env = new Map<string, string>();
  for (const entry of input.image.config.env ?? []) {
    const eq = entry.indexOf('=');
    if (eq > 0) env.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  for (const [key, value] of Object.entries(input.options.env)) env.set(key, value);
  if (!env.has('PATH')) env.set('PATH', DEFAULT_PATH);
  if (!env.has('HOSTNAME')) env.set('HOSTNAME', hostname);
  if (!env.has('HOME')) env.set('HOME', input.user.home);
  return [...env].map(([k, v]) => `${k}=${v}`);
}

/** @internal */
export function hostnameFor(id: string, options: NormalizedOptions): string {
  return options.hostname ?? id.slice(-12);
}

/** @internal */
export function buildPlan(input: PlanInput): NativeSpawnPlan {
  const { options, image, user, idMapping, cgroup } = input;
  const hostname = hostnameFor(input.id, options);
  const cwd = options.cwd ?? (image.config.workingDir || '/');
  const inUserns = idMapping.mode !== UsernsMode.None;

  const scratch = input.scratchDir;
  const upper = options.upperDir ? join(options.upperDir, 'upper') : join(scratch, 'upper');
  const work = options.upperDir ? join(options.upperDir, 'work') : join(scratch, 'work');
  const rootDir = join(scratch, 'root');
  // overlayfs lists lower layers top first.
  const lower = [...image.layers].reverse().join(':');
  const overlayData = `lowerdir=${lower},upperdir=${upper},workdir=${work}${inUserns ? ',userxattr' : ''}`;

  const ops: NativeMountOp[] = [
    ...image.ops,
    op(MountOp.Proc, '/proc', { flags: MountFlag.NoSuid | MountFlag.NoDev | MountFlag.NoExec }),
    ...procProtection(),
    ...devOps(),
    op(MountOp.Tmpfs, '/tmp', { data: `mode=1777,size=${options.limits.diskBytes}`, flags: MountFlag.NoSuid | MountFlag.NoDev }),
  ];
  for (const file of input.hostNetworkFiles) ops.push(op(MountOp.Bind, file.target, { src: file.source, flags: MountFlag.Readonly | MountFlag.NoSuid | MountFlag.NoDev }));
  for (const mount of options.mounts) {
    // nosuid, nodev: root inside is root outside without a user namespace, and must not leave
    // setuid files or device nodes in a host directory for host users to trip over.
    if (mount.type === 'bind') {
      const flags = MountFlag.Recursive | MountFlag.NoSuid | MountFlag.NoDev | (mount.readonly ? MountFlag.Readonly : 0) | (mount.slave ? MountFlag.Slave : 0);
      ops.push(op(MountOp.Bind, mount.target, { src: mount.source, data: mount.identity, flags }));
    }
    else ops.push(op(MountOp.Tmpfs, mount.target, { data: `mode=${mount.mode.toString(8)},size=${mount.sizeBytes}`, flags: MountFlag.NoSuid | MountFlag.NoDev, mode: 0o755 }));
  }
  ops.push(op(MountOp.Mkdir, cwd, { mode: 0o755 }));

  return {
    argv: input.argv,
    env: workloadEnv(input, hostname),
    cwd,
    hostname,
    newNet: options.network === 'none',
    netnsPath: '',
    joinPidfd: -1,
    joinUserns: false,
    ptyMaster: -1,
    setupCommands: [],
    keeperUsernsPath: '',
    ttyUid: -1,
    ttyGid: -1,
    usernsMode: idMapping.mode,
    uidMap: idMapping.uidMap,
    gidMap: idMapping.gidMap,
    newuidmapPath: idMapping.newuidmapPath,
    newgidmapPath: idMapping.newgidmapPath,
    cgroupV2Dir: cgroup?.version === 'v2' ? cgroup.dir : '',
    // `tasks`, not `cgroup.procs`: see CgroupV1.tasksFiles (the child writes "0" while single-threaded).
    cgroupV1Procs: cgroup?.version === 'v1' ? [...cgroup.tasksFiles] : [],
    scratchDir: scratch,
    scratchData: `size=${options.limits.diskBytes},mode=0700`,
    scratchDirs: options.upperDir ? [rootDir] : [upper, work, rootDir],
    rootDir,
    overlayData,
    ops,
    readonlyRoot: options.readonlyRoot,
    uid: user.uid,
    gid: user.gid,
    groups: idMapping.mode === UsernsMode.Self ? [] : user.groups,
    caps: defaultCapabilities(),
    noNewPrivs: true,
    rlimits: rlimitsFor(options.rlimits),
    seccomp: input.seccomp,
    useInit: options.init,
    initPath: input.initPath,
    stdin: input.stdio[0] ? StdioMode.Pipe : StdioMode.Null,
    stdout: input.stdio[1] ? StdioMode.Pipe : StdioMode.Null,
    stderr: input.stdio[2] ? StdioMode.Pipe : StdioMode.Null,
    failStage: options.failStage,
  };
}
