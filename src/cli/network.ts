// SPDX-License-Identifier: Apache-2.0
// `nsbox network ls|create|rm|prune`, and the `-p [IP:]HOST:CONTAINER[/PROTO]` flag syntax for `nsbox run`.
import { parseArgs } from 'node:util';
import { isSandboxError } from '../errors.js';
import { collectLeftoverNetworks } from '../network/collect.js';
import { createNetwork, listNetworks, removeNetwork } from '../network/networks.js';
import type { PortMapping } from '../network/publish.js';
import { UsageError } from './args.js';
import type { CliIo } from './run.js';

const USAGE = `Usage: nsbox network COMMAND

Manage bridged networks.

Commands:
  ls                             List networks and their sandboxes
  create [--subnet CIDR] NAME    Define a network (default subnet: the next free /24 of 10.231.0.0/16)
  rm NAME...                     Remove networks no sandbox is attached to
  prune                          Remove what crashed hosts left on networks
`;

/**
 * One `-p` value, Docker's syntax: `[HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp]`. The host
 * address defaults to 127.0.0.1 (only the host reaches the port).
 */
export function parsePublishFlag(spec: string): PortMapping {
  const match = /^(?:(\d{1,3}(?:\.\d{1,3}){3}):)?(\d{1,5}):(\d{1,5})(?:\/(tcp|udp))?$/.exec(spec);
  if (!match) throw new UsageError(`-p expects [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp], got '${spec}'`);
  const [, hostIp, host, container, protocol] = match;
  const mapping: PortMapping = { host: Number(host), container: Number(container) };
  if (hostIp !== undefined) mapping.hostIp = hostIp;
  if (protocol !== undefined) mapping.protocol = protocol as 'tcp' | 'udp';
  return mapping;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]! + 2))).join('').trimEnd()).join('\n') + '\n';
}

/** Runs `nsbox network …` and resolves with the exit code (0, 1 for a failure, 125 for a usage error). */
export async function networkCommand(argv: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'ls': {
        if (rest.length > 0) throw new UsageError(`'network ls' takes no arguments`);
        const rows = [['NAME', 'SUBNET', 'GATEWAY', 'BRIDGE', 'SANDBOXES']];
        for (const n of await listNetworks()) rows.push([n.name, n.subnet, n.gateway, n.bridge, String(n.sandboxes.length)]);
        io.stdout.write(table(rows));
        return 0;
      }
      case 'create': {
        let parsed;
        try {
          parsed = parseArgs({ args: rest, options: { subnet: { type: 'string' } }, allowPositionals: true, strict: true });
        } catch (error) {
          throw new UsageError((error as Error).message.split('\n')[0]!);
        }
        if (parsed.positionals.length !== 1) throw new UsageError(`'network create' takes one NAME`);
        const network = await createNetwork(parsed.positionals[0]!, parsed.values.subnet === undefined ? {} : { subnet: parsed.values.subnet });
        io.stdout.write(`${network.name} ${network.subnet}\n`);
        return 0;
      }
      case 'rm': {
        if (rest.length === 0) throw new UsageError(`'network rm' needs at least one NAME`);
        let failed = 0;
        for (const name of rest) {
          try {
            await removeNetwork(name);
            io.stdout.write(`${name}\n`);
          } catch (error) {
            if (!isSandboxError(error)) throw error;
            io.stderr.write(`nsbox: ${error.message}\n`);
            failed = 1;
          }
        }
        return failed;
      }
      case 'prune': {
        const collected = await collectLeftoverNetworks();
        io.stdout.write(`removed the network leftovers of ${collected} sandbox(es)\n`);
        return 0;
      }
      case undefined:
      case '-h':
      case '--help':
        (command === undefined ? io.stderr : io.stdout).write(USAGE);
        return command === undefined ? 125 : 0;
      default:
        throw new UsageError(`unknown network command '${command}'`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`nsbox: ${error.message}\nSee 'nsbox network --help'.\n`);
      return 125;
    }
    if (isSandboxError(error)) {
      io.stderr.write(`nsbox: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}
