// SPDX-License-Identifier: Apache-2.0
// Blob transfers through a proxy that misbehaves: corrupted bytes, a connection cut mid-blob (resumed with Range), a stall aborted.
import fs from 'node:fs/promises';
import type http from 'node:http';
import path from 'node:path';
import test from 'ava';
import { dir } from 'tmp-promise';
import { ImageStore } from '../../src/index.js';
import { busyboxOciLayout, OCI_TAG } from '../helpers/probe-image.js';
import { startProxy, type Intercept, type TestProxy } from './helpers/proxy.js';
import { startRegistry, type TestRegistry } from './helpers/registry.js';

const scratch = dir({ prefix: 'nsbox-transfer-test-', unsafeCleanup: true });
let registry: TestRegistry;
/** The busybox image on the registry: its manifest digest and its bigger (first) layer. */
let manifestDigest: string;
let bigLayer: { digest: string; size: number };
const proxies: TestProxy[] = [];

test.before(async () => {
  registry = await startRegistry();
  await registry.push((await busyboxOciLayout()).dir, OCI_TAG, 'busybox:1');
  const store = await ImageStore.open({ root: path.join((await scratch).path, 'reference-store') });
  const image = await store.pull(`${registry.host}/busybox:1`);
  manifestDigest = image.digest;
  bigLayer = image.layers.reduce((a, b) => (a.size > b.size ? a : b));
});

test.after.always(async () => {
  for (const proxy of proxies) await proxy.stop();
  await registry?.stop();
  await (await scratch).cleanup();
});

let stores = 0;
async function freshStore(): Promise<ImageStore> {
  return ImageStore.open({ root: path.join((await scratch).path, `store-${stores++}`) });
}

async function proxy(intercept: Intercept): Promise<TestProxy> {
  const started = await startProxy(registry.port, intercept);
  proxies.push(started);
  return started;
}

const isBigLayer = (req: http.IncomingMessage) => req.method === 'GET' && req.url === `/v2/busybox/blobs/${bigLayer.digest}`;

/** Everything in the store's blob dir, temp files included. */
async function blobFiles(store: ImageStore): Promise<string[]> {
  return fs.readdir(path.join(store.root, 'blobs/sha256'));
}

test('a corrupted layer is ERR_DIGEST_MISMATCH; it never reaches the store, nor does the reference', async (t) => {
  const corrupting = await proxy(async (req, res, upstream) => {
    if (!isBigLayer(req)) return false;
    const answer = await upstream();
    answer.body[answer.body.length >> 1] ^= 0xff;
    res.writeHead(answer.status, answer.headers);
    res.end(answer.body);
    return true;
  });
  const store = await freshStore();
  const error = await t.throwsAsync(store.pull(`${corrupting.host}/busybox:1`));
  t.is((error as { code?: string }).code, 'ERR_DIGEST_MISMATCH');
  t.true(error!.message.startsWith(`Pulling ${corrupting.host}/busybox:1: `), error!.message);
  t.true(error!.message.includes(bigLayer.digest));
  const files = await blobFiles(store);
  t.false(files.includes(bigLayer.digest.slice(7)));
  t.false(files.some((f) => f.startsWith('.tmp-')), files.join(' '));
  t.deepEqual(await store.list(), []);
  // What the failed pull verified and kept is garbage without a reference.
  await store.gc();
  t.deepEqual(await blobFiles(store), []);
});

test('a manifest that does not hash to the digest asked for is ERR_DIGEST_MISMATCH', async (t) => {
  const lying = await proxy(async (req, res, upstream) => {
    if (req.url !== `/v2/busybox/manifests/${manifestDigest}`) return false;
    const answer = await upstream();
    const body = Buffer.from(answer.body.toString().replace('"schemaVersion":2', '"schemaVersion": 2'));
    res.writeHead(answer.status, { ...answer.headers, 'content-length': String(body.length), 'docker-content-digest': '' });
    res.end(body);
    return true;
  });
  const error = await t.throwsAsync((await freshStore()).pull(`${lying.host}/busybox@${manifestDigest}`));
  t.is((error as { code?: string }).code, 'ERR_DIGEST_MISMATCH');
});

