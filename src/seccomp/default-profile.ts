// SPDX-License-Identifier: Apache-2.0
// nsbox's default seccomp policy: an allowlist of what ordinary programs need, with named denials.
//
// Why an allowlist. A denylist has to know every dangerous system call in advance, and each
// kernel release adds new ones (io_uring, the mount API, landlock and the like arrived as
// whole families); a denylist lets all of them through until someone notices. With an allowlist a
// system call nsbox has not reviewed is refused: the default answer is ENOSYS, which is what an
// older kernel says, so libc and runtimes take their fallback path (glibc's clone3 → clone,
// fchmodat2 → fchmodat, libuv's io_uring → epoll) instead of failing hard.
//
// Two kinds of "no":
//   ENOSYS  anything not listed here (new or exotic system calls), and clone3, whose flags live
//           in memory a filter cannot read: ENOSYS makes libc fall back to clone, whose flags
//           the filter does check.
//   EPERM   the system calls named below as dangerous: they exist, and the sandbox may not use
//           them. A program that probes for one gets the answer a missing privilege gives.
// (One exception: audit netlink sockets get EPROTONOSUPPORT, the "no audit here" answer.)
//
// The allowlist was drawn up by going through the x86_64 and aarch64 tables one call at a time,
// asking whether glibc/musl startup, a shell, coreutils/busybox, compilers, Node.js, Python, the
// JVM and Go need it, and whether the kernel already confines it to the sandbox (the pid, mount,
// network, ipc, uts and cgroup namespaces; no CAP_SYS_ADMIN; no_new_privs). It is at least as
// strict as Docker's default profile for the capability set nsbox grants (defaultCapabilities()):
// everything Docker refuses is refused, and more is (name_to_handle_at, io_uring, clock_adjtime,
// modify_ldt, memfd_secret, set_thread_area, char and block device nodes). The only calls
// allowed here that Docker's profile does not name are newer forms of calls both allow:
// fchmodat2, the *xattrat family, file_getattr/file_setattr, cachestat, futex_wake/wait/requeue,
// mseal and map_shadow_stack.
import type { SeccompArgCheck, SeccompPolicy, SeccompRule } from './bpf.js';

const EPERM = 1;
const ENOSYS = 38;
const EPROTONOSUPPORT = 93;

// ── Allowed ─────────────────────────────────────────────────────────────────────────────────
// Names missing on an architecture are skipped (open, stat, fork... exist only on x86_64).

const FILES = [
  'read', 'write', 'readv', 'writev', 'pread64', 'pwrite64', 'preadv', 'pwritev', 'preadv2', 'pwritev2',
  'open', 'openat', 'openat2', 'creat', 'close', 'close_range', 'lseek', 'dup', 'dup2', 'dup3', 'fcntl', 'flock',
  'fsync', 'fdatasync', 'sync', 'syncfs', 'sync_file_range', 'readahead', 'fadvise64', 'fallocate',
  'truncate', 'ftruncate', 'stat', 'fstat', 'lstat', 'newfstatat', 'statx', 'statfs', 'fstatfs',
  'access', 'faccessat', 'faccessat2', 'getdents', 'getdents64', 'getcwd', 'chdir', 'fchdir',
  'rename', 'renameat', 'renameat2', 'mkdir', 'mkdirat', 'rmdir', 'link', 'linkat', 'unlink', 'unlinkat',
  'symlink', 'symlinkat', 'readlink', 'readlinkat', 'chmod', 'fchmod', 'fchmodat', 'fchmodat2',
  'chown', 'fchown', 'lchown', 'fchownat', 'umask', 'utime', 'utimes', 'futimesat', 'utimensat',
  'setxattr', 'lsetxattr', 'fsetxattr', 'getxattr', 'lgetxattr', 'fgetxattr', 'listxattr', 'llistxattr',
  'flistxattr', 'removexattr', 'lremovexattr', 'fremovexattr', 'setxattrat', 'getxattrat', 'listxattrat',
  'removexattrat', 'file_getattr', 'file_setattr', 'cachestat',
  'sendfile', 'splice', 'tee', 'vmsplice', 'copy_file_range', 'pipe', 'pipe2',
  'ioctl', // but TIOCSTI and TIOCLINUX, below
  'inotify_init', 'inotify_init1', 'inotify_add_watch', 'inotify_rm_watch',
];

