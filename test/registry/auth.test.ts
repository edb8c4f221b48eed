// SPDX-License-Identifier: Apache-2.0
// Registry authentication: htpasswd basic auth on a real docker-registry, Docker's config.json, and the Bearer token flow.
import fs from 'node:fs/promises';
import type http from 'node:http';
import path from 'node:path';
import test from 'ava';
import { dir } from 'tmp-promise';
import { ImageStore } from '../../src/index.js';
import { busyboxOciLayout, OCI_TAG } from '../helpers/probe-image.js';
import { startProxy, type TestProxy } from './helpers/proxy.js';
import { startRegistry, type TestRegistry } from './helpers/registry.js';

const user = { username: 'alice', password: 'correct horse' };
const tokenUser = { username: 'bob', password: 'hunter2' };
const token = 'nsbox-test-token';
const scratch = dir({ prefix: 'nsbox-auth-test-', unsafeCleanup: true });
let secured: TestRegistry;
let open: TestRegistry;
let bearer: TestProxy;

// The token server and the registry it guards, in one proxy in front of the open registry:
// /token gives `token` for bob's Basic credentials and the busybox pull scope; /v2/ wants it.
function tokenFlow(req: http.IncomingMessage, res: http.ServerResponse): boolean {
  const url = new URL(req.url ?? '/', `http://${req.headers.host}`);
  if (url.pathname === '/token') {
    const basic = `Basic ${Buffer.from(`${tokenUser.username}:${tokenUser.password}`).toString('base64')}`;
    const ok = req.headers.authorization === basic && url.searchParams.get('service') === 'nsbox-test' && url.searchParams.get('scope') === 'repository:busybox:pull';
    res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
    res.end(JSON.stringify(ok ? { token, expires_in: 300 } : { details: 'bad credentials' }));
    return true;
  }
  if (req.headers.authorization === `Bearer ${token}`) return false;
  res.writeHead(401, {
    'content-type': 'application/json',
    'www-authenticate': `Bearer realm="http://${req.headers.host}/token",service="nsbox-test",scope="repository:busybox:pull"`,
  });
  res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
  return true;
}

test.before(async () => {
  const layout = (await busyboxOciLayout()).dir;
  secured = await startRegistry(user);
  open = await startRegistry();
  await secured.push(layout, OCI_TAG, 'busybox:1');
  await open.push(layout, OCI_TAG, 'busybox:1');
  bearer = await startProxy(open.port, tokenFlow);
  // `docker login` for the secured registry only; no test here may find the host's own ~/.docker.
  const dockerConfig = path.join((await scratch).path, 'docker');
  await fs.mkdir(dockerConfig);
  const auth = Buffer.from(`${user.username}:${user.password}`).toString('base64');
  await fs.writeFile(path.join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [`http://${secured.host}`]: { auth } } }));
  process.env.DOCKER_CONFIG = dockerConfig;
});

test.after.always(async () => {
  await secured?.stop();
  await open?.stop();
  await bearer?.stop();
  await (await scratch).cleanup();
});

let stores = 0;
async function freshStore(): Promise<ImageStore> {
  return ImageStore.open({ root: path.join((await scratch).path, `store-${stores++}`) });
}

test('basic auth: credentials from the options work', async (t) => {
  const image = await (await freshStore()).pull(`${secured.host}/busybox:1`, { credentials: user });
  t.is(image.layers.length, 2);
});

test('basic auth: credentials from $DOCKER_CONFIG/config.json work', async (t) => {
  const image = await (await freshStore()).pull(`${secured.host}/busybox:1`);
  t.is(image.layers.length, 2);
});

test('basic auth: wrong credentials are ERR_REGISTRY, denied, naming the reference and the user', async (t) => {
  const store = await freshStore();
  const error = await t.throwsAsync(store.pull(`${secured.host}/busybox:1`, { credentials: { username: 'alice', password: 'wrong' } }));
  t.is((error as { code?: string }).code, 'ERR_REGISTRY');
  t.regex(error!.message, new RegExp(`^Pulling ${secured.host}/busybox:1: .*denied .*401.*UNAUTHORIZED.*\`alice\``));
  t.deepEqual(await fs.readdir(path.join(store.root, 'blobs/sha256')), []);
});

test('Bearer: a token from the realm, fetched with Basic credentials, opens the registry', async (t) => {
  const image = await (await freshStore()).pull(`${bearer.host}/busybox:1`, { credentials: tokenUser });
  t.is(image.layers.length, 2);
  const registryRequests = bearer.seen.filter((r) => r.url.startsWith('/v2/') && r.authorization === `Bearer ${token}`);
  t.true(registryRequests.some((r) => r.url.includes('/manifests/1')));
  t.true(registryRequests.some((r) => r.url.includes('/blobs/')));
});

test('Bearer: the token server refusing the credentials is ERR_REGISTRY, denied', async (t) => {
  const error = await t.throwsAsync((await freshStore()).pull(`${bearer.host}/busybox:1`, { credentials: { username: 'bob', password: 'nope' } }));
  t.is((error as { code?: string }).code, 'ERR_REGISTRY');
  t.regex(error!.message, new RegExp(`^Pulling ${bearer.host}/busybox:1: Access denied: the token server .* refused the credentials`));
});
