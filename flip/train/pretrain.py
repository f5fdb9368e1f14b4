"""Pretraining, FLIP's recipe (`flip train`): `TrainConfig` (flip.train.config) and `run(config)`.

The recipe is the trainer itself (`flip.train.loop.train`); this module gives it the shape every
recipe of the training wing has, a config dataclass plus `run(config) -> result`, so that callers
and commands treat pretraining like liveness, naming and the VQA recipes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from flip.train.config import TrainConfig

if TYPE_CHECKING:
    from flip.train.loop import StepInfo, TrainResult

__all__ = ["TrainConfig", "run"]


def run(config: TrainConfig, on_step: Callable[[StepInfo], None] | None = None) -> TrainResult:
    """Pretrain as configured (see `flip.train.loop`); returns the `TrainResult`."""
    from flip.train.loop import train

    return train(config, on_step)
