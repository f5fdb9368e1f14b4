"""flip's evaluation harness: benchmarks (`eval/tasks/`) and metrics as local `evaluate` modules (`eval/metrics/`)."""
