"""Training checkpoints: written atomically, read safely, holding everything a resume needs.

Design choices:
- One file, `checkpoint-last.pt`, rewritten at every save by `flip.state_file.save_checkpoint`
  (atomic: a crash or a signal while saving leaves the previous checkpoint intact).
- Contents: the objective's state (model, momentum encoders, queue), optimiser, scheduler, the data
  position (epoch, batch within the epoch, sampler seed), the global step, the RNG states of every
  process (python, numpy, torch CPU and CUDA), the last evaluation (its step and figures, so a resume
  neither repeats nor loses it), and the resolved config for reference.
- A run owns its files in its output folder: a new run refuses a folder holding another run's
  (`run.resume` continues it, `run.overwrite` starts over, removing only those files), and a resume
  truncates metrics.jsonl to what had been written when its checkpoint was saved and removes the
  temporary files of a write that was killed, so a killed and resumed run reads like one that never
  stopped.
- Everything is stored as tensors, numbers, strings, lists and dicts (numpy's RNG state is converted),
  so checkpoints load with `torch.load(weights_only=True)`: reading one never runs code.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch

LAST = "checkpoint-last.pt"
METRICS = "metrics.jsonl"
#: What a run writes into its output folder (besides the final model, `final/`, and a LoRA run's
#: adapter alone, `adapter/`).
RUN_FILES = (LAST, METRICS, "config.yaml", "tensorboard")
ADAPTER_DIR = "adapter"
#: What marks a folder as holding a `flip train` run (a recipe that writes other files passes its own).
TRAIN_RUN = (*RUN_FILES, "final", ADAPTER_DIR)


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


def claim_output_dir(output_dir: str | os.PathLike, resume: str | None, overwrite: bool = False,
                     run_files: tuple[str, ...] = TRAIN_RUN, section: str = "run.") -> Path | None:
    """Check that a run may write into `output_dir`; returns the checkpoint to resume from, if any.

    A new run refuses a folder that holds a run's files (`run_files`: names in `output_dir`;
    `overwrite` removes them, keeping the rest); `resume` must find a checkpoint. Errors name the
    field (`section` + output_dir, resume) and the way out."""
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise FileExistsError(f"{section}output_dir {output_dir}: is a file, not a folder "
                              f"(choose another {section}output_dir)")
    if resume is not None:
        path = find_resume(resume, output_dir)
        if path is None:
            raise FileNotFoundError(f"{section}resume: nothing to resume in {output_dir} (no {LAST}; "
                                    "start a new run without --resume)")
        return path
    found = [name for name in run_files if (output_dir / name).exists()]
    if found and not overwrite:
        raise FileExistsError(f"{section}output_dir {output_dir}: holds a previous run ({', '.join(found)}; continue "
                              f"it with --resume, start over with --overwrite, or choose another {section}output_dir)")
    if found:
        remove_run_files(output_dir, run_files)
    return None


def remove_run_files(output_dir: Path, run_files: tuple[str, ...] = TRAIN_RUN) -> None:
    """Remove what a run wrote into `output_dir` (checkpoint, metrics, config, TensorBoard events, the
    final model's files, temporary files); anything else is the user's and stays."""
    from ..hub import ADAPTER_FILES, FLIP_FILES, MODEL_CARD, is_adapter, is_flip_checkpoint

    for name in (n for n in run_files if n not in ("final", ADAPTER_DIR)):
        path = output_dir / name
        if path.is_dir():
            for event in path.glob("events.out.tfevents.*"):
                event.unlink()
            if not any(path.iterdir()):
                path.rmdir()
        elif path.exists():
            path.unlink()
    for name, ours, written in (("final", FLIP_FILES, is_flip_checkpoint),
                                (ADAPTER_DIR, ADAPTER_FILES | {MODEL_CARD}, is_adapter)):
        folder = output_dir / name
        if name in run_files and written(folder):
            for path in folder.iterdir():
                if path.name in ours and path.is_file():
                    path.unlink()
            if not any(folder.iterdir()):
                folder.rmdir()
    remove_stale_temp_files(output_dir)


def remove_stale_temp_files(output_dir: Path) -> None:
    """Temporary files and folders of writes that were killed (checkpoint, config, final model)."""
    for path in output_dir.iterdir():
        if re.fullmatch(rf"\.{re.escape(LAST)}\.tmp-\d+|\.config\.yaml\.tmp", path.name) and path.is_file():
            path.unlink()
        elif re.fullmatch(rf"\.(final|{ADAPTER_DIR})\.[a-z0-9_]{{8}}", path.name) and path.is_dir():  # flip.save's
            shutil.rmtree(path)


def truncate_metrics(output_dir: Path, state: dict) -> None:
    """Cut metrics.jsonl back to what it held when the checkpoint `state` was saved, so the steps a
    resume replays appear once (older checkpoints: keep the rows up to the checkpoint's step)."""
    path = Path(output_dir) / METRICS
    if not path.is_file():
        return
    size = state.get("metrics_bytes")
    if size is not None:
        if path.stat().st_size > size:
            with open(path, "r+b") as f:
                f.truncate(size)
        return
    import json

    lines = [line for line in path.read_text().splitlines(keepends=True)
             if line.strip() and json.loads(line).get("step", 0) <= state["step"]]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(lines))
    os.replace(tmp, path)


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

