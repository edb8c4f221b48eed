// SPDX-License-Identifier: Apache-2.0
// Share a host directory read-only, give the sandbox a scratch tmpfs, and read back what it wrote.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from 'nsbox';

const input = mkdtempSync(join(tmpdir(), 'nsbox-in-'));
const output = mkdtempSync(join(tmpdir(), 'nsbox-out-'));
writeFileSync(join(input, 'numbers.txt'), '3\n1\n2\n');
try {
  await run({
    image: 'host',
    command: ['sh', '-c', 'sort /in/numbers.txt > /scratch/sorted && cp /scratch/sorted /out/ && echo x > /in/nope 2>/dev/null || echo "/in is read-only"'],
    mounts: [
      { type: 'bind', source: input, target: '/in', readonly: true },
      { type: 'bind', source: output, target: '/out' },
      { type: 'tmpfs', target: '/scratch', size: '16MiB' },
    ],
  }).then((result) => console.log(result.stdout.trim()));
  console.log(readFileSync(join(output, 'sorted'), 'utf8').trim().split('\n').join(' '));
} finally {
  rmSync(input, { recursive: true, force: true });
  rmSync(output, { recursive: true, force: true });
}
