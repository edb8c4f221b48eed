// SPDX-License-Identifier: Apache-2.0
// The public options, checked once with ow and normalised into one plain object.
import { existsSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, posix } from 'node:path';
import type { Readable } from 'node:stream';
import ow, { ArgumentError } from 'ow';
import { SandboxError } from './errors.js';
import { volumeSource } from './volume/volumes.js';
import { egressShape, type EgressPolicy } from './network/egress.js';
import { DEFAULT_NETWORK } from './network/networks.js';
import { portMappingShape, type PortMapping } from './network/publish.js';
import { networkNamePattern } from './network/validate.js';
import type { ImageConfig } from './image/image-config.js';
import type { SeccompProfile } from './seccomp/oci-profile.js';
import { seccompFilter } from './seccomp/seccomp.js';
import { RLIMIT_NAMES, type RlimitName, type RlimitValue } from './security.js';
import { parseDuration, parseSize } from './units.js';

/**
 * A layer stack already on disk: directories bottom to top, as an image store produces them.
 *
 * @example
 * ```ts
 * await run({ image: { layers: ['/layers/base', '/layers/app'], config: { env: ['MODE=prod'], cmd: ['/app/start'] } } });
 * ```
 */
export interface LayerStack {
  /** Unpacked layer directories, bottom layer first. */
  layers: string[];
  /** The image's runtime defaults (Env, Cmd, Entrypoint, WorkingDir, User). */
  config?: Partial<ImageConfig>;
  /** A name for results and messages. */
  name?: string;
}

/**
 * What to run the sandbox from: `'host'` (the host's /usr with a small synthetic /etc, nothing
 * to download), an absolute path to a directory (an unpacked root filesystem, or an OCI image
 * layout), a layer stack, or else an image reference (`'busybox'`, `'127.0.0.1:5000/app:1'`)
 * resolved through the image store and pulled as `pull` says.
 *
 * @example
 * ```ts
 * await run({ image: 'host', command: ['node', '--version'] });
 * await run({ image: '/srv/rootfs/alpine', command: ['cat', '/etc/os-release'] });
 * await run({ image: '/srv/oci/busybox' }); // its Entrypoint/Cmd, Env, WorkingDir, User
 * await run({ image: '127.0.0.1:5000/busybox:1', command: ['sh', '-c', 'echo hi'] }); // pulled when missing
 * ```
 */
export type ImageInput = 'host' | string | LayerStack;

/**
 * A host path bound into the sandbox.
 *
 * @example
 * ```ts
 * await run({ image: 'host', command: ['ls', '/data'], mounts: [{ type: 'bind', source: '/srv/data', target: '/data', readonly: true }] });
 * ```
 */
export interface BindMount {
  /** A bind mount. */
  type: 'bind';
  /** Existing host path. */
  source: string;
  /** Absolute path inside the sandbox. */
  target: string;
  /** Default false, as in Docker. */
  readonly?: boolean;
  /**
   * 'rprivate' (default, as Docker's): nothing propagates either way. 'rslave': mounts the host
   * makes below `source` later appear inside too (never the other way). Shared propagation, which
   * would let a sandbox's mounts appear on the host, is not offered.
   */
  propagation?: 'rprivate' | 'rslave';
}

/**
 * A private tmpfs.
 *
 * @example
 * ```ts
 * await run({ image: 'host', command: ['df', '/scratch'], mounts: [{ type: 'tmpfs', target: '/scratch', size: '32MiB' }] });
 * ```
 */
export interface TmpfsMount {
  /** A tmpfs mount. */
  type: 'tmpfs';
  /** Absolute path inside the sandbox. */
  target: string;
  /** Bytes or a size string; default '64MiB'. */
  size?: number | string;
  /** Octal mode of the root of the tmpfs; default 0o1777. */
  mode?: number;
}

/**
 * A mount requested by the caller, applied in order after the image's root.
 *
 * @example
 * ```ts
 * const mounts: Mount[] = [{ type: 'bind', source: process.cwd(), target: '/src', readonly: true }, { type: 'tmpfs', target: '/out' }];
 * ```
 */
export type Mount = BindMount | TmpfsMount | VolumeMount;

