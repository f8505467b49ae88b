{
  "variables": {
    "openblas_static%": ""
  },
  "targets": [
    {
      "target_name": "bert_native",
      "sources": ["matmul.c", "kernels.c", "elementwise.c"],
      "cflags": ["-O3", "-fno-math-errno", "-fno-trapping-math", "-std=c11", "-Wall"],
      "conditions": [
        [
          "openblas_static==''",
          { "libraries": ["-lopenblas"] },
          {
            "libraries": ["<(openblas_static)", "-lm", "-lpthread"],
            "ldflags": ["-Wl,--exclude-libs,ALL", "-Wl,--gc-sections", "-Wl,--strip-all"]
          }
        ]
      ]
    }
  ]
}
