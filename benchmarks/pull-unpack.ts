// SPDX-License-Identifier: Apache-2.0
// Pull + unpack of a multi-layer image from a local docker-registry: nsbox's ImageStore against
// `skopeo copy` + `umoci unpack` of the same image in the same run; and unpack throughput of one
// layer against GNU `tar -x`.
//
// Standalone: `npx tsx benchmarks/pull-unpack.ts [--reps N] [--layer-mb N]` prints a markdown
// report and the JSON; `benchPullUnpack()` returns the same numbers to benchmarks/run.ts.
// Needs root, docker-registry, skopeo, umoci, GNU tar, zstd, gzip and the addon built.
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { dir } from 'tmp-promise';
import { unpackLayer } from '../src/image/layer-unpack.js';
import { readOciImage, type LayerRef } from '../src/image/oci-layout.js';
import { ImageStore } from '../src/index.js';
import { busyboxOciLayout, OCI_TAG } from '../test/helpers/probe-image.js';
import { startRegistry } from '../test/registry/helpers/registry.js';

const execFileAsync = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Options of {@link benchPullUnpack}. */
export interface PullUnpackOptions {
  /** Timed repetitions of each row (after one warm-up); the medians are reported. Default 5. */
  reps?: number;
  /** Approximate size of each of the 3 content layers, uncompressed, in MB. Default 40. */
  layerMb?: number;
  /** A short run for `nsbox bench --quick`: 1 repetition of 4 MB layers unless given. */
  quick?: boolean;
}

/** One row: what was timed, the median and every sample (ms), and bytes moved when it applies. */
export interface BenchRow {
  id: string;
  label: string;
  medianMs: number;
  samplesMs: number[];
  /** Uncompressed bytes the row unpacks, for a MB/s figure. */
  bytes?: number;
}

/** What {@link benchPullUnpack} measured. */
export interface PullUnpackReport {
  image: { layers: Array<{ compressedBytes: number; uncompressedBytes: number; files: number }>; compressedBytes: number; uncompressedBytes: number };
  reps: number;
  rows: BenchRow[];
  /** nsbox pull+unpack median divided by skopeo+umoci's (below 1: nsbox is faster). */
  pullUnpackRatio: number;
}

// Real content of the host, so layers compress and lay out like real images: shared libraries
// (few large files), /usr/share (many small ones), node_modules (JavaScript, very many small ones).
const sources = ['/usr/lib/x86_64-linux-gnu', '/usr/share', path.join(ROOT, 'node_modules')];

/**
 * Builds a 4-layer image (busybox base + 3 layers of about `layerMb` MB copied from the host) with
 * umoci, pushes it to a local docker-registry with skopeo, and times (medians of `reps`):
 * nsbox pull + unpack into a fresh store; skopeo copy to an OCI layout + umoci unpack; and the
 * unpack of the largest layer by nsbox and by `tar -x` (gzip, zstd and plain tar).
 *
 * @example
 * ```ts
 * const report = await benchPullUnpack({ reps: 3 });
 * console.log(report.pullUnpackRatio);
 * ```
 */
