"""`flip vqa-base-train`: build and pretrain the offline toy vision-language model that `flip vqa-train` adapts.

    flip vqa-base-train --config finetune/configs/vqa_toy_base.yaml
    flip vqa-base-train --config finetune/configs/vqa_toy_base.yaml --train.steps 20   # a smoke run

The recipe is `flip.train.vqa_base` (its config dataclass `VQABaseConfig` lists every field); it
writes `run.output_dir/model/`, the resolved `config.yaml` and `metrics.json`.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from flip.cli._recipe import recipe_command
    from flip.train.vqa_base import VQABaseConfig, run

    return recipe_command("flip vqa-base-train", __doc__, VQABaseConfig, run,
                          "YAML recipe (finetune/configs/vqa_toy_base.yaml)", argv)


if __name__ == "__main__":
    sys.exit(main())
