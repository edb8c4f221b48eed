#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// Writes src/seccomp/syscalls.ts: system call numbers for x86_64 and aarch64 from the kernel's UAPI headers.
//
//   node scripts/gen-syscalls.mjs [--include /usr/include] [--out src/seccomp/syscalls.ts]
//
// Sources (Debian/Ubuntu: package linux-libc-dev; any architecture's package carries both):
//   x86_64   <include>/x86_64-linux-gnu/asm/unistd_64.h (or <include>/asm/unistd_64.h)
//   aarch64  <include>/asm-generic/unistd.h, read the way arch/arm64/include/uapi/asm/unistd.h
//            includes it: 64-bit, with __ARCH_WANT_RENAMEAT, _NEW_STAT, _SET_GET_RLIMIT,
//            _TIME32_SYSCALLS, _SYS_CLONE3 and _MEMFD_SECRET, so the __NR3264_* names resolve to
//            their 64-bit spellings (fcntl, newfstatat, fstat, mmap, lseek, fadvise64, ...).
//   other names  <include>/x86_64-linux-gnu/asm/unistd_{32,x32}.h, every branch of
//            asm-generic/unistd.h, and a short hand-kept list: names that exist on some Linux
//            architecture, so a Docker/OCI profile naming them is not a typo.
// Numbers past the headers' last one come from UNIFIED_SINCE_424 below: since Linux 5.1 every
// architecture (alpha aside) gives a new system call the same number. Extend it by hand when a
// kernel adds one, then regenerate.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
};
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const include = option('--include', '/usr/include');
const out = option('--out', join(root, 'src/seccomp/syscalls.ts'));

function firstExisting(...candidates) {
  const found = candidates.map((c) => join(include, c)).find((p) => existsSync(p));
  if (!found) throw new Error(`none of ${candidates.join(', ')} under ${include} (install linux-libc-dev)`);
  return found;
}

// Newer than the headers of many distributions; identical numbers on x86_64 and aarch64.
const UNIFIED_SINCE_424 = {
  cachestat: 451, fchmodat2: 452, map_shadow_stack: 453, futex_wake: 454, futex_wait: 455,
  futex_requeue: 456, statmount: 457, listmount: 458, lsm_get_self_attr: 459, lsm_set_self_attr: 460,
  lsm_list_modules: 461, mseal: 462, setxattrat: 463, getxattrat: 464, listxattrat: 465,
  removexattrat: 466, open_tree_attr: 467, file_getattr: 468, file_setattr: 469,
};

// Architecture-private names the headers above do not carry (arm, powerpc, s390, riscv, mips, m68k).
const OTHER_ARCH_NAMES = [
  'arm_fadvise64_64', 'arm_sync_file_range', 'breakpoint', 'cacheflush', 'set_tls', 'get_tls', 'usr26', 'usr32',
  'send', 'recv', 'pciconfig_iobase', 'pciconfig_read', 'pciconfig_write',
  'swapcontext', 'spu_run', 'spu_create', 'subpage_prot', 'switch_endian', 'sys_debug_setcontext', 'rtas', 'multiplexer',
  's390_pci_mmio_read', 's390_pci_mmio_write', 's390_runtime_instr', 's390_guarded_storage', 's390_sthyi',
  'riscv_flush_icache', 'riscv_hwprobe', 'cachectl', 'sysmips', 'atomic_barrier', 'atomic_cmpxchg_32',
];

const NOT_SYSCALLS = new Set(['syscalls', 'arch_specific_syscall']);

