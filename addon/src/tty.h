// SPDX-License-Identifier: Apache-2.0
// Pseudo-terminals of execs: the window size.
#ifndef NSBOX_TTY_H_
#define NSBOX_TTY_H_

#include <napi.h>

namespace sbx::tty {

Napi::Value SetWindowSize(const Napi::CallbackInfo& info);

}  // namespace sbx::tty

#endif  // NSBOX_TTY_H_
