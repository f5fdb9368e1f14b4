"""`flip liveness`: is each face image a live person or a presentation attack, and which attack.

    flip liveness faces/                                   # table: decision, live score, attack
    flip liveness faces/ --calibrate dev/ --json           # threshold at the dev set's EER; JSON Lines
    flip liveness a.jpg --model runs/liveness/final --threshold 0.3

Scored against text descriptions of a live face and of each attack category (the shipped prompts
`liveness`), by the shipped liveness model unless `--model` names another: `flip-tiny-synth-liveness`,
the embedded default fine-tuned on (attack image, its description) pairs after CLIPC8, with one attack
category (3d_mask) kept out of its training. `--model flip-tiny-synth` answers zero-shot with the
embedded default itself; a checkpoint from `flip liveness-train` is used the same way. Both ship
trained on synthetic faces only. The threshold on the live score is `--threshold`, or chosen on a
labelled development folder (`--calibrate DIR`: live/ and attack/<type>/ folders, or any layout
flip.data.loaders reads) at its EER or, with `--target-bpcer`, at that BPCER. Without either, the
threshold is the one the model ships (chosen at release on a development split by `flip
liveness-calibrate`, stored in its config.json) when it was chosen for these prompts, else 0.5; the
run's last line says which. A score equal to the threshold is live. Unreadable images are reported by path and skipped (exit code 1; `--skip-bad`: 0).

The decision rule: the live score is live against the best attack category,
p_live / (p_live + p_best_attack) from the per-category probabilities, so at threshold 0.5 an image
is live exactly when "live" scores above every attack category; a shipped threshold below 0.5 says
that, for this model, an attack category must win by a margin before a face is called an attack.

Photos go through the face stage (`--faces`, default auto) and get one answer per face; JSON Lines
records are {"path", "face", "box", "detector_score", "whole_image", "liveness": {"decision",
"live_score", "attack", "threshold", "scores"}, "model"}, the table groups faces by image, and
`--draw DIR` writes each photo with its boxes and decisions. `--backend onnx --model FOLDER` scores
with a folder written by `flip export MODEL FOLDER --onnx`, on onnxruntime.
"""

from __future__ import annotations

import argparse
import json
import sys

from flip.cli._common import add_device_arguments, add_skip_bad, partial_exit, printable, skipped_line
from flip.cli._faces import (PhotoNotes, add_face_arguments, draw_image, face_cell, face_stage, one_line,
                             per_image)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="flip liveness", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:]), allow_abbrev=False)
    p.add_argument("inputs", nargs="+", metavar="IMAGES_OR_DIR",
                   help="image files and/or folders (searched recursively)")
    p.add_argument("--model", default=None, help="model name, Hub id, directory or file (default: flip-tiny-synth-liveness, "
                                                 "the embedded liveness fine-tune)")
    p.add_argument("--backend", choices=("torch", "onnx"), default="torch",
                   help="onnx: --model is a folder written by `flip export MODEL FOLDER --onnx` (onnxruntime)")
    p.add_argument("--prompts", default="liveness", help="liveness prompt file: task name or path (default: liveness)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--threshold", type=_probability, default=None,
                     help="live when the live score (live against the best attack) >= this "
                          "(default: the model's shipped threshold, else 0.5: live beats every attack)")
    how.add_argument("--calibrate", default=None, metavar="DEV_DIR",
                     help="choose the threshold on this labelled dev set")
    p.add_argument("--dataset", default="auto", help="--calibrate's layout (a flip.data.loaders name; default: auto)")
    p.add_argument("--target-bpcer", type=_probability, default=None,
                   help="with --calibrate: the highest threshold whose dev BPCER is at most this (default: at the EER)")
    p.add_argument("--json", action="store_true", help="write JSON Lines, one object per image")
    add_device_arguments(p)
    add_face_arguments(p)
    add_skip_bad(p)
    return p


def _probability(value: str) -> float:
    """argparse type of --threshold and --target-bpcer: a number in [0, 1] (nan is not one)."""
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {value!r}") from None
    if not 0.0 <= x <= 1.0:  # also false for nan
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {value!r}")
    return x