const MEMORY = [
  'brk', 'mmap', 'munmap', 'mremap', 'mprotect', 'msync', 'mincore', 'madvise', 'remap_file_pages',
  // Bounded by RLIMIT_MEMLOCK and the memory cgroup.
  'mlock', 'mlock2', 'munlock', 'mlockall', 'munlockall',
  'membarrier', 'memfd_create', 'pkey_mprotect', 'pkey_alloc', 'pkey_free', 'mseal', 'map_shadow_stack',
];

const PROCESSES = [
  'fork', 'vfork', 'execve', 'execveat', 'exit', 'exit_group', 'wait4', 'waitid',
  'kill', 'tkill', 'tgkill', 'pidfd_open', 'pidfd_send_signal', 'process_mrelease',
  'getpid', 'getppid', 'gettid', 'set_tid_address', 'set_robust_list', 'get_robust_list', 'rseq',
  'arch_prctl', 'prctl', 'uname', 'sysinfo', 'times', 'getrusage', 'getrlimit', 'setrlimit', 'prlimit64',
  'getpriority', 'setpriority', 'sched_yield', 'sched_setparam', 'sched_getparam', 'sched_setscheduler',
  'sched_getscheduler', 'sched_get_priority_max', 'sched_get_priority_min', 'sched_rr_get_interval',
  'sched_setaffinity', 'sched_getaffinity', 'sched_setattr', 'sched_getattr', 'getcpu', 'ioprio_get', 'ioprio_set',
  'capget', 'capset', 'restart_syscall', 'getrandom',
  // Self-restriction only ever narrows what a process may do.
  'seccomp', 'landlock_create_ruleset', 'landlock_add_rule', 'landlock_restrict_self',
];

// The kernel checks CAP_SETUID/CAP_SETGID; inside a user namespace they only reach mapped ids.
const IDENTITY = [
  'getuid', 'geteuid', 'getgid', 'getegid', 'getresuid', 'getresgid', 'getgroups', 'setuid', 'setgid',
  'setreuid', 'setregid', 'setresuid', 'setresgid', 'setfsuid', 'setfsgid', 'setgroups',
  'getpgid', 'setpgid', 'getpgrp', 'getsid', 'setsid',
];

const SIGNALS = [
  'rt_sigaction', 'rt_sigprocmask', 'rt_sigreturn', 'rt_sigpending', 'rt_sigtimedwait', 'rt_sigqueueinfo',
  'rt_tgsigqueueinfo', 'rt_sigsuspend', 'sigaltstack', 'signalfd', 'signalfd4', 'pause', 'alarm',
];

const TIME = [
  'nanosleep', 'clock_nanosleep', 'clock_gettime', 'clock_getres', 'gettimeofday', 'time',
  'getitimer', 'setitimer', 'timer_create', 'timer_settime', 'timer_gettime', 'timer_getoverrun', 'timer_delete',
  'timerfd_create', 'timerfd_settime', 'timerfd_gettime',
  // adjtimex reads the clock's state (modes = 0) for ntp tools; every change it can make needs
  // CAP_SYS_TIME, which a sandbox never holds, so the kernel refuses those. Allowed, as Docker does.
  'adjtimex',
];

const EVENTS = [
  'poll', 'ppoll', 'select', 'pselect6', 'epoll_create', 'epoll_create1', 'epoll_ctl', 'epoll_wait',
  'epoll_pwait', 'epoll_pwait2', 'eventfd', 'eventfd2',
  'futex', 'futex_waitv', 'futex_wake', 'futex_wait', 'futex_requeue',
  // Linux AIO (databases); unlike io_uring it has a small, long-audited surface.
  'io_setup', 'io_destroy', 'io_submit', 'io_cancel', 'io_getevents', 'io_pgetevents',
];

// Confined by the sandbox's network namespace ('socket' itself is below, with a check).
const SOCKETS = [
  'socketpair', 'connect', 'accept', 'accept4', 'bind', 'listen', 'getsockname', 'getpeername',
  'sendto', 'recvfrom', 'sendmsg', 'recvmsg', 'sendmmsg', 'recvmmsg', 'shutdown', 'setsockopt', 'getsockopt',
];

// Confined by the sandbox's IPC namespace.
const IPC = [
  'shmget', 'shmat', 'shmdt', 'shmctl', 'semget', 'semop', 'semtimedop', 'semctl',
  'msgget', 'msgsnd', 'msgrcv', 'msgctl', 'mq_open', 'mq_unlink', 'mq_timedsend', 'mq_timedreceive',
  'mq_notify', 'mq_getsetattr',
];

