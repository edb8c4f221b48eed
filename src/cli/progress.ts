// SPDX-License-Identifier: Apache-2.0
// Progress of a pull or push on the terminal: one bar per blob, redrawn in place on a TTY; one line per finished blob otherwise.
import type { Writable } from 'node:stream';
import { formatBytes } from './image-command.js';

/** A stream that may be a terminal. */
type Output = Writable & { isTTY?: boolean; columns?: number };

const redrawEveryMs = 100;
const barWidth = 30;

/**
 * Shows `{ digest, bytes, total }` events. On a TTY: a line per blob with a bar, redrawn in place
 * (cursor up, clear line) at most every 100 ms. Elsewhere (a pipe, a log): one line when a blob is
 * complete, nothing in between, so logs stay readable. Why not cli-progress: a dozen lines of ANSI
 * here do what is needed, without a dependency that takes over the stream.
 */
export class TransferProgress {
  readonly #out: Output;
  readonly #verb: string;
  readonly #blobs = new Map<string, { bytes: number; total: number; done: string | undefined }>();
  readonly #announced = new Set<string>();
  #drawnLines = 0;
  #lastDraw = 0;

  /** `verb` is the word for a finished blob: 'Pull complete', 'Pushed'. */
  constructor(out: Output, verb: string) {
    this.#out = out;
    this.#verb = verb;
  }

  /** `done` replaces the verb for this blob when it finished without a transfer ('Layer already exists'). */
  update({ digest, bytes, total }: { digest: string; bytes: number; total: number }, done?: string): void {
    // A finished blob that becomes "sending" again (a retried upload) redraws; a finished one never un-finishes in the log.
    this.#blobs.set(digest, { bytes, total, done: bytes >= total ? (done ?? this.#blobs.get(digest)?.done ?? this.#verb) : undefined });
    if (!this.#out.isTTY) {
      if (bytes >= total && !this.#announced.has(digest)) {
        this.#announced.add(digest);
        this.#out.write(`${short(digest)}: ${done ?? this.#verb} (${formatBytes(total)})\n`);
      }
      return;
    }
    const now = Date.now();
    if (now - this.#lastDraw >= redrawEveryMs || bytes >= total) this.#draw(now);
  }

  /** Draws the final state (on a TTY). */
  finish(): void {
    if (this.#out.isTTY && this.#blobs.size > 0) this.#draw(Date.now());
  }

  #draw(now: number): void {
    this.#lastDraw = now;
    let text = this.#drawnLines > 0 ? `\x1b[${this.#drawnLines}A` : '';
    for (const [digest, { bytes, total, done }] of this.#blobs) {
      const fraction = total > 0 ? Math.min(1, bytes / total) : 1;
      const filled = Math.round(fraction * barWidth);
      const bar = done !== undefined ? done : `[${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? '>' : ''}${' '.repeat(barWidth - filled)}] ${formatBytes(bytes)}/${formatBytes(total)}`;
      text += `\x1b[2K${short(digest)}: ${bar}\n`;
    }
    this.#drawnLines = this.#blobs.size;
    this.#out.write(text);
  }
}

/** The first 12 hex digits of a digest, as Docker shows layers. */
export function short(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}
