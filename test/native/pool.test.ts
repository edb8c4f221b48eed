// SPDX-License-Identifier: Apache-2.0
// The warm pool: one fresh sandbox per call, refilled in the background, clear errors when closed or exhausted.
import test from 'ava';
import { createPool, RunError, type Sandbox } from '../../src/index.js';
import { ownCgroups } from '../helpers/sandbox.js';

test('every call gets a fresh sandbox: no file, process or environment survives from the previous one', async (t) => {
  await using pool = await createPool({ image: 'host', size: 2 });
  t.is(pool.stats().ready, 2);
  const first = await pool.run(async (box) => {
    await box.exec(['sh', '-c', 'echo secret > /tmp/left-behind; sleep 1000 &']);
    return { id: box.id, hostname: (await box.exec(['hostname'])).stdout };
  });
  const second = await pool.run(async (box) => {
    const files = await box.exec(['sh', '-c', 'cat /tmp/left-behind 2>&1; ps -e -o comm= 2>/dev/null || ls /proc | grep -c "^[0-9]"'], { reject: false });
    return { id: box.id, files: files.stdout, hostname: (await box.exec(['hostname'])).stdout };
  });
  t.not(second.id, first.id);
  t.not(second.hostname, first.hostname);
  t.regex(second.files, /No such file/);
  t.notRegex(second.files, /sleep/);
  const { stdout } = await pool.run(['sh', '-c', 'echo $((6 * 7))']);
  t.is(stdout, '42\n');
  await t.throwsAsync(pool.run(['sh', '-c', 'exit 3']), { instanceOf: RunError });
  await waitFor(() => pool.stats().ready === 2 && pool.stats().inUse === 0);
  t.is(pool.stats().ready, 2, 'refilled in the background');
  t.is(pool.stats().inUse, 0);
});

test('calls beyond maxSandboxes wait in the queue, and fail with ERR_POOL_EXHAUSTED after queueTimeout', async (t) => {
  await using pool = await createPool({ image: 'host', size: 1, maxSandboxes: 1, queueTimeout: 300 });
  let release!: () => void;
  const holding = pool.run((box) => new Promise<string>((resolve) => (release = () => resolve(box.id))));
  await waitFor(() => pool.stats().inUse === 1);
  const queued = pool.run(['true']);
  const exhausted = await t.throwsAsync(queued, { code: 'ERR_POOL_EXHAUSTED' });
  t.regex(exhausted!.message, /within 300 ms/);
  const waiting = pool.run(['echo', 'after']);
  await waitFor(() => pool.stats().waiting === 1);
  release();
  await holding;
  t.is((await waiting).stdout, 'after\n', 'a waiting call gets the next sandbox');
});

test('a closed pool refuses calls, fails its waiters and leaves no sandbox behind', async (t) => {
  const pool = await createPool({ image: 'host', size: 2, maxSandboxes: 2 });
  const ids = await Promise.all([pool.run(async (box) => box.id), pool.run(async (box) => box.id)]);
  t.is(new Set(ids).size, 2);
  // Used sandboxes are let go just after their calls return.
  await waitFor(() => pool.stats().inUse === 0 && pool.stats().ready === 2);
  let release: (() => void) | undefined;
  const a = pool.run(() => new Promise<void>((resolve) => (release = resolve)));
  const b = pool.run(() => new Promise<void>((resolve) => setTimeout(resolve, 50)));
  await waitFor(() => pool.stats().inUse === 2 && release !== undefined);
  const waiter = pool.run(['true']);
  const closing = pool.close();
  await t.throwsAsync(waiter, { code: 'ERR_POOL_CLOSED' });
  await t.throwsAsync(pool.run(['true']), { code: 'ERR_POOL_CLOSED' });
  release!();
  await Promise.all([a, b, closing]);
  t.deepEqual(pool.stats(), { ready: 0, starting: 0, inUse: 0, waiting: 0, created: pool.stats().created, failed: 0 });
  t.deepEqual(ownCgroups().filter((dir) => ids.some((id) => dir.endsWith(id))), []);
});

