"""`flip probe`: a linear probe on frozen image embeddings against zero-shot by description.

    flip probe --model flip-tiny-synth --train data/synth --test data/synth
    flip probe --model runs/flip/final --train data/celeba --split train --test data/celeba \\
        --test-split test --attribute Smiling --attribute Eyeglasses --json

For each attribute: a logistic-regression head is fitted on the training split's image embeddings
and scored on the test split, next to zero-shot classification by description on the same test
images and chance (the FLIP paper's downstream protocol: frozen encoders, one trained linear layer).
Prints a table, or with `--json` one JSON object. Datasets are anything `flip.data.loaders` reads.
"""

from __future__ import annotations

import argparse
import json
import sys

from flip.cli._common import add_device_arguments


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="flip probe", allow_abbrev=False, description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:]))
    p.add_argument("--model", default=None, help="model name, Hub id, directory or file (default: the embedded model)")
    p.add_argument("--train", required=True, metavar="DATA", help="the labelled training data (folder or file)")
    p.add_argument("--split", default="train", help="its split (default: train; 'none' for a dataset without splits)")
    p.add_argument("--test", default=None, metavar="DATA", help="the labelled test data (default: --train)")
    p.add_argument("--test-split", default="test", help="its split (default: test; 'none' for none)")
    p.add_argument("--dataset", default="auto", help="the data's layout, a flip.data.loaders name (default: auto)")
    p.add_argument("--attribute", action="append", default=None, metavar="NAME",
                   help="a label to probe (a record field such as emotion, or a key of extra such as Smiling); "
                        "repeat or comma-separate (default: every label with two or more values in training)")
    p.add_argument("--task", action="append", default=[], metavar="ATTRIBUTE=TASK",
                   help="the prompt task zero-shot uses for an attribute (default: the task named after it)")
    p.add_argument("--prompts", default=None, metavar="DIR", help="prompt folder (default: $FLIP_PROMPTS or flip's own)")
    p.add_argument("--max-train", type=int, default=None, metavar="N", help="use the first N training examples")
    p.add_argument("--max-test", type=int, default=None, metavar="N", help="use the first N test examples")
    p.add_argument("--weight-decay", type=float, action="append", default=None, metavar="L2",
                   help="an L2 penalty to try; repeat for several (default: 1e-4 1e-3 1e-2 1e-1, chosen on a "
                        "validation part of the training split)")
    p.add_argument("--max-iter", type=int, default=300, help="L-BFGS iterations per fit (default: 300)")
    p.add_argument("--seed", type=int, default=0, help="draws the validation part (default: 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    add_device_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("batch_size", "max_train", "max_test", "max_iter"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    attributes = None
    if args.attribute:
        attributes = list(dict.fromkeys(a.strip() for item in args.attribute for a in item.split(",") if a.strip()))
    tasks = {}
    for item in args.task:
        attribute, sep, task = item.partition("=")
        if not sep or not attribute or not task:
            parser.error(f"--task expects ATTRIBUTE=TASK, got {item!r}")
        tasks[attribute] = task
    test = args.test or args.train
    split = None if args.split.lower() == "none" else args.split
    test_split = None if args.test_split.lower() == "none" else args.test_split

    from flip.probe import ProbeConfig, probe_attributes

    try:
        config = ProbeConfig(max_iter=args.max_iter, seed=args.seed,
                             **({"weight_decays": tuple(args.weight_decay)} if args.weight_decay else {}))
    except ValueError as err:
        return _fail(str(err))
    try:
        train = _read(args.train, args.dataset, split, args.max_train)
        test_records = _read(test, args.dataset, test_split, args.max_test)
    except (ValueError, FileNotFoundError, TypeError) as err:
        return _fail(str(err))

    import torch

    from flip.hub import load

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        model, processor = load(args.model, device=device)
    except (FileNotFoundError, ValueError, KeyError) as err:
        return _fail(err.args[0] if isinstance(err, KeyError) else str(err))
    try:
        rows = probe_attributes(model, processor, train, test_records, attributes, config=config,
                                zeroshot_tasks=tasks, prompt_root=args.prompts, batch_size=args.batch_size,
                                num_workers=args.workers, sources=(_name(args.train, split), _name(test, test_split)))
    except ValueError as err:
        return _fail(str(err))

    means = summarise(rows)
    if args.json:
        print(json.dumps({
            "model": args.model, "train": {"data": args.train, "split": split},
            "test": {"data": test, "split": test_split}, "attributes": [r.to_dict() for r in rows], "mean": means,
        }, ensure_ascii=False))
    else:
        print(format_table(rows, means))
        for row in rows:
            if row.note:
                print(f"{row.attribute}: no zero-shot figure: {row.note}", file=sys.stderr)
    return 0


def _read(path: str, dataset: str, split: str | None, limit: int | None) -> list:
    from itertools import islice

    from flip.data.loaders import load_records

    records = list(islice(load_records(path, dataset=dataset, split=split), limit))
    if not records:
        raise ValueError(f"{_name(path, split)}: no examples")
    return records


def _name(path: str, split: str | None) -> str:
    return f"{path} (split {split})" if split else path


def summarise(rows) -> dict:
    """Unweighted means over attributes; zero-shot's over the attributes it scored (and its count)."""
    scored = [r for r in rows if r.zeroshot_accuracy is not None]
    return {
        "probe": sum(r.probe_accuracy for r in rows) / len(rows),
        "zeroshot": sum(r.zeroshot_accuracy for r in scored) / len(scored) if scored else None,
        "zeroshot_attributes": len(scored),
        "chance": sum(r.chance for r in rows) / len(rows),
    }


def format_table(rows, means: dict) -> str:
    """One line per attribute: probe and zero-shot accuracy, chance, examples; then the means."""
    width = max(len("attribute"), *(len(r.attribute) for r in rows))
    lines = [f"{'attribute':<{width}}  {'probe':>6}  {'zero-shot':>9}  {'chance':>6}  {'n train':>7}  {'n test':>6}"]
    for r in rows:
        zs = "-" if r.zeroshot_accuracy is None else f"{r.zeroshot_accuracy:.3f}"
        lines.append(f"{r.attribute:<{width}}  {r.probe_accuracy:>6.3f}  {zs:>9}  {r.chance:>6.3f}  "
                     f"{r.n_train:>7}  {r.n_test:>6}")
    zs = "-" if means["zeroshot"] is None else f"{means['zeroshot']:.3f}"
    lines.append(f"{'mean':<{width}}  {means['probe']:>6.3f}  {zs:>9}  {means['chance']:>6.3f}")
    return "\n".join(lines)


def _fail(message: str) -> int:
    print(f"flip probe: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