/**
 * A named volume (created on first use) that outlives the sandbox. Mounted while empty at a
 * path where the image has a directory, it is first filled with that directory's content
 * (files, modes, owners, times; the volume's root takes the directory's owner and mode), as
 * Docker does; a volume with anything in it is never written to. `populate: false` (Docker's
 * `nocopy`) mounts it as it is.
 *
 * @example
 * ```ts
 * await run({ image: 'host', command: ['sh', '-c', 'echo hi > /data/greeting'], mounts: [{ type: 'volume', source: 'appdata', target: '/data' }] });
 * ```
 */
export interface VolumeMount {
  /** A named volume. */
  type: 'volume';
  /** The volume's name. */
  source: string;
  /** Absolute path inside the sandbox. */
  target: string;
  /** Default false. */
  readonly?: boolean;
  /** Fill an empty volume with what the image has at `target` (default true; false is Docker's `nocopy`). */
  populate?: boolean;
}

/**
 * Resource limits. Sizes take bytes or strings ('64MiB'); durations take ms or strings ('2s').
 *
 * @example
 * ```ts
 * await run({ image: 'host', command: ['node', 'job.js'], limits: { memory: '256MiB', pids: 64, cpus: 0.5, timeout: '10s', output: '1MiB' } });
 * ```
 */
export interface Limits {
  /** Memory (hard, no swap). Default '512MiB'. `null` = unlimited. Also bounds the in-memory writable layer. */
  memory?: number | string | null;
  /** Processes and threads. Default 256. `null` = unlimited. */
  pids?: number | null;
  /** CPU time in cores (0.5 = half a core). Default unlimited. */
  cpus?: number | null;
  /** Wall-clock time before the whole sandbox is killed. Default '5m'; 0 = none. */
  timeout?: number | string;
  /** Bytes of stdout + stderr kept; past it the output is cut, flagged, and the sandbox killed. Default '16MiB'. */
  output?: number | string;
  /** Size of the writable layer when it lives in memory (the default). Default '1GiB'. */
  disk?: number | string;
}

/**
 * Options of {@link run} and {@link spawn}. Unknown keys are rejected, so a misspelt option
 * never goes unnoticed.
 *
 * @example
 * ```ts
 * const options: SandboxOptions = {
 *   image: 'host',
 *   command: ['sh', '-c', 'echo $GREETING from $(hostname)'],
 *   env: { GREETING: 'hello' },
 *   hostname: 'box',
 *   limits: { timeout: '2s' },
 * };
 * await run(options);
 * ```
 */
