// SPDX-License-Identifier: Apache-2.0
// Sandbox: a long-lived sandbox that takes several commands (exec), files, pause/resume and a graceful stop.
import { closeSync, constants } from 'node:fs';
import { constants as osConstants } from 'node:os';
import type { Readable } from 'node:stream';
import ow, { type BasePredicate } from 'ow';
import { newCgroupId } from '../cgroup/cgroup.js';
import { isSandboxError, SandboxError, SetupError } from '../errors.js';
import { launchExec } from '../exec-launch.js';
import type { ImageConfig } from '../image/image-config.js';
import { launch, type SandboxContext } from '../launch.js';
import { failStageKey, type NormalizedOptions, type SandboxOptions } from '../options.js';
import { SandboxProcess } from '../process.js';
import type { RunResult } from '../result.js';
import { checkedOptions, type OutputOf } from '../sandbox.js';
import { resolveUser } from '../user-spec.js';
import { parseDuration } from '../units.js';
import { native } from '../native/binding.js';
import { UsernsMode } from '../native/native.js';
import { SandboxRoot, sandboxPath } from './files.js';
import { checkArgument } from '../check.js';

/**
 * Options of {@link Sandbox.create}: those of {@link run} that describe the sandbox (image,
 * env, cwd, user, limits, mounts, network, security), without a command: the sandbox idles
 * until {@link Sandbox.exec} gives it work. `limits.timeout` caps its whole life (default: none).
 *
 * @example
 * ```ts
 * const options: CreateOptions = { image: 'host', limits: { memory: '256MiB', pids: 64 }, env: { MODE: 'test' } };
 * ```
 */
export type CreateOptions = Omit<SandboxOptions, 'command' | 'stdin' | 'encoding' | 'buffer' | 'reject' | 'init'>;

/**
 * Options of {@link Sandbox.exec}.
 *
 * @example
 * ```ts
 * await box.exec(['sh', '-c', 'echo $GREETING > /tmp/out'], { env: { GREETING: 'hi' }, cwd: '/tmp', user: 'nobody' });
 * ```
 */
export interface ExecOptions {
  /** Added to the sandbox's environment (overriding it). */
  env?: Record<string, string>;
  /** Working directory inside the sandbox; default the sandbox's. It must exist. */
  cwd?: string;
  /** `user`, `uid`, `user:group` or `uid:gid`, looked up in the sandbox's /etc/passwd as it is now; default the sandbox's user. */
  user?: string;
  /** Input: a string, a Buffer or a readable stream. Omitted: the returned process's `stdin` is writable. */
  stdin?: string | Buffer | Readable;
  /** Kill the command after this long (ms or '30s'); default: no limit. */
  timeout?: number | string;
  /** Most bytes of stdout + stderr kept (ms or '1MiB'); default 16MiB. */
  output?: number | string;
  /** Abort to kill the command. */
  signal?: AbortSignal;
  /** 'utf8' (default) or 'buffer'. */
  encoding?: 'utf8' | 'buffer';
  /** Collect output into the result (default true). */
  buffer?: boolean;
  /** Reject on a non-zero exit, a signal, a timeout (default true). */
  reject?: boolean;
  /**
   * Run on a pseudo-terminal of the sandbox's own devpts (`true`: 80×24), so a shell or REPL
   * works: stdin and stdout are the terminal (stderr comes through stdout), and
   * {@link SandboxProcess.resize} changes its size.
   */
  tty?: boolean | { columns: number; rows: number };
}

/**
 * Live resource use of a sandbox, from its cgroup.
 *
 * @example
 * ```ts
 * const { memoryBytes, pids, cpuTimeMs } = await box.stats();
 * ```
 */
export interface SandboxStats {
  /** CPU time used by every process so far, in milliseconds. */
  cpuTimeMs: number;
  /** Memory charged now, and the peak; null without the memory controller. */
  memoryBytes: number | null;
  memoryPeakBytes: number | null;
  /** Processes and threads now, and the peak; null without the pids controller. */
  pids: number | null;
  pidsPeak: number | null;
  /** The kernel's OOM killer killed one of its processes. */
  oomKilled: boolean;
}

