{
  "targets": [
    {
      "target_name": "synthmix_kernels",
      "sources": ["native/addon.cc", "native/decode.cc", "native/decode_engine.cc", "native/gemm.cc", "native/kernels.cc", "native/pool.cc"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "cflags!": ["-O2"],
      "cflags_cc!": ["-O2", "-fno-exceptions"],
      "cflags_cc": ["-O3", "-fno-math-errno", "-ffp-contract=fast", "-Wno-psabi", "-std=gnu++20"],
      "conditions": [
        ["OS=='linux'", { "cflags_cc": ["-pthread"], "ldflags": ["-pthread"] }],
        ["target_arch=='x64'", { "cflags_cc": ["-march=native"] }],
        ["OS=='mac'", { "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-O3", "-fno-math-errno"], "GCC_ENABLE_CPP_EXCEPTIONS": "YES" } }]
      ]
    }
  ]
}
