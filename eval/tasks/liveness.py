"""Face liveness on held-out spoof images: zero-shot, linear probe and fine-tuned, per category, in one table.

    flip data synth --kind spoof --n 8000 --size 112 --seed 0 --out data/synth-spoof --format parquet
    python -m eval.tasks.liveness --data data/synth-spoof --unseen 3d_mask \\
        --finetune-config finetune/configs/liveness_lora.yaml --out report/

Protocol ("unseen attack", as CLIPC8's cross-dataset tests): the categories in `--unseen` are left
out of everything a method learns from or is tuned on: the probe's and the fine-tuning's training
split, and the development split where the threshold is chosen. Every method's threshold is chosen
on the development split (`--dev-split`, default val) at its EER, or at `--target-bpcer`, and
applied unchanged to the test split. Methods:
- zeroshot: the model as given, against the prompts (`flip.liveness.LivenessClassifier`);
- probe: logistic regression on the same model's frozen image embeddings (`LivenessProbe`),
  trained on the training split;
- finetuned: a checkpoint from `flip liveness-train` (`--finetuned DIR`), or one trained here by
  running that command with `--finetune-config` on the training split, the unseen categories
  excluded; scored as zero-shot. Either way the run's saved, resolved `config.yaml` is read (as data:
  the recipe's module is never imported) to check that it held the unseen categories out, and is
  recorded in liveness.json;
- shipped: the model `flip liveness` answers with when given no `--model` (`--shipped`, default
  `flip.liveness.DEFAULT_LIVENESS_MODEL`, the embedded liveness fine-tune), scored as zero-shot at its
  own threshold; the training config it ships beside its weights (`training_config.yaml`) is checked
  and recorded as the fine-tuned one's is. Its "as shipped" row is what a user gets out of the box;
- shipped_no_unseen_text: the control for "detected from its description": the shipped model with the
  unseen categories' descriptions taken out of the prompts. If its unseen-attack AUC is the shipped
  one's, the unseen attack is caught as "not live", not by what its description says;
- zeroshot_no_unseen_text: the same control for the zero-shot model.

The table has one row per category: APCER for each attack (marked seen or unseen), BPCER for live;
then APCER_max, ACER, HTER, EER and AUC over all test attacks, and AUC on the unseen attacks against
live alone; and "as shipped": APCER_max, BPCER and ACER on the seen categories at the method's default
threshold with no calibration here (`*_default`; `threshold_default`): the one the model ships in its
config (`flip liveness-calibrate`, chosen at release on the dev split) or else 0.5, which is what
`flip liveness` answers out of the box. Metrics come from the local `evaluate` module `eval/metrics/attack_metrics`, loaded by path.
Writes `liveness.json` (config, rows, per-method metrics), `liveness.md` and `liveness_scores.json`
(each method's live scores and true categories per example on dev and test, for ROC/DET curves) under --out.

The shape follows the harness of issue 9: `load_examples`, `predict`, `metric`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import torch

METRICS_DIR = Path(__file__).resolve().parents[1] / "metrics"
METHODS = ("zeroshot", "probe", "finetuned", "shipped", "shipped_no_unseen_text", "zeroshot_no_unseen_text")
#: The training config a shipped fine-tuned model carries in its own folder (a `flip liveness-train`
#: run keeps it beside `final/` as `config.yaml`).
TRAINING_CONFIG = "training_config.yaml"


# -- examples ---------------------------------------------------------------------------------------
def load_examples(data: str | Path, split: str | None, dataset: str = "auto", limit: int | None = None,
                  exclude: Sequence[str] = ()) -> tuple[list, list[str]]:
    """Images and their categories ("live" or the attack) of one split, without `exclude`d categories."""
    from flip.data.loaders import load_records
    from flip.liveness import record_category

    images, labels = [], []
    for i, record in enumerate(load_records(data, dataset, split)):
        category = record_category(record, i)
        if category in exclude:
            continue
        images.append(record.image)
        labels.append(category)
        if limit is not None and len(images) >= limit:
            break
    if not images:
        raise ValueError(f"{data}: no examples in split {split!r}")
    return images, labels


# -- predict and score ------------------------------------------------------------------------------
def predict(model, processor, splits: dict[str, tuple[list, list[str]]], method: str = "zeroshot",
            prompts="liveness", probe_on: str = "train", batch_size: int = 64,
            num_workers: int | None = None, embeds: dict[str, torch.Tensor] | None = None) -> dict[str, dict[str, list]]:
    """{split: {"live_score": [...], "attack": [...]}} for one model: zero-shot on its prompts, or the
    probe (`method="probe"`) fitted on the `probe_on` split's embeddings. `prompts`: a task name, a
    prompt file or a `flip.prompts.PromptSet`. `embeds`: the splits' image embeddings by this model,
    when the caller has them (a method and its control score the same images)."""
    from eval.tasks.attributes import embed_images
    from flip.liveness import LivenessClassifier, LivenessProbe

    if embeds is None:
        embeds = {s: embed_images(model, processor, images, batch_size, num_workers) for s, (images, _) in splits.items()}
    if method == "probe":
        scorer = LivenessProbe.fit(embeds[probe_on], splits[probe_on][1]).predict
    else:
        clf = LivenessClassifier(model, processor, prompts)
        device = next(model.parameters()).device
        scorer = lambda e: clf.score_embeddings(e.to(device))  # noqa: E731
    out = {}
    for s, e in embeds.items():
        result = scorer(e)
        out[s] = {"live_score": result.live_score.tolist(), "attack": result.attacks,
                  "threshold": result.threshold}  # the scorer's default (shipped) operating point
    return out


_PAD = None


def metric(scores: Sequence[float], labels: Sequence[str], dev_scores: Sequence[float], dev_labels: Sequence[str],
           target_bpcer: float | None = None) -> dict[str, Any]:
    """ISO/IEC 30107-3 figures on the test split at the threshold chosen on dev (local evaluate module)."""
    global _PAD
    if _PAD is None:
        import evaluate

        _PAD = evaluate.load(str(METRICS_DIR / "attack_metrics"))
    return _PAD.compute(predictions=list(scores), references=list(labels), dev_predictions=list(dev_scores),
                        dev_references=list(dev_labels), criterion="eer" if target_bpcer is None else "bpcer",
                        target_bpcer=target_bpcer)


def unseen_auc(scores: Sequence[float], labels: Sequence[str], unseen: Sequence[str]) -> float | None:
    """ROC AUC of live against the unseen attacks only (None without unseen attacks in the test split)."""
    from flip.attack_metrics import LIVE, roc_auc

    keep = [i for i, label in enumerate(labels) if label == LIVE or label in unseen]
    kept = [labels[i] for i in keep]
    if not any(label in unseen for label in kept) or LIVE not in kept:
        return None
    return roc_auc([scores[i] for i in keep], kept)


def as_shipped(scores: Sequence[float], labels: Sequence[str], unseen: Sequence[str],
               threshold: float | None = None) -> dict[str, float]:
    """The seen categories at the scorer's default threshold, no calibration here: the one the model
    ships (`FLIPConfig.liveness_calibration`, chosen at release on a dev split) or 0.5
    (`flip.liveness.DEFAULT_THRESHOLD`); what `flip liveness` answers out of the box. Keys end in `_default`."""
    from flip.attack_metrics import pad_report
    from flip.liveness import DEFAULT_THRESHOLD

    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    keep = [i for i, label in enumerate(labels) if label not in unseen]
    report = pad_report([scores[i] for i in keep], [labels[i] for i in keep], threshold)
    return {"acer_default": report.acer, "apcer_max_default": report.apcer_max, "bpcer_default": report.bpcer,
            "threshold_default": float(threshold)}


def finetune(config: str | Path, data: str | Path, split: str, unseen: Sequence[str], output_dir: str | Path,
             dataset: str = "auto", overrides: list[str] | None = None) -> tuple[Path, dict]:
    """Run the liveness recipe (`flip liveness-train --config config`) on `data`'s training split
    without the unseen categories; returns (the fine-tuned model, the run's resolved config).
    `output_dir` is this evaluation's own folder (under its --out): a rerun starts that run over."""
    import json

    from eval.recipes import run_recipe

    argv = ["--config", str(config), "--liveness.data", str(data), "--liveness.split", json.dumps(split),
            "--liveness.dataset", dataset, "--liveness.exclude", json.dumps(list(unseen)),
            "--run.output_dir", str(output_dir), "--run.overwrite", "true", *(overrides or [])]
    recipe = run_recipe("liveness-train", argv, output_dir)
    check_held_out(recipe, unseen, f"flip liveness-train --config {config}")
    final = Path(recipe["run"]["output_dir"]) / "final"
    if not (final / "config.json").is_file():
        raise ValueError(f"flip liveness-train stopped before saving a final model to {final}")
    return final, recipe


def finetuned_recipe(model_dir: str | Path, unseen: Sequence[str]) -> dict | None:
    """The resolved config that `flip liveness-train` saved for a fine-tuned model (in the model's folder
    as `training_config.yaml`, or beside it: `<run>/final`'s parent's `config.yaml`), checked to hold
    the unseen categories out; None (with a note) when there is none."""
    import yaml

    model_dir = Path(model_dir)
    path = next((p for p in (model_dir / TRAINING_CONFIG, model_dir.parent / "config.yaml") if p.is_file()),
                model_dir.parent / "config.yaml")
    recipe = yaml.safe_load(path.read_text()) if path.is_file() else None
    if not isinstance(recipe, dict) or "liveness" not in recipe:
        print(f"eval.tasks.liveness: no flip liveness-train config.yaml beside {model_dir}: cannot check that "
              f"{list(unseen)} were held out of its training", file=sys.stderr)
        return None
    check_held_out(recipe, unseen, str(path))
    return recipe


def check_held_out(recipe: dict, unseen: Sequence[str], where: str) -> None:
    """The protocol: a fine-tuned model never trained on the categories evaluated as unseen."""
    seen = sorted(set(unseen) - set(recipe["liveness"].get("exclude") or []))
    if seen:
        raise ValueError(f"{where}: trained on {seen}, which --unseen evaluates as unseen attacks "
                         "(hold them out with --liveness.exclude)")


def evaluate_liveness(scores: dict[str, dict[str, dict[str, list]]], labels: dict[str, list[str]],
                      unseen: Sequence[str], dev_split: str = "dev", test_split: str = "test",
                      target_bpcer: float | None = None) -> tuple[list[dict], dict[str, dict]]:
    """The table's rows (one per test category) and each method's summary metrics."""
    from flip.attack_metrics import LIVE

    summaries = {}
    for m, per_split in scores.items():
        summary = metric(per_split[test_split]["live_score"], labels[test_split],
                         per_split[dev_split]["live_score"], labels[dev_split], target_bpcer)
        summary["auc_unseen"] = unseen_auc(per_split[test_split]["live_score"], labels[test_split], unseen)
        summary.update(as_shipped(per_split[test_split]["live_score"], labels[test_split], unseen,
                                  per_split[test_split].get("threshold")))
        test_labels, attacks = labels[test_split], per_split[test_split]["attack"]
        pairs = [(a, t) for a, t in zip(attacks, test_labels) if t != LIVE]
        summary["attack_type_accuracy"] = sum(a == t for a, t in pairs) / len(pairs) if pairs else None
        summaries[m] = summary
    categories = [LIVE, *sorted(set(labels[test_split]) - {LIVE})]
    rows = []
    for c in categories:
        row: dict[str, Any] = {"category": c, "n": labels[test_split].count(c),
                               "seen": None if c == LIVE else c not in unseen,
                               "metric": "BPCER" if c == LIVE else "APCER"}
        for m, s in summaries.items():
            row[m] = s["bpcer"] if c == LIVE else s[f"apcer_{c}"]
        rows.append(row)
    return rows, summaries


SUMMARY_KEYS = ("apcer_max", "acer", "hter", "eer", "auc", "auc_unseen", "attack_type_accuracy", "threshold",
                "apcer_max_default", "bpcer_default", "acer_default", "threshold_default")


def format_table(rows: list[dict], summaries: dict[str, dict]) -> str:
    """Markdown: error rates in percent per category, then the summary figures (AUC, threshold as is)."""
    methods = list(summaries)
    head = ["category", "n", "seen", "metric", *methods]
    lines = ["| " + " | ".join(head) + " |", "|---|---:|---|---|" + "---:|" * len(methods)]
    for r in rows:
        seen = "" if r["seen"] is None else ("seen" if r["seen"] else "**unseen**")
        lines.append(f"| {r['category']} | {r['n']} | {seen} | {r['metric']} | "
                     + " | ".join(f"{100 * r[m]:.1f}" for m in methods) + " |")
    for key in SUMMARY_KEYS:
        cells = []
        for m in methods:
            v = summaries[m].get(key)
            as_is = key in ("auc", "auc_unseen", "threshold", "threshold_default")
            cells.append("-" if v is None else f"{v:.3f}" if as_is else f"{100 * v:.1f}")
        lines.append(f"| **{key}** | | | | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def without_categories(prompts: str, categories: Sequence[str]):
    """The prompt set `prompts` (task name or file) without `categories`' descriptions (`PromptSet.without`)."""
    from flip.prompts import load_prompts

    base = load_prompts(prompts)
    try:
        return base.without(categories, task=f"{base.task}_without_{'_'.join(categories)}")
    except ValueError as err:  # a category the prompts do not have, named as the argument that gave it
        raise ValueError(f"--unseen {err}") from None


def run(args, overrides: list[str]) -> tuple[dict, dict, str, dict[str, dict | None]]:
    """Load the splits and the model(s) and score every method: (scores, labels, device, the resolved
    training config of each fine-tuned method's model, or None)."""
    from flip.hub import EMBEDDED, embedded_path, load

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    splits = {
        "train": load_examples(args.data, args.train_split, args.dataset, args.limit, exclude=args.unseen),
        "dev": load_examples(args.data, args.dev_split, args.dataset, args.limit, exclude=args.unseen),
        "test": load_examples(args.data, args.test_split, args.dataset, args.limit),
    }
    labels = {s: lab for s, (_, lab) in splits.items()}
    held_out = {s: v for s, v in splits.items() if s != "train"}
    model, processor = load(args.model, device=device)
    scores, recipes, loaded = {}, {}, {}  # loaded: shipped and its control score with one model
    embedded: dict[str, dict[str, torch.Tensor]] = {}  # model -> split -> image embeddings, shared by its methods

    def embeds(key: str, m, proc, wanted: dict) -> dict[str, torch.Tensor]:
        from eval.tasks.attributes import embed_images

        have = embedded.setdefault(key, {})
        for s, (images, _) in wanted.items():
            if s not in have:
                have[s] = embed_images(m, proc, images, args.batch_size, args.workers)
        return {s: have[s] for s in wanted}
    for m in args.methods:
        if m in ("finetuned", "shipped", "shipped_no_unseen_text"):
            if m.startswith("shipped"):
                path = args.shipped
                folder = embedded_path(path) if path in EMBEDDED else Path(path)
                recipes[m] = finetuned_recipe(folder, args.unseen)
            elif args.finetuned:
                path, recipes[m] = args.finetuned, finetuned_recipe(args.finetuned, args.unseen)
            else:
                path, recipes[m] = finetune(args.finetune_config, args.data, args.train_split, args.unseen,
                                            Path(args.out) / "finetune", args.dataset, overrides)
            if str(path) not in loaded:
                loaded[str(path)] = load(str(path), device=device)
            ft_model, ft_processor = loaded[str(path)]
            prompts = without_categories(args.prompts, args.unseen) if m == "shipped_no_unseen_text" else args.prompts
            scores[m] = predict(ft_model, ft_processor, held_out, "zeroshot", prompts,
                                embeds=embeds(str(path), ft_model, ft_processor, held_out))
        else:
            prompts = without_categories(args.prompts, args.unseen) if m == "zeroshot_no_unseen_text" else args.prompts
            wanted = splits if m == "probe" else held_out
            scores[m] = predict(model, processor, wanted, m.removesuffix("_no_unseen_text"), prompts,
                                embeds=embeds("base", model, processor, wanted))
    return scores, labels, device, recipes


# -- command ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.tasks.liveness", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    p.add_argument("--model", default=None, help="the base model for zero-shot and the probe (default: embedded)")
    p.add_argument("--data", required=True, help="spoof records with train / dev / test splits")
    p.add_argument("--dataset", default="auto", help="layout: a flip.data.loaders name or auto")
    p.add_argument("--train-split", default="train")
    p.add_argument("--dev-split", default="val")
    p.add_argument("--test-split", default="test")
    p.add_argument("--unseen", nargs="*", default=["3d_mask"],
                   help="attack categories held out of training and dev (default: 3d_mask, the category world v3 "
                        "keeps out of the pretraining captions)")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--finetuned", default=None, help="a checkpoint from flip liveness-train (same --unseen)")
    p.add_argument("--finetune-config", default=None, help="train the fine-tuned model here from this YAML")
    p.add_argument("--shipped", default=None, help="the shipped method's model (default: "
                   "flip.liveness.DEFAULT_LIVENESS_MODEL, what `flip liveness` uses without --model)")
    p.add_argument("--prompts", default="liveness")
    p.add_argument("--target-bpcer", type=float, default=None, help="threshold at this dev BPCER (default: dev EER)")
    p.add_argument("--limit", type=int, default=None, help="at most this many examples per split")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--out", default="report")
    args, overrides = p.parse_known_args(argv)
    if args.shipped is None:
        from flip.liveness import DEFAULT_LIVENESS_MODEL

        args.shipped = DEFAULT_LIVENESS_MODEL
    if "finetuned" in args.methods and not (args.finetuned or args.finetune_config):
        p.error("the finetuned method needs --finetuned DIR or --finetune-config YAML (or drop it from --methods)")

    if overrides and not args.finetune_config:
        p.error(f"unrecognized arguments: {' '.join(overrides)} (--section.key overrides go with --finetune-config)")

    try:
        scores, labels, device, recipes = run(args, overrides)
        rows, summaries = evaluate_liveness(scores, labels, args.unseen, target_bpcer=args.target_bpcer)
    except (FileNotFoundError, ValueError, KeyError) as err:
        print(f"eval.tasks.liveness: {err.args[0] if isinstance(err, KeyError) else err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = format_table(rows, summaries)
    print(table)
    config = {**vars(args), "overrides": overrides, "device": device,
              "model": args.model or "flip-tiny-synth (embedded default)",
              "finetune_recipe": recipes.get("finetuned"), "shipped_recipe": recipes.get("shipped")}
    (out / "liveness.json").write_text(json.dumps({"config": config, "counts": {s: len(v) for s, v in labels.items()},
                                                   "rows": rows, "summary": summaries}, indent=2) + "\n")
    (out / "liveness.md").write_text(table + "\n")
    per_example = {m: {s: {"live_score": v["live_score"], "label": labels[s]} for s, v in per.items() if s != "train"}
                   for m, per in scores.items()}
    (out / "liveness_scores.json").write_text(json.dumps(per_example) + "\n")
    print(f"\nwrote {out / 'liveness.json'}, liveness.md and liveness_scores.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
