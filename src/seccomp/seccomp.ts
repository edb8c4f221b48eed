// SPDX-License-Identifier: Apache-2.0
// The `seccomp` option → the compiled BPF program for this machine, compiled once per distinct profile.
import { release } from 'node:os';
import { SandboxError } from '../errors.js';
import { defaultCapabilities } from '../security.js';
import { compileSeccomp, type SeccompPolicy } from './bpf.js';
import { defaultSeccompPolicy } from './default-profile.js';
import { capabilityNames, parseOciProfile, readOciProfileFile, type ProfileContext, type SeccompProfile } from './oci-profile.js';
import type { SeccompArch } from './syscalls.js';

/** @internal The option as the caller gives it. */
export type SeccompOption = 'default' | false | string | SeccompProfile;

/** @internal The architecture nsbox's tables describe for this Node.js, or undefined. */
export function nativeArch(): SeccompArch | undefined {
  if (process.arch === 'x64') return 'x86_64';
  if (process.arch === 'arm64') return 'aarch64';
  return undefined;
}

/** @internal [major, minor, patch] of the running kernel (os.release(): '6.18.44-fc-v657'). */
export function kernelVersion(text = release()): [number, number, number] {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : [0, 0, 0];
}

let context: ProfileContext | undefined;

/** @internal What profiles are evaluated against: this machine, the sandbox's capabilities. */
export function profileContext(): ProfileContext {
  if (!context) {
    const arch = nativeArch();
    if (!arch) {
      throw new SandboxError(
        'ERR_UNSUPPORTED',
        `nsbox has seccomp system call tables for x86_64 and aarch64 only, not ${process.arch}; pass \`seccomp: false\` to run without a filter`,
      );
    }
    context = { arch, caps: capabilityNames(defaultCapabilities()), kernel: kernelVersion() };
  }
  return context;
}

// Compiled programs by policy content. Bounded: a caller generating profiles must not grow it forever.
const compiled = new Map<string, Buffer>();
const MAX_CACHED = 32;

function cached(key: string, compile: () => Buffer): Buffer {
  let program = compiled.get(key);
  if (program) {
    compiled.delete(key); // most recently used goes last
  } else {
    program = compile();
    if (compiled.size >= MAX_CACHED) compiled.delete(compiled.keys().next().value!);
  }
  compiled.set(key, program);
  return program;
}

// The cache key of a parsed policy: plain data with bigints, its keys in a fixed order by construction.
const policyKey = (policy: SeccompPolicy) => JSON.stringify(policy, (_key, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));

/**
 * @internal The BPF program for the `seccomp` option (empty for `false`): nsbox's default
 * policy, a Docker/OCI JSON profile file, or a profile object. A profile is read and checked on
 * every call (cheap); the compiled program is reused for an equal policy. Throws SandboxError
 * ERR_INVALID_OPTION for a bad profile, ERR_UNSUPPORTED on an architecture without tables.
 */
export function seccompFilter(option: SeccompOption): Buffer {
  if (option === false) return Buffer.alloc(0);
  const ctx = profileContext();
  if (option === 'default') return cached(`default:${ctx.arch}`, () => compileSeccomp(defaultSeccompPolicy(ctx), ctx.arch));
  const policy = typeof option === 'string'
    ? parseOciProfile(readOciProfileFile(option).profile, ctx, `seccomp profile \`${option}\`:`)
    : parseOciProfile(option, ctx);
  return cached(`${ctx.arch}:${policyKey(policy)}`, () => compileSeccomp(policy, ctx.arch));
}
