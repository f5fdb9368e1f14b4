"""`flip name-faces-train`: learn SECLA / SECLA-B heads that name faces, from image-caption pairs alone.

    flip name-faces-train --config finetune/configs/naming_secla.yaml --data runs/scenes --model runs/flip
    flip name-faces scene.png --caption "..." --model runs/flip --heads runs/name-faces/heads.pt

The recipe is `flip.train.naming.run`; its config is one flat YAML mapping
(`NameFacesTrainConfig`); `--key value` overrides any field. Writes `heads.pt` and the resolved `config.yaml` to `output_dir`, and
`checkpoint-last.pt` every `save_every` steps (`--resume` continues from it), and when the
records carry their faces' names, `metrics.json`: face-label precision, recall and F1 on the
training corpus itself (the paper's transductive setting), for the heads and the untrained baseline.
`--faces dlib` trains on dlib's face descriptors instead of the FLIP image tower's (the heads
remember it, and `flip name-faces --heads` embeds faces the same way). A new run refuses an
`output_dir` that holds a previous run unless `--resume` (an error when there is nothing to resume)
or `--overwrite` (start afresh: the run's files are removed, others stay), as `flip train` does.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flip name-faces-train", allow_abbrev=False,
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="YAML file with NameFacesTrainConfig fields")
    parser.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CHECKPOINT",
                        help="continue from a checkpoint (default: the last one in output_dir)")
    parser.add_argument("--overwrite", action="store_true",
                        help="start afresh in an output_dir that holds a previous run (its run files are removed)")
    args, overrides = parser.parse_known_args(argv)
    if args.resume is not None:
        overrides += ["--resume", args.resume]
    if args.overwrite:
        overrides += ["--overwrite", "true"]

    from flip.train.config import load_config
    from flip.train.naming import NameFacesTrainConfig, run

    try:
        run(load_config(args.config, overrides, cls=NameFacesTrainConfig),
            log=lambda message: print(f"flip name-faces-train: {message}", file=sys.stderr))
    except (ValueError, OSError, TypeError, ImportError) as err:
        print(f"flip name-faces-train: {err}", file=sys.stderr)
        return 2
    return 0
