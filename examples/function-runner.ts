// SPDX-License-Identifier: Apache-2.0
// A function runner: an HTTP server that runs each request's JavaScript in a sandbox from a warm
// pool (fresh per request, with limits), and reports latency percentiles at the end.
//
// POST /run with a JavaScript body; the answer is what it printed, or why it was stopped.
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPool } from 'nsbox';

// limits.timeout bounds each call; every request gets a sandbox of its own.
const pool = await createPool({ image: 'host', size: 4, limits: { memory: '128MiB', pids: 32, timeout: '2s', output: '64KiB' } });
const latencies: number[] = [];

const server = createServer(async (req, res) => {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const started = performance.now();
  const result = await pool.run(async (box) => {
    await box.writeFile('/tmp/handler.js', Buffer.concat(chunks));
    return box.exec(['node', '/tmp/handler.js'], { reject: false, timeout: '1s' });
  });
  latencies.push(performance.now() - started);
  const status = result.timedOut ? 408 : result.oomKilled ? 507 : result.exitCode === 0 ? 200 : 500;
  const why = result.timedOut ? 'time limit' : (result.stderr.split('\n').find((line) => /^\w*Error:/.test(line)) ?? `stopped: ${result.signal}`);
  res.writeHead(status, { 'content-type': 'text/plain' }).end(result.exitCode === 0 ? result.stdout : why);
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address() as AddressInfo;

// A client: a few functions, 40 requests, 4 at a time.
const call = (body: string) =>
  new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/run' }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d)).on('end', () => resolve({ status: res.statusCode!, body: text }));
    });
    req.on('error', reject).end(body);
  });
const functions = ['console.log(6 * 7)', 'console.log(require("os").hostname().length)', 'throw new Error("bad input")', 'for (;;) {}'];
const answers = new Map<string, string>();
for (let i = 0; i < 40; i += 4) {
  const batch = await Promise.all(functions.map((code) => call(code)));
  batch.forEach((answer, j) => answers.set(functions[j]!, `${answer.status} ${answer.body.trim()}`));
}
for (const [code, answer] of answers) console.log(`${code.padEnd(48)} → ${answer}`);

const sorted = latencies.filter((_, i) => i % 4 !== 3).sort((a, b) => a - b); // without the 2 s timeouts
const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!.toFixed(1);
console.log(`${latencies.length} requests; sandbox time p50 ${at(0.5)} ms, p90 ${at(0.9)} ms, p99 ${at(0.99)} ms (completed functions)`);
server.close();
await pool.close();
