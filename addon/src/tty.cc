// SPDX-License-Identifier: Apache-2.0
// The terminal size of an exec's pseudo-terminal, set through its master (TIOCSWINSZ); the
// kernel sends SIGWINCH to the terminal's foreground process group.
#include "tty.h"

#include <sys/ioctl.h>

#include <cerrno>

namespace sbx::tty {

Napi::Value SetWindowSize(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct winsize size = {};
  size.ws_col = static_cast<unsigned short>(info[1].As<Napi::Number>().Uint32Value());
  size.ws_row = static_cast<unsigned short>(info[2].As<Napi::Number>().Uint32Value());
  int r = ioctl(fd, TIOCSWINSZ, &size);
  return Napi::Number::New(info.Env(), r < 0 ? -errno : 0);
}

}  // namespace sbx::tty
