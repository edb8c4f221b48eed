// SPDX-License-Identifier: Apache-2.0
// exec: a new process in a running sandbox's namespaces and cgroup, with the same security setup as its pid 1.
import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { ReadStream } from 'node:tty';
import { nativeSpawn, socket, type SandboxContext, type Launched } from './launch.js';
import { track, untrack } from './live.js';
import { initPath, native } from './native/binding.js';
import { StdioMode, UsernsMode, type NativeSpawned, type NativeSpawnPlan } from './native/native.js';
import { workloadEnv } from './plan.js';
import { defaultCapabilities, rlimitsFor } from './security.js';
import type { ResolvedUser } from './user-spec.js';

/** @internal What one exec runs, already checked. */
export interface ExecSpec {
  argv: string[];
  /** Added to (and overriding) the sandbox's environment. */
  env: Record<string, string>;
  cwd: string;
  user: ResolvedUser;
  failStage: number;
  /** A pty master from the sandbox's devpts (owned by the exec from now on), or -1. */
  ptyMaster: number;
  /** The group the terminal gets: the image's `tty` group, else the user's. */
  ttyGid: number;
}

const OUTPUT_GRACE_MS = 100;
const OUTPUT_DRAIN_MAX_MS = 1000;

// Ends what the caller reads once no data came for OUTPUT_GRACE_MS (at most OUTPUT_DRAIN_MAX_MS after the command exited). The check runs from
// setImmediate, after the event loop's poll phase, so output already waiting in the pipe is read
// first even when the loop is late. A pipe is not closed: it goes on being read and discarded
// until its last writer is gone, so a background process that still writes to it is not killed
// by SIGPIPE. (A terminal is let go: its writers see EIO, not a signal.)
function releaseWhenQuiet(source: Socket, view: PassThrough | null): void {
  let active = false;
  // A background writer that never pauses is let go after a while all the same.
  const deadline = Date.now() + OUTPUT_DRAIN_MAX_MS;
  source.on('data', () => {
    active = true;
  });
  const check = () => {
    if (source.destroyed || source.readableEnded) return;
    if (active && Date.now() < deadline) {
      active = false;
      setTimeout(() => setImmediate(check), OUTPUT_GRACE_MS).unref();
    } else if (view) {
      source.unpipe(view);
      view.end();
      source.resume();
    } else {
      source.destroy();
    }
  };
  setTimeout(() => setImmediate(check), OUTPUT_GRACE_MS).unref();
}

// What the caller reads of an exec's pipe: the pipe itself, until it is let go.
function viewOf(source: Socket | null): PassThrough | null {
  if (!source) return null;
  const view = new PassThrough();
  source.on('error', (error) => view.destroy(error));
  source.pipe(view);
  return view;
}

/**
 * @internal Starts `spec` in the sandbox. The child joins the sandbox's cgroup and then all of its
 * namespaces with one setns(pidfd), and execs nsbox-init, which forks the workload into the
 * sandbox's pid namespace: the same init contract (exec result, signal forwarding, exit status)
 * as a run, with init itself outside the pid namespace, out of the workload's reach.
 */
