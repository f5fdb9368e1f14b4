"""Data: the record type every loader returns, the synthetic face world, and the real-dataset loaders."""
