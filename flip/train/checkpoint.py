"""Training checkpoints: written atomically, read safely, holding everything a resume needs.

Design choices:
- One file, `checkpoint-last.pt`, rewritten at every save by `flip.state_file.save_checkpoint`
  (atomic: a crash or a signal while saving leaves the previous checkpoint intact).
- Contents: the objective's state (model, momentum encoders, queue), optimiser, scheduler, the data
  position (epoch, batch within the epoch, sampler seed), the global step, the RNG states of every
  process (python, numpy, torch CPU and CUDA), and the resolved config for reference.
- Everything is stored as tensors, numbers, strings, lists and dicts (numpy's RNG state is converted),
  so checkpoints load with `torch.load(weights_only=True)`: reading one never runs code.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

LAST = "checkpoint-last.pt"


def find_resume(resume: str | None, output_dir: str | os.PathLike) -> Path | None:
    """The checkpoint to resume from: `resume` itself, or for "auto" the last one in `output_dir` (if any)."""
    if resume is None:
        return None
    if resume == "auto":
        path = Path(output_dir) / LAST
        return path if path.is_file() else None
    path = Path(resume)
    if path.is_dir():
        path = path / LAST
    if not path.is_file():
        raise FileNotFoundError(f"run.resume: no checkpoint at {path}")
    return path


def rng_state() -> dict:
    """This process's RNG states (python, numpy, torch CPU, CUDA if initialised), as plain data."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    numpy = state["numpy"]
    np.random.set_state((numpy["kind"], numpy["keys"].numpy().astype(np.uint32), numpy["pos"], numpy["has_gauss"],
                         numpy["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])

