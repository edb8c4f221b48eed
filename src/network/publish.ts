// SPDX-License-Identifier: Apache-2.0
// Published ports: validation, and holding each host port while it is published, so that neither
// a host service nor another sandbox (of any process) can take it, and a taken one fails clearly.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import ow from 'ow';
import { SandboxError } from '../errors.js';
import { parseAddress } from './ipv4.js';

/**
 * A port of the host forwarded to a port of the sandbox.
 *
 * @example
 * ```ts
 * const web: PortMapping = { host: 8080, container: 80 };                                  // 127.0.0.1:8080
 * const dns: PortMapping = { host: 5353, container: 53, protocol: 'udp', hostIp: '0.0.0.0' }; // every host address
 * ```
 */
export interface PortMapping {
  /** The host port. */
  host: number;
  /** The sandbox's port. */
  container: number;
  /** Default 'tcp'. */
  protocol?: 'tcp' | 'udp';
  /** The host address to publish on. Default '127.0.0.1' (the host only); '0.0.0.0' for every address of the host. */
  hostIp?: string;
}

const port = ow.number.integer.inRange(1, 65535);

/** @internal The ow shape of a {@link PortMapping}. */
export const portMappingShape = ow.object.exactShape({
  host: port,
  container: port,
  protocol: ow.optional.string.oneOf(['tcp', 'udp']),
  hostIp: ow.optional.string.validate((s) => ({
    validator: parseAddress(s) !== undefined,
    message: (label: string) => `Expected ${label} to be an IPv4 address of this host (or 0.0.0.0), got \`${s}\``,
  })),
});

/** @internal A mapping with its defaults filled in. */
export type ResolvedPortMapping = Required<PortMapping>;

/** @internal */
export function resolveMappings(mappings: PortMapping[]): ResolvedPortMapping[] {
  const resolved = mappings.map((m) => ({ host: m.host, container: m.container, protocol: m.protocol ?? 'tcp', hostIp: m.hostIp ?? '127.0.0.1' }));
  const seen = new Set<string>();
  for (const m of resolved) {
    const key = `${m.protocol}/${m.host}`;
    if (seen.has(key)) throw new SandboxError('ERR_INVALID_OPTION', `Invalid network option: host port ${m.host}/${m.protocol} is published twice`);
    seen.add(key);
  }
  return resolved;
}

/** @internal Held host ports; `release()` frees them all. */
export interface PortReservation {
  release(): Promise<void>;
}

function holdTcp(m: ResolvedPortMapping): Promise<Server> {
  return new Promise((resolve, reject) => {
    // Traffic to the port is redirected to the sandbox before it could reach this socket; if the
    // rules were ever gone, a refused connection beats one that hangs in a backlog.
    const server = createServer((socket) => socket.destroy());
    server.once('error', reject);
    server.listen({ host: m.hostIp, port: m.host, exclusive: true, backlog: 1 }, () => {
      server.off('error', reject);
      server.unref();
      resolve(server);
    });
  });
}

function holdUdp(m: ResolvedPortMapping): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket({ type: 'udp4', reuseAddr: false });
    socket.once('error', reject);
    socket.bind({ address: m.hostIp, port: m.host, exclusive: true }, () => {
      socket.off('error', reject);
      socket.unref();
      resolve(socket);
    });
  });
}

/**
 * @internal Binds every host port, or none.
 * @throws SandboxError ERR_PORT_IN_USE when one is taken; ERR_INVALID_OPTION when `hostIp` is not an address of this host.
 */
export async function reservePorts(mappings: ResolvedPortMapping[]): Promise<PortReservation> {
  const held: Array<Server | UdpSocket> = [];
  const release = async () => {
    await Promise.all(held.splice(0).map((h) => new Promise<void>((resolve) => (h.close as (cb: () => void) => void).call(h, () => resolve()))));
  };
  try {
    for (const m of mappings) held.push(m.protocol === 'tcp' ? await holdTcp(m) : await holdUdp(m));
  } catch (error) {
    await release();
    const m = mappings[held.length]!;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE')
      throw new SandboxError('ERR_PORT_IN_USE', `Port ${m.hostIp}:${m.host}/${m.protocol} is already in use on the host (by a host service or another sandbox): choose another host port`, { cause: error });
    if (code === 'EADDRNOTAVAIL') throw new SandboxError('ERR_INVALID_OPTION', `Invalid network option: ${m.hostIp} is not an address of this host`, { cause: error });
    if (code === 'EACCES') throw new SandboxError('ERR_PERMISSION', `Publishing port ${m.host} needs root (ports below 1024)`, { cause: error });
    throw new SandboxError('ERR_NETWORK', `Could not hold host port ${m.hostIp}:${m.host}/${m.protocol}: ${(error as Error).message}`, { cause: error });
  }
  return { release };
}