export async function benchPullUnpack(options: PullUnpackOptions = {}): Promise<PullUnpackReport> {
  const reps = options.reps ?? (options.quick ? 1 : 5);
  const layerBytes = (options.layerMb ?? (options.quick ? 4 : 40)) * 1e6;
  const work = await dir({ prefix: 'nsbox-bench-pull-', unsafeCleanup: true });
  const registry = await startRegistry();
  try {
    const at = (name: string) => path.join(work.path, name);
    const layout = at('image');
    await fs.cp((await busyboxOciLayout()).dir, layout, { recursive: true });
    for (const [i, source] of sources.entries()) {
      const content = at(`content-${i}`);
      await copyUpTo(source, path.join(content, `opt/layer${i}`), layerBytes);
      // GNU tar writes the layer and umoci adds it (gzip): umoci 0.4.7's own `insert` wrote a
      // truncated tar for a 50 MB layer of two large files, which GNU tar and nsbox both refuse.
      await run('tar', ['--numeric-owner', '-C', content, '-cf', `${content}.tar`, 'opt']);
      await run('umoci', ['raw', 'add-layer', '--image', `${layout}:${OCI_TAG}`, `${content}.tar`]);
    }
    await registry.push(layout, OCI_TAG, 'bench:1');
    const reference = `${registry.host}/bench:1`;
    const image = await describe(layout, at('describe'));

    const rows: BenchRow[] = [];
    let n = 0;
    const fresh = () => at(`run-${n++}`);
    rows.push(await measure('nsbox', 'nsbox: ImageStore.pull + resolve (unpack)', reps, image.uncompressedBytes, async () => {
      const store = await ImageStore.open({ root: fresh() });
      await store.pull(reference);
      await store.resolve(reference, { rootless: false });
      return store.root;
    }));
    rows.push(await measure('skopeo-umoci', 'skopeo copy docker:// oci: + umoci unpack', reps, image.uncompressedBytes, async () => {
      const target = fresh();
      await fs.mkdir(target);
      await run('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${reference}`, `oci:${target}/oci:x`]);
      await run('umoci', ['unpack', '--image', `${target}/oci:x`, `${target}/bundle`]);
      return target;
    }));

    // One layer, the largest: nsbox's unpackLayer against GNU tar, from the same bytes.
    const largest = (await readOciImage(layout, { tag: OCI_TAG })).layers.reduce((a, b) => (b.size > a.size ? b : a));
    // Largest by bytes: throughput with few, large files.
    const gzBlob = path.join(layout, 'blobs/sha256', largest.digest.slice(7));
    const plainTar = at('layer.tar');
    await run('sh', ['-c', `gzip -dc '${gzBlob}' > '${plainTar}'`]);
    const zstBlob = at('layer.tar.zst');
    await run('zstd', ['-q', '-3', plainTar, '-o', zstBlob]);
    const tarBytes = (await fs.stat(plainTar)).size;
    const variants: Array<{ id: string; blob: string; compression: LayerRef['compression']; tarFlags: string[] }> = [
      { id: 'gzip', blob: gzBlob, compression: 'gzip', tarFlags: ['-xzf'] },
      { id: 'zstd', blob: zstBlob, compression: 'zstd', tarFlags: ['--zstd', '-xf'] },
      { id: 'tar', blob: plainTar, compression: 'none', tarFlags: ['-xf'] },
    ];
    for (const { id, blob, compression, tarFlags } of variants) {
      const layer: LayerRef = { digest: await sha256File(blob), size: (await fs.stat(blob)).size, compression, diffId: largest.diffId };
      rows.push(await measure(`unpack-nsbox-${id}`, `unpack one layer (${id}): nsbox unpackLayer`, reps, tarBytes, async () => {
        const target = fresh();
        await fs.mkdir(target);
        await unpackLayer(createReadStream(blob), layer, target, { rootless: false });
        return target;
      }));
      rows.push(await measure(`unpack-tar-${id}`, `unpack one layer (${id}): tar ${tarFlags.join(' ')}`, reps, tarBytes, async () => {
        const target = fresh();
        await fs.mkdir(target);
        await run('tar', ['--numeric-owner', '--same-owner', '-p', '--xattrs', ...tarFlags, blob, '-C', target]);
        return target;
      }));
    }
    // The layer with the most entries (small files): per-entry cost rather than bytes.
    const layers = (await readOciImage(layout, { tag: OCI_TAG })).layers;
    const busiest = layers[image.layers.reduce((best, l, i) => (l.files > image.layers[best]!.files ? i : best), 0)]!;
    const busiestBlob = path.join(layout, 'blobs/sha256', busiest.digest.slice(7));
    const busiestTar = image.layers.find((l, i) => layers[i] === busiest)!.uncompressedBytes;
    const entries = image.layers[layers.indexOf(busiest)]!.files;
    rows.push(await measure('unpack-nsbox-files', `unpack one layer of ${entries} entries (gzip): nsbox unpackLayer`, reps, busiestTar, async () => {
      const target = fresh();
      await fs.mkdir(target);
      await unpackLayer(createReadStream(busiestBlob), busiest, target, { rootless: false });
      return target;
    }));
    rows.push(await measure('unpack-tar-files', `unpack one layer of ${entries} entries (gzip): tar -xzf`, reps, busiestTar, async () => {
      const target = fresh();
      await fs.mkdir(target);
      await run('tar', ['--numeric-owner', '--same-owner', '-p', '--xattrs', '-xzf', busiestBlob, '-C', target]);
      return target;
    }));
    const median = (id: string) => rows.find((row) => row.id === id)!.medianMs;
    return { image, reps, rows, pullUnpackRatio: median('nsbox') / median('skopeo-umoci') };
  } finally {
    await registry.stop();
    if (process.env.NSBOX_BENCH_KEEP) process.stderr.write(`kept ${work.path}\n`);
    else await work.cleanup();
  }
}

/** One warm-up, then `reps` timed runs of `task`; what it returns (a directory) is removed after each, untimed. */
async function measure(id: string, label: string, reps: number, bytes: number, task: () => Promise<string>): Promise<BenchRow> {
  const samplesMs: number[] = [];
  for (let i = 0; i <= reps; i++) {
    const start = process.hrtime.bigint();
    const made = await task();
    const elapsed = Number(process.hrtime.bigint() - start) / 1e6;
    if (i > 0) samplesMs.push(elapsed);
    await fs.rm(made, { recursive: true, force: true });
  }
  const sorted = [...samplesMs].sort((a, b) => a - b);
  return { id, label, medianMs: sorted[Math.floor(sorted.length / 2)]!, samplesMs, bytes };
}

/** Copies regular files, directories and symlinks of `source` (sorted walk) into `target` until about `limit` bytes. */
async function copyUpTo(source: string, target: string, limit: number): Promise<void> {
  let copied = 0;
  const walk = async (rel: string): Promise<void> => {
    const entries = await fs.readdir(path.join(source, rel), { withFileTypes: true }).catch(() => []);
    await fs.mkdir(path.join(target, rel), { recursive: true });
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (copied >= limit) return;
      const from = path.join(source, rel, entry.name);
      const to = path.join(target, rel, entry.name);
      if (entry.isDirectory()) await walk(path.join(rel, entry.name));
      else if (entry.isSymbolicLink()) await fs.symlink(await fs.readlink(from), to);
      else if (entry.isFile()) {
        await fs.copyFile(from, to);
        copied += (await fs.stat(to)).size;
      }
    }
  };
  await walk('');
  if (copied < limit / 4) throw new Error(`${source} has only ${copied} bytes of files; the benchmark wants about ${limit}`);
}

