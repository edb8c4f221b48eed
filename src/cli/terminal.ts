// SPDX-License-Identifier: Apache-2.0
// `nsbox run -t`: the command on a terminal of the sandbox, wired to this terminal (raw mode, resize).
import type { ReadStream, WriteStream } from 'node:tty';
import { Sandbox, type CreateOptions } from '../box/sandbox.js';
import type { RunPlan } from './run.js';
import { failed, finished, type CliIo } from './run.js';

/**
 * Runs the plan's command with a pseudo-terminal: a sandbox is created, the command exec'd in
 * it with `tty`, and the sandbox removed when the command ends. This terminal goes to raw mode
 * (keys reach the sandbox's line discipline, ^C included) and its size follows along.
 */
export async function runOnTerminal(plan: Extract<RunPlan, { help: false }>, io: CliIo): Promise<number> {
  const { command, timeout, ...rest } = { ...plan.options, timeout: plan.options.limits?.timeout };
  const input = io.stdin as ReadStream;
  const output = io.stdout as WriteStream;
  let box: Sandbox | undefined;
  const rawMode = input.isTTY === true && typeof input.setRawMode === 'function';
  try {
    const { limits, ...createOptions } = rest as CreateOptions & { init?: boolean };
    const { timeout: _lifetime, ...boxLimits } = limits ?? {};
    void _lifetime;
    box = await Sandbox.create({ ...createOptions, ...(limits && { limits: boxLimits }) } as CreateOptions);
    const argv = command ?? [...box.imageConfig.entrypoint, ...box.imageConfig.cmd];
    // A terminal that reports no size (0×0, as under script(1)) gets the classic 80×24.
    const size = output.isTTY && output.columns > 0 && output.rows > 0 ? { columns: output.columns, rows: output.rows } : { columns: 80, rows: 24 };
    const child = box.exec(argv, { tty: size, encoding: 'buffer', buffer: false, reject: false, ...(timeout !== undefined && { timeout }) });
    if (rawMode) input.setRawMode(true);
    input.pipe(child.stdin!);
    child.stdout.pipe(io.stdout, { end: false });
    const onResize = () => output.columns > 0 && output.rows > 0 && child.resize(output.columns, output.rows);
    if (output.isTTY) output.on('resize', onResize);
    const result = await child;
    input.unpipe(child.stdin!);
    output.off('resize', onResize);
    return finished(result, plan.limits, io);
  } catch (error) {
    return failed(error, io);
  } finally {
    if (rawMode) input.setRawMode(false);
    input.pause();
    await box?.remove();
  }
}
