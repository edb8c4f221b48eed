// SPDX-License-Identifier: Apache-2.0
// Hostile callers: 10,000 generated option objects into run() and spawn(); typed errors or real runs, nothing left behind.
//
// Reproduce a failure with the seed and index it prints:
//   NSBOX_FUZZ_SEED=1234 NSBOX_FUZZ_ONLY=4711 npx ava test/hostile/fuzz-options.test.ts
// NSBOX_FUZZ_COUNT changes the number of inputs (default 10,000).
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { isSandboxError, RunError, run, spawn, type SandboxProcess } from '../../src/index.js';
import { leakSnapshot, settledLeaksSince, type LeakSnapshot } from '../helpers/leaks.js';
import { probeOciLayout, probeRootfs } from '../helpers/probe-image.js';

const COUNT = Number(process.env.NSBOX_FUZZ_COUNT ?? 10_000);
const SEED = Number(process.env.NSBOX_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const ONLY = process.env.NSBOX_FUZZ_ONLY === undefined ? undefined : Number(process.env.NSBOX_FUZZ_ONLY);
/** Inputs in flight at once: most are rejected synchronously, the few real runs overlap. */
const CONCURRENCY = 4;
/** Longer than any run the generator can ask for (the base timeout is 5 s, its commands exit at once). */
const HANG_MS = 20_000;

// ---------------------------------------------------------------------------------------------
// A seeded PRNG (mulberry32): one stream per input, so input N reproduces on its own.

class Rng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
}

// ---------------------------------------------------------------------------------------------
// Generated values carry a printable form, since Proxies, getters and streams don't print.

interface Gen {
  value: unknown;
  repr: string;
}
type Make = (r: Rng) => Gen;

function show(v: unknown, depth = 0): string {
  try {
    return showUnsafe(v, depth);
  } catch {
    return '<unprintable: a getter or trap threw>';
  }
}

function showUnsafe(v: unknown, depth: number): string {
  if (typeof v === 'string') return v.length > 60 ? `${JSON.stringify(v.slice(0, 24))}…(${v.length} chars)` : JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'symbol') return v.toString();
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
  if (typeof v === 'function') return `function ${v.name || '(anonymous)'}`;
  if (v === undefined || v === null || typeof v === 'boolean') return String(v);
  if (depth > 3) return '…';
  if (Array.isArray(v)) {
    const items = v.length > 6 ? [...v.slice(0, 3).map((x) => show(x, depth + 1)), `…(${v.length} items)`] : v.map((x) => show(x, depth + 1));
    return `[${items.join(', ')}]`;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return `<${proto?.constructor?.name ?? 'object'}>`;
  const keys = Reflect.ownKeys(v as object);
  const shown = keys.slice(0, 12).map((k) => `${typeof k === 'symbol' ? `[${k.toString()}]` : JSON.stringify(k)}: ${show((v as Record<PropertyKey, unknown>)[k], depth + 1)}`);
  if (keys.length > 12) shown.push(`…(${keys.length} keys)`);
  return `${proto === null ? 'nullproto' : ''}{${shown.join(', ')}}`;
}

/** Objects the generator made for one input, and so may freeze or redefine (never a shared one such as Array.prototype). */
const owned = new WeakSet<object>();

/** A fresh copy of plain objects and arrays (holes, symbol keys and own `__proto__` keys kept); anything else as is. */
function clone<T>(v: T): T {
  if (typeof v !== 'object' || v === null) return v;
  const proto = Object.getPrototypeOf(v);
  if (!Array.isArray(v) && proto !== Object.prototype && proto !== null) return v;
  const copy = Array.isArray(v) ? new Array(v.length) : Object.create(proto);
  for (const key of Reflect.ownKeys(v)) {
    if (Array.isArray(v) && key === 'length') continue;
    Object.defineProperty(copy, key, { value: clone((v as Record<PropertyKey, unknown>)[key]), enumerable: true, writable: true, configurable: true });
  }
  owned.add(copy);
  return copy;
}

/** A generated value; `value` must be fresh (made for this input) when it is an object. */
const lit = (value: unknown): Gen => {
  if (typeof value === 'object' && value !== null) owned.add(value);
  return { value, repr: show(value) };
};
/** The same value every time, copied afresh for each input. */
const fixed = (value: unknown): Make => () => lit(clone(value));
const oneOf = (...makes: Make[]): Make => (r) => r.pick(makes)(r);

const HOSTILE_PRIMITIVES: unknown[] = [
  undefined, null, true, false, 0, -0, -1, 1, 0.5, -0.5, NaN, Infinity, -Infinity, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2,
  Number.MAX_VALUE, Number.MIN_VALUE, -1e308, 1e21, 10n, -1n, 2n ** 70n, Symbol('fuzz'), Symbol.iterator, Symbol.for('nsbox.failStage'),
];