test('a call leaves the refill until it ends (or runs on), and taking the last ready sandbox refills at once', async (t) => {
  await using pool = await createPool({ image: 'host', size: 2 });
  t.like(pool.stats(), { ready: 2, starting: 0, created: 2 }, 'warming up starts `size` sandboxes, no more');
  // While another sandbox is ready, nothing starts during a short call: the refill would compete with it.
  const during = await pool.run(async () => pool.stats());
  t.like(during, { ready: 1, starting: 0, inUse: 1 });
  await waitFor(() => pool.stats().ready === 2 && pool.stats().inUse === 0);
  t.like(pool.stats(), { ready: 2, starting: 0, inUse: 0 }, 'refilled after the call');
  // A call that runs on gets its replacement started all the same.
  let release!: () => void;
  const long = pool.run(() => new Promise<void>((resolve) => (release = resolve)));
  await waitFor(() => pool.stats().inUse === 1 && pool.stats().ready === 2);
  t.like(pool.stats(), { ready: 2, inUse: 1 }, 'refilled while the call still runs');
  // Taking the last ready sandbox starts replacements right away.
  let releaseOthers!: () => void;
  const held = new Promise<void>((resolve) => (releaseOthers = resolve));
  const others = [pool.run(() => held), pool.run(() => held)];
  // Checked in the same turn (run() takes its sandbox synchronously), before any timer could fire.
  t.like(pool.stats(), { ready: 0, starting: 2, inUse: 3 }, 'the next calls do not wait for a whole start');
  release();
  releaseOthers();
  await Promise.all([long, ...others]);
});

test('limits.timeout bounds each call: a command is killed, and a call of fn fails with ERR_TIMEOUT and loses its sandbox', async (t) => {
  await using pool = await createPool({ image: 'host', size: 1, limits: { timeout: 400 } });
  const command = await pool.run(['sleep', '30'], { reject: false });
  t.true(command.timedOut);
  let box: Sandbox | undefined;
  const started = Date.now();
  // fn ignores its sandbox after the first step: the call still ends at the deadline.
  await t.throwsAsync(
    pool.run(async (b) => {
      box = b;
      await b.exec(['sh', '-c', 'sleep 30 &']);
      await new Promise((resolve) => setTimeout(resolve, 10_000));
      return 'too late';
    }),
    { code: 'ERR_TIMEOUT', message: /400 milliseconds/ },
  );
  t.true(Date.now() - started < 5000);
  await waitFor(() => box!.state === 'stopped');
  t.is(box!.state, 'stopped');
  t.throws(() => box!.exec(['true']), { code: 'ERR_SANDBOX_STOPPED' });
  // The next call gets a fresh sandbox and the whole deadline again.
  t.is((await pool.run(async (b) => (await b.exec(['echo', 'fresh'])).stdout)), 'fresh\n');
});

test('createPool checks its options and reports why sandboxes cannot start', async (t) => {
  await t.throwsAsync(createPool({ image: 'host', size: -1 }), { code: 'ERR_INVALID_OPTION' });
  await t.throwsAsync(createPool({ image: 'host', size: 4, maxSandboxes: 2 }), { code: 'ERR_INVALID_OPTION', message: /maxSandboxes/ });
  await t.throwsAsync(createPool({ image: 'host', queueTimeout: 'soon' }), { code: 'ERR_INVALID_OPTION' });
  await t.throwsAsync(createPool({ image: '/no/such/rootfs' }), { code: 'ERR_IMAGE_NOT_FOUND' });
  await t.throwsAsync(createPool({ image: 'host', limits: { memory: 'lots' } }), { code: 'ERR_INVALID_OPTION' });
});

async function waitFor(condition: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition() && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 10));
}
