// SPDX-License-Identifier: Apache-2.0
// IPv4 parsing and the egress policy's nft rules (pure functions).
import test from 'ava';
import { egressChains } from '../../src/network/egress.js';
import { contains, formatCidr, overlaps, parseAddress, parseCidr } from '../../src/network/ipv4.js';

test('addresses and CIDR blocks', (t) => {
  t.is(parseAddress('10.231.0.1'), 0x0ae70001);
  for (const bad of ['10.231.0', '10.231.0.256', '010.1.1.1x', '::1', '1.2.3.4 ', '']) t.is(parseAddress(bad), undefined, bad);
  t.deepEqual(parseCidr('10.231.5.0/24', true), { base: 0x0ae70500, prefix: 24 });
  t.is(parseCidr('10.231.5.1/24', true), undefined);
  t.is(formatCidr(parseCidr('10.231.5.77/24')!), '10.231.5.0/24');
  t.is(formatCidr(parseCidr('203.0.113.9')!), '203.0.113.9/32');
  t.is(formatCidr(parseCidr('0.0.0.0/0')!), '0.0.0.0/0');
  for (const bad of ['10.0.0.0/33', '10.0.0.0/', '10.0.0.0/8/8', '10.0.0.0/-1', 'fe80::/64']) t.is(parseCidr(bad), undefined, bad);
  t.true(contains(parseCidr('10.231.0.0/16')!, parseAddress('10.231.200.7')!));
  t.false(contains(parseCidr('10.231.0.0/16')!, parseAddress('10.232.0.1')!));
  t.true(overlaps(parseCidr('10.0.0.0/8')!, parseCidr('10.231.5.0/24')!));
  t.false(overlaps(parseCidr('10.231.4.0/24')!, parseCidr('10.231.5.0/24')!));
});

test('an egress policy becomes ordered nft rules; the host chain never takes the default', (t) => {
  const chains = egressChains(
    {
      default: 'deny',
      rules: [
        { action: 'allow', cidr: '203.0.113.7', ports: [443, '8000-8100'], protocol: 'tcp' },
        { action: 'deny', cidr: '198.51.100.0/24', ports: [53] },
        { action: 'allow', cidr: '10.0.0.0/8', protocol: 'icmp' },
        { action: 'allow', cidr: '192.168.1.1/16' },
      ],
    },
    ['10.255.255.53'],
  );
  const deny = 'reject with icmpx admin-prohibited';
  const body = [
    'ip daddr 10.255.255.53 meta l4proto { tcp, udp } th dport 53 accept',
    'ip daddr 203.0.113.7/32 meta l4proto tcp th dport { 443, 8000-8100 } accept',
    `ip daddr 198.51.100.0/24 meta l4proto { tcp, udp } th dport { 53 } ${deny}`,
    'ip daddr 10.0.0.0/8 meta l4proto icmp accept',
    'ip daddr 192.168.0.0/16 accept',
  ];
  t.deepEqual(chains.forward, [...body, deny]);
  t.deepEqual(chains.host, [...body, deny]);
  t.deepEqual(egressChains(undefined, []), { forward: ['accept'], host: [deny] });
});
