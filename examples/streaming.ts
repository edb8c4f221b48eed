// SPDX-License-Identifier: Apache-2.0
// spawn(): talk to a sandboxed process through its streams while it runs.
import { spawn } from 'nsbox';

const child = spawn({ image: 'host', command: ['sh', '-c', 'while read line; do echo "sandbox saw: $line"; done'] });
child.stdout.on('data', (chunk: Buffer) => process.stdout.write(chunk));
for (const line of ['one', 'two', 'three']) child.stdin!.write(`${line}\n`);
child.stdin!.end();
const { exitCode } = await child;
console.log(`done, exit ${exitCode}`);
