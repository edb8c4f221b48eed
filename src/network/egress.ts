// SPDX-License-Identifier: Apache-2.0
// Egress policy of a bridged sandbox: its shape, its validation, and the nft rules it becomes.
import ow from 'ow';
import { formatCidr, parseCidr } from './ipv4.js';
import { cidrString } from './validate.js';

/**
 * One egress rule: traffic from the sandbox to `cidr` (and `ports`, `protocol`) is allowed or denied.
 * Rules are tried in order; the first that matches decides.
 *
 * @example
 * ```ts
 * const rule: EgressRule = { action: 'allow', cidr: '203.0.113.0/24', ports: [443, '8000-8100'], protocol: 'tcp' };
 * ```
 */
export interface EgressRule {
  /** What happens to matching traffic. */
  action: 'allow' | 'deny';
  /** IPv4 address or block: '203.0.113.7', '203.0.113.0/24', '0.0.0.0/0'. */
  cidr: string;
  /** Destination ports or ranges ('8000-8100'). Default: every port (and then protocols without ports, like ICMP, match too). */
  ports?: Array<number | string>;
  /** Default 'any'; with `ports`, 'any' means TCP and UDP. */
  protocol?: 'tcp' | 'udp' | 'icmp' | 'any';
}

/**
 * What a bridged sandbox may reach. The host itself (the gateway address and every other address of
 * the host) is reachable only through an `allow` rule that names it: `default: 'allow'` never covers it.
 * The nameservers in the sandbox's resolv.conf are always allowed on port 53.
 *
 * @example
 * ```ts
 * // Only the package mirror and the database sandbox's network:
 * const egress: EgressPolicy = {
 *   default: 'deny',
 *   rules: [
 *     { action: 'allow', cidr: '203.0.113.10', ports: [443], protocol: 'tcp' },
 *     { action: 'allow', cidr: '10.231.0.0/24' },
 *   ],
 * };
 * ```
 */
export interface EgressPolicy {
  /** The verdict when no rule matches. Default 'allow'. */
  default?: 'allow' | 'deny';
  /** Tried in order, the first match wins. */
  rules?: EgressRule[];
}

const portPattern = /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/;

function portRange(value: number | string): [number, number] | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 1 && value <= 65535 ? [value, value] : undefined;
  const match = portPattern.exec(value);
  if (!match) return undefined;
  const low = Number(match[1]);
  const high = match[2] === undefined ? low : Number(match[2]);
  return low >= 1 && high <= 65535 && low <= high ? [low, high] : undefined;
}

/** @internal The ow shape of {@link EgressPolicy}. */
export const egressShape = ow.object.exactShape({
  default: ow.optional.string.oneOf(['allow', 'deny']),
  rules: ow.optional.array.maxLength(1024).ofType(
    ow.object
      .exactShape({
        action: ow.string.oneOf(['allow', 'deny']),
        cidr: cidrString(false),
        ports: ow.optional.array.nonEmpty.maxLength(64).ofType(
          ow.any(
            ow.number.integer.inRange(1, 65535),
            ow.string.validate((p) => ({
              validator: portRange(p) !== undefined,
              message: (label: string) => `Expected ${label} to be a port range like '8000-8100' within 1-65535, got \`${p}\``,
            })),
          ),
        ),
        protocol: ow.optional.string.oneOf(['tcp', 'udp', 'icmp', 'any']),
      })
      .validate((rule: { ports?: unknown[]; protocol?: string }) => ({
        validator: !(rule.ports && rule.protocol === 'icmp'),
        message: (label: string) => `Expected ${label} to have no ports with protocol 'icmp'`,
      })),
  ),
});

function match(rule: EgressRule): string {
  const parts = [`ip daddr ${formatCidr(parseCidr(rule.cidr)!)}`];
  const protocol = rule.protocol ?? 'any';
  if (rule.ports) {
    const ports = rule.ports.map((p) => portRange(p)!).map(([low, high]) => (low === high ? `${low}` : `${low}-${high}`));
    parts.push(protocol === 'any' ? 'meta l4proto { tcp, udp }' : `meta l4proto ${protocol}`, `th dport { ${ports.join(', ')} }`);
  } else if (protocol !== 'any') {
    parts.push(`meta l4proto ${protocol}`);
  }
  return parts.join(' ');
}

/**
 * @internal The body of the sandbox's chains. `forward` applies to traffic the host routes or
 * bridges on; `host` to traffic for the host's own addresses, which only `allow` rules open.
 */
export function egressChains(policy: EgressPolicy | undefined, nameservers: string[]): { forward: string[]; host: string[] } {
  const dns = nameservers.map((server) => `ip daddr ${server} meta l4proto { tcp, udp } th dport 53 accept`);
  const rules = (policy?.rules ?? []).map((rule) => `${match(rule)} ${rule.action === 'allow' ? 'accept' : deny}`);
  return {
    forward: [...dns, ...rules, (policy?.default ?? 'allow') === 'allow' ? 'accept' : deny],
    host: [...dns, ...rules, deny],
  };
}

// Refused at once (the sandbox's connect() fails with EHOSTUNREACH) rather than left to time out,
// so code in the sandbox learns it may not, instead of hanging.
const deny = 'reject with icmpx admin-prohibited';
