// SPDX-License-Identifier: Apache-2.0
// A tiny HTTP proxy in front of a test registry, whose requests a test can intercept: to demand a token, corrupt or cut a blob.
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request the proxy got: method, path and the headers a test may check. */
export interface SeenRequest {
  method: string;
  url: string;
  range: string | undefined;
  authorization: string | undefined;
}

/** The upstream answer to a request, read whole. */
export interface UpstreamAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/**
 * Handles one request itself (returning true) or lets it through (false). `upstream` fetches
 * what the registry would have answered.
 */
export type Intercept = (req: http.IncomingMessage, res: http.ServerResponse, upstream: () => Promise<UpstreamAnswer>) => boolean | Promise<boolean>;

/** A running proxy. */
export interface TestProxy {
  /** `127.0.0.1:<port>`. */
  host: string;
  /** Every request, in order. */
  seen: SeenRequest[];
  stop(): Promise<void>;
}

/** Starts a proxy on 127.0.0.1 in front of `upstreamPort`. */
export async function startProxy(upstreamPort: number, intercept: Intercept): Promise<TestProxy> {
  const seen: SeenRequest[] = [];
  const server = http.createServer(async (req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', range: req.headers.range, authorization: req.headers.authorization });
    try {
      if (!(await intercept(req, res, () => fetchUpstream(upstreamPort, req)))) forward(upstreamPort, req, res);
    } catch (error) {
      res.destroy(error as Error);
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    seen,
    async stop() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

function upstreamRequest(port: number, req: http.IncomingMessage): http.ClientRequest {
  // X-Forwarded-Host: the registry then answers with upload locations on the proxy, so pushes go through it too.
  const headers = { ...req.headers, host: `127.0.0.1:${port}`, 'x-forwarded-host': req.headers.host };
  return http.request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers });
}

function forward(port: number, req: http.IncomingMessage, res: http.ServerResponse): void {
  const upstream = upstreamRequest(port, req);
  upstream.on('response', (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  });
  upstream.on('error', (error) => res.destroy(error));
  req.pipe(upstream);
}

async function fetchUpstream(port: number, req: http.IncomingMessage): Promise<UpstreamAnswer> {
  const upstream = upstreamRequest(port, req);
  upstream.end();
  const [answer] = (await once(upstream, 'response')) as [http.IncomingMessage];
  const chunks: Buffer[] = [];
  for await (const chunk of answer) chunks.push(chunk as Buffer);
  return { status: answer.statusCode ?? 502, headers: answer.headers, body: Buffer.concat(chunks) };
}
