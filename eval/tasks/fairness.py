"""Fairness audit of the attribute classifiers: accuracy per demographic group, the largest gap
between groups, and its bootstrap confidence interval.

    python -m eval.tasks.fairness --predictions report/attributes_predictions.jsonl --out report/
    python -m eval.tasks.fairness --model flip-tiny-synth --data data/synth-captions --split test \\
        --prompts shipped my_prompts/ --out report/fairness-edit          # the descriptor lever

After FACET (Gustafson et al., 2023) and Casual Conversations (Hazirbas et al., 2021): a mean over
everyone hides who the errors fall on, so every attribute classifier is scored per perceived skin
tone and age group (the synthetic world's labels), and per gender and race where a real dataset
labels them (FairFace, UTKFace: `FaceRecord.extra`). The figure reported per (attribute, group
field) is the largest gap, best group's accuracy minus worst group's, with a stratified percentile
bootstrap interval: the `evaluate` module `eval/metrics/group_gap` (loaded by path) computes both.
The gap is a maximum over groups, so with many small groups it is biased upwards; groups below
`--min-count` are left out and listed. The classifier of a group's own attribute (skin tone by skin tone) is left out: that is its
per-class recall, which the confusion matrix shows.

The lever classification by description offers (Menon & Vondrick, 2023): descriptors are data, so a
descriptor that ties one class to a group (say "dark strands framing the face" for black hair,
which may fire on dark skin) can be edited out and the gap measured again. `--prompts` takes one or
more prompt folders (`shipped` is flip's own); the images are embedded once and every folder's
predictions are audited side by side. A prompt folder is a copy of `prompts/` with files edited.

Input: the per-example rows `eval/tasks/attributes.py` writes (`attributes_predictions.jsonl`:
labels, groups and each variant's predictions), or a model and data scored here. Writes
`fairness.json` (config, one audit per prompt folder) and `fairness.md` under --out.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Sequence


from eval.tasks.attributes import GROUP_FIELDS

SHIPPED = "shipped"


# -- the metric -------------------------------------------------------------------------------------
METRICS_DIR = Path(__file__).resolve().parents[1] / "metrics"
_GROUP_GAP = None


def largest_gap(predictions: Sequence[str], references: Sequence[str], groups: Sequence[str | None], **options):
    """The group_gap `evaluate` module's figure: {"gap", "low", "high", "se", "best", "worst", "groups",
    "excluded"}; options: min_count, n_boot, confidence, seed."""
    global _GROUP_GAP
    if _GROUP_GAP is None:
        import evaluate

        _GROUP_GAP = evaluate.load(str(METRICS_DIR / "group_gap"))
    return _GROUP_GAP.compute(predictions=list(predictions), references=list(references), groups=list(groups),
                              **options)


def audit(rows: Sequence[dict], variant: str = "descriptors", group_fields: Sequence[str] = GROUP_FIELDS,
          n_boot: int = 1000, confidence: float = 0.95, seed: int = 0, min_count: int = 5) -> list[dict]:
    """One entry per (attribute, group field) with at least two groups of `min_count` examples.

    rows: per-example dicts as in `attributes_predictions.jsonl`: {"labels": {attribute: class},
    "groups": {field: group}, variant: {attribute: predicted class}}. Rows written before groups
    were recorded fall back to their labels for the fields that are attributes (skin tone, age group).
    """
    if not rows:
        raise ValueError("audit: no rows")
    if not all(variant in r for r in rows):
        raise ValueError(f"audit: variant {variant!r} is missing from the predictions "
                         f"(present: {sorted(k for k in rows[0] if isinstance(rows[0][k], dict))})")
    attributes = list(dict.fromkeys(a for r in rows for a in r[variant]))
    entries = []
    for field in group_fields:
        for attribute in attributes:
            if attribute == field:
                continue
            scored = [r for r in rows if attribute in r["labels"] and attribute in r[variant]]
            predictions = [r[variant][attribute] for r in scored]
            references = [r["labels"][attribute] for r in scored]
            groups = [r.get("groups", r["labels"]).get(field) for r in scored]
            counts = Counter(g for g in groups if g is not None)
            if sum(n >= min_count for n in counts.values()) < 2:
                continue
            gap = largest_gap(predictions, references, groups, min_count=min_count, n_boot=n_boot,
                              confidence=confidence, seed=seed)
            known = sum(counts.values())
            right = sum(p == r for p, r, g in zip(predictions, references, groups) if g is not None)
            entries.append({"attribute": attribute, "group_field": field, "variant": variant, "n": known,
                            "accuracy": right / known, **gap, "confidence": confidence, "n_boot": n_boot,
                            "seed": seed})
    return entries


def format_table(entries: Sequence[dict]) -> str:
    """Markdown: one row per (attribute, group field), accuracies and gaps in percent."""
    lines = ["| attribute | groups | n | accuracy | worst group | best group | gap | 95% interval |",
             "|---|---|---:|---:|---|---|---:|---|"]
    for e in entries:
        worst, best = e["groups"][e["worst"]], e["groups"][e["best"]]
        lines.append(f"| {e['attribute']} | {e['group_field']} | {e['n']} | {100 * e['accuracy']:.1f} | "
                     f"{e['worst']} {100 * worst['accuracy']:.1f} (n={worst['n']}) | "
                     f"{e['best']} {100 * best['accuracy']:.1f} (n={best['n']}) | {100 * e['gap']:.1f} | "
                     f"[{100 * e['low']:.1f}, {100 * e['high']:.1f}] |")
    return "\n".join(lines)


def format_comparison(runs: Sequence[dict]) -> str:
    """Markdown: the gap of each (attribute, group field) under each prompt folder, side by side."""
    names = [r["prompts"] for r in runs]
    keyed = [{(e["attribute"], e["group_field"]): e for e in r["audit"]} for r in runs]
    keys = list(dict.fromkeys(k for audit_ in keyed for k in audit_))
    lines = ["| attribute | groups | " + " | ".join(f"gap, {n}" for n in names) + " |",
             "|---|---|" + "---:|" * len(names)]
    for k in keys:
        cells = [f"{100 * a[k]['gap']:.1f} [{100 * a[k]['low']:.1f}, {100 * a[k]['high']:.1f}]" if k in a else "-"
                 for a in keyed]
        lines.append(f"| {k[0]} | {k[1]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- examples and predictions -----------------------------------------------------------------------
def load_predictions(path: str | Path) -> list[dict]:
    """The rows of an `attributes_predictions.jsonl`; a bad line is an error naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such predictions file: {path} (write it with python -m eval.tasks.attributes)")
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}, line {n}: not JSON ({err.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("labels"), dict):
            raise ValueError(f"{path}, line {n}: expected an object with a 'labels' object")
        rows.append(row)
    return rows


def predict_rows(model, processor, data: str | Path, split: str | None, prompt_roots: Sequence[str | None],
                 attributes: Sequence[str], limit: int | None = None, batch_size: int = 64,
                 num_workers: int | None = None) -> list[list[dict]]:
    """Per prompt folder, the per-example rows of classification by description (images embedded once)."""
    from eval.tasks.attributes import embed_images, predict, read_examples

    examples = list(read_examples(data, split, attributes, limit))
    if not examples:
        raise ValueError(f"{data}: no examples (split {split!r})")
    images, labels, groups = (list(column) for column in zip(*examples))
    scored = [a for a in attributes if any(a in row for row in labels)]
    embeds = embed_images(model, processor, images, batch_size, num_workers)
    out = []
    for root in prompt_roots:
        predicted = predict(model, processor, embeds, scored, ["descriptors"], root=root)["descriptors"]
        out.append([{"index": i, "labels": labels[i], "groups": groups[i],
                     "descriptors": {a: predicted[a][i] for a in scored}} for i in range(len(images))])
    return out


# -- command ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    from flip.data.records import ATTRIBUTES

    p = argparse.ArgumentParser(prog="python -m eval.tasks.fairness", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--predictions", default=None, help="an attributes_predictions.jsonl (instead of --model/--data)")
    p.add_argument("--variant", default="descriptors", help="which predictions of the file to audit")
    p.add_argument("--model", default=None, help="model for flip.load (default: the embedded model)")
    p.add_argument("--data", default=None, help="labelled faces in a flip data format (scored here)")
    p.add_argument("--split", default="test")
    p.add_argument("--attributes", nargs="+", default=list(ATTRIBUTES))
    p.add_argument("--prompts", nargs="+", default=[SHIPPED],
                   help=f"prompt folders to compare ('{SHIPPED}' = flip's own); with --data")
    p.add_argument("--groups", nargs="+", default=list(GROUP_FIELDS), help="group fields to break accuracy down by")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--min-count", type=int, default=5, help="leave out groups with fewer examples")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--out", default="report", help="folder for fairness.json / fairness.md")
    args = p.parse_args(argv)
    if (args.predictions is None) == (args.data is None):
        p.error("give --predictions FILE, or --data DIR to score a model here")
    if args.predictions and args.prompts != [SHIPPED]:
        p.error("--prompts needs --data (the predictions of a file were made with one prompt folder)")

    try:
        if args.predictions:
            runs_rows = [load_predictions(args.predictions)]
            names = [str(args.predictions)]
        else:
            import torch

            from flip.hub import load

            device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
            model, processor = load(args.model, device=device)
            roots = [None if r == SHIPPED else r for r in args.prompts]
            runs_rows = predict_rows(model, processor, args.data, args.split, roots, args.attributes, args.limit,
                                     args.batch_size, args.workers)
            names = list(args.prompts)
            args.variant = "descriptors"
        runs = [{"prompts": name, "audit": audit(rows, args.variant, args.groups, args.n_boot, args.confidence,
                                                 args.seed, args.min_count)}
                for name, rows in zip(names, runs_rows)]
    except (FileNotFoundError, ValueError, KeyError) as err:
        print(f"eval.tasks.fairness: {err.args[0] if isinstance(err, KeyError) else err}", file=sys.stderr)
        return 2

    text = []
    for run in runs:
        text += [f"## prompts: {run['prompts']}", "", format_table(run["audit"]) if run["audit"] else
                 f"(no attribute has two groups with >= {args.min_count} examples)", ""]
    if len(runs) > 1:
        text += ["## the largest gap under each prompt folder", "", format_comparison(runs), ""]
    print("\n".join(text))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = {**vars(args), "model": args.model or "flip-tiny-synth (embedded default)"}
    from flip.runtime import package_version

    (out / "fairness.json").write_text(json.dumps({"config": config, "package_version": package_version(),
                                                   "runs": runs}, indent=2) + "\n")
    (out / "fairness.md").write_text("\n".join(text))
    print(f"wrote {out / 'fairness.json'} and fairness.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
