// SPDX-License-Identifier: Apache-2.0
// The few file operations Node lacks: mknod (whiteouts) and xattrs for layer unpacking;
// openat2(RESOLVE_IN_ROOT) and linkat(AT_EMPTY_PATH) for files in a running sandbox.
#ifndef NSBOX_FSOPS_H_
#define NSBOX_FSOPS_H_

#include <napi.h>

namespace sbx::fsops {

Napi::Value Mknod(const Napi::CallbackInfo& info);
Napi::Value Lsetxattr(const Napi::CallbackInfo& info);
Napi::Value Lgetxattr(const Napi::CallbackInfo& info);
Napi::Value OpenInRoot(const Napi::CallbackInfo& info);
Napi::Value LinkAt(const Napi::CallbackInfo& info);
Napi::Value Llistxattr(const Napi::CallbackInfo& info);

}  // namespace sbx::fsops

#endif  // NSBOX_FSOPS_H_