export interface SandboxOptions {
  /** What to run from: 'host', a root filesystem or OCI layout directory, or a layer stack. */
  image: ImageInput;
  /** For an image reference: pull it only when missing from the store (default), every time, or never (missing = ERR_IMAGE_NOT_FOUND). */
  pull?: 'missing' | 'always' | 'never';
  /** argv; defaults to the image's Entrypoint + Cmd. Required for 'host'. */
  command?: string[];
  /** Added to (and overriding) the image's environment. */
  env?: Record<string, string>;
  /** Absolute working directory; created when missing. Default: the image's, else '/'. */
  cwd?: string;
  /** 'uid', 'uid:gid', 'name' or 'name:group' from the image's /etc/passwd and /etc/group. Default: the image's, else root. */
  user?: string | number;
  /** Default: 12 hex digits of the sandbox id. */
  hostname?: string;
  /** Fed to the workload's stdin; without it stdin is /dev/null (for {@link spawn}: a writable stream). */
  stdin?: string | Buffer | Readable;
  /** Resource limits; see {@link Limits} for the defaults. */
  limits?: Limits;
  /** Bind mounts and tmpfs mounts, applied in order after the image's root. */
  mounts?: Mount[];
  /**
   * 'none' (default): a private network namespace with only loopback. 'host': the host's
   * network, an explicit opt-out. 'bridge': the default bridged network (`nsbox0`, made on first
   * use; NAT to the outside, the host itself unreachable); or the name of a network made with
   * {@link createNetwork}, whose members reach each other by hostname. A sandbox in a user namespace
   * (rootless, or `userns: true`) gets 'bridge' through pasta (user-mode networking: outbound traffic,
   * published ports, egress rules, DNS; needs the passt package and a usable /dev/net/tun), and
   * named networks through a keeper sandbox holding the network's bridge (ports publish on 127.0.0.1 only).
   */
  network?: 'none' | 'host' | 'bridge' | (string & {});
  /** Host ports forwarded to the sandbox (a bridged network; `network` defaults to 'bridge' with it). Host address default 127.0.0.1. */
  publish?: PortMapping[];
  /** What a sandbox on a bridged network may reach (default: everything but the host). */
  egress?: EgressPolicy;
  /** Aborting kills the sandbox and rejects with ERR_CANCELED. */
  signal?: AbortSignal;
  /** 'utf8' (default) gives strings; 'buffer' gives Buffers. */
  encoding?: 'utf8' | 'buffer';
  /** Keep stdout/stderr in the result (default true). With false the output only flows through the streams of {@link spawn}; limits.output still applies. */
  buffer?: boolean;
  /** Default true: a non-zero exit, a signal, a timeout or an abort rejects with a RunError. */
  reject?: boolean;
  /** Run a tiny init as pid 1 that reaps zombies and forwards signals (default true); false makes the workload pid 1. */
  init?: boolean;
  /** Make the root filesystem read-only (mounts, /tmp and /dev stay as they are). */
  readonlyRoot?: boolean;
  /**
   * Resource limits of each process (setrlimit): a number sets soft and hard alike, `{ soft, hard }`
   * both, `Infinity` means unlimited and `null` keeps the host's. Defaults: `core: 0` and
   * `nofile: 4096`. Every value is clamped to the host's hard limit, which only a privileged
   * process could raise.
   *
   * @example
   * ```ts
   * await run({ image: 'host', command: ['sh', '-c', 'ulimit -n'], rlimits: { nofile: 256, fsize: 16 * 2 ** 20 } });
   * ```
   */
  rlimits?: Partial<Record<RlimitName, number | { soft: number; hard: number } | null>>;
  /** A host directory that receives the writable layer (upper + work) and keeps it after the run. */
  upperDir?: string;
  /** false: no cgroup at all (no memory, pids or cpu limits, no usage), e.g. rootless without a delegated cgroup. */
  cgroup?: boolean;
  /** Use a user namespace also when running as root (always used when not root). */
  userns?: boolean;
  /**
   * The system call filter, installed last before the workload starts. `'default'` (the
   * default): nsbox's allowlist, at least as strict as Docker's default profile: kexec, bpf,
   * perf_event_open, userfaultfd, io_uring, the keyring, module loading, mount and the new mount
   * API, file handles, new namespaces (unshare, setns, clone with CLONE_NEW* flags), weakening
   * personality flags and host-wide settings are refused with EPERM, system calls it does not
   * know with ENOSYS (clone3 too, so libc falls back to clone). A string is the path of a
   * Docker/OCI JSON profile, an object is such a profile itself; `false` installs no filter.
   *
   * @example
   * ```ts
   * await run({ image: 'host', command: ['node', 'app.js'] }); // the default filter
   * await run({ image: 'host', command: ['make', 'test'], seccomp: '/etc/nsbox/seccomp.json' }); // a Docker/OCI profile file
   * await run({ image: 'host', command: ['mkdir', '/tmp/x'], seccomp: { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }] } });
   * await run({ image: 'host', command: ['unshare', '-r', 'id'], seccomp: false }); // no filter
   * ```
   */
  seccomp?: 'default' | false | string | SeccompProfile;
}

// publish and egress need a bridged network: without a `network` they ask for the default one.
function networkOf(options: SandboxOptions): string {
  const bridged = options.publish !== undefined || options.egress !== undefined;
  const network = options.network ?? (bridged ? 'bridge' : 'none');
  if (bridged && (network === 'none' || network === 'host'))
    throw new SandboxError('ERR_INVALID_OPTION', `Invalid sandbox option: publish and egress need a bridged network, not network '${network}'`);
  return network === 'bridge' ? DEFAULT_NETWORK : network;
}

