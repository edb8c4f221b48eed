// SPDX-License-Identifier: Apache-2.0
// nsbox: the public API.
export { run, spawn, type OutputOf } from './sandbox.js';
export { SandboxProcess } from './process.js';
export { Sandbox, type CreateOptions, type ExecOptions, type SandboxStats, type SandboxState } from './box/sandbox.js';
export { RunError, type RunResult, type ResourceUsage } from './result.js';
export { SandboxError, SetupError, isSandboxError, type ErrorCode } from './errors.js';
export type { SandboxOptions, ImageInput, LayerStack, Mount, BindMount, TmpfsMount, VolumeMount, Limits } from './options.js';
export { createPool, SandboxPool, type PoolOptions, type PoolStats } from './pool/pool.js';
export { createVolume, listVolumes, removeVolume, type VolumeInfo } from './volume/volumes.js';
export type { ImageConfig } from './image/image-config.js';
export type { RlimitName } from './security.js';
export type { ResolvedImage } from './image/layer-store.js';
export { ImageStore, type ImageStoreOptions, type ImageInfo, type ResolveOptions } from './store/image-store.js';
export type { PullOptions, PullProgress } from './store/pull.js';
export type { LoadOptions } from './store/load.js';
export type { SaveOptions } from './store/save.js';
export type { CommitOptions, CommitConfig } from './store/commit.js';
export type { PushOptions, PushProgress, PushResult } from './store/push.js';
export type { GcResult } from './store/gc.js';
export type { RegistryCredentials } from './registry/auth.js';
export type { SetupStage } from './native/stages.js';
export { createNetwork, removeNetwork, listNetworks, type NetworkInfo, type CreateNetworkOptions } from './network/networks.js';
export { attachSandbox, type AttachOptions, type NetworkAttachment } from './network/attach.js';
export { collectLeftoverNetworks } from './network/collect.js';
export type { PortMapping } from './network/publish.js';
export type { EgressPolicy, EgressRule } from './network/egress.js';
