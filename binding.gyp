# SPDX-License-Identifier: Apache-2.0
# node-gyp fallback for the same build as addon/CMakeLists.txt (the source of truth).
# test/unit/build-files.test.ts checks that both list the same sources.
{
  "targets": [
    {
      "target_name": "nsbox",
      "sources": [
        "addon/src/addon.cc",
        "addon/src/caps.cc",
        "addon/src/child.cc",
        "addon/src/exit_watcher.cc",
        "addon/src/fds.cc",
        "addon/src/fsops.cc",
        "addon/src/marshal.cc",
        "addon/src/mount.cc",
        "addon/src/netns.cc",
        "addon/src/network_setup.cc",
        "addon/src/ns.cc",
        "addon/src/rootfs.cc",
        "addon/src/spawn_worker.cc",
        "addon/src/tty.cc",
        "addon/src/user.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
      "cflags_cc!": ["-fno-exceptions"]
    },
    {
      "target_name": "nsbox-init",
      "type": "executable",
      "sources": ["addon/init/nsbox_init.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "ldflags": ["-static"]
    },
    {
      "target_name": "nsbox-netconf",
      "type": "executable",
      "sources": ["addon/init/nsbox_netconf.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