export async function launchExec(context: SandboxContext, spec: ExecSpec, stdio: [boolean, boolean, boolean]): Promise<Launched> {
  const { options, cgroup } = context;
  const user = spec.user;
  const plan: NativeSpawnPlan = {
    argv: spec.argv,
    env: workloadEnv({ options: { ...options, env: { ...options.env, ...spec.env } }, image: context.image, user }, context.hostname),
    cwd: spec.cwd,
    hostname: context.hostname,
    newNet: false,
    netnsPath: '',
    joinPidfd: context.pidfd,
    joinUserns: context.userns,
    setupCommands: [],
    keeperUsernsPath: '',
    // Joined, not made: the mode only tells the user stage whether setgroups was denied.
    usernsMode: context.idMapping.mode,
    uidMap: '',
    gidMap: '',
    newuidmapPath: '',
    newgidmapPath: '',
    cgroupV2Dir: cgroup?.version === 'v2' ? cgroup.dir : '',
    // `tasks`, as for pid 1 (see CgroupV1.tasksFiles): through `cgroup.procs`, the first exec after a pause
    // waited a whole RCU grace period (5–15 ms) on the cgroup threadgroup lock.
    cgroupV1Procs: cgroup?.version === 'v1' ? [...cgroup.tasksFiles] : [],
    scratchDir: '',
    scratchData: '',
    scratchDirs: [],
    rootDir: '',
    overlayData: '',
    ops: [],
    readonlyRoot: false,
    uid: user.uid,
    gid: user.gid,
    // A one-id map has no other groups to give (as for pid 1).
    groups: context.idMapping.mode === UsernsMode.Self ? [] : user.groups,
    caps: defaultCapabilities(),
    noNewPrivs: true,
    rlimits: rlimitsFor(options.rlimits),
    seccomp: options.seccomp,
    useInit: true,
    initPath: initPath(),
    stdin: stdio[0] ? StdioMode.Pipe : StdioMode.Null,
    stdout: stdio[1] ? StdioMode.Pipe : StdioMode.Null,
    stderr: stdio[2] ? StdioMode.Pipe : StdioMode.Null,
    failStage: spec.failStage,
    ptyMaster: spec.ptyMaster,
    ttyUid: spec.ptyMaster >= 0 ? user.uid : -1,
    ttyGid: spec.ptyMaster >= 0 ? spec.ttyGid : -1,
  };
  let spawned: NativeSpawned;
  try {
    spawned = await nativeSpawn(plan);
  } catch (error) {
    if (spec.ptyMaster >= 0) closeSync(spec.ptyMaster);
    throw error;
  }
  const { pid, pidfd, workloadPidfd } = spawned;
  let exited = false;
  // With a terminal, one stream carries input and output (the terminal merges stderr into it).
  const terminal = spec.ptyMaster >= 0 ? new ReadStream(spec.ptyMaster) : null;
  const stdoutPipe = terminal ? null : socket(spawned.stdoutFd, true);
  const stderrPipe = terminal ? null : socket(spawned.stderrFd, true);
  const stdoutView = viewOf(stdoutPipe);
  const stderrView = viewOf(stderrPipe);
  const stdout = terminal ?? stdoutView;
  const stderr = stderrView;
  const exit = track(pid, pidfd, spawned.syncFd, undefined).then((e) => {
    exited = true;
    // Background processes the command left behind may hold its stdout/stderr open for as long as
    // the sandbox lives (unlike a run, whose processes all end with its pid 1): once the command
    // has exited, output is read until it pauses for a moment, then the pipes are let go.
    if (terminal) releaseWhenQuiet(terminal, null);
    if (stdoutPipe) releaseWhenQuiet(stdoutPipe, stdoutView);
    if (stderrPipe) releaseWhenQuiet(stderrPipe, stderrView);
    return e;
  });
  return {
    pid,
    argv: spec.argv,
    image: context.image.name,
    stdin: terminal ?? socket(spawned.stdinFd, false),
    stdout,
    stderr,
    resize: terminal ? (columns, rows) => native().setWindowSize(spec.ptyMaster, columns, rows) === 0 : undefined,
    exited: exit,
    kill: (signal) => {
      if (exited) return false;
      // A signal reaches everything the exec started, not only the command: the command leads a
      // process group (a session, on a terminal) its children inherit. The host signals that
      // group, so children that changed their uid (which clears the parent-death signal tying
      // them to init, and puts them out of init's reach) get it too, and no process of another
      // exec or pid 1 does. The workload's pidfd keeps the group's id from being recycled, even
      // after the command itself exited. Without that pidfd: init, which passes it on.
      if (workloadPidfd >= 0 && native().killGroup(workloadPidfd, signal) === 0) return true;
      return native().kill(pidfd, signal) === 0;
    },
    context,
    async cleanup() {
      native().close(pidfd);
      if (workloadPidfd >= 0) native().close(workloadPidfd);
      untrack(pid);
      // The sandbox's cgroup is shared with pid 1 and other execs: no per-exec peaks; CPU time comes from init's rusage.
      return { cpuTimeMs: null, memoryPeakBytes: null, pidsPeak: null, oomKilled: false };
    },
  };
}
