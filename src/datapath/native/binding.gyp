{
  "targets": [
    {
      "target_name": "meshaccel_bpf",
      "sources": ["bpf_addon.cc", "calibrate.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "libraries": ["-lbpf", "-lelf", "-lz", "-pthread"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra"]
    }
  ]
}
