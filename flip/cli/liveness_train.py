"""`flip liveness-train`: fine-tune a FLIP checkpoint for liveness, CLIPC8's recipe.

    flip liveness-train --config finetune/configs/liveness_lora.yaml --liveness.data runs/spoof

Contrastive training (`flip train`) on pairs whose text is the image's category description, built
from spoof records: the recipe is `flip.train.liveness.run`. The config is `flip train`'s (model, data,
loss, optim, towers: full or LoRA, run) plus a `liveness:` section (data, dataset, split, prompts,
exclude, max_samples, seed); `--section.key value` overrides any field. The result is a checkpoint
for `flip liveness --model`.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flip liveness-train", allow_abbrev=False,
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="YAML: a liveness: section plus flip train's sections")
    parser.add_argument("--print-config", action="store_true", help="build the pairs, print the train config, exit")
    args, overrides = parser.parse_known_args(argv)

    import yaml

    from flip.train.config import merge, parse_overrides, read_yaml
    from flip.train.liveness import build_train_config, run
    from flip.train.loop import NonFiniteLossError

    try:
        raw = merge(read_yaml(args.config), parse_overrides(overrides))
        if args.print_config:
            section, config = build_train_config(raw)
            print(yaml.safe_dump({"liveness": vars(section), **config.to_dict()}, sort_keys=False), end="")
            return 0
        result = run(raw)
    except (NonFiniteLossError, ValueError, FileNotFoundError, TypeError) as err:
        print(f"flip liveness-train: {err}", file=sys.stderr)
        return 1 if isinstance(err, NonFiniteLossError) else 2
    print(f"flip liveness-train: {result.status} after {result.step} steps; model in {result.final_dir}",
          file=sys.stderr)
    return 0
