{
  "targets": [
    {
      "target_name": "berth",
      "sources": [
        "src-native/addon.cc",
        "src-native/napi-spec.cc",
        "src-native/napi-errors.cc",
        "src-native/spawn.cc",
        "src-native/container-setup.cc",
        "src-native/exit-watch.cc",
        "src-native/fs-ops.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++20", "-fno-exceptions", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"],
      "cflags_cc!": ["-std=gnu++17", "-fno-rtti"],
      "libraries": ["-lzstd"]
    },
    {
      "target_name": "berth-helper",
      "type": "executable",
      "sources": ["src-native/helper-main.cc"],
      "cflags_cc": ["-std=c++20", "-Wall", "-Wextra", "-O2", "-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-std=gnu++17"],
      "ldflags": ["-static", "-s"]
    }
  ]
}
