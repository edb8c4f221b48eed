// SPDX-License-Identifier: Apache-2.0
// `nsbox images`: the images of the store as a table (one row per name and tag) or as JSON.
import { parseReference } from '../registry/reference.js';
import { ImageStore } from '../store/image-store.js';
import { UsageError } from './args.js';
import { formatBytes, runImageCommand, type ImageCommand } from './image-command.js';
import { short } from './progress.js';
import type { CliIo } from './run.js';

export const IMAGES_USAGE = `Usage: nsbox images [OPTIONS]

List the images of the image store: one row per repository and tag (an image
known only by digest shows the tag <none>).

Options:
      --format table|json  a table (default), or what the library's
                           ImageStore.list() returns, as JSON
  -q, --quiet              print only the image digests, one per image
  -h, --help               show this help
`;

const command: ImageCommand<{ format: { type: 'string' }; quiet: { type: 'boolean'; short: 'q' } }> = {
  name: 'images',
  usage: IMAGES_USAGE,
  flags: { format: { type: 'string' }, quiet: { type: 'boolean', short: 'q' } },
  positionals: { min: 0, max: 0, what: 'no arguments' },
  async run(values, _positionals, io) {
    const format = values.format ?? 'table';
    if (format !== 'table' && format !== 'json') throw new UsageError(`--format is 'table' or 'json', not '${format}'`);
    const images = await (await ImageStore.open()).list();
    if (values.quiet) {
      io.stdout.write(images.map((image) => `${image.digest}\n`).join(''));
      return 0;
    }
    if (format === 'json') {
      io.stdout.write(`${JSON.stringify(images, null, 2)}\n`);
      return 0;
    }
    const rows = [['REPOSITORY', 'TAG', 'DIGEST', 'SIZE']];
    for (const image of images) {
      const tagged = image.references.filter((name) => !name.includes('@'));
      const names = tagged.length > 0 ? tagged : [image.references[0] ?? image.digest];
      for (const name of names) {
        const reference = parseReference(name);
        rows.push([`${reference.registry}/${reference.repository}`, reference.tag && !name.includes('@') ? reference.tag : '<none>', short(image.digest), formatBytes(image.size)]);
      }
    }
    io.stdout.write(table(rows));
    return 0;
  },
};

/** Columns padded to their widest cell, three spaces apart, as Docker prints them. */
function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]! + 3))).join('')).map((line) => `${line}\n`).join('');
}

/** `nsbox images ARGV…`. */
export function imagesCommand(argv: string[], io: CliIo): Promise<number> {
  return runImageCommand(command, argv, io);
}