const HOSTILE_STRINGS: string[] = [
  '', ' ', 'a', '\0', 'a\0b', '/\0', '/tmp\0/x', '..', '../..', '/..', '/../..', '/a/../b', '/./.', '.', '//', '/', '///x///',
  '/proc/self/root', '/proc/self/cwd', '/proc/self/fd/0', '/proc/self/exe', '/proc/1/root', '/proc/self/root/etc', '/dev/null', '/dev/zero',
  '/etc/passwd', '/nonexistent', '/nonexistent/deeper', 'relative/path', './x', '~', '~root', '$HOME', '$(reboot)', '`id`', ';id', '|id', '%s%n%x',
  '-rf', '--help', 'x'.repeat(4097), 'y'.repeat(70_000), `/${'a/'.repeat(300)}`, `/${'b'.repeat(250)}`.repeat(20), `/${'b'.repeat(300)}`, '🦄', 'ü\u0301', '\u202eevil', '\ud800', '\uffff', '\n', '\r\n',
  '\t', 'a\nb', 'x=y', '=', 'a:b', 'a,b', 'a\\b', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '1e400', '64MiB',
  '-1', '0', '1', '1.5GiB', '999999999999999TiB', 'NaN', 'Infinity', '-Infinity', '0x10', '1s', '-1s', '24.9d', '1 year', 'host', 'HOST', 'host ',
  ' host', 'none', 'NONE', 'buffer', 'utf8', 'UTF-8', 'bind', 'tmpfs', 'overlay', '0:0', 'root', 'root:root', 'app', 'nobody', '65534:65534',
  '4294967295', '4294967296', '-1:-1', 'a:b:c', ':', 'root:', ':root', 'SIGKILL',
];

function throwingProxyOf(target: object, r: Rng): Gen {
  const trap = r.pick(['get', 'ownKeys', 'getOwnPropertyDescriptor', 'has', 'getPrototypeOf'] as const);
  return { value: new Proxy(target, { [trap]() { throw new Error(`fuzz ${trap} trap`); } }), repr: `Proxy(${show(target)}, throwing ${trap})` };
}

/** Ways to make an object hostile without changing what a plain read of it gives. */
function wrap(base: Gen, r: Rng): Gen {
  try {
    return wrapUnsafe(base, r);
  } catch {
    return base; // already hostile enough that it cannot be wrapped again
  }
}

