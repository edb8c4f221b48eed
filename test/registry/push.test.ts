// SPDX-License-Identifier: Apache-2.0
// ImageStore.push against a real docker-registry, read back by skopeo: uploads, mounts, chunks, nothing sent twice, auth.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import type http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { dir } from 'tmp-promise';
import { ImageStore, type PushProgress } from '../../src/index.js';
import { busyboxOciLayout, OCI_TAG } from '../helpers/probe-image.js';
import { startProxy, type TestProxy } from './helpers/proxy.js';
import { freePort, startRegistry, type TestRegistry } from './helpers/registry.js';

const execFileAsync = promisify(execFile);
const scratch = dir({ prefix: 'nsbox-push-test-', unsafeCleanup: true });
const user = { username: 'alice', password: 'correct horse' };
let source: TestRegistry;
let target: TestRegistry;
let secured: TestRegistry;
let counting: TestProxy;
let store: ImageStore;
let image: string;

test.before(async () => {
  const layout = (await busyboxOciLayout()).dir;
  [source, target, secured] = await Promise.all([startRegistry(), startRegistry(), startRegistry(user)]);
  await source.push(layout, OCI_TAG, 'busybox:1');
  counting = await startProxy(target.port, () => false);
  process.env.DOCKER_CONFIG = path.join((await scratch).path, 'no-docker-config');
  store = await ImageStore.open({ root: path.join((await scratch).path, 'store') });
  image = `${source.host}/busybox:1`;
  await store.pull(image);
});

test.after.always(async () => {
  await counting?.stop();
  await Promise.all([source?.stop(), target?.stop(), secured?.stop()]);
  await (await scratch).cleanup();
});

const hex = (digest: string) => digest.slice('sha256:'.length);

/** What skopeo (not nsbox) reads back from the registry: the manifest bytes, and a copy as an OCI layout. */
async function readBack(reference: string, extra: string[] = []): Promise<{ manifest: Buffer; layout: string }> {
  const { stdout } = await execFileAsync('skopeo', ['inspect', '--raw', '--tls-verify=false', ...extra, `docker://${reference}`], { encoding: 'buffer' });
  const layout = await fs.mkdtemp(path.join((await scratch).path, 'readback-'));
  await execFileAsync('skopeo', ['copy', '--quiet', '--preserve-digests', '--src-tls-verify=false', ...extra.map((a) => a.replace('--creds', '--src-creds')), `docker://${reference}`, `oci:${layout}:x`]);
  return { manifest: stdout, layout };
}

/** The image's manifest, config and layer blobs, read back, are byte for byte the store's. */
async function assertIdentical(t: import('ava').ExecutionContext, reference: string, extra: string[] = []): Promise<void> {
  const info = await store.inspect(image);
  const { manifest, layout } = await readBack(reference, extra);
  const storeBlob = (digest: string) => fs.readFile(path.join(store.root, 'blobs/sha256', hex(digest)));
  t.deepEqual(manifest, await storeBlob(info.digest));
  const parsed = JSON.parse(manifest.toString()) as { config: { digest: string }; layers: Array<{ digest: string }> };
  for (const blob of [parsed.config, ...parsed.layers]) {
    t.deepEqual(await fs.readFile(path.join(layout, 'blobs/sha256', hex(blob.digest))), await storeBlob(blob.digest));
  }
}

test('push to another registry sends every blob; skopeo reads the image back byte-identical; a second push sends none', async (t) => {
  const progress: PushProgress[] = [];
  const destination = `${counting.host}/copied/busybox:1`;
  const info = await store.inspect(image);
  const first = await store.push(image, { as: destination, onProgress: (p) => progress.push(p) });
  t.is(first.reference, destination);
  t.is(first.digest, info.digest);
  t.deepEqual([...first.uploaded].sort(), [info.layers[0].digest, info.layers[1].digest, (await manifestConfig(info.digest))].sort());
  t.deepEqual(first.skipped, []);
  for (const layer of info.layers) t.is(progress.filter((p) => p.digest === layer.digest).at(-1)?.bytes, layer.size);
  await assertIdentical(t, destination);
  // The store now knows the image under its new name too, as `docker tag` would.
  t.true((await store.inspect(destination)).references.includes(destination));

  const before = counting.seen.length;
  const again = await store.push(image, { as: destination });
  t.deepEqual(again.uploaded, []);
  t.is(again.skipped.length, 3);
  // Other tests push through the same proxy at the same time: only this repository's requests count.
  const requests = counting.seen.slice(before).filter((r) => r.url.startsWith('/v2/copied/'));
  t.deepEqual(requests.filter((r) => r.method !== 'HEAD' && r.method !== 'GET').map((r) => `${r.method} ${r.url}`), [`PUT /v2/copied/busybox/manifests/1`]);
  t.is(requests.filter((r) => r.method === 'HEAD').length, 3);
});

test('push under another repository of the same registry mounts the blobs instead of sending them', async (t) => {
  const destination = `${source.host}/mounted/busybox:2`;
  const result = await store.push(image, { as: destination });
  t.deepEqual(result.uploaded, []);
  t.is(result.mounted.length, 3);
  await assertIdentical(t, destination);
});

test('chunked upload: PATCHes of chunkSize with Content-Range, then PUT ?digest=; read back identical', async (t) => {
  const destination = `${counting.host}/chunked/busybox:1`;
  const before = counting.seen.length;
  const result = await store.push(image, { as: destination, chunkSize: 64 * 1024 });
  t.is(result.uploaded.length, 3);
  const info = await store.inspect(image);
  const patches = counting.seen.slice(before).filter((r) => r.method === 'PATCH' && r.url.startsWith('/v2/chunked/')).length;
  const expected = info.layers.reduce((n, l) => n + (l.size > 64 * 1024 ? Math.ceil(l.size / (64 * 1024)) : 0), 0);
  t.true(expected > 2);
  t.is(patches, expected);
  await assertIdentical(t, destination);
});

