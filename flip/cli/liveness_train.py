"""`flip liveness-train`: fine-tune a FLIP checkpoint for liveness, CLIPC8's recipe.

    flip liveness-train --config finetune/configs/liveness_lora.yaml --liveness.data runs/spoof

Contrastive training (`flip train`) on pairs whose text is the image's category description, built
from spoof records. The recipe is `flip.train.liveness.run`; its config (`LivenessTrainConfig`) is
`flip train`'s (model, data, loss, optim, towers: full or LoRA, run) plus a `liveness:` section
(data, dataset, split, prompts, exclude, max_samples, seed); `--section.key value` overrides any
field. The result is a checkpoint for `flip liveness --model`, beside the resolved `config.yaml`.
As `flip train` does, a new run refuses a `run.output_dir` that holds a previous run unless
`--resume` (an error when there is nothing to resume) or `--overwrite` (start afresh: the run's
files are removed, others stay); the check comes before the pairs are written.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from flip.cli._recipe import recipe_command
    from flip.train.liveness import LivenessTrainConfig, run

    return recipe_command("flip liveness-train", __doc__, LivenessTrainConfig, run,
                          "YAML: a liveness: section plus flip train's sections", argv,
                          report=lambda r: f"{r.status} after {r.step} steps; model in {r.final_dir}",
                          run_section="run.")


if __name__ == "__main__":
    sys.exit(main())
