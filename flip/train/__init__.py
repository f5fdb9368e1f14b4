"""flip's pretraining trainer; its command, `flip train --config CONFIG.yaml [--section.key value ...]`, lives in
flip.cli.train (the library never imports its command line).

    from flip.train import load_config, train
    result = train(load_config("finetune/configs/pretrain_flip_tiny.yaml", ["--run.epochs", "1"]))

Modules, one concept each: `config` (TrainConfig, YAML and overrides), `modeling` (the model to
train, towers locked or LoRA-adapted), `objective` (FLIP's losses on a batch, momentum encoders and
queue), `data` (pairs, held-out split, resumable order), `optim` (AdamW groups and schedule),
`checkpoint` (atomic save, resume), `distributed` (torchrun glue), `evaluate` (recall and zero-shot),
`metrics` (JSON Lines, TensorBoard), `card` (the model card), `loop` (`train`). The losses themselves
are pure functions in `flip.losses`. Nothing is imported until used.
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "TrainConfig": "flip.train.config",
    "load_config": "flip.train.config",
    "save_config": "flip.train.config",
    "train": "flip.train.loop",
    "TrainResult": "flip.train.loop",
    "NonFiniteLossError": "flip.train.loop",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'flip.train' has no attribute {name!r}")
