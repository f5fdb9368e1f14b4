"""One module per benchmark, each with `load_examples`, `predict` and `metric`."""
