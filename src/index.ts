// SPDX-License-Identifier: Apache-2.0
// nsbox: the public API.
export { run, spawn, type OutputOf } from './sandbox.js';
export { SandboxProcess } from './process.js';
export { RunError, type RunResult, type ResourceUsage } from './result.js';
export { SandboxError, SetupError, isSandboxError, type ErrorCode } from './errors.js';
export type { SandboxOptions, ImageInput, LayerStack, Mount, BindMount, TmpfsMount, Limits } from './options.js';
export type { ImageConfig } from './image/image-config.js';
export type { RlimitName } from './security.js';
export type { ResolvedImage } from './image/layer-store.js';
export { ImageStore, type ImageStoreOptions, type ImageInfo, type ResolveOptions } from './store/image-store.js';
export type { PullOptions, PullProgress } from './store/pull.js';
export type { PushOptions, PushProgress, PushResult } from './store/push.js';
export type { GcResult } from './store/gc.js';
export type { RegistryCredentials } from './registry/auth.js';
export type { SetupStage } from './native/stages.js';
