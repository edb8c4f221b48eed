// SPDX-License-Identifier: Apache-2.0
// A test harness: every ava test gets its own private network with a database-like service (a
// small key-value server) in one sandbox and the code under test in another, reaching it by
// name. Tests run in parallel without seeing each other's data. Needs root (bridged networks).
import anyTest, { type TestFn } from 'ava';
import { randomBytes } from 'node:crypto';
import { createNetwork, removeNetwork, Sandbox } from 'nsbox';

const test = anyTest as TestFn<{ db: Sandbox; app: Sandbox; network: string }>;

const kvServer = `
const data = new Map();
require('node:http').createServer(async (req, res) => {
  let body = '';
  for await (const chunk of req) body += chunk;
  if (req.method === 'PUT') data.set(req.url, body);
  res.end(req.method === 'GET' ? (data.get(req.url) ?? '') : 'ok');
}).listen(6379, () => console.log('ready'));
`;

// The code under test: a client that talks to the "database" at http://db:6379.
const client = (method: string, key: string, value = '') =>
  `fetch('http://db:6379/${key}', { method: '${method}', body: ${method === 'PUT' ? JSON.stringify(value) : 'undefined'} }).then((r) => r.text()).then(console.log)`;

test.beforeEach(async (t) => {
  const network = `harness-${randomBytes(3).toString('hex')}`;
  await createNetwork(network);
  t.context = { network } as typeof t.context;
  const db = await Sandbox.create({ image: 'host', network, hostname: 'db', limits: { memory: '128MiB' } });
  await db.writeFile('/tmp/kv.js', kvServer);
  const server = db.exec(['node', '/tmp/kv.js']);
  await new Promise((resolve) => server.stdout.once('data', resolve));
  const app = await Sandbox.create({ image: 'host', network, hostname: 'app' });
  Object.assign(t.context, { db, app });
});

test.afterEach.always(async (t) => {
  await t.context.app?.remove();
  await t.context.db?.remove();
  if (t.context.network) await removeNetwork(t.context.network);
});

test('a value written is read back', async (t) => {
  const { app } = t.context;
  await app.exec(['node', '-e', client('PUT', 'greeting', 'hello')]);
  t.is((await app.exec(['node', '-e', client('GET', 'greeting')])).stdout, 'hello\n');
});

test('each test has a database of its own', async (t) => {
  const { app } = t.context;
  t.is((await app.exec(['node', '-e', client('GET', 'greeting')])).stdout, '\n', 'nothing from the other test');
});