/** @internal Options after validation: defaults applied, units resolved. */
export interface NormalizedOptions {
  image: ImageInput;
  pull: 'missing' | 'always' | 'never';
  command: string[] | undefined;
  env: Record<string, string>;
  cwd: string | undefined;
  user: string | undefined;
  hostname: string | undefined;
  stdin: string | Buffer | Readable | undefined;
  limits: {
    memoryBytes: number | undefined;
    pids: number | undefined;
    cpus: number | undefined;
    timeoutMs: number;
    outputBytes: number;
    diskBytes: number;
  };
  /** Whether the caller set memory/pids/cpus explicitly (defaults may be dropped with cgroup: false). */
  explicitCgroupLimits: boolean;
  /** Bind sources are real paths; `identity` ("dev:ino") lets the addon refuse a source swapped since. */
  /** Volume mounts are binds of the volume's directory that remember its name. */
  mounts: Array<{ type: 'bind'; source: string; identity: string; target: string; readonly: boolean; volume?: string; populate?: boolean; slave?: boolean } | { type: 'tmpfs'; target: string; sizeBytes: number; mode: number }>;
  /** 'none', 'host', or the name of a bridged network ('bridge' resolved to the default one). */
  network: string;
  publish: PortMapping[];
  egress: EgressPolicy | undefined;
  signal: AbortSignal | undefined;
  encoding: 'utf8' | 'buffer';
  buffer: boolean;
  reject: boolean;
  init: boolean;
  readonlyRoot: boolean;
  upperDir: string | undefined;
  rlimits: Partial<Record<RlimitName, RlimitValue | null>>;
  cgroup: boolean;
  userns: boolean;
  /** The compiled seccomp filter (classic BPF); empty for none. */
  seccomp: Buffer;
  /** @internal fault injection for tests: force this setup stage to fail. */
  failStage: number;
}

/** @internal */
export const DEFAULT_LIMITS = { memory: '512MiB', pids: 256, timeout: '5m', output: '16MiB', disk: '1GiB' } as const;

/** @internal Test-only fault injection key, deliberately not part of the typed options. */
export const failStageKey = Symbol.for('nsbox.failStage');

const noNul = (s: string) => ({ validator: !s.includes('\0'), message: (label: string) => `Expected ${label} to contain no NUL byte` });
const absolutePath = (s: string) => ({
  validator: s.startsWith('/') && !s.split('/').includes('..') && !s.includes('\0'),
  message: (label: string) => `Expected ${label} to be an absolute path without \`..\` components, got \`${s}\``,
});
// Sizes and durations are only type-checked here; their values are parsed (with one clear
// message each) in normalizeOptions, since ow's union messages list every alternative.
const sizeLike = ow.any(ow.number, ow.string);
const durationLike = ow.any(ow.number, ow.string);
const hostnamePattern = /^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$/;

const shape = ow.object.exactShape({
  image: ow.any(
    ow.string.nonEmpty.validate(noNul),
    ow.object.exactShape({
      layers: ow.array.nonEmpty.ofType(ow.string.validate(absolutePath).validate((s) => ({
        validator: !/[:,\\]/.test(s),
        message: (label) => `Expected ${label} to contain no \`:\`, \`,\` or \`\\\` (overlayfs option syntax), got \`${s}\``,
      }))),
      config: ow.optional.object,
      name: ow.optional.string,
    }),
  ),
  pull: ow.optional.string.oneOf(['missing', 'always', 'never']),
  command: ow.optional.array.nonEmpty.ofType(ow.string.validate(noNul)).validate((a) => ({
    validator: a[0] !== '',
    message: (label) => `Expected ${label}[0] to be a non-empty program name`,
  })),
  env: ow.optional.object.valuesOfType(ow.string.validate(noNul)).validate((env) => {
    const bad = Object.keys(env).find((k) => k === '' || k.includes('=') || k.includes('\0'));
    return { validator: bad === undefined, message: (label) => `Expected ${label} keys to be names without \`=\`, got \`${bad}\`` };
  }),
  cwd: ow.optional.string.validate(absolutePath),
  user: ow.optional.any(
    ow.number.integer.inRange(0, 2 ** 32 - 2),
    ow.string.matches(/^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$/),
  ),
  hostname: ow.optional.string.matches(hostnamePattern),
  stdin: ow.optional.any(ow.string, ow.uint8Array, ow.object.hasKeys('pipe', 'read')),
  limits: ow.optional.object.exactShape({
    memory: ow.optional.any(ow.null, sizeLike),
    pids: ow.optional.any(ow.null, ow.number.integer.inRange(1, 4_194_304)),
    cpus: ow.optional.any(ow.null, ow.number.finite.greaterThan(0).lessThanOrEqual(1024)),
    timeout: ow.optional.any(durationLike),
    output: ow.optional.any(sizeLike),
    disk: ow.optional.any(sizeLike),
  }),
  mounts: ow.optional.array.ofType(
    ow.any(
      ow.object.exactShape({
        type: ow.string.equals('bind'),
        source: ow.string.nonEmpty.validate(noNul),
        target: ow.string.validate(absolutePath),
        readonly: ow.optional.boolean,
        propagation: ow.optional.string.oneOf(['rprivate', 'rslave']),
      }),
      ow.object.exactShape({
        type: ow.string.equals('volume'),
        source: ow.string.nonEmpty.validate(noNul),
        target: ow.string.validate(absolutePath),
        readonly: ow.optional.boolean,
        populate: ow.optional.boolean,
      }),
      ow.object.exactShape({
        type: ow.string.equals('tmpfs'),
        target: ow.string.validate(absolutePath),
        size: ow.optional.any(sizeLike),
        mode: ow.optional.number.integer.inRange(0, 0o7777),
      }),
    ),
  ),
  network: ow.optional.string.is((name) => name === 'none' || name === 'host' || name === 'bridge' || networkNamePattern.test(name) || `Expected \`network\` to be 'none', 'host', 'bridge' or a network name (lowercase letters, digits, '_', '.', '-'), got \`${name}\``),
  publish: ow.optional.array.ofType(portMappingShape),
  egress: ow.optional.object.is((policy) => {
    try {
      ow(policy, 'egress', egressShape);
      return true;
    } catch (error) {
      return (error as Error).message;
    }
  }),
  signal: ow.optional.object.instanceOf(AbortSignal),
  encoding: ow.optional.string.oneOf(['utf8', 'buffer']),
  buffer: ow.optional.boolean,
  reject: ow.optional.boolean,
  init: ow.optional.boolean,
  readonlyRoot: ow.optional.boolean,
  upperDir: ow.optional.string.validate(absolutePath),
  rlimits: ow.optional.object.exactShape(
    Object.fromEntries(RLIMIT_NAMES.map((name) => [name, ow.optional.any(ow.null, ow.number, ow.object.exactShape({ soft: ow.number, hard: ow.number }))])),
  ),
  cgroup: ow.optional.boolean,
  userns: ow.optional.boolean,
  // Profiles are checked field by field when compiled (seccomp/oci-profile.ts), with messages naming the field.
  seccomp: ow.optional.any(ow.boolean.false, ow.string.nonEmpty.validate(noNul), ow.object.plain),
});

