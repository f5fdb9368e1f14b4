"""`flip train`: pretrain a FLIP model from a YAML config plus `--section.key value` overrides.

    flip train --config finetune/configs/pretrain_flip_tiny.yaml --data.train data/synth --run.epochs 2
    flip train --config runs/flip/config.yaml --resume            # continue where it stopped
    torchrun --nproc_per_node 2 -m flip train --config ...        # several processes (DDP)

The recipe is `flip.train.pretrain.run`; every field of its `TrainConfig` can be overridden;
`--print-config` shows the resolved config and exits.
"""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flip train",
        allow_abbrev=False,
        description="Pretrain a FLIP model on image-caption pairs. Any config field can be overridden with "
        "--section.key VALUE (e.g. --optim.lr 1e-4 --run.epochs 3 --towers.text lora).",
    )
    parser.add_argument("--config", help="a YAML file with any of the sections model, data, loss, optim, towers, run")
    parser.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CHECKPOINT",
                        help="continue from a checkpoint (default: the last one in run.output_dir)")
    parser.add_argument("--overwrite", action="store_true",
                        help="start afresh in a run.output_dir that holds a previous run (its run files are removed)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args, overrides = build_parser().parse_known_args(argv)
    from flip.train.config import config_yaml, load_config
    from flip.train.loop import NonFiniteLossError
    from flip.train.pretrain import run

    if args.resume is not None:
        overrides += ["--run.resume", args.resume]
    if args.overwrite:
        overrides += ["--run.overwrite", "true"]
    config = load_config(args.config, overrides)  # a bad config: one line from flip.cli.main, exit 2
    if args.print_config:
        print(config_yaml(config), end="")
        return 0
    try:
        result = run(config)
    except NonFiniteLossError as err:
        print(f"flip train: {err}", file=sys.stderr)
        return 1
    if result.status == "interrupted" and result.checkpoint is not None:  # the first process saved it
        print(f"flip train: stopped by SIGTERM at step {result.step}; checkpoint {result.checkpoint}. "
              f"Continue with: flip train --config {config.run.output_dir}/config.yaml --resume", file=sys.stderr)
    if result.final_dir is not None:
        print(f"flip train: done, {result.step} steps; model saved to {result.final_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