// Debugging inside the sandbox (strace, gdb). Before Linux 4.8 a tracer could rewrite a system
// call after seccomp had approved it, so these are refused on older kernels, as Docker does.
const TRACING = ['ptrace', 'process_vm_readv', 'process_vm_writev'];

// ── Denied with EPERM ───────────────────────────────────────────────────────────────────────

const DENIED = [
  // Replacing or extending the running kernel.
  'kexec_load', 'kexec_file_load', 'reboot', 'init_module', 'finit_module', 'delete_module',
  'create_module', 'query_module', 'get_kernel_syms',
  // Large kernel attack surfaces a workload does not need; each has had exploitable bugs.
  // userfaultfd stalls kernel page faults at will (a race-widening tool for exploits).
  'bpf', 'perf_event_open', 'userfaultfd', 'io_uring_setup', 'io_uring_enter', 'io_uring_register', 'lookup_dcookie',
  // The kernel keyring is not namespaced: keys are shared with the host's users.
  'keyctl', 'add_key', 'request_key',
  // Mounts and file handles: new mounts could uncover what the sandbox hides, and a file
  // handle opens any inode of a filesystem, bypassing the mount tree (the "shocker" escape).
  'mount', 'umount', 'umount2', 'pivot_root', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'move_mount',
  'open_tree', 'open_tree_attr', 'mount_setattr', 'open_by_handle_at', 'name_to_handle_at',
  'quotactl', 'quotactl_fd', 'swapon', 'swapoff', 'fanotify_init', 'fanotify_mark',
  // New namespaces from inside (clone's flags are checked below): a user namespace hands its
  // creator every capability over objects it creates, which opens kernel code that is
  // otherwise root-only.
  'setns', 'unshare',
  // Host-wide state.
  'settimeofday', 'clock_settime', 'clock_adjtime', 'sethostname', 'setdomainname', 'syslog', 'acct',
  'vhangup', 'iopl', 'ioperm',
  // The x86 LDT: only 16-bit and Wine-style code needs it, and it has been an exploit vector.
  'modify_ldt',
  // Obsolete interfaces.
  'uselib', 'ustat', 'sysfs', '_sysctl', 'nfsservctl', 'vm86', 'vm86old',
  // Reading another process's state beyond what ptrace's checks cover; Docker keeps these for CAP_SYS_PTRACE.
  'kcmp', 'pidfd_getfd', 'process_madvise',
  // NUMA placement; Docker keeps these for CAP_SYS_NICE.
  'get_mempolicy', 'set_mempolicy', 'set_mempolicy_home_node', 'mbind', 'move_pages', 'migrate_pages',
];

// clone's flags (argument 0 on x86_64 and aarch64): CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC,
// NEWUSER, NEWPID, NEWNET. CLONE_NEWTIME (0x80) cannot be passed to clone (its low byte is the
// exit signal), only to clone3 and unshare, which are refused anyway.
const CLONE_NEW_FLAGS = [0x00020000n, 0x02000000n, 0x04000000n, 0x08000000n, 0x10000000n, 0x20000000n, 0x40000000n];

// personality values with no security effect: PER_LINUX, PER_LINUX32 (uname says i686),
// UNAME26, UNAME26 | PER_LINUX32, and 0xffffffff, which only reads the current one. Refused are
// the flags that weaken the process: ADDR_NO_RANDOMIZE (no ASLR), READ_IMPLIES_EXEC (every
// readable mapping executable), MMAP_PAGE_ZERO (a mapping at address 0, for null-pointer exploits)
// and the other execution domains.
const PERSONALITIES = [0x0n, 0x8n, 0x20000n, 0x20008n, 0xffffffffn];

// Allow rules compare all 64 bits, so stray high bits never widen them. The kernel reads a
// 32-bit argument from the low word only, so deny rules compare just that word: stray high
// bits cannot slip a denied value past them either.
const low32Eq = (index: number, value: bigint): SeccompArgCheck => ({ index, op: 'masked-eq', value: 0xffffffffn, valueTwo: value });
const hasBits = (index: number, bits: bigint): SeccompArgCheck => ({ index, op: 'masked-eq', value: bits, valueTwo: bits });

const S_IFMT = 0o170000n;
const S_IFCHR = 0o020000n;
const S_IFBLK = 0o060000n;
const AF_VSOCK = 40n;
const AF_NETLINK = 16n;
const NETLINK_AUDIT = 9n;
const TIOCSTI = 0x5412n;
const TIOCLINUX = 0x541cn;