function wrapUnsafe(base: Gen, r: Rng): Gen {
  const v = base.value;
  if (typeof v !== 'object' || v === null) return base;
  // Never freeze or redefine what is shared (Object.prototype is among the hostile values).
  if (!owned.has(v)) return r.chance(0.5) ? { value: new Proxy(v, {}), repr: `Proxy(${base.repr})` } : throwingProxyOf(v, r);
  switch (r.int(9)) {
    case 0:
      return { value: Object.freeze(v), repr: `freeze(${base.repr})` };
    case 1:
      return { value: new Proxy(v, {}), repr: `Proxy(${base.repr})` };
    case 2:
      return throwingProxyOf(v, r);
    case 3: {
      const { proxy, revoke } = Proxy.revocable(v, {});
      revoke();
      return { value: proxy, repr: `revoked Proxy(${base.repr})` };
    }
    case 4: {
      const keys = Object.keys(v);
      const key = keys.length > 0 ? r.pick(keys) : 'image';
      Object.defineProperty(v, key, { get() { throw new Error(`fuzz getter ${key}`); }, enumerable: true, configurable: true });
      return { value: v, repr: `${base.repr} with a throwing getter ${JSON.stringify(key)}` };
    }
    case 5: {
      // Valid on the first read, something else afterwards.
      const keys = Object.keys(v);
      if (keys.length === 0) return base;
      const key = r.pick(keys);
      const first = (v as Record<string, unknown>)[key];
      const later = hostileValue(r, 0);
      let reads = 0;
      Object.defineProperty(v, key, { get: () => (reads++ === 0 ? first : later.value), enumerable: true, configurable: true });
      return { value: v, repr: `${base.repr} with ${JSON.stringify(key)} turning into ${later.repr} after the first read` };
    }
    case 6: {
      if (Array.isArray(v)) return base;
      const bare = Object.assign(Object.create(null), v);
      owned.add(bare);
      return { value: bare, repr: `nullproto ${base.repr}` };
    }
    case 7: {
      // Own keys named like the prototype, as JSON.parse makes them.
      const key = r.pick(['__proto__', 'constructor', 'prototype']);
      let json: string;
      try {
        json = JSON.stringify(v);
      } catch {
        return base;
      }
      if (json === undefined || !json.startsWith('{')) return base;
      const extra = JSON.stringify({ polluted: 'yes', memory: 1, image: 'host', toString: 'x' });
      const parsed = JSON.parse(json === '{}' ? `{"${key}":${extra}}` : `{"${key}":${extra},${json.slice(1)}`);
      owned.add(parsed);
      return { value: parsed, repr: `JSON.parse(${show(json === '{}' ? `{"${key}":${extra}}` : `{"${key}":${extra},${json.slice(1)}`)})` };
    }
    default:
      return { value: Object.seal(v), repr: `seal(${base.repr})` };
  }
}

function hostileObject(r: Rng, depth: number): Gen {
  switch (r.int(16)) {
    case 0:
      return fixed({})(r);
    case 1:
      return fixed([])(r);
    case 2: {
      const n = r.pick([1, 2, 3, 1000]);
      const items = Array.from({ length: n }, () => hostileValue(r, depth + 1));
      return { value: items.map((i) => i.value), repr: n > 6 ? `[${n} hostile items: ${items[0]!.repr}, …]` : `[${items.map((i) => i.repr).join(', ')}]` };
    }
    case 3:
      return { value: new Array(3), repr: 'new Array(3) (holes)' };
    case 4:
      return r.pick<Gen>([
        { value: new Date(NaN), repr: 'new Date(NaN)' },
        { value: /x/g, repr: '/x/g' },
        { value: new Map([['image', 'host']]), repr: 'new Map([["image","host"]])' },
        { value: new Set(['true']), repr: 'new Set(["true"])' },
        { value: Buffer.from('host'), repr: 'Buffer.from("host")' },
        { value: new Uint8Array(3), repr: 'new Uint8Array(3)' },
        { value: new ArrayBuffer(8), repr: 'new ArrayBuffer(8)' },
        { value: new DataView(new ArrayBuffer(8)), repr: 'new DataView(…)' },
        { value: new WeakMap(), repr: 'new WeakMap()' },
        { value: Promise.resolve('host'), repr: 'Promise.resolve("host")' },
        { value: new Error('fuzz'), repr: 'new Error("fuzz")' },
        { value: new String('host'), repr: 'new String("host")' },
        { value: Object(1), repr: 'Object(1)' },
      ]);
    case 5:
      return r.pick<Gen>([
        { value: () => 'host', repr: '() => "host"' },
        { value: class Host {}, repr: 'class Host {}' },
        { value: function* gen() {}, repr: 'function* () {}' },
        { value: async () => {}, repr: 'async () => {}' },
      ]);
    case 6:
      return { value: Object.prototype, repr: 'Object.prototype' };
    case 7:
      return { value: Array.prototype, repr: 'Array.prototype' };
    case 8:
      return { value: Object.create(null), repr: 'Object.create(null)' };
    case 9:
      return { value: Object.create({ image: 'host', command: ['true'] }), repr: 'Object.create({ image: "host", command: ["true"] }) (inherited keys)' };
    case 10:
      return r.pick<Gen>([
        { value: new AbortController().signal, repr: 'a fresh AbortSignal' },
        { value: AbortSignal.abort(), repr: 'AbortSignal.abort()' },
        { value: Object.create(AbortSignal.prototype), repr: 'Object.create(AbortSignal.prototype)' },
        { value: new Proxy(new AbortController().signal, {}), repr: 'Proxy(AbortSignal)' },
        { value: new EventTarget(), repr: 'new EventTarget()' },
        { value: { aborted: false, addEventListener() {} }, repr: '{ aborted: false, addEventListener() {} }' },
      ]);
    case 11:
      return r.pick<Gen>([
        { value: Readable.from(['fuzz']), repr: 'Readable.from(["fuzz"])' },
        { value: Object.create(Readable.prototype), repr: 'Object.create(Readable.prototype)' },
        { value: { pipe: 1, read: 2 }, repr: '{ pipe: 1, read: 2 }' },
        { value: { pipe() { throw new Error('fuzz pipe'); }, read() {} }, repr: '{ pipe() { throw }, read() {} }' },
        { value: new Readable({ read() { this.destroy(new Error('fuzz stream error')); } }), repr: 'a Readable that fails' },
      ]);
    case 12: {
      const keys = r.pick([['__proto__'], ['constructor'], ['prototype'], ['__proto__', 'constructor']]);
      const body = keys.map((k) => `"${k}":{"polluted":"yes","prototype":{"polluted":"yes"}}`).join(',');
      return { value: JSON.parse(`{${body}}`), repr: `JSON.parse('{${body}}')` };
    }
    case 13: {
      const o: Record<PropertyKey, unknown> = {};
      const n = r.int(4) + 1;
      for (let i = 0; i < n; i++) {
        const key = r.chance(0.5) ? r.pick(KNOWN_KEYS) : r.pick(UNKNOWN_KEYS);
        // As own keys, even `__proto__`.
        Object.defineProperty(o, key, { value: hostileValue(r, depth + 1).value, enumerable: true, writable: true, configurable: true });
      }
      return lit(o);
    }
    case 14: {
      const o = { [Symbol('fuzz')]: 1, [Symbol.toPrimitive]: () => { throw new Error('fuzz toPrimitive'); }, toString: () => { throw new Error('fuzz toString'); } };
      return { value: o, repr: '{ [Symbol.toPrimitive]() { throw }, toString() { throw } }' };
    }
    default:
      return wrap(hostileObject(r, depth + 1), r);
  }
}

function hostileValue(r: Rng, depth = 0): Gen {
  const k = r.int(10);
  if (k < 3) return lit(r.pick(HOSTILE_PRIMITIVES));
  if (k < 7 || depth > 2) return lit(r.pick(HOSTILE_STRINGS));
  return hostileObject(r, depth);
}

const KNOWN_KEYS = ['image', 'command', 'env', 'cwd', 'user', 'hostname', 'stdin', 'limits', 'mounts', 'network', 'signal', 'encoding', 'buffer', 'reject', 'init', 'readonlyRoot', 'upperDir', 'cgroup', 'userns', 'seccomp', 'pull'] as const;
const UNKNOWN_KEYS: Array<string | symbol> = ['imagee', 'Image', 'cmd', 'args', 'timeout', 'memory', '', '0', '__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', 'then', Symbol('extra'), Symbol.for('nsbox.failStage')];

// ---------------------------------------------------------------------------------------------
// Per-option pools: values that are (or may well be) valid, and hostile ones aimed at that option.

interface Paths {
  rootfs: string;
  oci: string;
  empty: string;
  upper: string;
  data: string;
  file: string;
  fifo: string;
}

type Pools = Record<(typeof KNOWN_KEYS)[number], { valid: Make[]; invalid: Make[] }>;

const str = (s: string) => fixed(s);
const anyHostile: Make = (r) => hostileValue(r);

function pools(p: Paths): Pools {
  const layerStack = (layers: unknown, extra: Record<string, unknown> = {}): Make => () => lit({ layers, ...extra });
  const badConfig: unknown[] = [
    null, 5, 'cmd', [], { env: 5 }, { env: ['A'] }, { env: [5] }, { env: 'A=1' }, { cmd: 'true' }, { cmd: [5] }, { entrypoint: 'sh' },
    { entrypoint: [null] }, { workingDir: 5 }, { workingDir: 'relative' }, { workingDir: '/a/../..' }, { user: 5 }, { user: 'nosuch' },
    { user: { name: 'root' } }, { exposedPorts: 'x' }, { labels: null }, { env: new Array(3) }, { cmd: [] , entrypoint: [] },
  ];
  return {
    image: {
      valid: [str('host'), str(p.rootfs), str(`${p.rootfs}/`), layerStack([p.rootfs]), layerStack([p.rootfs, p.empty], { name: 'fuzz' }),
        layerStack([p.rootfs], { config: { env: ['A=1'], cmd: ['true'], workingDir: '/tmp', user: 'app' } }), str(p.oci)],
      invalid: [anyHostile, str(''), str('.'), str('rootfs'), str(p.empty), str(p.file), str(`${p.rootfs}:x`), str(`${p.rootfs}/../rootfs`), str(`${p.rootfs}\0`),
        str('/proc/self/root'), str('/proc/self/cwd'), str('/proc/1/root'), str('/sys/fs/cgroup'), str('/dev'), str('/nonexistent'), str('host\0'),
        layerStack([]), layerStack('x'), layerStack([p.rootfs, 5]), layerStack(['relative']), layerStack([`${p.rootfs}/..`]), layerStack([p.file]),
        layerStack([`${p.rootfs},x`]), layerStack([`/${'c'.repeat(5000)}`]), layerStack(Array(600).fill(p.rootfs)), layerStack([p.rootfs], { extra: 1 }),
        layerStack([p.rootfs], { name: 5 }), (r) => { const c = r.pick(badConfig); return lit({ layers: [p.rootfs], config: c }); },
        (r) => lit({ layers: [p.rootfs], config: JSON.parse('{"__proto__":{"cmd":["sh"]},"constructor":{"prototype":{"polluted":1}}}') }),
        (r) => wrap(lit({ layers: [p.rootfs] }), r)],
    },
    command: {
      valid: [fixed(['true']), fixed(['/bin/true']), fixed(['sh', '-c', 'exit 0']), fixed(['probe', 'exit', '3']), fixed(['no-such-command']),
        fixed(['true', '🦄', '', '\n', '$(id)'])],
      invalid: [anyHostile, fixed([]), fixed(['']), fixed(['\0']), fixed(['true\0']), fixed(['true', 'a\0b']), fixed('true'), fixed([5]), fixed([null]),
        fixed([Symbol('c')]), fixed([['true']]), fixed({ 0: 'true', length: 1 }), fixed(new Array(2)), fixed(['x'.repeat(200_000)]),
        fixed(Array(5000).fill('x')), fixed(['/proc/self/exe']), fixed(['..']), fixed(['/']), fixed(['/dev/null']), fixed([`/${'d'.repeat(5000)}`]),
        (r) => wrap(lit(['true']), r), (r) => lit([r.pick(HOSTILE_STRINGS)]), (r) => lit(['true', r.pick(HOSTILE_STRINGS), r.pick(HOSTILE_STRINGS)])],
    },
    env: {
      valid: [fixed({}), fixed({ A: '1' }), fixed({ '🦄': 'ü' }), fixed({ PATH: '/usr/bin:/bin' }), fixed({ HOME: '/', HOSTNAME: '' }),
        () => lit(JSON.parse('{"__proto__":"x","constructor":"y","prototype":"z"}'))],
      invalid: [anyHostile, fixed({ A: 5 }), fixed({ '': 'x' }), fixed({ 'A=B': 'x' }), fixed({ 'A\0': 'x' }), fixed({ A: '\0' }), fixed([]), fixed(['A=1']),
        fixed('A=1'), fixed({ A: undefined }), fixed({ A: null }), fixed({ A: ['x'] }), fixed({ A: 'x'.repeat(200_000) }),
        () => lit(Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`K${i}`, 'v'.repeat(100)]))),
        () => lit(JSON.parse('{"__proto__":{"polluted":"yes"}}')), (r) => wrap(lit({ A: '1', B: '2' }), r), (r) => lit({ [r.pick(HOSTILE_STRINGS)]: r.pick(HOSTILE_STRINGS) })],
    },
    cwd: {
      valid: [str('/'), str('/tmp'), str('/a/b/c'), str('/tmp/'), str('//x//y'), str('/🦄')],
      invalid: [anyHostile, str('/dev/null'), str('/etc/passwd'), str('/proc'), str('/proc/self'), str(`/${'e'.repeat(300)}`), str(`/${'f/'.repeat(400)}`), str(`/${'g'.repeat(250)}`.repeat(20)),
        str(''), str('rel'), str('/..'), str('/a/../b'), str('/\0'), (r) => str(r.pick(HOSTILE_STRINGS))(r)],
    },
    user: {
      valid: [fixed(0), str('0'), str('root'), str('0:0'), fixed(1000), str('1000:1000'), str('nobody'), str('app'), str('app:root'), fixed(4294967294)],
      invalid: [anyHostile, fixed(-1), fixed(1.5), fixed(NaN), fixed(2 ** 32), fixed(4294967295), str(''), str('no-such'), str('root:nosuch'),
        str('a:b:c'), str('../x'), str('root\0'), str('4294967295'), str('99999999999999999999'), str('1000:4294967295')],
    },
    hostname: {
      valid: [str('box'), str('a'), str('a'.repeat(63)), str('x-1.y')],
      invalid: [anyHostile, str(''), str('-a'), str('a'.repeat(64)), str('a_b'), str('ü'), str('a b'), str('a\0')],
    },
    stdin: {
      valid: [str('hello\n'), str(''), () => lit(Buffer.from('buffer\n')), () => lit(new Uint8Array([104, 105])), () => ({ value: Readable.from(['a', 'b']), repr: 'Readable.from(["a","b"])' })],
      invalid: [anyHostile, () => ({ value: { pipe: 1, read: 2 }, repr: '{ pipe: 1, read: 2 }' }), () => ({ value: Object.create(Readable.prototype), repr: 'Object.create(Readable.prototype)' }),
        () => ({ value: new Readable({ read() { this.destroy(new Error('fuzz stream error')); } }), repr: 'a Readable that fails' }),
        () => ({ value: { pipe() { throw new Error('fuzz pipe'); }, read() {} }, repr: '{ pipe() { throw }, read() {} }' }), fixed(5), fixed([]), fixed(new ArrayBuffer(4))],
    },
    limits: {
      valid: [
        fixed({ timeout: 5000 }), fixed({ timeout: '5s', memory: '64MiB', pids: 32, cpus: 0.5, output: '1KiB', disk: '8MiB' }),
        fixed({ timeout: 5000, memory: null, pids: null, cpus: null }), fixed({ timeout: 5000, memory: 4 * 2 ** 20 }), fixed({ timeout: 5000, output: 0 }),
        fixed({ timeout: 5000, pids: 1 }), fixed({ timeout: 5000, cpus: 1e-9 }), fixed({ timeout: 5000, cpus: 1024 }), fixed({ timeout: 5000, disk: 1 }), fixed({ timeout: 1 }),
      ],
      invalid: [anyHostile,
        (r) => lit({ timeout: 5000, [r.pick(['memory', 'pids', 'cpus', 'timeout', 'output', 'disk'])]: hostileValue(r).value }),
        (r) => lit({ timeout: 5000, memory: r.pick([-1, NaN, Infinity, 4 * 2 ** 20 - 1, 2 ** 53, 1.5, '1e3', 'abc', '0x10', '99999999TiB', '', ' ', '-1MiB', '4MiB\0']) }),
        (r) => lit({ timeout: 5000, pids: r.pick([0, -1, 1.5, 4194305, NaN, Infinity, '32']) }),
        (r) => lit({ timeout: 5000, cpus: r.pick([0, -1, 1025, NaN, Infinity, -Infinity, '1']) }),
        (r) => lit({ timeout: r.pick([-1, NaN, -Infinity, 2 ** 31, 2 ** 53, '', 'soon', '-1s', '1e400', '25d', '1 year']) }),
        (r) => lit({ timeout: 5000, output: r.pick([-1, NaN, Infinity, 1.5, 'lots', '1e9']) }),
        (r) => lit({ timeout: 5000, disk: r.pick([-1, NaN, Infinity, 0.5, 'big', '1 TiB ']) }),
        fixed({ timeout: 5000, swap: 1 }), fixed([5000]), (r) => wrap(lit({ timeout: 5000, memory: '64MiB' }), r)],
    },
    mounts: {
      valid: [fixed([]), fixed([{ type: 'tmpfs', target: '/scratch' }]), fixed([{ type: 'bind', source: p.data, target: '/data', readonly: true }]),
        fixed([{ type: 'tmpfs', target: '/x', size: '1MiB', mode: 0o700 }, { type: 'bind', source: p.file, target: '/etc/fuzz' }]),
        fixed([{ type: 'tmpfs', target: '/etc/passwd' }]), fixed([{ type: 'bind', source: p.data, target: '/proc/sys' }]), fixed([{ type: 'tmpfs', target: '/dev/null' }])],
      invalid: [anyHostile, fixed({ type: 'tmpfs', target: '/x' }), fixed([{ type: 'tmpfs' }]), fixed([{ type: 'bind', target: '/x' }]), fixed([{ type: 'nfs', target: '/x' }]),
        fixed([{ type: 'tmpfs', target: '/' }]), fixed([{ type: 'tmpfs', target: '//' }]), fixed([{ type: 'tmpfs', target: '/x' }, { type: 'tmpfs', target: '/x/' }]),
        fixed([{ type: 'tmpfs', target: '/..' }]), fixed([{ type: 'tmpfs', target: '/a/../../etc' }]), fixed([{ type: 'tmpfs', target: 'rel' }]),
        fixed([{ type: 'bind', source: 'package.json', target: '/x' }]), fixed([{ type: 'bind', source: '/nonexistent', target: '/x' }]),
        fixed([{ type: 'bind', source: '/proc/self/root', target: '/host', readonly: true }]), fixed([{ type: 'bind', source: '', target: '/x' }]),
        fixed([{ type: 'bind', source: `${p.data}\0`, target: '/x' }]), fixed([{ type: 'bind', source: p.data, target: '/x', readonly: 'yes' }]),
        (r) => lit([{ type: 'tmpfs', target: '/x', size: r.pick([-1, NaN, 0, 1.5, 'huge', '1e3', Infinity]) }]),
        (r) => lit([{ type: 'tmpfs', target: '/x', mode: r.pick([-1, 0o10000, 1.5, NaN, '0755']) }]),
        (r) => lit([{ type: 'tmpfs', target: '/x', extra: hostileValue(r).value }]),
        () => lit(Array.from({ length: 300 }, (_, i) => ({ type: 'tmpfs', target: `/m${i}` }))),
        (r) => lit([{ type: 'tmpfs', target: r.pick(HOSTILE_STRINGS) }]), (r) => wrap(lit([{ type: 'tmpfs', target: '/w' }]), r),
        (r) => lit([wrap(lit({ type: 'tmpfs', target: '/w' }), r).value])],
    },
    network: { valid: [str('none'), str('host')], invalid: [anyHostile, str('NONE'), str('bridge'), str('')] },
    signal: {
      valid: [() => ({ value: new AbortController().signal, repr: 'a fresh AbortSignal' }), () => ({ value: AbortSignal.abort(), repr: 'AbortSignal.abort()' }),
        () => ({ value: AbortSignal.timeout(1), repr: 'AbortSignal.timeout(1)' })],
      invalid: [anyHostile, () => ({ value: Object.create(AbortSignal.prototype), repr: 'Object.create(AbortSignal.prototype)' }),
        () => ({ value: new Proxy(new AbortController().signal, {}), repr: 'Proxy(AbortSignal)' }), () => ({ value: new EventTarget(), repr: 'new EventTarget()' }),
        fixed({ aborted: true })],
    },
    encoding: { valid: [str('utf8'), str('buffer')], invalid: [anyHostile, str('utf-8'), str('base64'), str('hex')] },
    buffer: { valid: [fixed(true), fixed(false)], invalid: [anyHostile, fixed(0), fixed('true')] },
    reject: { valid: [fixed(true), fixed(false)], invalid: [anyHostile, fixed(1), fixed('false')] },
    init: { valid: [fixed(true), fixed(false)], invalid: [anyHostile, fixed(null), fixed('no')] },
    readonlyRoot: { valid: [fixed(true), fixed(false)], invalid: [anyHostile, fixed(1)] },
    // Only the harness's own directory: upperDir keeps the writable layer on the host by design.
    upperDir: { valid: [str(p.upper)], invalid: [str(''), str('rel'), str('/nonexistent'), str(`${p.upper}/../x`), str(`${p.upper}\0`), str(p.file), fixed(5), fixed(null), fixed([p.upper])] },
    cgroup: { valid: [fixed(true), fixed(false)], invalid: [anyHostile, fixed('false')] },
    userns: { valid: [fixed(true), fixed(false)], invalid: [anyHostile, fixed(0)] },
    // Never a pull: a fuzzed image string is often a valid reference ('overlay', 'root:x'), and a
    // test must not fetch from a registry. 'never' makes a missing one ERR_IMAGE_NOT_FOUND.
    pull: { valid: [str('never')], invalid: [anyHostile, str('NEVER'), str(''), str('sometimes')] },
    seccomp: {
      valid: [str('default'), fixed(false), fixed({ defaultAction: 'SCMP_ACT_ALLOW' }),
        fixed({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }] })],
      invalid: [anyHostile, fixed(true), str('/dev/zero'), str(p.fifo), str(p.file), str('/etc/passwd'), str('/proc/self/fd/0'), str('/nonexistent.json'), fixed({}),
        fixed({ defaultAction: 5 }), fixed({ defaultAction: 'SCMP_ACT_KILL_EVERYTHING' }), fixed({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: 'x' }),
        fixed({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: [5], action: 'SCMP_ACT_ERRNO' }] }),
        fixed({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['no_such_call'], action: 'SCMP_ACT_ERRNO' }] }),
        fixed({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 99, value: -1, op: 'SCMP_CMP_EQ' }] }] }),
        fixed({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 2 ** 40 }), fixed({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_PDP11'] }),
        () => lit(JSON.parse('{"defaultAction":"SCMP_ACT_ALLOW","__proto__":{"syscalls":[{"names":["read"],"action":"SCMP_ACT_KILL"}]}}')),
        () => lit({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: Array.from({ length: 3000 }, (_, i) => ({ names: ['getpid'], action: 'SCMP_ACT_ERRNO', errnoRet: i })) }),
        (r) => wrap(lit({ defaultAction: 'SCMP_ACT_ALLOW' }), r)],
    },
  };
}

