"""`flip liveness-train`: fine-tune a FLIP checkpoint for liveness, CLIPC8's recipe.

    flip liveness-train --config finetune/configs/liveness_lora.yaml --liveness.data runs/spoof

Contrastive training (`flip train`) on pairs whose text is the image's category description, built
from spoof records by `flip.train.liveness.build_train_config`. The config is `flip train`'s (model, data,
loss, optim, towers: full or LoRA, run) plus a `liveness:` section (data, dataset, split, prompts,
exclude, max_samples, seed); `--section.key value` overrides any field. The result is a checkpoint
for `flip liveness --model`. As `flip train` does, a new run refuses a `run.output_dir` that holds a
previous run unless `--resume` (an error when there is nothing to resume) or `--overwrite` (start
afresh: the run's files are removed, others stay); the check comes before the pairs are written.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flip liveness-train", allow_abbrev=False,
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="YAML: a liveness: section plus flip train's sections")
    parser.add_argument("--print-config", action="store_true", help="build the pairs, print the train config, exit")
    parser.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CHECKPOINT",
                        help="continue from a checkpoint (default: the last one in run.output_dir)")
    parser.add_argument("--overwrite", action="store_true",
                        help="start afresh in a run.output_dir that holds a previous run (its run files are removed)")
    args, overrides = parser.parse_known_args(argv)
    if args.resume is not None:
        overrides += ["--run.resume", args.resume]
    if args.overwrite:
        overrides += ["--run.overwrite", "true"]

    import yaml

    from flip.train.liveness import build_train_config
    from flip.train.config import merge, parse_overrides, read_yaml
    from flip.train.loop import NonFiniteLossError, train

    try:
        section, config = build_train_config(merge(read_yaml(args.config), parse_overrides(overrides)),
                                             claim=not args.print_config)
    except (ValueError, OSError, TypeError) as err:
        print(f"flip liveness-train: {err}", file=sys.stderr)
        return 2
    if args.print_config:
        print(yaml.safe_dump({"liveness": vars(section), **config.to_dict()}, sort_keys=False), end="")
        return 0
    try:
        result = train(config)
    except (NonFiniteLossError, ValueError, FileNotFoundError) as err:
        print(f"flip liveness-train: {err}", file=sys.stderr)
        return 1 if isinstance(err, NonFiniteLossError) else 2
    print(f"flip liveness-train: {result.status} after {result.step} steps; model in {result.final_dir}",
          file=sys.stderr)
    return 0
