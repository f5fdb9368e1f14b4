"""What users come for: one module or package per task, each built from a loaded model and processor."""
