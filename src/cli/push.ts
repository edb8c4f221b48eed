// SPDX-License-Identifier: Apache-2.0
// `nsbox push IMAGE [--as NAME]`: pushes an image of the store to a registry, under its own name or another.
import { ImageStore } from '../store/image-store.js';
import { runImageCommand, withInterrupt, type ImageCommand } from './image-command.js';
import { TransferProgress } from './progress.js';
import type { CliIo } from './run.js';

export const PUSH_USAGE = `Usage: nsbox push [OPTIONS] IMAGE

Push an image of the image store to a registry: to the reference it has in the
store, or with --as to another one (which the store then records too, like
'docker tag' and 'docker push'). Blobs the registry has are not sent again;
blobs it has in another repository are mounted from there. Credentials come
from $DOCKER_CONFIG/config.json (~/.docker/config.json).

Options:
      --as NAME       push under this reference instead (host/repo[:tag])
      --insecure      allow plain http to a registry that is not on loopback
  -q, --quiet         print only the pushed reference and digest
  -h, --help          show this help
`;

const doneWords = { sending: undefined, sent: 'Pushed', mounted: 'Mounted from another repository', exists: 'Layer already exists' };

const command: ImageCommand<{
  as: { type: 'string' };
  insecure: { type: 'boolean' };
  quiet: { type: 'boolean'; short: 'q' };
}> = {
  name: 'push',
  usage: PUSH_USAGE,
  flags: { as: { type: 'string' }, insecure: { type: 'boolean' }, quiet: { type: 'boolean', short: 'q' } },
  positionals: { min: 1, max: 1, what: 'one IMAGE' },
  async run(values, [reference], io) {
    const store = await ImageStore.open();
    const progress = values.quiet ? undefined : new TransferProgress(io.stdout, 'Pushed');
    const result = await withInterrupt((signal) =>
      store.push(reference!, {
        signal,
        as: values.as,
        insecure: values.insecure,
        onProgress: progress && ((event) => progress.update(event, doneWords[event.state])),
      }),
    );
    progress?.finish();
    if (!values.quiet) {
      io.stdout.write(`Blobs: ${result.uploaded.length} sent, ${result.mounted.length} mounted from another repository, ${result.skipped.length} already there\n`);
    }
    io.stdout.write(`${result.reference}: digest: ${result.digest}\n`);
    return 0;
  },
};

/** `nsbox push ARGV…`. */
export function pushCommand(argv: string[], io: CliIo): Promise<number> {
  return runImageCommand(command, argv, io);
}
