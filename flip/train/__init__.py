"""The training wing: the trainer, and one recipe per trainable thing.

Every recipe is a module with one shape: a config dataclass (validated in `__post_init__`, errors
naming the field, round-tripping through YAML) and `run(config) -> result`, behind a thin `flip`
command (in flip.cli: the library never imports its command line); each writes its resolved
config.yaml beside what it trains, and evaluation reads that file instead of importing the recipe:
- pretraining: `pretrain.run(TrainConfig)` (the trainer, `loop.train`), `flip train`;
- liveness fine-tuning (CLIPC8): `liveness.run(LivenessTrainConfig)`, `flip liveness-train`;
- face-naming heads (SECLA): `naming.run(NameFacesTrainConfig)`, `flip name-faces-train`;
- the offline toy VLM: `vqa_base.run(VQABaseConfig)`, `flip vqa-base-train`;
- VQA with LoRA: `vqa_lora.run(VQALoRAConfig)`, `flip vqa-train` (both VQA recipes train through
  `vqa_loop`).

    from flip.train import load_config, train
    result = train(load_config("finetune/configs/pretrain_flip_tiny.yaml", ["--run.epochs", "1"]))

The trainer's modules, one concept each: `config` (TrainConfig, YAML and overrides), `modeling`
(the model to train, towers locked or LoRA-adapted), `objective` (FLIP's losses on a batch,
momentum encoders and queue), `pairs` (pairs, held-out split, resumable order), `optim` (AdamW
groups and schedule), `checkpoint` (resume), `distributed` (torchrun glue), `evaluate` (recall and
zero-shot), `metric_log` (JSON Lines, TensorBoard), `card` (the model card), `loop` (`train`). The
losses themselves are pure functions in `flip.losses`. Nothing is imported until used.
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