/**
 * Where a sandbox is in its life.
 *
 * @example
 * ```ts
 * if (box.state === 'paused') await box.resume();
 * ```
 */
export type SandboxState = 'running' | 'paused' | 'stopping' | 'stopped';

const MAX_FILE_BYTES = 64 * 1024 * 1024;

/** @internal The key of Sandbox's start from checked options. */
export const startChecked = Symbol('nsbox.startChecked');

/** @internal Checks {@link Sandbox.create}'s options: ERR_INVALID_OPTION for anything wrong. */
export function checkCreateOptions(options: CreateOptions): NormalizedOptions {
  if (typeof options !== 'object' || options === null) throw new SandboxError('ERR_INVALID_OPTION', 'Invalid sandbox option: expected an options object');
  for (const key of ['command', 'stdin', 'encoding', 'buffer', 'reject', 'init'])
    if (key in options) throw new SandboxError('ERR_INVALID_OPTION', `Invalid sandbox option: \`${key}\` is not an option of Sandbox.create (give commands to exec)`);
  const limits = (options as SandboxOptions).limits;
  // A long-lived sandbox has no deadline unless asked for one.
  const withLifetime = { ...options, limits: { ...(typeof limits === 'object' && limits !== null ? limits : {}), timeout: limits?.timeout ?? 0 } } as SandboxOptions;
  if (limits !== undefined && (typeof limits !== 'object' || limits === null)) (withLifetime as { limits: unknown }).limits = limits;
  return checkedOptions(withLifetime);
}
const live = new Set<Sandbox>();

/** @internal Leaves `box` out of {@link Sandbox.list}: nsbox's own plumbing (a network keeper), not the caller's sandbox. */
export function unlist(box: Sandbox): void {
  live.delete(box);
}

function check<T>(value: unknown, label: string, predicate: BasePredicate<T>): asserts value is T {
  checkArgument('sandbox option', value, label, predicate);
}

const execShape = ow.object.exactShape({
  env: ow.optional.object.valuesOfType(ow.string),
  cwd: ow.optional.string.nonEmpty,
  user: ow.optional.string.nonEmpty,
  stdin: ow.optional.any(ow.string, ow.uint8Array, ow.object),
  timeout: ow.optional.any(ow.number.integer.greaterThanOrEqual(0), ow.string),
  output: ow.optional.any(ow.number.integer.greaterThan(0), ow.string),
  signal: ow.optional.object.instanceOf(AbortSignal),
  encoding: ow.optional.string.oneOf(['utf8', 'buffer']),
  buffer: ow.optional.boolean,
  reject: ow.optional.boolean,
  tty: ow.optional.any(ow.boolean, ow.object.exactShape({ columns: ow.number.integer.inRange(1, 65535), rows: ow.number.integer.inRange(1, 65535) })),
});
const commandShape = ow.array.nonEmpty.ofType(ow.string.not.includes('\0'));

/**
 * A sandbox that stays up and takes several commands: {@link exec} runs a process in its
 * namespaces, cgroup and root filesystem (files one exec writes, the next one sees), files go in
 * and out from the host ({@link writeFile}, {@link readFile}, {@link copyIn}, {@link copyOut}),
 * {@link stats} reads its cgroup live, {@link pause}/{@link resume} freeze and thaw it, {@link stop}
 * ends it gracefully and {@link remove} releases everything (also `await using`).
 *
 * Its pid 1 is nsbox-init, holding the sandbox open and reaping orphans. An exec's process
 * is a child of a second nsbox-init that joined the sandbox's namespaces (one setns per exec,
 * from a fresh single-threaded child, never from the host's threads) and forks the command into
 * the sandbox's pid namespace; there is no daemon or shim process per sandbox.
 *
 * @example
 * ```ts
 * import { Sandbox } from 'nsbox';
 * await using box = await Sandbox.create({ image: 'host', limits: { memory: '256MiB' } });
 * await box.writeFile('/tmp/job.sh', 'echo hello from $(hostname)\n');
 * const { stdout } = await box.exec(['sh', '/tmp/job.sh']);
 * console.log(stdout, await box.stats());
 * ```
 */
