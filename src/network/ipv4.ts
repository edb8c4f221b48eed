// SPDX-License-Identifier: Apache-2.0
// IPv4 addresses and CIDR blocks as numbers: parsing, containment, overlap, and the host's own routes.
import { readFileSync } from 'node:fs';

/** @internal An IPv4 block: `base` is the network address (host bits zero), `prefix` 0..32. */
export interface Ipv4Block {
  base: number;
  prefix: number;
}

const octet = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
const addressPattern = new RegExp(`^${octet}\\.${octet}\\.${octet}\\.${octet}$`);

/** @internal The address as an unsigned 32-bit number, or undefined when it is not dotted-quad IPv4. */
export function parseAddress(text: string): number | undefined {
  const match = addressPattern.exec(text);
  if (!match) return undefined;
  return ((Number(match[1]) << 24) | (Number(match[2]) << 16) | (Number(match[3]) << 8) | Number(match[4])) >>> 0;
}

/** @internal */
export function formatAddress(value: number): string {
  return [24, 16, 8, 0].map((shift) => (value >>> shift) & 255).join('.');
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/**
 * @internal `a.b.c.d/n` (or a bare address, read as /32). With `strict`, host bits must be zero
 * (a network's subnet); otherwise they are cleared (an egress rule's `10.1.2.3/8` means 10.0.0.0/8).
 */
export function parseCidr(text: string, strict = false): Ipv4Block | undefined {
  const [address, prefixText, ...rest] = text.split('/');
  if (rest.length > 0) return undefined;
  const value = parseAddress(address!);
  if (value === undefined) return undefined;
  let prefix = 32;
  if (prefixText !== undefined) {
    if (!/^(3[0-2]|[12]?[0-9])$/.test(prefixText)) return undefined;
    prefix = Number(prefixText);
  }
  const base = (value & mask(prefix)) >>> 0;
  if (strict && base !== value) return undefined;
  return { base, prefix };
}

/** @internal */
export function formatCidr(block: Ipv4Block): string {
  return `${formatAddress(block.base)}/${block.prefix}`;
}

/** @internal */
export function contains(block: Ipv4Block, address: number): boolean {
  return ((address & mask(block.prefix)) >>> 0) === block.base;
}

/** @internal */
export function overlaps(a: Ipv4Block, b: Ipv4Block): boolean {
  const prefix = Math.min(a.prefix, b.prefix);
  return ((a.base & mask(prefix)) >>> 0) === ((b.base & mask(prefix)) >>> 0);
}

/** @internal The nth address of a block (1 = the first host address, the gateway by convention). */
export function nthAddress(block: Ipv4Block, n: number): number {
  return (block.base + n) >>> 0;
}

/**
 * @internal The blocks the host already routes to directly (not the default route), from
 * /proc/net/route: a new network's subnet must not shadow them.
 */
export function hostRoutes(): Array<{ block: Ipv4Block; device: string }> {
  let text: string;
  try {
    text = readFileSync('/proc/net/route', 'utf8');
  } catch {
    return [];
  }
  const routes: Array<{ block: Ipv4Block; device: string }> = [];
  for (const line of text.split('\n').slice(1)) {
    const [device, destination, , , , , , maskHex] = line.trim().split(/\s+/);
    if (!device || !destination || !maskHex) continue;
    // Little-endian hex words: 0100A8C0 is 192.168.0.1.
    const swap = (hex: string) => Buffer.from(hex, 'hex').readUInt32LE(0);
    const maskValue = swap(maskHex);
    if (maskValue === 0) continue;
    const prefix = countBits(maskValue);
    routes.push({ block: { base: (swap(destination) & mask(prefix)) >>> 0, prefix }, device });
  }
  return routes;
}

// A netmask's leading ones (masks are contiguous).
function countBits(value: number): number {
  let bits = 0;
  for (let v = value >>> 0; v & 0x80000000; v = (v << 1) >>> 0) bits++;
  return bits;
}