interface Input {
  api: 'run' | 'spawn';
  options: unknown;
  repr: string;
  /** For spawn: a signal to send with kill() right away, if any. */
  kill?: Gen;
}

const KILL_SIGNALS: unknown[] = ['SIGTERM', 'SIGKILL', 9, 0, -1, NaN, 1e10, 65, 'SIGFOO', '', 'toString', '__proto__', null, {}, Symbol('sig')];

function generate(index: number, p: Paths, pool: Pools): Input {
  const r = new Rng(SEED ^ Math.imul(index + 1, 0x9e3779b1));
  const api = r.chance(0.5) ? 'run' : 'spawn';
  const kill = api === 'spawn' && r.chance(0.2) ? lit(clone(r.pick(KILL_SIGNALS))) : undefined;
  const kind = r.next();
  if (kind < 0.3) {
    // Junk: anything at all where the options object belongs.
    const g = r.chance(0.5) ? hostileValue(r) : hostileObject(r, 0);
    // No registry pulls, also from junk that happens to name a valid reference.
    const v = g.value;
    if (typeof v === 'object' && v !== null && owned.has(v) && !Array.isArray(v) && Object.isExtensible(v) && !Object.hasOwn(v, 'pull')) {
      Object.defineProperty(v, 'pull', { value: 'never', enumerable: true, writable: true, configurable: true });
      return { api, options: v, repr: `${g.repr} + pull: "never"`, kill };
    }
    return { api, options: g.value, repr: g.repr, kill };
  }
  const entries: Array<[string | symbol, Gen]> = [['image', lit(p.rootfs)], ['command', lit(['true'])], ['limits', lit({ timeout: 5000 })], ['pull', lit('never')]];
  const set = (key: string | symbol, g: Gen) => {
    const i = entries.findIndex(([k]) => k === key);
    if (i >= 0) entries[i] = [key, g];
    else entries.push([key, g]);
  };
  if (kind < 0.97) {
    // One to three options hostile, maybe a few valid ones around them.
    for (let n = r.int(3) + 1; n > 0; n--) {
      const key = r.pick(KNOWN_KEYS);
      set(key, r.pick(pool[key].invalid)(r));
    }
    for (let n = r.int(3); n > 0; n--) {
      const key = r.pick(KNOWN_KEYS);
      if (!entries.some(([k]) => k === key)) set(key, r.pick(pool[key].valid)(r));
    }
    if (r.chance(0.05)) set(r.pick(UNKNOWN_KEYS), hostileValue(r));
    if (r.chance(0.05)) entries.splice(r.int(entries.length - 1), 1); // never the last, `pull`
  } else {
    // Valid: these run for real.
    for (let n = r.int(4); n > 0; n--) {
      const key = r.pick(KNOWN_KEYS);
      set(key, r.pick(pool[key].valid)(r));
    }
  }
  const options: Record<PropertyKey, unknown> = {};
  owned.add(options);
  entries.sort(([a], [b]) => Number(a === 'pull') - Number(b === 'pull'));
  for (const [key, g] of entries) Object.defineProperty(options, key, { value: g.value, enumerable: true, writable: true, configurable: true });
  const repr = `{ ${entries.map(([k, g]) => `${typeof k === 'symbol' ? `[${k.toString()}]` : k}: ${g.repr}`).join(', ')} }`;
  if (r.chance(0.08)) {
    const wrapped = wrap({ value: options, repr }, r);
    return { api, options: wrapped.value, repr: wrapped.repr, kill };
  }
  return { api, options, repr, kill };
}