test('a transfer cut mid-blob is resumed with a Range request from the byte it reached', async (t) => {
  let cut = false;
  const half = bigLayer.size >> 1;
  const cutting = await proxy(async (req, res, upstream) => {
    if (!isBigLayer(req) || cut) return false;
    cut = true;
    const answer = await upstream();
    res.writeHead(200, answer.headers);
    res.write(answer.body.subarray(0, half), () => res.socket?.destroy());
    return true;
  });
  const store = await freshStore();
  const image = await store.pull(`${cutting.host}/busybox:1`);
  const layerRequests = cutting.seen.filter((r) => r.url.endsWith(bigLayer.digest));
  // The resume starts where the client's bytes ended. The cut is a reset, which can discard what
  // was still in flight (under load, part of the half the proxy sent): up to `half`, never 0.
  t.is(layerRequests.length, 2);
  t.is(layerRequests[0]!.range, undefined);
  const from = Number(/^bytes=(\d+)-$/.exec(layerRequests[1]!.range ?? '')?.[1]);
  t.true(from > 0 && from <= half, `resumed from ${layerRequests[1]!.range}`);
  t.is((await fs.stat(path.join(store.root, 'blobs/sha256', bigLayer.digest.slice(7)))).size, bigLayer.size);
  t.is(image.digest, manifestDigest);
});

test('a registry error (503) is retried', async (t) => {
  let failures = 2;
  const flaky = await proxy((req, res) => {
    if (!isBigLayer(req) || failures === 0) return false;
    failures--;
    res.writeHead(503).end();
    return true;
  });
  const image = await (await freshStore()).pull(`${flaky.host}/busybox:1`);
  t.is(image.digest, manifestDigest);
  t.is(flaky.seen.filter((r) => r.url.endsWith(bigLayer.digest)).length, 3);
});

test('AbortSignal aborts a stalled transfer: ERR_CANCELED, no temp file, no reference', async (t) => {
  const stalling = await proxy(async (req, res, upstream) => {
    if (!isBigLayer(req)) return false;
    const answer = await upstream();
    res.writeHead(200, answer.headers);
    res.write(answer.body.subarray(0, 1000)); // and then nothing more
    return true;
  });
  const store = await freshStore();
  const controller = new AbortController();
  const error = await t.throwsAsync(store.pull(`${stalling.host}/busybox:1`, {
    signal: controller.signal,
    onProgress: ({ digest, bytes }) => {
      if (digest === bigLayer.digest && bytes > 0) controller.abort();
    },
  }));
  t.is((error as { code?: string }).code, 'ERR_CANCELED');
  t.regex(error!.message, new RegExp(`Pulling ${stalling.host}/busybox:1 was canceled`));
  t.false((await blobFiles(store)).some((f) => f.startsWith('.tmp-') || f === bigLayer.digest.slice(7)));
  t.deepEqual(await store.list(), []);
  t.deepEqual(await fs.readdir(path.join(store.root, 'leases')), []);
});

test('gc during a pull keeps the blobs the pull has leased', async (t) => {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let requested!: () => void;
  const layerRequested = new Promise<void>((resolve) => (requested = resolve));
  const holding = await proxy(async (req) => {
    if (!isBigLayer(req)) return false;
    requested();
    await released;
    return false;
  });
  const store = await freshStore();
  const pulling = store.pull(`${holding.host}/busybox:1`);
  await layerRequested;
  // The other layer may still be arriving: check only the blobs already published.
  const before = (await blobFiles(store)).filter((f) => !f.startsWith('.tmp-'));
  t.true(before.includes(manifestDigest.slice(7)));
  t.deepEqual(await store.gc(), { blobs: 0, layers: 0 });
  const after = await blobFiles(store);
  t.deepEqual(before.filter((f) => !after.includes(f)), []);
  release();
  const image = await pulling;
  t.deepEqual((await store.inspect(`${holding.host}/busybox:1`)).digest, image.digest);
  t.is((await blobFiles(store)).length, 4);
});