def _fail(message: str) -> int:
    print(f"flip liveness: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.target_bpcer is not None and args.calibrate is None:
        parser.error("--target-bpcer needs --calibrate DEV_DIR")
    from flip.cli.classify import collect_images

    try:
        stage = face_stage(args)
    except ValueError as err:
        return _fail(str(err))
    paths, problems = collect_images(args.inputs)
    for path, why in problems:
        print(skipped_line(path, why), file=sys.stderr)
    if not paths:  # every input missing: exit 1 like any run with skipped inputs, without loading the model
        print(f"scored no image; skipped {len(problems)} missing", file=sys.stderr)
        return partial_exit(0, len(problems), args.skip_bad)

    import torch

    from flip.hub import load
    from flip.liveness import DEFAULT_LIVENESS_MODEL, LivenessClassifier, calibrate

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.backend == "onnx":
        from flip.onnx_backend import load_onnx

        if args.model is None:
            return _fail("--backend onnx needs --model FOLDER, a folder written by `flip export MODEL FOLDER --onnx`")
        model, processor = load_onnx(args.model)
    else:
        args.model = args.model or DEFAULT_LIVENESS_MODEL
        model, processor = load(args.model, device=device)
    try:
        clf = LivenessClassifier(model, processor, args.prompts, threshold=args.threshold)
    except KeyError as err:  # an unknown prompt task
        return _fail(err.args[0])

    threshold, source = clf.threshold, ("--threshold" if args.threshold is not None else clf.threshold_source)
    if args.calibrate is not None:
        from flip.data.loaders import load_records

        try:
            records = load_records(args.calibrate, args.dataset, check_images=False)
            criterion = "eer" if args.target_bpcer is None else "bpcer"
            threshold, failed = calibrate(clf, records, criterion, args.target_bpcer, args.batch_size, args.workers)
        except (FileNotFoundError, ValueError, TypeError) as err:
            raise ValueError(f"--calibrate {args.calibrate}: {err}") from err
        for name, why in failed:
            print(skipped_line(name, why).replace("skipped", "skipped (dev)", 1), file=sys.stderr)
        how = f"BPCER <= {args.target_bpcer}" if args.target_bpcer is not None else "the EER"
        print(f"threshold {threshold:.4f}, chosen on {args.calibrate} at {how}", file=sys.stderr)
        source = f"chosen on {args.calibrate} at {how}"

    name = args.model
    notes = PhotoNotes("liveness", name, processor.settings.image_size)
    done, faces_done, skipped = 0, 0, len(problems)
    if not args.json:
        print(f"{'path':<40}  {'face':<22}  {'decision':<8}  {'live':>6}  attack")
    try:
        for batch in clf.score_files(paths, batch_size=args.batch_size, num_workers=args.workers, faces=stage):
            for path, why in batch.failed:
                skipped += 1
                print(skipped_line(path, why), file=sys.stderr)
            records = batch.records(threshold)
            for path, rows in per_image(notes, batch.paths, batch.faces, batch.no_face):
                for i in rows:
                    rec = {**records[i], "model": name}
                    if args.json:
                        print(json.dumps(rec))
                    else:
                        live = rec["liveness"]
                        shown = printable(path) if i == rows[0] else ""
                        print(f"{shown:<40}  {face_cell(rec):<22}  {live['decision']:<8}  {live['live_score']:6.3f}  "
                              f"{live['attack']}")
                if args.draw:
                    draw_image(args.draw, path, [batch.faces[i] for i in rows],
                               [_label(records[i]["liveness"]) for i in rows])
            done += len(set(batch.paths))
            faces_done += len(batch.paths)
    except (ImportError, OSError) as err:
        return _fail(one_line(err))
    print(f"scored {faces_done} face(s) in {done} image(s) at threshold {threshold:.4f} ({source}); "
          f"skipped {skipped} unreadable or missing", file=sys.stderr)
    return partial_exit(done, skipped, args.skip_bad)


def _label(live: dict) -> str:
    """A face's label in --draw pictures: the decision, the live score, the likeliest attack."""
    text = f"{live['decision']} {live['live_score']:.2f}"
    return text if live["decision"] == "live" else f"{text}\n{live['attack']}"