// ---------------------------------------------------------------------------------------------
// Object.prototype and friends must look the same after every call.

const GUARDED: Array<[string, object]> = [
  ['Object.prototype', Object.prototype], ['Array.prototype', Array.prototype], ['Function.prototype', Function.prototype],
  ['String.prototype', String.prototype], ['Number.prototype', Number.prototype], ['Promise.prototype', Promise.prototype],
  ['Error.prototype', Error.prototype], ['RegExp.prototype', RegExp.prototype], ['Symbol.prototype', Symbol.prototype],
];

type ProtoState = Array<Map<PropertyKey, PropertyDescriptor>>;

function protoState(): ProtoState {
  return GUARDED.map(([, proto]) => new Map(Reflect.ownKeys(proto).map((k) => [k, Object.getOwnPropertyDescriptor(proto, k)!])));
}

/** Differences from `base`, repaired on the spot so the next check starts clean. */
function pollution(base: ProtoState): string[] {
  const found: string[] = [];
  GUARDED.forEach(([name, proto], i) => {
    const before = base[i]!;
    for (const key of Reflect.ownKeys(proto)) {
      const now = Object.getOwnPropertyDescriptor(proto, key)!;
      const was = before.get(key);
      if (!was) {
        found.push(`${name}[${String(key)}] added`);
        Reflect.deleteProperty(proto, key);
      } else if (was.value !== now.value || was.get !== now.get || was.set !== now.set || was.writable !== now.writable || was.configurable !== now.configurable) {
        found.push(`${name}[${String(key)}] changed`);
        try {
          Object.defineProperty(proto, key, was);
        } catch {
          // frozen meanwhile: reported below
        }
      }
    }
    for (const key of before.keys()) if (!Reflect.ownKeys(proto).includes(key as string | symbol)) found.push(`${name}[${String(key)}] deleted`);
  });
  if (Object.getPrototypeOf(Object.prototype) !== null) found.push('Object.prototype got a prototype');
  for (const [name, proto] of GUARDED) if (!Object.isExtensible(proto)) found.push(`${name} was frozen, sealed or made non-extensible`);
  return found;
}

