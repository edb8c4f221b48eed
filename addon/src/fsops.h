// SPDX-License-Identifier: Apache-2.0
// The few file operations Node lacks, for layer unpacking: mknod (whiteouts) and xattrs.
#ifndef NSBOX_FSOPS_H_
#define NSBOX_FSOPS_H_

#include <napi.h>

namespace sbx::fsops {

Napi::Value Mknod(const Napi::CallbackInfo& info);
Napi::Value Lsetxattr(const Napi::CallbackInfo& info);
Napi::Value Lgetxattr(const Napi::CallbackInfo& info);
Napi::Value Llistxattr(const Napi::CallbackInfo& info);

}  // namespace sbx::fsops

#endif  // NSBOX_FSOPS_H_
