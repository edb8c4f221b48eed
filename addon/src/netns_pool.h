// SPDX-License-Identifier: Apache-2.0
// Fresh network namespaces made ahead of time on a worker thread, for the spawn path to enter.
#ifndef NSBOX_NETNS_POOL_H_
#define NSBOX_NETNS_POOL_H_

#include <napi.h>

namespace sbx {

// createNetns(callback(errno | null, fd | null)): an O_CLOEXEC fd of a new, never-entered
// network namespace, made on a libuv worker thread that then returns to the host's namespace.
Napi::Value CreateNetns(const Napi::CallbackInfo& info);

}  // namespace sbx

#endif  // NSBOX_NETNS_POOL_H_
