{
  "targets": [
    {
      "target_name": "berth",
      "sources": [
        "src-native/addon.cc",
        "src-native/spec-codec.cc",
        "src-native/napi-errors.cc",
        "src-native/spawn.cc",
        "src-native/spawn-io.cc",
        "src-native/spawn-exec.cc",
        "src-native/clone3-vm.cc",
        "src-native/netns-pool.cc",
        "src-native/container-setup.cc",
        "src-native/exit-watch.cc",
        "src-native/launch-watch.cc",
        "src-native/device-filter.cc",
        "src-native/process-setup.cc",
        "src-native/exec-plan-writer.cc",
        "src-native/fs-ops.cc",
        "src-native/fs-ops-napi.cc",
        "src-native/detached-overlay.cc",
        "src-native/btrfs-subvolume.cc",
        "src-native/btrfs-napi.cc",
        "src-native/zstd-napi.cc",
        "src-native/netlink.cc",
        "src-native/netlink-napi.cc",
        "src-native/dns-message.cc",
        "src-native/dns-handover.cc",
        "src-native/dns-napi.cc",
        "src-native/park-exec.cc",
        "src-native/park-napi.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++20", "-fno-exceptions", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"],
      "cflags_cc!": ["-std=gnu++17", "-fno-rtti"],
      "libraries": ["-l:libzstd.a"],
      "ldflags": ["-static-libstdc++", "-static-libgcc", "-Wl,--exclude-libs,ALL", "-Wl,--as-needed"]
    },
    {
      "target_name": "berth-helper",
      "type": "executable",
      "sources": [
        "src-native/helper-main.cc",
        "src-native/usermode-helpers.cc",
        "src-native/rootless-net.cc",
        "src-native/exec-plan-reader.cc",
        "src-native/process-setup.cc",
        "src-native/monitor.cc",
        "src-native/monitor-io.cc",
        "src-native/monitor-journal.cc",
        "src-native/monitor-log.cc",
        "src-native/monitor-probe.cc",
        "src-native/monitor-usermode.cc",
        "src-native/exec-plan-writer.cc",
        "src-native/spawn-io.cc",
        "src-native/clone3-vm.cc",
        "src-native/netns-pool.cc",
        "src-native/spawn.cc",
        "src-native/container-setup.cc",
        "src-native/spec-codec.cc",
        "src-native/netlink.cc",
        "src-native/dns-message.cc",
        "src-native/dns-handover.cc",
        "src-native/dns-responder.cc"
      ],
      "cflags_cc": ["-std=c++20", "-Wall", "-Wextra", "-Os", "-fno-exceptions", "-fno-rtti", "-fno-pie"],
      "cflags_cc!": ["-std=gnu++17", "-fPIC"],
      "ldflags": ["-static", "-no-pie", "-s", "-Wl,--gc-sections"]
    },
    {
      "target_name": "berth-exec",
      "type": "executable",
      "sources": [
        "src-native/exec-main.cc",
        "src-native/park-main.cc",
        "src-native/exec-plan-reader.cc",
        "src-native/process-setup.cc",
        "src-native/clone3-vm.cc"
      ],
      "defines": ["BERTH_FREESTANDING"],
      "cflags_cc": ["-std=c++20", "-Wall", "-Wextra", "-Os", "-ffreestanding", "-fno-exceptions", "-fno-rtti",
                    "-fno-stack-protector", "-fno-pie", "-fno-asynchronous-unwind-tables", "-fno-threadsafe-statics"],
      "cflags_cc!": ["-std=gnu++17", "-fPIC"],
      "ldflags": ["-static", "-nostdlib", "-nostartfiles", "-no-pie", "-s", "-Wl,--gc-sections"]
    }
  ]
}