// '/x/', '/x//' and '/x' are one target.
function normalizePath(path: string): string {
  const normal = posix.normalize(path);
  return normal.length > 1 ? normal.replace(/\/+$/, '') : normal;
}

function invalid(message: string, cause?: unknown): SandboxError {
  return new SandboxError('ERR_INVALID_OPTION', message, { cause });
}

// Sizes checked against what the kernel accepts: a memory limit below a few MiB cannot even start a process.
const MIN_MEMORY = 4 * 1024 * 1024;
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * @internal Checks every option before anything is touched and applies the defaults.
 * Throws SandboxError ERR_INVALID_OPTION naming the option.
 */
export function normalizeOptions(options: SandboxOptions): NormalizedOptions {
  try {
    ow(options, 'options', shape);
  } catch (error) {
    if (error instanceof ArgumentError) throw invalid(`Invalid sandbox option: ${error.message}`, error);
    throw error;
  }
  const limits = options.limits ?? {};
  const size = (name: string, value: number | string | undefined | null, fallback: string) => {
    const bytes = parseSize(value ?? fallback);
    if (bytes === undefined) throw invalid(`Invalid sandbox option: ${name} must be a byte count or a size like 64MiB, got \`${String(value)}\``);
    return bytes;
  };
  const duration = (name: string, value: number | string | undefined, fallback: string) => {
    const ms = parseDuration(value ?? fallback);
    // Node's timers fire at once past 2^31 - 1 ms (24.8 days): refuse rather than kill at once.
    if (ms !== undefined && ms > MAX_TIMER_MS) throw invalid(`Invalid sandbox option: ${name} must be at most ${MAX_TIMER_MS} ms (24.8 days), got \`${String(value)}\``);
    if (ms === undefined) throw invalid(`Invalid sandbox option: ${name} must be milliseconds or a duration like 2s, got \`${String(value)}\``);
    return ms;
  };
  const memoryBytes = limits.memory === null ? undefined : size('limits.memory', limits.memory, DEFAULT_LIMITS.memory);
  if (memoryBytes !== undefined && memoryBytes < MIN_MEMORY) throw invalid(`Invalid sandbox option: limits.memory must be at least 4MiB, got ${memoryBytes} bytes`);
  // tmpfs reads size=0 as "unlimited": a zero-byte limit would silently be none at all.
  const positive = (name: string, bytes: number) => {
    if (bytes === 0) throw invalid(`Invalid sandbox option: ${name} must be more than 0 bytes (tmpfs takes 0 as unlimited)`);
    return bytes;
  };
  const upperDir = options.upperDir;
  if (upperDir !== undefined && (!existsSync(upperDir) || !statSync(upperDir).isDirectory()))
    throw invalid(`Invalid sandbox option: upperDir \`${upperDir}\` is not an existing directory`);

  const mounts = (options.mounts ?? []).map((mount) => {
    if (mount.type === 'volume') {
      const source = volumeSource(mount.source);
      const { dev, ino } = statSync(source, { bigint: true });
      return { type: 'bind' as const, source, identity: `${dev}:${ino}`, target: normalizePath(mount.target), readonly: mount.readonly ?? false, volume: mount.source, populate: mount.populate ?? true };
    }
    if (mount.type === 'bind') {
      if (!existsSync(mount.source)) throw invalid(`Invalid sandbox option: mounts source \`${mount.source}\` does not exist`);
      if (!isAbsolute(mount.source)) throw invalid(`Invalid sandbox option: mounts source \`${mount.source}\` must be absolute`);
      // Resolved now, so the child binds what the caller named, not what a symlink points to later.
      const source = realpathSync(mount.source);
      const { dev, ino } = statSync(source, { bigint: true });
      return { type: 'bind' as const, source, identity: `${dev}:${ino}`, target: normalizePath(mount.target), readonly: mount.readonly ?? false, ...(mount.propagation === 'rslave' && { slave: true }) };
    }
    return { type: 'tmpfs' as const, target: normalizePath(mount.target), sizeBytes: positive('mounts[].size', size(`mounts[].size`, mount.size, '64MiB')), mode: mount.mode ?? 0o1777 };
  });
  const rlimits: Partial<Record<RlimitName, RlimitValue | null>> = {};
  for (const [name, value] of Object.entries(options.rlimits ?? {}) as Array<[RlimitName, number | RlimitValue | null | undefined]>) {
    if (value === undefined) continue;
    const limit = value === null || typeof value === 'object' ? value : { soft: value, hard: value };
    const ok = (n: number) => n === Infinity || (Number.isSafeInteger(n) && n >= 0);
    if (limit && (!ok(limit.soft) || !ok(limit.hard) || limit.soft > limit.hard))
      throw invalid(`Invalid sandbox option: rlimits.${name} must be non-negative integers (or Infinity) with soft ≤ hard, got ${JSON.stringify(value)}`);
    rlimits[name] = limit;
  }
  const targets = mounts.map((m) => m.target);
  const duplicate = targets.find((t, i) => targets.indexOf(t) !== i);
  if (duplicate) throw invalid(`Invalid sandbox option: two mounts target \`${duplicate}\``);
  if (targets.includes('/')) throw invalid('Invalid sandbox option: a mount cannot target `/`');

  return {
    image: options.image,
    pull: options.pull ?? 'missing',
    command: options.command,
    env: { ...options.env },
    cwd: options.cwd === undefined ? undefined : normalizePath(options.cwd),
    user: options.user === undefined ? undefined : String(options.user),
    hostname: options.hostname,
    stdin: options.stdin,
    limits: {
      memoryBytes,
      pids: limits.pids === null ? undefined : limits.pids ?? DEFAULT_LIMITS.pids,
      cpus: limits.cpus ?? undefined,
      timeoutMs: duration('limits.timeout', limits.timeout, DEFAULT_LIMITS.timeout),
      outputBytes: size('limits.output', limits.output, DEFAULT_LIMITS.output),
      diskBytes: positive('limits.disk', size('limits.disk', limits.disk, DEFAULT_LIMITS.disk)),
    },
    explicitCgroupLimits: [limits.memory, limits.pids, limits.cpus].some((v) => v !== undefined && v !== null),
    mounts,
    network: networkOf(options),
    publish: options.publish ?? [],
    egress: options.egress,
    signal: options.signal,
    encoding: options.encoding ?? 'utf8',
    buffer: options.buffer ?? true,
    reject: options.reject ?? true,
    init: options.init ?? true,
    readonlyRoot: options.readonlyRoot ?? false,
    upperDir,
    rlimits,
    cgroup: options.cgroup ?? true,
    userns: options.userns ?? false,
    seccomp: seccompFilter(options.seccomp ?? 'default'),
    failStage: (options as unknown as Record<symbol, number | undefined>)[failStageKey] ?? 0,
  };
}