export class Sandbox {
  /** The sandbox id: `<host pid>x<hex>`, also its cgroup's name. */
  readonly id: string;
  /** The host pid of its pid 1. */
  readonly pid: number;
  /** The hostname inside. */
  readonly hostname: string;

  readonly #context: SandboxContext;
  readonly #holder: SandboxProcess;
  readonly #execs = new Set<SandboxProcess<string | Buffer>>();
  #state: SandboxState = 'running';
  #stopping: Promise<void> | undefined;

  private constructor(context: SandboxContext, pid: number, holder: SandboxProcess) {
    this.id = context.id;
    this.pid = pid;
    this.hostname = context.hostname;
    this.#context = context;
    this.#holder = holder;
    // pid 1 ends on its own only by limits.timeout, a kill from outside or an OOM of init.
    holder.result.finally(() => {
      this.#state = 'stopped';
      live.delete(this);
    }).catch(() => {});
  }

  /**
   * Starts a sandbox and resolves once its pid 1 runs.
   * @throws SandboxError ERR_INVALID_OPTION for bad options (a `command` included), a SetupError
   *   when it cannot start, and whatever {@link run} throws for the image.
   *
   * @example
   * ```ts
   * const box = await Sandbox.create({ image: '127.0.0.1:5000/busybox:1', hostname: 'worker' });
   * try { await box.exec(['sh', '-c', 'uname -a']); } finally { await box.remove(); }
   * ```
   */
  static async create(options: CreateOptions): Promise<Sandbox> {
    return Sandbox[startChecked](checkCreateOptions(options));
  }

  /** @internal Starts a sandbox from options {@link checkCreateOptions} already checked (the pool checks once for all). */
  static async [startChecked](normalized: NormalizedOptions): Promise<Sandbox> {
    const id = newCgroupId();
    let context: SandboxContext | undefined;
    const holder = new SandboxProcess(id, { ...normalized, reject: false, buffer: false }, false, async (stdio) => {
      const launched = await launch(id, normalized, [false, stdio[1], stdio[2]], { hold: true, freezable: true });
      context = launched.context;
      return launched;
    });
    await new Promise<void>((resolve, reject) => {
      holder.once('spawn', resolve);
      holder.result.then(
        (result) => reject(new SandboxError('ERR_SETUP', `The sandbox stopped while starting (exit code ${String(result.exitCode)}, signal ${String(result.signal)})`)),
        reject,
      );
    });
    const box = new Sandbox(context!, holder.pid!, holder as SandboxProcess);
    live.add(box);
    return box;
  }

  /**
   * The sandboxes this process started that are still up.
   *
   * @example
   * ```ts
   * for (const box of Sandbox.list()) console.log(box.id, box.state);
   * ```
   */
  static list(): Sandbox[] {
    return [...live];
  }

  /**
   * Its IPv4 address on a bridged network (undefined with network 'none' or 'host'). In a user
   * namespace (pasta) it is the address pasta copies from the host's default route, the same for
   * every such sandbox: reach one from the host through its published ports.
   *
   * @example
   * ```ts
   * const box = await Sandbox.create({ image: 'host', network: 'bridge' });
   * console.log(box.address); // '10.231.0.5'
   * ```
   */
  get address(): string | undefined {
    return this.#context.network?.address;
  }

  /**
   * The image's runtime config (Env, Cmd, Entrypoint, WorkingDir, User, …) the sandbox was made from.
   *
   * @example
   * ```ts
   * const { entrypoint, cmd } = box.imageConfig;
   * await box.exec([...entrypoint, ...cmd]);
   * ```
   */
  get imageConfig(): ImageConfig {
    return this.#context.image.config;
  }

  /**
   * Where the sandbox is in its life.
   *
   * @example
   * ```ts
   * console.log(box.state); // 'running'
   * ```
   */
  get state(): SandboxState {
    return this.#state;
  }

