// SPDX-License-Identifier: Apache-2.0
// The typed shape of the raw addon (addon/src/*.cc). Nothing here validates:
// every value is built by plan.ts from options that options.ts already checked.

/** One setup step the child performs inside the new root, in order, before pivot_root. */
export const enum MountOp {
  /** Bind `src` (host path, resolved before pivot) onto `dst`. */
  Bind = 1,
  /** Mount a tmpfs on `dst` with `data` ("size=…,mode=…"). */
  Tmpfs = 2,
  /** Mount a fresh procfs on `dst`. */
  Proc = 3,
  /** Mount a new devpts instance on `dst` with `data`. */
  Devpts = 4,
  /** Create directory `dst` (and its parents) with `mode`. */
  Mkdir = 5,
  /** Create a symlink at `dst` pointing at `src`. */
  Symlink = 6,
  /** Hide `dst`: /dev/null over a file, an empty read-only tmpfs over a directory; missing is fine. */
  Mask = 7,
  /** Make the existing `dst` read-only (recursively); missing is fine. */
  Readonly = 8,
}

/** Flags of a mount op (bit set). */
export const enum MountFlag {
  Readonly = 1,
  Recursive = 2,
  NoSuid = 4,
  NoDev = 8,
  NoExec = 16,
  /** A bind stays a slave of the host's mount (rslave); otherwise it is made private. */
  Slave = 32,
}

/** @internal */
export interface NativeMountOp {
  op: MountOp;
  /** Host path (Bind) or link target (Symlink); '' otherwise. */
  src: string;
  /** Absolute path inside the new root. Resolved with RESOLVE_IN_ROOT, never through host symlinks. */
  dst: string;
  /**
   * Filesystem data for Tmpfs/Devpts. For Bind: the source's "dev:ino" as validated (the child
   * refuses a source that changed since, and never follows a symlink to it), or '' to skip that check.
   */
  data: string;
  flags: number;
  /** Mode for Mkdir and for directories/files created as mount targets. */
  mode: number;
}

/** @internal How the child's user namespace gets its id maps. */
export const enum UsernsMode {
  /** No user namespace (the host process is root and did not ask for one). */
  None = 0,
  /** The child writes a one-id map of its own uid/gid (unprivileged, as bubblewrap does). */
  Self = 1,
  /** The parent writes uid_map/gid_map directly (root in the parent user namespace). */
  ParentWrite = 2,
  /** The parent runs newuidmap/newgidmap for ranges from /etc/subuid and /etc/subgid. */
  ParentHelper = 3,
}

/** @internal Stdio disposition of one of the child's fds 0..2. */
export const enum StdioMode {
  Null = 0,
  Pipe = 1,
}

/** @internal Everything the child needs between clone and execve, already decided. */
export interface NativeSpawnPlan {
  /** Workload argv; argv[0] is searched in PATH (from env) inside the new root. Empty with useInit: nsbox-init holds the sandbox open. */
  argv: string[];
  /** Workload environment, "KEY=value". */
  env: string[];
  /** Absolute working directory inside the new root (created by a Mkdir op if needed). */
  cwd: string;
  hostname: string;
  /** New network namespace with only loopback (brought up by the child). */
  newNet: boolean;
  /** A prepared network namespace (a bind-mounted nsfs file) to join instead; '' for none. */
  netnsPath: string;
  /** exec: a pidfd of a running sandbox's pid 1 whose namespaces the child joins (no new ones, no mounts); -1 otherwise. */
  joinPidfd: number;
  /** exec: the sandbox runs in a user namespace, so join that too. */
  joinUserns: boolean;
  /** exec with a terminal: a master of the sandbox's devpts; its peer becomes stdio and controlling terminal. -1 for none. */
  ptyMaster: number;
  /**
   * Host programs run in order while the child waits with its namespaces and id maps made (user-mode
   * networking: nsbox-netconf + nft, then pasta). `{pid}` in an argument becomes the child's pid;
   * `input` is written to the program's stdin. The first to fail fails the spawn at stage network-setup.
   */
  setupCommands: Array<{ argv: string[]; input: string }>;
  /** A rootless named network: /proc/<keeper pid>/ns/user, in which the sandbox's namespaces are made; '' otherwise. */
  keeperUsernsPath: string;
  /** With a terminal: its owner and group inside the sandbox (-1 leaves one unchanged). */
  ttyUid: number;
  ttyGid: number;
  usernsMode: UsernsMode;
  /** uid_map / gid_map contents ("0 1000 1\n"), for every userns mode but None. */
  uidMap: string;
  gidMap: string;
  /** Absolute paths of newuidmap/newgidmap, for UsernsMode.ParentHelper. */
  newuidmapPath: string;
  newgidmapPath: string;
  /** cgroup v2 directory to clone into (CLONE_INTO_CGROUP); '' for none. */
  cgroupV2Dir: string;
  /** cgroup v1 files (`tasks`, see CgroupV1.tasksFiles) the child writes "0" into before anything else; may be empty. */
  cgroupV1Procs: string[];
  /** An existing empty host directory: the child mounts a private tmpfs on it in its own mount namespace. */
  scratchDir: string;
  /** tmpfs data for the scratch mount ("size=…,mode=0700"). */
  scratchData: string;
  /** Absolute directories created inside the scratch tmpfs, in order (upper, work, root). */
  scratchDirs: string[];
  /** Where the overlay is mounted: the future root (inside scratchDir). */
  rootDir: string;
  /** Full overlay mount data: lowerdir=…,upperdir=…,workdir=…[,userxattr]. */
  overlayData: string;
  ops: NativeMountOp[];
  readonlyRoot: boolean;
  uid: number;
  gid: number;
  groups: number[];
  /** Capabilities kept (bounding/permitted/effective/inheritable), as [low 32 bits, high 32 bits]. */
  caps: [number, number];
  noNewPrivs: boolean;
  /** [resource, soft, hard] triples for prlimit; -1 means RLIM_INFINITY. */
  rlimits: Array<[number, number, number]>;
  /** A classic-BPF seccomp program (struct sock_filter[], 8 bytes each), installed last; empty for none. */
  seccomp: Buffer;
  /** Exec the nsbox-init helper as pid 1, which forks the workload, reaps and forwards signals. */
  useInit: boolean;
  /** Absolute host path of the nsbox-init binary (opened before pivot_root). */
  initPath: string;
  stdin: StdioMode;
  stdout: StdioMode;
  stderr: StdioMode;
  /** Testing hook: force the given setup stage to fail with EPERM (0 = none). */
  failStage: number;
}