/** @internal What the default profile depends on besides the architecture. */
export interface DefaultProfileContext {
  /** Capabilities the sandbox holds, as 'CAP_CHOWN'... */
  caps: ReadonlySet<string>;
  /** The running kernel's [major, minor, ...]. */
  kernel: readonly number[];
}

const atLeast = (kernel: readonly number[], major: number, minor: number) => kernel[0] > major || (kernel[0] === major && kernel[1] >= minor);

/**
 * @internal nsbox's default policy. The default action is ENOSYS; see the comment at the top
 * of this file for the reasoning.
 */
export function defaultSeccompPolicy(context: DefaultProfileContext): SeccompPolicy {
  const allow = (syscalls: string[], args?: SeccompArgCheck[]): SeccompRule => ({ syscalls, action: 'allow', ...(args ? { args } : {}) });
  const deny = (syscalls: string[], args?: SeccompArgCheck[]): SeccompRule => ({ syscalls, action: { errno: EPERM }, ...(args ? { args } : {}) });
  const rules: SeccompRule[] = [
    allow([...FILES, ...MEMORY, ...PROCESSES, ...IDENTITY, ...SIGNALS, ...TIME, ...EVENTS, ...SOCKETS, ...IPC]),
    atLeast(context.kernel, 4, 8) ? allow(TRACING) : deny(TRACING),
    // chroot needs CAP_SYS_CHROOT; nothing outside the sandbox's root is reachable through it.
    context.caps.has('CAP_SYS_CHROOT') ? allow(['chroot']) : deny(['chroot']),
    deny(DENIED),

    // Threads and processes, but no new namespaces. (When several rules match, the most
    // severe wins: a matching deny beats the unconditional allow.)
    ...CLONE_NEW_FLAGS.map((flag) => deny(['clone'], [hasBits(0, flag)])),
    allow(['clone']),
    { syscalls: ['clone3'], action: { errno: ENOSYS } },

    ...PERSONALITIES.map((value) => allow(['personality'], [{ index: 0, op: 'eq', value }])),
    deny(['personality'], PERSONALITIES.map((value) => ({ index: 0, op: 'ne', value }))),

    // Device nodes: CAP_MKNOD is in the default set, but with no device cgroup a char or block
    // node in the writable layer would open host devices (/dev/mem, disks). FIFOs, sockets,
    // regular files and whiteouts (char 0:0, as image tools make them) stay allowed.
    // mknod(path, mode, dev), mknodat(dirfd, path, mode, dev). The kernel reads the mode's low
    // 16 bits and the dev's low 32; dev is compared in full, so stray high bits only refuse more.
    deny(['mknod'], [{ index: 1, op: 'masked-eq', value: S_IFMT, valueTwo: S_IFBLK }]),
    deny(['mknod'], [{ index: 1, op: 'masked-eq', value: S_IFMT, valueTwo: S_IFCHR }, { index: 2, op: 'gt', value: 0n }]),
    allow(['mknod']),
    deny(['mknodat'], [{ index: 2, op: 'masked-eq', value: S_IFMT, valueTwo: S_IFBLK }]),
    deny(['mknodat'], [{ index: 2, op: 'masked-eq', value: S_IFMT, valueTwo: S_IFCHR }, { index: 3, op: 'gt', value: 0n }]),
    allow(['mknodat']),

    // vsock reaches the hypervisor, outside the sandbox's network namespace.
    deny(['socket'], [low32Eq(0, AF_VSOCK)]),
    // The audit netlink socket is not namespaced: with CAP_AUDIT_WRITE (in the default set, as in
    // Docker's) a workload could forge records in the host's audit log. EPROTONOSUPPORT is what
    // a kernel without audit says, which libaudit users (PAM, sudo, login) take as "no audit".
    { syscalls: ['socket'], action: { errno: EPROTONOSUPPORT }, args: [low32Eq(0, AF_NETLINK), low32Eq(2, NETLINK_AUDIT)] },
    allow(['socket']),

    // Terminal input injection: TIOCSTI pushes bytes into a terminal's input queue and
    // TIOCLINUX can do the same on a virtual console, so a terminal shared with the host
    // (an inherited fd, /dev/tty) would type commands into the host's shell. The request is an
    // unsigned int: compare its low word.
    deny(['ioctl'], [low32Eq(1, TIOCSTI)]),
    deny(['ioctl'], [low32Eq(1, TIOCLINUX)]),
  ];
  return { defaultAction: { errno: ENOSYS }, rules };
}