  /**
   * Runs a command in the sandbox: same namespaces, cgroup (limits are shared with everything
   * else in it), root filesystem and security profile as pid 1. Returns the same
   * {@link SandboxProcess} as {@link spawn}: streams, `kill()`, and a thenable {@link RunResult}.
   * While the command runs, `kill()`, `timeout` and `signal` reach everything it started (its
   * process group, also processes that changed their uid), never another exec's processes.
   * Processes it leaves behind in the background once it exited live on until the sandbox
   * stops, as with `docker exec`; so does a process that left the group itself (`setsid`, the
   * jobs of a shell with job control on a terminal).
   *
   * @throws SandboxError ERR_INVALID_OPTION for bad options, ERR_SANDBOX_STOPPED when the sandbox is not running.
   *
   * @example
   * ```ts
   * await box.exec(['sh', '-c', 'echo 42 > /tmp/answer']);
   * const { stdout } = await box.exec(['cat', '/tmp/answer']); // '42\n'
   * const server = box.exec(['httpd', '-f', '-p', '8080']); // runs on; server.kill() ends it
   * ```
   */
  exec<O extends ExecOptions = ExecOptions>(command: string[], options?: O): SandboxProcess<OutputOf<O>> {
    check(command, 'command', commandShape);
    check(options ?? {}, 'options', execShape);
    const execOptions: ExecOptions = options ?? {};
    this.#assertRunning();
    // A clone into a frozen cgroup would sit frozen, and hold a thread of the host's pool with it.
    if (this.#state === 'paused') throw new SandboxError('ERR_SANDBOX_PAUSED', `Sandbox ${this.id} is paused: resume it before exec`);
    const timeoutMs = execOptions.timeout === undefined ? 0 : parseDuration(execOptions.timeout);
    if (timeoutMs === undefined) throw new SandboxError('ERR_INVALID_OPTION', `Invalid sandbox option: timeout must be milliseconds or a duration like 2s, got \`${String(execOptions.timeout)}\``);
    // Reuse run()'s checks for the parts they share (stdin, output size, signal).
    const shared = checkedOptions({ image: 'host', command, stdin: execOptions.stdin, signal: execOptions.signal, encoding: execOptions.encoding, buffer: execOptions.buffer, reject: execOptions.reject, limits: { output: execOptions.output, timeout: timeoutMs }, [failStageKey]: (options as Record<symbol, unknown> | undefined)?.[failStageKey] } as SandboxOptions);
    const context = this.#context;
    const process = new SandboxProcess<OutputOf<O>>(this.id, shared, true, async (stdio) => {
      this.#assertRunning();
      const user = execOptions.user === undefined ? context.user : await this.#resolveUser(execOptions.user);
      const cwd = execOptions.cwd === undefined ? (context.options.cwd ?? (context.image.config.workingDir || '/')) : sandboxPath(execOptions.cwd);
      const ttyGid = execOptions.tty ? await this.#terminalGroup(user.gid) : -1;
      const ptyMaster = execOptions.tty ? this.#openTerminal(execOptions.tty === true ? { columns: 80, rows: 24 } : execOptions.tty) : -1;
      const env = { ...(execOptions.tty ? { TERM: 'xterm' } : {}), ...execOptions.env };
      // Checked again right before the clone (nothing awaits in between until the addon has its own
      // copy of the pidfd): pid 1 may have ended while the user was looked up, and its pidfd's number
      // may already belong to another sandbox.
      if (!this.#holder.kill(0)) {
        if (ptyMaster >= 0) closeSync(ptyMaster);
        throw new SandboxError('ERR_SANDBOX_STOPPED', `Sandbox ${this.id} stopped`);
      }
      try {
        return await launchExec(context, { argv: command, env, cwd, user, failStage: shared.failStage, ptyMaster, ttyGid }, stdio);
      } catch (error) {
        // pid 1 ended between the check above and the setns: the sandbox stopped under us.
        if (error instanceof SetupError && error.stage === 'join-namespaces' && error.errnoCode === 'ESRCH')
          throw new SandboxError('ERR_SANDBOX_STOPPED', `Sandbox ${this.id} stopped`, { cause: error });
        throw error;
      }
    });
    this.#execs.add(process as SandboxProcess<string | Buffer>);
    process.result.finally(() => this.#execs.delete(process as SandboxProcess<string | Buffer>)).catch(() => {});
    return process;
  }

  /**
   * Writes a file inside the sandbox (its directory must exist), owned by the sandbox's user.
   * Symlinks are followed only within the sandbox's root.
   *
   * @example
   * ```ts
   * await box.writeFile('/app/main.py', 'print("hi")\n', { mode: 0o755 });
   * ```
   */
  async writeFile(path: string, data: string | Uint8Array, options: { mode?: number } = {}): Promise<void> {
    check(data, 'data', ow.any(ow.string, ow.uint8Array));
    check(options, 'options', ow.object.exactShape({ mode: ow.optional.number.integer.inRange(0, 0o7777) }));
    const target = sandboxPath(path);
    await this.#withRoot((root) => root.writeFile(target, Buffer.from(data), options.mode ?? 0o644, this.#context.user));
  }

  /**
   * Reads a regular file from inside the sandbox (at most `maxBytes`, default 64 MiB).
   *
   * @example
   * ```ts
   * const text = await box.readFile('/etc/hostname', { encoding: 'utf8' });
   * const bytes = await box.readFile('/out/report.pdf');
   * ```
   */
  readFile(path: string, options: { encoding: 'utf8'; maxBytes?: number }): Promise<string>;
  readFile(path: string, options?: { encoding?: 'buffer'; maxBytes?: number }): Promise<Buffer>;
  async readFile(path: string, options: { encoding?: 'utf8' | 'buffer'; maxBytes?: number } = {}): Promise<string | Buffer> {
    check(options, 'options', ow.object.exactShape({ encoding: ow.optional.string.oneOf(['utf8', 'buffer']), maxBytes: ow.optional.number.integer.positive }));
    const target = sandboxPath(path);
    const data = await this.#withRoot((root) => root.readFile(target, options.maxBytes ?? MAX_FILE_BYTES));
    return options.encoding === 'utf8' ? data.toString('utf8') : data;
  }

  /**
   * Unpacks a tar stream into the directory `dest` inside the sandbox (it must exist): files,
   * directories, symlinks and hard links with their modes and mtimes; owned by the sandbox's user,
   * or by the tar's uid/gid with `preserveOwner`. Entries that would leave `dest` are refused.
   *
   * @example
   * ```ts
   * import { c as tar } from 'tar';
   * await box.copyIn('/app', tar({ cwd: './build', portable: true }, ['.']));
   * ```
   */
  async copyIn(dest: string, tar: Readable, options: { preserveOwner?: boolean } = {}): Promise<void> {
    check(tar, 'tar', ow.object.is((s) => typeof (s as Readable).pipe === 'function' || `Expected tar to be a readable stream`));
    check(options, 'options', ow.object.exactShape({ preserveOwner: ow.optional.boolean }));
    const target = sandboxPath(dest);
    await this.#withRoot((root) => root.extract(target, tar, options.preserveOwner ? 'preserve' : this.#context.user));
  }

  /**
   * A tar stream of a file or directory inside the sandbox, named relative to its parent (as
   * `docker cp` does: copying out `/app/data` gives entries `data/…`). Symlinks are archived as links.
   *
   * @example
   * ```ts
   * import { x as untar } from 'tar';
   * import { pipeline } from 'node:stream/promises';
   * await pipeline(box.copyOut('/app/out'), untar({ cwd: './results' }));
   * ```
   */
  copyOut(path: string): Readable {
    const target = sandboxPath(path);
    this.#assertRunning();
    const root = this.#openRoot();
    const stream = root.pack(target);
    stream.once('close', () => root.close());
    return stream;
  }

  /**
   * Resource use now, read from the sandbox's cgroup.
   *
   * @example
   * ```ts
   * const { memoryBytes, memoryPeakBytes, pids, cpuTimeMs } = await box.stats();
   * ```
   */
  async stats(): Promise<SandboxStats> {
    const cgroup = this.#context.cgroup;
    if (!cgroup) return { cpuTimeMs: 0, memoryBytes: null, memoryPeakBytes: null, pids: null, pidsPeak: null, oomKilled: false };
    this.#assertRunning();
    const totals = cgroup.stats();
    const now = cgroup.usage();
    return { cpuTimeMs: totals.cpuTimeMs, memoryBytes: now.memoryBytes, memoryPeakBytes: totals.memoryPeakBytes, pids: now.pids, pidsPeak: totals.pidsPeak, oomKilled: totals.oomKilled };
  }

  /**
   * Freezes every process of the sandbox (cgroup freezer); resolves once all are frozen.
   *
   * @example
   * ```ts
   * await box.pause();
   * // … nothing inside runs …
   * await box.resume();
   * ```
   */
  async pause(): Promise<void> {
    this.#assertRunning();
    const cgroup = this.#cgroupFor('pause');
    this.#state = 'paused';
    try {
      await cgroup.freeze();
    } catch (error) {
      if (this.#state === 'paused') this.#state = 'running';
      throw error;
    }
  }

  /**
   * Thaws a paused sandbox.
   *
   * @example
   * ```ts
   * await box.resume();
   * ```
   */
  async resume(): Promise<void> {
    if (this.#state !== 'paused') return;
    this.#cgroupFor('resume').thaw();
    this.#state = 'running';
  }

  /**
   * Stops the sandbox: `signal` (default SIGTERM) to every process in it, then SIGKILL after
   * `timeout` (default 10 s; 0 kills at once). A paused sandbox is thawed first. Idempotent.
   *
   * @example
   * ```ts
   * await box.stop({ timeout: '2s' });
   * ```
   */
  stop(options: { signal?: NodeJS.Signals; timeout?: number | string } = {}): Promise<void> {
    check(options, 'options', ow.object.exactShape({ signal: ow.optional.string.is((s) => s in osConstants.signals || `Expected a signal name, got \`${s}\``), timeout: ow.optional.any(ow.number.integer.greaterThanOrEqual(0), ow.string) }));
    const timeoutMs = options.timeout === undefined ? 10_000 : parseDuration(options.timeout);
    if (timeoutMs === undefined) throw new SandboxError('ERR_INVALID_OPTION', `Invalid sandbox option: timeout must be milliseconds or a duration like 2s, got \`${String(options.timeout)}\``);
    this.#stopping ??= this.#stop(options.signal ?? 'SIGTERM', timeoutMs);
    return this.#stopping;
  }

  async #stop(signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
    if (this.#state === 'stopped') return;
    const cgroup = this.#context.cgroup;
    cgroup?.thaw();
    this.#state = 'stopping';
    const ended = this.#holder.result.then(() => true, () => true);
    const endedWithin = (ms: number) => Promise.race([ended, new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))]);
    if (timeoutMs > 0) {
      if (cgroup) {
        // The host signals every process of the sandbox through its cgroup: pid 1 runs as the
        // sandbox's user and could not reach the processes of an exec as root. Not the inits
        // (pid 1 and each exec's): they would pass the signal on, and a command would get it
        // twice (a shell's trap can run twice). Done when only pid 1 is left (or it ended),
        // else SIGKILL when the time is up.
        const inits = [this.pid, ...[...this.#execs].map((exec) => exec.pid)].filter((pid): pid is number => pid !== undefined);
        cgroup.signal(signal, new Set(inits));
        const deadline = Date.now() + timeoutMs;
        while (Date.now() < deadline && !(await endedWithin(20)) && cgroup.pids().some((pid) => pid !== this.pid)) {
          // wait
        }
      } else {
        // Without a cgroup, pid 1 (nsbox-init holding the sandbox) passes SIGTERM, SIGINT and SIGHUP on to every process it can.
        this.#holder.kill(signal === 'SIGINT' || signal === 'SIGHUP' ? signal : 'SIGTERM');
        await endedWithin(timeoutMs);
      }
    }
    this.#holder.kill('SIGKILL');
    await ended;
    // Execs end with the pid namespace; wait for their inits to report and clean up.
    await Promise.all([...this.#execs].map((exec) => exec.result.catch(() => {})));
    this.#state = 'stopped';
    live.delete(this);
  }

  /**
   * Stops the sandbox at once (SIGKILL) if it runs and releases everything: processes, mounts,
   * cgroup, fds. Idempotent. `await using box = await Sandbox.create(…)` calls it.
   *
   * @example
   * ```ts
   * await box.remove();
   * ```
   */
  async remove(): Promise<void> {
    await this.stop({ timeout: 0 });
  }

  /**
   * `await using`: removes the sandbox.
   *
   * @example
   * ```ts
   * { await using box = await Sandbox.create({ image: 'host' }); await box.exec(['true']); } // removed here
   * ```
   */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.remove();
  }

  #assertRunning(): void {
    if (this.#state === 'stopping' || this.#state === 'stopped') throw new SandboxError('ERR_SANDBOX_STOPPED', `Sandbox ${this.id} is ${this.#state}`);
  }

  #cgroupFor(what: string) {
    const cgroup = this.#context.cgroup;
    if (!cgroup) throw new SandboxError('ERR_UNSUPPORTED', `Cannot ${what} a sandbox created with \`cgroup: false\``);
    return cgroup;
  }

  // A new terminal of the sandbox's own devpts instance (mounted with newinstance): the
  // workload sees it as /dev/pts/N and can reach no terminal of the host.
  #openTerminal(size: { columns: number; rows: number }): number {
    const root = this.#openRoot();
    try {
      const master = root.openIn('/dev/pts/ptmx', constants.O_RDWR | constants.O_NOCTTY, 0, 'open a terminal at');
      native().setWindowSize(master, size.columns, size.rows);
      return master;
    } finally {
      root.close();
    }
  }

  #openRoot(): SandboxRoot {
    const mapping = this.#context.idMapping;
    return SandboxRoot.open(this.pid, () => this.#holder.kill(0), (id, kind) => hostId(kind === 'uid' ? mapping.uidMap : mapping.gidMap, id));
  }

  async #withRoot<T>(use: (root: SandboxRoot) => Promise<T>): Promise<T> {
    this.#assertRunning();
    const root = this.#openRoot();
    try {
      return await use(root);
    } finally {
      root.close();
    }
  }

  async #readEtc(path: string): Promise<string | undefined> {
    try {
      return (await this.#withRoot((root) => root.readFile(path, 4 * 1024 * 1024))).toString('utf8');
    } catch (error) {
      if (isSandboxError(error) && error.code === 'ERR_FILE') return undefined;
      throw error;
    }
  }

  async #resolveUser(spec: string) {
    return resolveUser(spec, await this.#readEtc('/etc/passwd'), await this.#readEtc('/etc/group'));
  }

  // A terminal's group, as Docker/runc give it: the sandbox's `tty` group if its /etc/group has
  // one, else the user's own. A one-id user namespace maps no other group than the user's.
  async #terminalGroup(userGid: number): Promise<number> {
    if (this.#context.idMapping.mode === UsernsMode.Self) return userGid;
    const line = (await this.#readEtc('/etc/group'))?.split('\n').find((entry) => entry.startsWith('tty:'));
    const gid = Number(line?.split(':')[2]);
    return line !== undefined && Number.isInteger(gid) && gid >= 0 ? gid : userGid;
  }
}

/** The host id of an id inside, through a uid_map/gid_map text ('' = no user namespace: the same id); -1 when unmapped. */
function hostId(map: string, id: number): number {
  if (map === '') return id;
  for (const line of map.trim().split('\n')) {
    const [inside, outside, count] = line.trim().split(/\s+/).map(Number) as [number, number, number];
    if (id >= inside && id < inside + count) return outside + (id - inside);
  }
  return -1;
}

export type { RunResult };
