"""`flip name-faces-train`: learn SECLA / SECLA-B heads that name faces, from image-caption pairs alone.

    flip name-faces-train --config finetune/configs/naming_secla.yaml --data runs/scenes --model runs/flip
    flip name-faces scene.png --caption "..." --model runs/flip --heads runs/name-faces/heads.pt

The recipe is `flip.train.naming.run`; its config is one flat YAML mapping
(`NameFacesTrainConfig`); `--key value` overrides any field. Writes `heads.pt` and the resolved `config.yaml` to `output_dir`, and
`checkpoint-last.pt` every `save_every` steps (`--resume auto` continues from it), and when the
records carry their faces' names, `metrics.json`: face-label precision, recall and F1 on the
training corpus itself (the paper's transductive setting), for the heads and the untrained baseline.
`--faces dlib` trains on dlib's face descriptors instead of the FLIP image tower's (the heads
remember it, and `flip name-faces --heads` embeds faces the same way).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from flip.cli._recipe import recipe_command
    from flip.train.naming import NameFacesTrainConfig, run

    def log(message: str) -> None:
        print(f"flip name-faces-train: {message}", file=sys.stderr)

    return recipe_command("flip name-faces-train", __doc__, NameFacesTrainConfig, lambda config: run(config, log=log),
                          "YAML file with NameFacesTrainConfig fields", argv,
                          run_section="")


if __name__ == "__main__":
    sys.exit(main())
