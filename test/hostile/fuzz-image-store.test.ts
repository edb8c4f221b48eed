// SPDX-License-Identifier: Apache-2.0
// Hostile callers of the ImageStore: thousands of generated arguments give only typed
// SandboxErrors, never a crash, a hang, prototype pollution or a file outside the store.
import test from 'ava';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dir } from 'tmp-promise';
import { ImageStore, isSandboxError } from '../../src/index.js';

const SEED = Number(process.env.NSBOX_FUZZ_SEED ?? 0x5eed);

// mulberry32: small and reproducible.
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const strings = [
  '', ' ', '\0', 'a\0b', '..', '../../etc/passwd', '/etc/passwd', 'busybox', 'BusyBox', 'a'.repeat(5000), 'x:y:z', 'x@', '@sha256:',
  'sha256:' + '0'.repeat(64), 'sha256:../..', 'host:99999/x', '127.0.0.1:1/x:1', '127.0.0.1:1/x@sha256:' + 'f'.repeat(64), '__proto__', 'constructor',
  'ü/ñ:☃', '\u202e', 'x/../y', '%2e%2e/x', 'x:' + 'y'.repeat(200),
];

function value(r: () => number, depth = 0): unknown {
  const k = Math.floor(r() * 14);
  switch (k) {
    case 0: return strings[Math.floor(r() * strings.length)];
    case 1: return Math.floor(r() * 1e6) - 5e5;
    case 2: return [Number.NaN, Infinity, -Infinity, 2 ** 64, -0, 1.5][Math.floor(r() * 6)];
    case 3: return r() < 0.5;
    case 4: return null;
    case 5: return undefined;
    case 6: return Symbol('s');
    case 7: return depth < 2 ? [value(r, depth + 1), value(r, depth + 1)] : [];
    case 8: return JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}');
    case 9: return Object.defineProperty({}, 'root', { enumerable: true, get() { throw new Error('getter'); } });
    case 10: return new Proxy({}, { ownKeys() { throw new Error('proxy'); } });
    case 11: return () => 1;
    case 12: return depth < 2 ? { root: value(r, depth + 1), platform: value(r, depth + 1), rootless: value(r, depth + 1), signal: value(r, depth + 1) } : {};
    default: return Object.freeze({ rootless: r() < 0.5 });
  }
}

// A valid-looking reference must never leave this machine: only 127.0.0.1:1 (nothing listens) may be pulled.
function safeReference(v: unknown): unknown {
  return typeof v === 'string' && !v.startsWith('127.0.0.1:1/') ? `127.0.0.1:1/${v}` : v;
}

test('3,000 generated calls into ImageStore give only typed errors and leave nothing outside the store', async (t) => {
  t.timeout(120_000);
  const scratch = await dir({ prefix: 'nsbox-fuzz-store-', unsafeCleanup: true });
  t.teardown(() => scratch.cleanup());
  const store = await ImageStore.open({ root: join(scratch.path, 'store') });
  const tmpBefore = new Set(readdirSync(tmpdir()));
  const r = rng(SEED);
  const within = <T>(promise: Promise<T>) =>
    Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error('hang')), 10_000))]);

  for (let i = 0; i < 3000; i++) {
    const method = ['open', 'pull', 'resolve', 'inspect', 'remove', 'list', 'gc'][Math.floor(r() * 7)]!;
    const a = value(r);
    const b = value(r);
    const call = (): Promise<unknown> => {
      switch (method) {
        case 'open': return ImageStore.open(a as never);
        case 'pull': return store.pull(safeReference(a) as never, b as never);
        case 'resolve': return store.resolve(a as never, b as never);
        case 'inspect': return store.inspect(a as never);
        case 'remove': return store.remove(a as never);
        case 'list': return store.list();
        default: return store.gc();
      }
    };
    try {
      await within(Promise.resolve().then(call));
    } catch (error) {
      if (!isSandboxError(error)) t.fail(`seed ${SEED}, call ${i}: ${method}(${String(a)}, ${String(b)}) threw a non-SandboxError: ${String(error)}`);
    }
    t.false(Object.hasOwn(Object.prototype, 'polluted'), `call ${i} polluted Object.prototype`);
  }
  const stray = readdirSync(tmpdir()).filter((name) => !tmpBefore.has(name) && !name.startsWith('nsbox-fuzz-store-') && !name.startsWith('tsx-'));
  t.deepEqual(stray.filter((name) => name.startsWith('.tmp') || name.startsWith('nsbox-store') || name.startsWith('blob')), [], 'no temp files left outside the store');
});
