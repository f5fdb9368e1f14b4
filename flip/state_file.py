"""A file of tensors and plain data (a training checkpoint, trained heads): written atomically, read safely.

It sits below the tasks and the trainer alike, so that a task can read what a training recipe wrote
(`flip.naming.pipeline.load_heads`) without importing the recipe.

Design choices:
- `torch.save` to a temporary file in the same folder, flushed to disk, then `os.replace` (atomic on
  POSIX), so a crash or a signal while saving leaves the previous file intact.
- Files are read with `torch.load(weights_only=True)`: reading one never runs code. Everything in
  them must therefore be tensors, numbers, strings, lists and dicts.
- A format marker and version are written into every file and checked on reading.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ._files import fsync_dir

FORMAT = "flip-train-checkpoint"
VERSION = 1


def save_checkpoint(state: dict, path: str | os.PathLike) -> Path:
    """Write `state` to `path` atomically (temporary file, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save({"format": FORMAT, "version": VERSION, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)  # the rename itself survives a power cut
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by `save_checkpoint` (weights-only unpickling)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path}: not a readable training checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path}: not a flip training checkpoint (no format marker {FORMAT!r})")
    if state.get("version") != VERSION:
        raise ValueError(f"{path}: checkpoint version {state.get('version')} is not {VERSION}, which this flip reads")
    return state
