// SPDX-License-Identifier: Apache-2.0
// `nsbox pull IMAGE`: pulls an image into the store with a progress display, then prints its digest and reference.
import { formatReference, parseReference } from '../registry/reference.js';
import { ImageStore } from '../store/image-store.js';
import { runImageCommand, withInterrupt, type ImageCommand } from './image-command.js';
import { TransferProgress } from './progress.js';
import type { CliIo } from './run.js';

export const PULL_USAGE = `Usage: nsbox pull [OPTIONS] IMAGE

Pull an image from a registry into the image store ($NSBOX_HOME/store,
/var/lib/nsbox/store for root, else ~/.local/share/nsbox/store). Layers the
store has are not downloaded again. Credentials come from
$DOCKER_CONFIG/config.json (~/.docker/config.json, as 'docker login' saves them).

Options:
      --platform OS/ARCH[/VARIANT]  platform of a multi-platform image
                                    (default: linux and this host's architecture)
      --insecure                    allow plain http to a registry that is not
                                    on loopback (localhost is always http)
  -q, --quiet                       print only the reference, no progress
  -h, --help                        show this help
`;

const command: ImageCommand<{
  platform: { type: 'string' };
  insecure: { type: 'boolean' };
  quiet: { type: 'boolean'; short: 'q' };
}> = {
  name: 'pull',
  usage: PULL_USAGE,
  flags: { platform: { type: 'string' }, insecure: { type: 'boolean' }, quiet: { type: 'boolean', short: 'q' } },
  positionals: { min: 1, max: 1, what: 'one IMAGE' },
  async run(values, [reference], io) {
    const name = formatReference(parseReference(reference!));
    const store = await ImageStore.open();
    const progress = values.quiet ? undefined : new TransferProgress(io.stdout, 'Pull complete');
    const image = await withInterrupt((signal) =>
      store.pull(reference!, {
        signal,
        platform: values.platform,
        insecure: values.insecure,
        onProgress: progress && ((event) => progress.update(event)),
      }),
    );
    progress?.finish();
    if (!values.quiet) io.stdout.write(`Digest: ${image.digest}\n`);
    io.stdout.write(`${name}\n`);
    return 0;
  },
};

/** `nsbox pull ARGV…`. */
export function pullCommand(argv: string[], io: CliIo): Promise<number> {
  return runImageCommand(command, argv, io);
}