async function describe(layout: string, scratch: string): Promise<PullUnpackReport['image']> {
  const image = await readOciImage(layout, { tag: OCI_TAG });
  const layers = [];
  await fs.mkdir(scratch);
  for (const layer of image.layers) {
    const blob = path.join(layout, 'blobs/sha256', layer.digest.slice(7));
    const { stdout } = await execFileAsync('sh', ['-c', `gzip -dc '${blob}' | wc -c; gzip -dc '${blob}' | tar -t | wc -l`]);
    const [uncompressed, files] = stdout.trim().split('\n').map(Number);
    layers.push({ compressedBytes: layer.size, uncompressedBytes: uncompressed!, files: files! });
  }
  return {
    layers,
    compressedBytes: layers.reduce((sum, l) => sum + l.compressedBytes, 0),
    uncompressedBytes: layers.reduce((sum, l) => sum + l.uncompressedBytes, 0),
  };
}

async function sha256File(file: string): Promise<string> {
  const { stdout } = await execFileAsync('sha256sum', [file]);
  return `sha256:${stdout.split(' ')[0]}`;
}

async function run(command: string, args: string[]): Promise<void> {
  await execFileAsync(command, args, { maxBuffer: 64 * 1024 * 1024 });
}

/** The report as markdown: the image, then one table row per measurement. */
export function formatPullUnpack(report: PullUnpackReport): string {
  const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
  const lines = [
    `Image: ${report.image.layers.length} layers, ${mb(report.image.compressedBytes)} gzip, ${mb(report.image.uncompressedBytes)} unpacked ` +
      `(${report.image.layers.map((l) => `${mb(l.uncompressedBytes)}/${l.files} entries`).join(', ')}); median of ${report.reps} runs after 1 warm-up, warm page cache.`,
    '',
    '| what | median ms | MB/s (unpacked) | samples ms |',
    '|---|---:|---:|---|',
    ...report.rows.map((row) => `| ${row.label} | ${row.medianMs.toFixed(0)} | ${row.bytes ? (row.bytes / 1e6 / (row.medianMs / 1000)).toFixed(0) : ''} | ${row.samplesMs.map((s) => s.toFixed(0)).join(', ')} |`),
    '',
    `nsbox pull + unpack takes ${report.pullUnpackRatio.toFixed(2)}× the time of skopeo + umoci.`,
  ];
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const { values } = parseArgs({ options: { reps: { type: 'string' }, 'layer-mb': { type: 'string' } } });
  const report = await benchPullUnpack({ reps: values.reps ? Number(values.reps) : undefined, layerMb: values['layer-mb'] ? Number(values['layer-mb']) : undefined });
  process.stdout.write(`${formatPullUnpack(report)}\n\n${JSON.stringify(report, null, 2)}\n`);
}
