{
  "targets": [
    {
      "target_name": "bert_native",
      "sources": ["matmul.c", "kernels.c"],
      "cflags": ["-O3", "-fno-math-errno", "-fno-trapping-math", "-std=c11", "-Wall"],
      "libraries": ["-lopenblas"]
    }
  ]
}
