"""Liveness fine-tuning, CLIPC8's recipe (papers.md): contrastive training on (image, its category's
description) pairs.

`flip.liveness.liveness_pairs` builds the pairs from spoof records; they are written as an
imagefolder dataset and pretrained by `flip.train.loop.train` (full or LoRA, every `flip train`
section applies). The result is a FLIP checkpoint, used through `flip.liveness.LivenessClassifier`
like any other. In-batch negatives of the same category are false negatives; the paper's recipe
accepts that.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path

from flip.data.formats import write_dataset
from flip.data.loaders import load_records
from flip.liveness import LIVENESS_TASK, check_liveness_prompts, liveness_pairs
from flip.prompts import load_prompts
from flip.train.checkpoint import claim_output_dir
from flip.train.config import from_dict, load_config


@dataclass
class LivenessSection:
    """The `liveness:` section of a `flip liveness-train` config; every other section is `flip train`'s."""

    data: str = ""  # spoof records: `flip data synth --kind spoof` output, or an anti-spoofing layout
    dataset: str = "auto"  # its layout (a flip.data.loaders name, e.g. antispoof) or auto
    split: str | None = "train"  # the split to train on
    prompts: str = LIVENESS_TASK  # the prompt file whose sentences caption each category
    exclude: list[str] = field(default_factory=list)  # categories held out of training (unseen attacks)
    max_samples: int | None = None  # use only the first N records
    seed: int = 0  # which sentence captions which image

    def __post_init__(self):
        if not self.data:
            raise ValueError("liveness.data must name the spoof dataset to train on")
        if self.max_samples is not None and self.max_samples < 1:
            raise ValueError(f"liveness.max_samples must be >= 1 or null, got {self.max_samples}")
        if not isinstance(self.exclude, list) or not all(isinstance(e, str) for e in self.exclude):
            raise ValueError(f"liveness.exclude must be a list of category names, got {self.exclude!r}")


def build_train_config(config: dict, pairs_dir: str | os.PathLike | None = None, claim: bool = True):
    """Write the pairs of a liveness-train config dict and return (LivenessSection, TrainConfig).

    The pairs go to `pairs_dir` (default: `<run.output_dir>/pairs`) as an imagefolder split
    "train"; the TrainConfig's `data.train` points at them. With `claim`, the output folder is first
    claimed as `flip train` does (`claim_output_dir`: a folder holding a previous run is refused
    unless run.resume or run.overwrite), so a refused run writes nothing.
    """
    config = dict(config)
    raw = config.pop("liveness", None)
    if not isinstance(raw, dict):
        raise ValueError("the config needs a 'liveness:' section (data, prompts, exclude, ...)")
    section = from_dict(LivenessSection, raw, "liveness")
    output_dir = Path(config.get("run", {}).get("output_dir", "runs/liveness"))
    pairs_dir = Path(pairs_dir) if pairs_dir is not None else output_dir / "pairs"
    data = {**config.get("data", {}), "train": str(pairs_dir), "split": "train"}
    train_config = load_config(None, {**config, "data": data})
    records = list(itertools.islice(load_records(section.data, section.dataset, section.split), section.max_samples))
    pairs = liveness_pairs(records, check_liveness_prompts(load_prompts(section.prompts)), section.exclude,
                           section.seed)
    if claim:
        run = train_config.run
        claim_output_dir(run.output_dir, run.resume, run.overwrite)
    write_dataset(pairs, pairs_dir, "imagefolder", "train", overwrite=True)
    return section, train_config