/** `#define __NR_name <number>` lines of a flat header. */
function flatTable(file) {
  const table = {};
  for (const m of readFileSync(file, 'utf8').matchAll(/^#define\s+__NR_(\w+)\s+(\d+)\s*$/gm)) {
    if (!NOT_SYSCALLS.has(m[1])) table[m[1]] = Number(m[2]);
  }
  return table;
}

/** Every `__NR_name` a header defines, whatever its value or branch. */
function namesIn(file) {
  return [...readFileSync(file, 'utf8').matchAll(/^#define\s+__NR_(\w+)\s/gm)].map((m) => m[1]).filter((n) => !NOT_SYSCALLS.has(n));
}

/**
 * asm-generic/unistd.h through a small preprocessor: #if/#ifdef/#ifndef/#elif/#else/#endif with
 * `defined(X)`, `__BITS_PER_LONG` and the C operators the header uses; `__NR_x` defines whose
 * value is a number or another `__NR*` macro.
 */
function genericTable(file, wanted, bitsPerLong) {
  const defined = new Map(wanted.map((w) => [w, '1']));
  const evaluate = (expr) => {
    let e = expr.replace(/\/\*.*?\*\//g, '').replace(/defined\s*\(\s*(\w+)\s*\)|defined\s+(\w+)/g, (_, a, b) => (defined.has(a ?? b) ? '1' : '0'));
    e = e.replace(/__BITS_PER_LONG/g, String(bitsPerLong)).replace(/\b[A-Za-z_]\w*\b/g, '0');
    if (!/^[\s\d!=<>&|()]*$/.test(e)) throw new Error(`cannot evaluate #if ${expr}`);
    return Boolean(Function(`return (${e});`)());
  };
  // Each frame: is this branch live, has any branch of the group been taken, was the parent live.
  const stack = [];
  const live = () => stack.every((f) => f.live);
  const table = {};
  const resolve = (value) => {
    if (/^\d+$/.test(value)) return Number(value);
    const other = defined.get(value);
    return other !== undefined && /^\d+$/.test(other) ? Number(other) : undefined;
  };
  for (const raw of readFileSync(file, 'utf8').split('\n')) {
    const line = raw.trim();
    let m;
    if ((m = /^#\s*if\s+(.*)$/.exec(line))) {
      const on = live() && evaluate(m[1]);
      stack.push({ live: on, taken: on, parentLive: live() });
    } else if ((m = /^#\s*ifdef\s+(\w+)/.exec(line))) {
      const on = live() && defined.has(m[1]);
      stack.push({ live: on, taken: on, parentLive: live() });
    } else if ((m = /^#\s*ifndef\s+(\w+)/.exec(line))) {
      const on = live() && !defined.has(m[1]);
      stack.push({ live: on, taken: on, parentLive: live() });
    } else if ((m = /^#\s*elif\s+(.*)$/.exec(line))) {
      const f = stack.at(-1);
      f.live = f.parentLive && !f.taken && evaluate(m[1]);
      f.taken ||= f.live;
    } else if (/^#\s*else\b/.test(line)) {
      const f = stack.at(-1);
      f.live = f.parentLive && !f.taken;
      f.taken = true;
    } else if (/^#\s*endif\b/.test(line)) {
      stack.pop();
    } else if (live() && (m = /^#\s*define\s+(\w+)(?:\s+(\S+))?/.exec(line))) {
      defined.set(m[1], m[2] ?? '');
      const name = /^__NR_(\w+)$/.exec(m[1])?.[1];
      if (name && !NOT_SYSCALLS.has(name)) {
        const nr = resolve(m[2] ?? '');
        if (nr === undefined) throw new Error(`cannot resolve __NR_${name} = ${m[2]}`);
        table[name] = nr;
      }
    } else if (live() && (m = /^#\s*undef\s+(\w+)/.exec(line))) {
      defined.delete(m[1]);
    }
  }
  if (stack.length !== 0) throw new Error(`${file}: unbalanced #if`);
  return table;
}

function withUnified(table) {
  const result = { ...table };
  for (const [name, nr] of Object.entries(UNIFIED_SINCE_424)) {
    if (result[name] !== undefined && result[name] !== nr) throw new Error(`${name}: header says ${result[name]}, unified table says ${nr}`);
    result[name] = nr;
  }
  return result;
}

function checkTable(arch, table) {
  const byNumber = new Map();
  for (const [name, nr] of Object.entries(table)) {
    if (byNumber.has(nr)) throw new Error(`${arch}: ${name} and ${byNumber.get(nr)} share number ${nr}`);
    byNumber.set(nr, name);
  }
}

function defineValue(file, name) {
  const m = new RegExp(`^#define\\s+${name}\\s+(0x[0-9a-fA-F]+|\\d+)`, 'm').exec(readFileSync(file, 'utf8'));
  if (!m) throw new Error(`${name} not found in ${file}`);
  return Number(m[1]);
}

const x86Header = firstExisting('x86_64-linux-gnu/asm/unistd_64.h', 'asm/unistd_64.h');
const genericHeader = firstExisting('asm-generic/unistd.h');
const x86_64 = withUnified(flatTable(x86Header));
const aarch64 = withUnified(genericTable(genericHeader, [
  '__ARCH_WANT_RENAMEAT', '__ARCH_WANT_NEW_STAT', '__ARCH_WANT_SET_GET_RLIMIT',
  '__ARCH_WANT_TIME32_SYSCALLS', '__ARCH_WANT_SYS_CLONE3', '__ARCH_WANT_MEMFD_SECRET',
], 64));
checkTable('x86_64', x86_64);
checkTable('aarch64', aarch64);
for (const [name, expected] of Object.entries({ newfstatat: 79, fstat: 80, fcntl: 25, mmap: 222, lseek: 62, clone3: 435, renameat: 38, getrlimit: 163 })) {
  if (aarch64[name] !== expected) throw new Error(`aarch64 ${name}: got ${aarch64[name]}, expected ${expected}`);
}

const others = new Set(OTHER_ARCH_NAMES);
for (const header of ['x86_64-linux-gnu/asm/unistd_32.h', 'x86_64-linux-gnu/asm/unistd_x32.h', 'asm/unistd_32.h', 'asm/unistd_x32.h']) {
  const file = join(include, header);
  if (existsSync(file)) for (const name of namesIn(file)) others.add(name);
}
for (const name of namesIn(genericHeader)) others.add(name);
// The 32-bit spellings asm-generic gives the __NR3264_* numbers.
for (const m of readFileSync(genericHeader, 'utf8').matchAll(/^#define\s+__NR_(\w+)\s+__NR3264_\w+/gm)) others.add(m[1]);
for (const name of [...others]) if (name in x86_64 || name in aarch64) others.delete(name);

const elfEm = firstExisting('linux/elf-em.h');
const audit = firstExisting('linux/audit.h');
const bits64 = defineValue(audit, '__AUDIT_ARCH_64BIT');
const le = defineValue(audit, '__AUDIT_ARCH_LE');
const auditX86 = (defineValue(elfEm, 'EM_X86_64') | bits64 | le) >>> 0;
const auditAarch64 = (defineValue(elfEm, 'EM_AARCH64') | bits64 | le) >>> 0;
const auditI386 = (defineValue(elfEm, 'EM_386') | le) >>> 0;

const hex = (n) => `0x${n.toString(16)}`;
const tableText = (table) => {
  const entries = Object.entries(table).sort((a, b) => a[1] - b[1]).map(([name, nr]) => `${name}: ${nr}`);
  const lines = [];
  let line = '';
  for (const entry of entries) {
    if (line.length + entry.length + 2 > 110) {
      lines.push(line.trimEnd());
      line = '';
    }
    line += `${entry}, `;
  }
  if (line) lines.push(line.trimEnd());
  return lines.map((l) => `  ${l}`).join('\n');
};
const namesText = (names) => {
  const lines = [];
  let line = '';
  for (const name of [...names].sort()) {
    const entry = `'${name}', `;
    if (line.length + entry.length > 110) {
      lines.push(line.trimEnd());
      line = '';
    }
    line += entry;
  }
  if (line) lines.push(line.trimEnd());
  return lines.map((l) => `  ${l}`).join('\n');
};

const text = `// SPDX-License-Identifier: Apache-2.0
// System call numbers of x86_64 and aarch64, and audit architecture values. Generated: do not edit.
//
// Written by \`node scripts/gen-syscalls.mjs\` from the kernel UAPI headers (linux-libc-dev):
// x86_64 from asm/unistd_64.h, aarch64 from asm-generic/unistd.h as arm64 includes it, numbers
// newer than the headers from the script's unified table (identical on both architectures).
// To add a system call, extend that table or install newer headers, and run the script again.

/** @internal A CPU architecture nsbox has system call tables for. */
export type SeccompArch = 'x86_64' | 'aarch64';

/** @internal \`AUDIT_ARCH_X86_64\` (EM_X86_64 | 64-bit | little-endian), as \`seccomp_data.arch\` reports it. */
export const AUDIT_ARCH_X86_64 = ${hex(auditX86)};
/** @internal \`AUDIT_ARCH_AARCH64\` (EM_AARCH64 | 64-bit | little-endian). */
export const AUDIT_ARCH_AARCH64 = ${hex(auditAarch64)};
/** @internal \`AUDIT_ARCH_I386\`: what an \`int 0x80\` system call of an x86_64 process reports. */
export const AUDIT_ARCH_I386 = ${hex(auditI386)};
/** @internal Set in the number of an x32-ABI system call on x86_64 (__X32_SYSCALL_BIT). */
export const X32_SYSCALL_BIT = 0x40000000;

/** @internal x86_64 (asm/unistd_64.h). */
export const X86_64_SYSCALLS: Readonly<Record<string, number>> = {
${tableText(x86_64)}
};

/** @internal aarch64 (asm-generic/unistd.h with arm64's choices). */
export const AARCH64_SYSCALLS: Readonly<Record<string, number>> = {
${tableText(aarch64)}
};

/** @internal Names that exist only on other architectures (i386, x32, 32-bit generic, arm, ppc, s390, ...). */
export const OTHER_ARCH_SYSCALL_NAMES: ReadonlySet<string> = new Set([
${namesText(others)}
]);

/** @internal The table and audit value of each architecture. */
export const ARCHES: Readonly<Record<SeccompArch, { auditArch: number; syscalls: Readonly<Record<string, number>> }>> = {
  x86_64: { auditArch: AUDIT_ARCH_X86_64, syscalls: X86_64_SYSCALLS },
  aarch64: { auditArch: AUDIT_ARCH_AARCH64, syscalls: AARCH64_SYSCALLS },
};
`;
writeFileSync(out, text);
console.log(`wrote ${out}: x86_64 ${Object.keys(x86_64).length}, aarch64 ${Object.keys(aarch64).length}, other names ${others.size}`);
