"""Speed measurements, each a module with `parse_args(argv)`, `run(args) -> figures` (printing a
side-by-side table as it goes) and `main(argv)`; `python benchmarks/bench_<name>.py` runs one alone,
and `eval.run`'s speed suite imports and calls them. They stand on flip and never import eval/.
"""
