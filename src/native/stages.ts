// SPDX-License-Identifier: Apache-2.0
// Names of the child's setup stages, in the order of the enum in addon/src/sync_msg.h.

/**
 * The setup stage a {@link SetupError} happened in.
 *
 * @example
 * ```ts
 * if (error instanceof SetupError && error.stage === 'bind-mount') console.error(`cannot mount ${error.path}`);
 * ```
 */
export type SetupStage = (typeof STAGES)[number];

/** @internal Index = the stage number the addon reports. */
export const STAGES = [
  'unknown',
  'clone',
  'parent-setup',
  'id-map',
  'network-setup',
  'cgroup-attach',
  'join-namespaces',
  'terminal',
  'join-network',
  'cgroup-namespace',
  'mount-private',
  'scratch-mount',
  'overlay-mount',
  'bind-mount',
  'tmpfs-mount',
  'proc-mount',
  'devpts-mount',
  'mkdir',
  'symlink',
  'mask',
  'readonly',
  'pivot-root',
  'readonly-root',
  'hostname',
  'loopback',
  'cwd',
  'user',
  'capabilities',
  'no-new-privs',
  'parent-death',
  'stdio',
  'rlimits',
  'seccomp',
  'exec',
] as const;

/** @internal */
export function stageName(stage: number): SetupStage {
  return STAGES[stage] ?? 'unknown';
}

/** @internal The stage number for a name (for the fault-injection hook in tests). */
export function stageNumber(name: SetupStage): number {
  return STAGES.indexOf(name);
}