test('push by the name the image was pulled as, and by a pinned digest', async (t) => {
  const fresh = await ImageStore.open({ root: path.join((await scratch).path, 'store-own-name') });
  const own = `${counting.host}/own/busybox:1`;
  await store.push(image, { as: own });
  await fresh.pull(own);
  const result = await fresh.push(own);
  t.is(result.reference, own);
  t.deepEqual(result.uploaded, []);
  const pinned = await fresh.push(own, { as: `${counting.host}/pinned/busybox@${result.digest}` });
  t.is(pinned.reference, `${counting.host}/pinned/busybox@${result.digest}`);
  const wrong = await t.throwsAsync(fresh.push(own, { as: `${counting.host}/pinned/busybox@sha256:${'0'.repeat(64)}` }));
  t.is((wrong as { code?: string }).code, 'ERR_INVALID_OPTION');
});

test('basic auth: push without credentials is a clear denied error naming the reference; with them it works', async (t) => {
  const destination = `${secured.host}/busybox:1`;
  const error = await t.throwsAsync(store.push(image, { as: destination }));
  t.is((error as { code?: string }).code, 'ERR_REGISTRY');
  t.regex(error!.message, new RegExp(`^Pushing ${destination}: Access to ${secured.host}/busybox denied \\(401 .*\\): no credentials were given`));
  const bad = await t.throwsAsync(store.push(image, { as: destination, credentials: { username: 'alice', password: 'wrong' } }));
  t.regex(bad!.message, /refused the credentials of `alice`/);
  await store.push(image, { as: destination, credentials: user });
  await assertIdentical(t, destination, ['--creds', `${user.username}:${user.password}`]);
});

test('bearer: the token asked for covers pull and push; a user the token server grants only pull is denied', async (t) => {
  const scopes: string[] = [];
  const grants: Record<string, string[]> = { writer: ['pull', 'push'], reader: ['pull'] };
  // Token `tok:<user>:<actions>` gives the requested actions the user may have (as Docker Hub does);
  // the registry side wants pull for GET/HEAD and push for everything else.
  const tokenFlow = (req: http.IncomingMessage, res: http.ServerResponse): boolean => {
    const url = new URL(req.url ?? '/', `http://${req.headers.host}`);
    if (url.pathname === '/token') {
      const scope = url.searchParams.get('scope') ?? '';
      scopes.push(scope);
      const userName = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString().split(':')[0];
      const asked = scope.split(':')[2]?.split(',') ?? [];
      const granted = asked.filter((a) => grants[userName]?.includes(a));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token: `tok:${userName}:${granted.join(',')}` }));
      return true;
    }
    const needed = req.method === 'GET' || req.method === 'HEAD' ? 'pull' : 'push';
    const token = /^Bearer tok:[a-z]+:(.*)$/.exec(req.headers.authorization ?? '');
    if (token?.[1].split(',').includes(needed)) return false;
    res.writeHead(401, {
      'content-type': 'application/json',
      'www-authenticate': `Bearer realm="http://${req.headers.host}/token",service="test",scope="repository:tokened:${needed === 'pull' ? 'pull' : 'pull,push'}"`,
    });
    res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
    return true;
  };
  const proxy = await startProxy(target.port, tokenFlow);
  try {
    const destination = `${proxy.host}/tokened:1`;
    const denied = await t.throwsAsync(store.push(image, { as: destination, credentials: { username: 'reader', password: 'x' } }));
    t.is((denied as { code?: string }).code, 'ERR_REGISTRY');
    t.regex(denied!.message, new RegExp(`^Pushing ${destination}: Access to ${proxy.host}/tokened denied \\(401 UNAUTHORIZED`));
    const result = await store.push(image, { as: destination, credentials: { username: 'writer', password: 'x' } });
    t.is(result.uploaded.length, 3);
    t.true(scopes.includes('repository:tokened:pull,push'));
    t.true(proxy.seen.some((r) => r.method === 'PUT' && r.authorization === 'Bearer tok:writer:pull,push'));
  } finally {
    await proxy.stop();
  }
});

test('bad input: an image not in the store, a digest without `as`, an unreachable registry', async (t) => {
  const missing = await t.throwsAsync(store.push(`${source.host}/nothing:1`));
  t.is((missing as { code?: string }).code, 'ERR_IMAGE_NOT_FOUND');
  const info = await store.inspect(image);
  const digestOnly = await t.throwsAsync(store.push(info.digest));
  t.is((digestOnly as { code?: string }).code, 'ERR_INVALID_OPTION');
  t.regex(digestOnly!.message, /say where with `as`/);
  const closed = `127.0.0.1:${await freePort()}`;
  const unreachable = await t.throwsAsync(store.push(image, { as: `${closed}/busybox:1` }));
  t.is((unreachable as { code?: string }).code, 'ERR_REGISTRY');
  t.regex(unreachable!.message, new RegExp(`^Pushing ${closed}/busybox:1: .*connection failed \\(ECONNREFUSED\\)`));
  const canceled = await t.throwsAsync(store.push(image, { as: `${counting.host}/canceled:1`, signal: AbortSignal.abort() }));
  t.is((canceled as { code?: string }).code, 'ERR_CANCELED');
});

async function manifestConfig(digest: string): Promise<string> {
  const manifest = JSON.parse(await fs.readFile(path.join(store.root, 'blobs/sha256', hex(digest)), 'utf8')) as { config: { digest: string } };
  return manifest.config.digest;
}
