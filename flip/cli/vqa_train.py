"""`flip vqa-train`: fine-tune a vision-language model with LoRA to answer questions about faces.

    flip vqa-train --config finetune/configs/vqa_lora_toy.yaml
    flip vqa-train --config finetune/configs/vqa_lora_toy.yaml --train.steps 20 --lora.rank 4

The recipe is `flip.train.vqa_lora` (its config dataclass `VQALoRAConfig` lists every field);
it writes the adapter, the resolved `config.yaml` and `metrics.json` to `run.output_dir`.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from flip.cli._recipe import recipe_command
    from flip.train.vqa_lora import VQALoRAConfig, run

    return recipe_command("flip vqa-train", __doc__, VQALoRAConfig, run,
                          "YAML recipe (finetune/configs/vqa_lora_*.yaml)", argv)


if __name__ == "__main__":
    sys.exit(main())
