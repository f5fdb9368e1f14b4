"""`flip liveness-calibrate`: choose a checkpoint's liveness threshold on a development split and ship it.

    flip liveness-calibrate flip/assets/flip-tiny-synth data/synth-spoof --split val --exclude 3d_mask

Scores the labelled development split with zero-shot liveness (the prompts, method and aggregate
`flip liveness` uses), chooses the threshold at its EER (or, with `--target-bpcer`, the highest one
whose BPCER is at most that), and writes it into the checkpoint folder's config.json as
`liveness_calibration` (threshold, prompts' sha256, where it was chosen, the dev figures); an adapter
folder (a LoRA run's `adapter/`, no config.json of its own) gets it as liveness_calibration.json. From
then on `flip liveness --model FOLDER` (and `flip export`'s ONNX folder of it) answers at that threshold
by default. Leave the unseen attack categories out (`--exclude`) and never calibrate on a test split.
A folder that already carries a calibration is refused unless `--overwrite`; the file is replaced
atomically, nothing else in the folder is touched. Training a checkpoint clears it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from flip.cli._common import add_device_arguments, skipped_line
from flip.cli.liveness import _probability


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="flip liveness-calibrate", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:]), allow_abbrev=False)
    p.add_argument("model", metavar="CHECKPOINT_DIR", help="a local checkpoint folder (its config.json is updated)")
    p.add_argument("data", metavar="DEV_DATA", help="labelled live/attack images (any layout flip.data.loaders reads)")
    p.add_argument("--dataset", default="auto", help="DEV_DATA's layout (a flip.data.loaders name; default: auto)")
    p.add_argument("--split", default="val",
                   help="DEV_DATA's development split (default: val; 'all' for a folder that has no splits)")
    p.add_argument("--exclude", nargs="*", default=[], metavar="CATEGORY",
                   help="attack categories left out (the unseen ones an evaluation keeps unseen)")
    p.add_argument("--prompts", default="liveness", help="liveness prompt file: task name or path (default: liveness)")
    p.add_argument("--target-bpcer", type=_probability, default=None,
                   help="the highest threshold whose dev BPCER is at most this (default: at the EER)")
    p.add_argument("--overwrite", action="store_true", help="replace a calibration the folder already carries")
    add_device_arguments(p)
    return p


def _fail(message: str) -> int:
    print(f"flip liveness-calibrate: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from flip._files import atomic_output, read_json_object

    from flip.hub import ADAPTER_CALIBRATION, is_adapter

    folder = Path(args.model)
    adapter = is_adapter(folder)
    config_file = folder / (ADAPTER_CALIBRATION if adapter else "config.json")
    if not adapter and not config_file.is_file():
        return _fail(f"{folder}: no config.json; a local checkpoint folder or adapter folder is needed "
                     "(flip convert writes a checkpoint)")
    try:
        config = {} if adapter else read_json_object(config_file, "a model config")
    except (OSError, ValueError) as err:
        return _fail(str(err))
    present = config_file.is_file() if adapter else config.get("liveness_calibration") is not None
    if present and not args.overwrite:
        return _fail(f"{config_file}: already carries a liveness calibration; pass --overwrite to replace it")

    import torch

    from flip.data.loaders import load_records
    from flip.hub import load
    from flip.liveness import LivenessClassifier, release_calibration

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        model, processor = load(str(folder), device=device)
        clf = LivenessClassifier(model, processor, args.prompts, threshold=0.5)
        unknown = sorted(set(args.exclude) - set(clf.classes))
        if unknown:
            return _fail(f"--exclude: {unknown} are not categories of the prompts {list(clf.classes)}")
        split = None if args.split == "all" else args.split
        records = list(load_records(args.data, args.dataset, split, check_images=False))
        calibration, failed = release_calibration(clf, records, data=args.data, split=split, exclude=args.exclude,
                                                  target_bpcer=args.target_bpcer, batch_size=args.batch_size,
                                                  num_workers=args.workers)
    except KeyError as err:  # an unknown prompt task
        return _fail(err.args[0])
    except (FileNotFoundError, ValueError, TypeError) as err:
        return _fail(f"{args.data}: {err}")
    for name, why in failed:
        print(skipped_line(name, why), file=sys.stderr)
    if adapter:
        config = calibration
    else:
        config["liveness_calibration"] = calibration
    with atomic_output(config_file) as pending:
        pending.path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    dev = calibration["dev"]
    print(f"threshold {calibration['threshold']:.4f} at {calibration['criterion']} on {args.data} {args.split} "
          f"({calibration['counts']['live']} live, {calibration['counts']['attack']} attacks): dev BPCER "
          f"{dev['bpcer']:.3f}, APCER max {dev['apcer_max']:.3f}, ACER {dev['acer']:.3f}; written to {config_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
