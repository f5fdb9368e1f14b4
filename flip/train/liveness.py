"""Liveness fine-tuning, CLIPC8's recipe (papers.md): contrastive training on (image, its category's
description) pairs.

`flip.liveness.liveness_pairs` builds the pairs from spoof records; they are written as an
imagefolder dataset (`data.train`, default `<run.output_dir>/pairs`) and trained on by
`flip.train.loop.train` (full or LoRA, every `flip train` section applies). The config is
`TrainConfig` plus a `liveness:` section, so the resolved `config.yaml` the trainer writes holds the
whole recipe (which categories were held out included) and reads back as a `LivenessTrainConfig`.
The result is a FLIP checkpoint, used through `flip.liveness.LivenessClassifier` like any other.
In-batch negatives of the same category are false negatives; the paper's recipe accepts that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from flip.liveness import LIVENESS_TASK
from flip.train.config import TrainConfig

PAIRS_SPLIT = "train"


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


@dataclass
class LivenessTrainConfig(TrainConfig):
    """`flip liveness-train`'s config: `flip train`'s sections plus `liveness:`. `data.train` is where
    the recipe writes the pairs (default `<run.output_dir>/pairs`, split "train")."""

    liveness: LivenessSection = field(default_factory=LivenessSection)

    def __post_init__(self):
        if not self.data.train:
            self.data.train = str(Path(self.run.output_dir) / "pairs")
        if self.data.split is None:
            self.data.split = PAIRS_SPLIT
        if self.data.split != PAIRS_SPLIT:
            raise ValueError(f"data.split must be {PAIRS_SPLIT!r} (the split the recipe writes its pairs as), "
                             f"got {self.data.split!r}")
        super().__post_init__()


def write_pairs(config: LivenessTrainConfig) -> Path:
    """The (image, category description) pairs of `config.liveness`, written to `config.data.train`.

    The pairs are built (records read, prompts and excluded categories checked) before the output
    folder is claimed (`claim_output_dir`: a previous run there is refused unless run.resume or
    run.overwrite), so bad input is reported as such and a refused run writes nothing."""
    import itertools

    from flip.data.formats import write_dataset
    from flip.data.loaders import load_records
    from flip.liveness import check_liveness_prompts, liveness_pairs
    from flip.prompts import load_prompts
    from flip.train.checkpoint import claim_output_dir

    section = config.liveness
    records = list(itertools.islice(load_records(section.data, section.dataset, section.split), section.max_samples))
    pairs = liveness_pairs(records, check_liveness_prompts(load_prompts(section.prompts)), section.exclude,
                           section.seed)
    claim_output_dir(config.run.output_dir, config.run.resume, config.run.overwrite)
    write_dataset(pairs, config.data.train, "imagefolder", PAIRS_SPLIT, overwrite=True)
    return Path(config.data.train)


def run(config: LivenessTrainConfig):
    """The whole recipe (`flip liveness-train`): the pairs written, then `flip.train.loop.train` on
    them; returns the trainer's `TrainResult` (the model in `result.final_dir`)."""
    from flip.train.loop import train

    write_pairs(config)
    return train(config)