// ---------------------------------------------------------------------------------------------

let paths: Paths;
let baseline: LeakSnapshot;
let work: string;

test.before(async () => {
  work = mkdtempSync(join(tmpdir(), 'nsbox-fuzz-work-'));
  const rootfs = await probeRootfs();
  const oci = (await probeOciLayout()).dir;
  paths = { rootfs, oci, empty: join(work, 'empty'), upper: join(work, 'upper'), data: join(work, 'data'), file: join(work, 'file'), fifo: join(work, 'fifo') };
  for (const dir of [paths.empty, paths.upper, paths.data]) mkdirSync(dir);
  writeFileSync(paths.file, 'fuzz\n');
  execFileSync('mkfifo', [paths.fifo]);
  // Warm up what stays for the life of the process (the addon, its exit thread, the host image, the OCI layer cache).
  await run({ image: rootfs, command: ['true'] });
  await run({ image: 'host', command: ['true'] });
  await run({ image: oci, command: ['true'] });
  baseline = leakSnapshot();
});

test.after.always(() => {
  // rm(1), not rmSync: a fuzzed cwd leaves hundreds of nested directories in the upper layer.
  if (work) execFileSync('rm', ['-rf', work]);
});

interface Failure {
  index: number;
  api: string;
  input: string;
  what: string;
}

