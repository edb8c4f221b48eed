// SPDX-License-Identifier: Apache-2.0
// Persistent network namespaces (a bind mount of a namespace file, as `ip netns add` makes) and link removal.
#ifndef NSBOX_NETNS_H_
#define NSBOX_NETNS_H_

#include <napi.h>

namespace sbx::netns {

Napi::Value Create(const Napi::CallbackInfo& info);
Napi::Value Remove(const Napi::CallbackInfo& info);
Napi::Value DeleteLink(const Napi::CallbackInfo& info);

}  // namespace sbx::netns

#endif  // NSBOX_NETNS_H_