/** @internal A failure record from the child: which stage, which syscall, which errno, which path. */
export interface NativeSetupFailure {
  stage: number;
  errno: number;
  syscall: string;
  path: string;
}

/** @internal What a successful spawn hands back: the pid and the parent's ends of the fds. */
export interface NativeSpawned {
  pid: number;
  pidfd: number;
  /** Parent's end of the sync socket: nsbox-init reports the workload's wait status on it before exiting. */
  syncFd: number;
  stdinFd: number;
  stdoutFd: number;
  stderrFd: number;
  /** An exec's workload (from its nsbox-init), to signal its process group; -1 otherwise. */
  workloadPidfd: number;
}

/** @internal The exit record delivered by the exit watcher. */
export interface NativeExit {
  pid: number;
  /** Exit code of the workload, or null when a signal ended it. */
  exitCode: number | null;
  /** Signal number that ended the workload, or 0. */
  signal: number;
  /** User + system CPU time of pid 1 and the children it waited for, in microseconds. */
  cpuUsec: number;
}

/** @internal The raw addon. */
export interface NativeAddon {
  /** Clone the child and run the handshake on a worker thread. */
  spawn(plan: NativeSpawnPlan, callback: (failure: NativeSetupFailure | null, spawned: NativeSpawned | null) => void): void;
  /** Set once: receives every exit record, on the JS thread, after the sandbox's pid 1 is reaped. */
  setExitHandler(handler: (exit: NativeExit) => void): void;
  /** Watch a spawned sandbox for exit. The watcher owns `syncFd` from now on; `pidfd` stays the caller's. */
  watchExit(pid: number, pidfd: number, syncFd: number): void;
  /** pidfd_send_signal; returns 0 or a negative errno (ESRCH when already gone). */
  kill(pidfd: number, signal: number): number;
  /** pidfd_send_signal(PIDFD_SIGNAL_PROCESS_GROUP): the process group the pidfd's process leads; 0 or a negative errno (ESRCH: none). */
  killGroup(pidfd: number, signal: number): number;
  /** close(2) an fd the addon handed out. */
  close(fd: number): void;
  /** mknod(2): a whiteout is a character device 0:0. Returns 0 or a negative errno. */
  mknod(path: string, mode: number, major: number, minor: number): number;
  /** lsetxattr(2). Returns 0 or a negative errno. */
  lsetxattr(path: string, name: string, value: Buffer): number;
  /** llistxattr + lgetxattr of one name; null when absent. */
  lgetxattr(path: string, name: string): Buffer | null;
  /** openat2(dirfd, path, flags | O_CLOEXEC, mode) with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS: the fd, or a negative errno. */
  openInRoot(dirfd: number, path: string, flags: number, mode: number): number;
  /** TIOCSWINSZ on a pty master: 0 or a negative errno. */
  setWindowSize(fd: number, columns: number, rows: number): number;
  /** linkat(fd, "", dirfd, name, AT_EMPTY_PATH): 0 or a negative errno. */
  linkAt(fd: number, dirfd: number, name: string): number;
  /** llistxattr(2): the attribute names, or a negative errno. */
  llistxattr(path: string): string[] | number;
  /** Creates a persistent network namespace bound on `path` (a new file in `dir`, made a shared mount point). null on success. */
  netnsCreate(dir: string, path: string): { syscall: string; errno: number } | null;
  /** Unmounts (detached) and unlinks a namespace file; missing is fine. null on success. */
  netnsRemove(path: string): { syscall: string; errno: number } | null;
  /** RTM_DELLINK by name in the host namespace. Returns 0 or a negative errno (-ENODEV: no such link). */
  deleteLink(name: string): number;
}