test.serial(`${COUNT} generated option objects give typed errors or real runs, and leave nothing behind`, async (t) => {
  t.timeout(600_000);
  const pool = pools(paths);
  const failures: Failure[] = [];
  const codes = new Map<string, number>();
  const tally = (key: string) => codes.set(key, (codes.get(key) ?? 0) + 1);
  let realRuns = 0;
  const slowest: Array<{ ms: number; index: number; repr: string }> = [];
  const base = protoState();
  const inFlight = new Map<number, Input>();
  const stray: string[] = [];
  const onStray = (kind: string) => (error: unknown) => stray.push(`${kind}: ${error instanceof Error ? error.stack : String(error)} (in flight: ${[...inFlight.keys()].join(', ')})`);
  const onRejection = onStray('unhandled rejection');
  const onException = onStray('uncaught exception');
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);

  const describe = (e: unknown) => (e instanceof Error ? `${e.constructor.name}: ${e.message.slice(0, 300)}\n${e.stack?.split('\n').slice(1, 6).join('\n')}` : `non-error ${show(e)}`);
  const checkError = (e: unknown, where: string): string | undefined => {
    if (!isSandboxError(e)) return `${where} a non-SandboxError: ${describe(e)}`;
    if (typeof e.code !== 'string' || !e.code.startsWith('ERR_') || typeof e.message !== 'string' || e.message === '') return `${where} a SandboxError without a code or message: ${describe(e)}`;
    return undefined;
  };

  async function one(index: number): Promise<void> {
    const began = performance.now();
    const input = generate(index, paths, pool);
    inFlight.set(index, input);
    const byGenerator = pollution(base);
    if (byGenerator.length > 0) throw new Error(`the generator itself changed a prototype at input ${index}: ${byGenerator.join('; ')}`);
    const fail = (what: string) => failures.push({ index, api: input.api, input: input.repr, what });
    let settled: Promise<unknown>;
    let child: SandboxProcess | undefined;
    let spawned = false;
    try {
      if (input.api === 'run') {
        settled = run(input.options as never);
      } else {
        child = spawn(input.options as never);
        child.on('spawn', () => (spawned = true));
        child.stdin?.on('error', () => {});
        child.stdin?.end();
        child.stdout.resume();
        child.stderr.resume();
        if (input.kill) {
          try {
            child.kill(input.kill.value as never);
          } catch (error) {
            const bad = checkError(error, `kill(${input.kill.repr}) threw`);
            if (bad) fail(bad);
          }
        }
        settled = child.result;
      }
    } catch (error) {
      settled = Promise.reject(error);
      // spawn() throws synchronously; run() never does.
      if (input.api === 'run') fail(`run() threw synchronously: ${describe(error)}`);
    }
    const polluted = pollution(base);
    if (polluted.length > 0) fail(`prototype pollution by the call: ${polluted.join('; ')}`);

    let timer: NodeJS.Timeout | undefined;
    const hang = new Promise<'hang'>((resolve) => (timer = setTimeout(() => resolve('hang'), HANG_MS)));
    const outcome = await Promise.race([settled.then((value) => ({ value }), (error: unknown) => ({ error })), hang]);
    clearTimeout(timer);
    if (outcome === 'hang') {
      fail(`no result after ${HANG_MS} ms`);
      child?.kill('SIGKILL');
      await settled.catch(() => {});
    } else if ('error' in outcome) {
      const bad = checkError(outcome.error, 'rejected with');
      if (bad) fail(bad);
      else {
        const code = (outcome.error as { code: string }).code;
        tally(code);
        if (spawned || outcome.error instanceof RunError || code === 'ERR_EXEC' || code === 'ERR_SETUP') realRuns++;
      }
    } else {
      const value = outcome.value as Record<string, unknown> | null;
      if (typeof value !== 'object' || value === null || !('exitCode' in value) || !('failed' in value)) fail(`resolved with something that is not a RunResult: ${show(value)}`);
      else {
        tally(value.failed ? `resolved (failed: ${String((value as { code?: string }).code ?? 'yes')})` : 'resolved');
        realRuns++;
      }
    }
    const after = pollution(base);
    if (after.length > 0) fail(`prototype pollution while running (one of inputs ${[...inFlight.keys()].join(', ')}): ${after.join('; ')}`);
    inFlight.delete(index);
    const ms = performance.now() - began;
    if (slowest.length < 8 || ms > slowest.at(-1)!.ms) {
      slowest.push({ ms, index, repr: `${input.api}(${input.repr.slice(0, 160)})` });
      slowest.sort((a, b) => b.ms - a.ms);
      slowest.length = Math.min(slowest.length, 8);
    }
  }

  const indices = ONLY === undefined ? Array.from({ length: COUNT }, (_, i) => i) : [ONLY];
  const start = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < indices.length) await one(indices[next++]!);
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  process.off('unhandledRejection', onRejection);
  process.off('uncaughtException', onException);

  const leaks = await settledLeaksSince(baseline);
  t.log(`seed ${SEED}: ${indices.length} inputs in ${seconds.toFixed(1)} s (${Math.round(indices.length / seconds)}/s), ${realRuns} real sandbox starts`);
  t.log(`slowest: ${slowest.map((s) => `#${s.index} ${Math.round(s.ms)} ms ${s.repr}`).join('\n  ')}`);
  t.log(`outcomes: ${[...codes].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ')}`);
  const report = failures.slice(0, 20).map((f) => `#${f.index} ${f.api}(${f.input.slice(0, 600)})\n  → ${f.what}`).join('\n\n');
  t.deepEqual(failures.length, 0, `${failures.length} failing inputs; reproduce with NSBOX_FUZZ_SEED=${SEED} NSBOX_FUZZ_ONLY=<index>\n\n${report}`);
  t.deepEqual(stray, [], `seed ${SEED}`);
  t.deepEqual(leaks, [], `left behind after the fuzz (seed ${SEED})`);
  t.true(realRuns < indices.length / 10 + 50, `real starts stay bounded (${realRuns})`);
});
