// SPDX-License-Identifier: Apache-2.0
// An HTTP function served from a sandbox through a published port: the code goes in as a file,
// runs under limits on a bridged network, and only this host reaches it (127.0.0.1). Needs root.
import { createServer } from 'node:net';
import { Sandbox } from 'nsbox';

const handler = `
require('node:http').createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ path: req.url, servedBy: require('node:os').hostname() }));
}).listen(8080, () => console.log('ready'));
`;

// A free port on this host for the example; a real service picks its own.
const port = await new Promise<number>((resolve) => {
  const probe = createServer().listen(0, '127.0.0.1', () => {
    const { port } = probe.address() as { port: number };
    probe.close(() => resolve(port));
  });
});

await using box = await Sandbox.create({ image: 'host', hostname: 'fn-1', publish: [{ host: port, container: 8080 }], limits: { memory: '128MiB', pids: 32 } });
await box.writeFile('/tmp/handler.js', handler);
const server = box.exec(['node', '/tmp/handler.js']);
await new Promise((resolve) => server.stdout.once('data', resolve));

const response = await fetch(`http://127.0.0.1:${port}/hello`);
console.log(response.status, await response.text());
console.log(`sandbox address on its network: ${box.address}`);
