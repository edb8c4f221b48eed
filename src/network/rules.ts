// SPDX-License-Identifier: Apache-2.0
// A sandbox's nft objects: added in one transaction, found again by the sandbox id they carry
// (chain names `egress-<id>`, `host-<id>`, `port-<id>`, element comments) and removed in one.
import { egressChains, type EgressPolicy } from './egress.js';
import { ensureTables, NftError, nftApply, nftApplySync, nftList, TABLE } from './nft.js';
import type { ResolvedPortMapping } from './publish.js';
import { SandboxError } from '../errors.js';

/** @internal */
export interface SandboxRules {
  id: string;
  address: string;
  veth: string;
  publish: ResolvedPortMapping[];
  egress: EgressPolicy | undefined;
  nameservers: string[];
}

/**
 * @internal Adds the sandbox's chains and map elements.
 * @throws SandboxError ERR_PORT_IN_USE when a host port is already published (by a sandbox of any process).
 */
export async function addSandboxRules(rules: SandboxRules): Promise<void> {
  await ensureTables();
  const { id, address, veth } = rules;
  const chains = egressChains(rules.egress, rules.nameservers);
  const lines = [
    `add chain inet ${TABLE} egress-${id}`,
    ...chains.forward.map((rule) => `add rule inet ${TABLE} egress-${id} ${rule}`),
    `add chain inet ${TABLE} host-${id}`,
    ...chains.host.map((rule) => `add rule inet ${TABLE} host-${id} ${rule}`),
    `add element inet ${TABLE} egress { ${address} comment "${id}" : jump egress-${id} }`,
    `add element inet ${TABLE} host_access { ${address} comment "${id}" : jump host-${id} }`,
    // `create`, not `add`: a port another sandbox publishes already is an error, not a silent takeover.
    ...rules.publish.map((m) =>
      m.hostIp === '0.0.0.0'
        ? `create element inet ${TABLE} publish_any { ${m.protocol} . ${m.host} comment "${id}" : ${address} . ${m.container} }`
        : `create element inet ${TABLE} publish { ${m.hostIp} . ${m.protocol} . ${m.host} comment "${id}" : ${address} . ${m.container} }`,
    ),
    // Anti-spoofing at the bridge port: the rules above trust the source address.
    `add chain bridge ${TABLE} port-${id}`,
    `add rule bridge ${TABLE} port-${id} ether type ip ip saddr != ${address} drop`,
    `add rule bridge ${TABLE} port-${id} ether type arp arp saddr ip != ${address} drop`,
    `add rule bridge ${TABLE} port-${id} ether type ip6 drop`,
    `add element bridge ${TABLE} ports { "${veth}" comment "${id}" : jump port-${id} }`,
  ];
  try {
    await nftApply(`${lines.join('\n')}\n`);
  } catch (error) {
    if (error instanceof NftError && error.exists && rules.publish.length > 0) {
      const ports = rules.publish.map((m) => `${m.hostIp}:${m.host}/${m.protocol}`).join(', ');
      throw new SandboxError('ERR_PORT_IN_USE', `A host port of ${ports} is already published by another sandbox`, { cause: error });
    }
    throw error;
  }
}

function removalScript(rules: SandboxRules): string {
  const { id, address, veth } = rules;
  const lines = [
    `delete element inet ${TABLE} egress { ${address} }`,
    `delete element inet ${TABLE} host_access { ${address} }`,
    ...rules.publish.map((m) =>
      m.hostIp === '0.0.0.0' ? `delete element inet ${TABLE} publish_any { ${m.protocol} . ${m.host} }` : `delete element inet ${TABLE} publish { ${m.hostIp} . ${m.protocol} . ${m.host} }`,
    ),
    `delete element bridge ${TABLE} ports { "${veth}" }`,
    ...[`inet ${TABLE} egress-${id}`, `inet ${TABLE} host-${id}`, `bridge ${TABLE} port-${id}`].flatMap((chain) => [`flush chain ${chain}`, `delete chain ${chain}`]),
  ];
  return `${lines.join('\n')}\n`;
}

/** @internal Deletes exactly what {@link addSandboxRules} added. Fails (changing nothing) if any of it is missing. */
export function removeSandboxRules(rules: SandboxRules): Promise<void> {
  return nftApply(removalScript(rules));
}

/** @internal {@link removeSandboxRules} for process-exit handlers. */
export function removeSandboxRulesSync(rules: SandboxRules): void {
  nftApplySync(removalScript(rules));
}

type Element = unknown;

function elementKey(value: Element): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  const concat = (value as { concat?: Element[] }).concat;
  if (concat) return concat.map(elementKey).join(' . ');
  throw new Error(`unexpected nft element ${JSON.stringify(value)}`);
}

const chainPattern = /^(?:egress|host|port)-([1-9][0-9]{0,9}x[0-9a-f]{16})$/;

/**
 * @internal Deletes every nft object of the sandboxes whose id `owned` accepts, whichever of them exist.
 * @returns The ids that had something.
 */
export async function removeRulesOf(owned: (id: string) => boolean): Promise<Set<string>> {
  const found = new Set<string>();
  const elementLines: string[] = [];
  const chainLines: string[] = [];
  for (const family of ['inet', 'bridge'] as const) {
    const items = await nftList(['table', family, TABLE]);
    for (const item of items) {
      if (item.map) {
        const map = item.map as { name: string; elem?: Array<[Element, Element]> };
        for (const [key] of map.elem ?? []) {
          const wrapped = (key as { elem?: { val: Element; comment?: string } }).elem;
          if (!wrapped?.comment || !owned(wrapped.comment)) continue;
          found.add(wrapped.comment);
          const text = map.name === 'ports' ? `"${elementKey(wrapped.val)}"` : elementKey(wrapped.val);
          elementLines.push(`delete element ${family} ${TABLE} ${map.name} { ${text} }`);
        }
      } else if (item.chain) {
        const id = chainPattern.exec((item.chain as { name: string }).name)?.[1];
        if (id === undefined || !owned(id)) continue;
        found.add(id);
        chainLines.push(`delete chain ${family} ${TABLE} ${(item.chain as { name: string }).name}`);
      }
    }
  }
  // Elements first: a chain a map still jumps to cannot be deleted. Rules go with their chain.
  const flushLines = chainLines.map((line) => line.replace('delete chain', 'flush chain'));
  if (elementLines.length + chainLines.length > 0) await nftApply(`${[...elementLines, ...flushLines, ...chainLines].join('\n')}\n`);
  return found;
}
