"""Question answering about facial attributes: the base VLM, its LoRA fine-tune and FLIP zero-shot, in one table.

    python -m eval.tasks.vqa --base runs/vqa-toy-base/model --adapter runs/vqa-lora/adapter \\
        --config finetune/configs/vqa_lora_toy.yaml --data data/synth-qa --split test --limit 300 --out report/

One row per attribute, on the same held-out images (one question per labelled, visible attribute):
- chance: 1 / number of answers seen; majority: the share of the most common answer.
- zero-shot: FLIP's classification by description (`eval.tasks.attributes`, `FLIPClassifier`) on the
  same images, the image tower the toy VLM is built on (default: the embedded flip-tiny-synth).
- base: the base VLM asked the question, exact match after normalisation.
- lora: the LoRA fine-tuned VLM, the same.
The fraction of parameters the adapter trained is reported beside the table. Scores come from the
local `evaluate` module `eval/metrics/vqa_accuracy` (answers normalised for case, punctuation,
articles and the recipe's synonyms). Writes `vqa.json` (config, rows, means), `vqa.md` (the table),
`vqa_predictions.jsonl` and a confusion-matrix figure per attribute (`confusion/<attribute>.png`,
fine-tuned model) under --out.

The shape follows the harness of issue 9: `load_examples`, `predict`, `metric`, `main`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np

METRICS_DIR = Path(__file__).resolve().parents[1] / "metrics"


# -- examples ---------------------------------------------------------------------------------------
def load_examples(data: str | Path, split: str | None = "test", attributes: Sequence[str] | None = None,
                  limit: int | None = None, dataset: str = "auto", questions: dict | None = None,
                  seed: int = 1) -> tuple[list, list]:
    """(QA examples, their records): one question per labelled, visible attribute of each of `limit` images."""
    from flip.vqa.examples import qa_examples, read_records

    records = read_records(data, dataset, split, limit=limit)
    return qa_examples(records, attributes, questions, None, seed=seed), records


def predict(vqa, examples: Sequence, batch_size: int = 32) -> list[str]:
    """The model's answer to each example (a `flip.vqa.VQAModel`)."""
    return vqa.answer(list(examples), batch_size)


_VQA_ACCURACY = None


def metric(predictions: Sequence[str], references: Sequence[str], attributes: Sequence[str] | None = None,
           synonyms: dict | None = None) -> dict:
    """Exact match overall and per attribute, through the local evaluate module `vqa_accuracy`."""
    global _VQA_ACCURACY
    if len(predictions) == 0:
        raise ValueError("vqa_accuracy: no predictions to score")
    if _VQA_ACCURACY is None:
        import evaluate

        _VQA_ACCURACY = evaluate.load(str(METRICS_DIR / "vqa_accuracy"))
    attributes = [a or "" for a in attributes] if attributes is not None else [""] * len(predictions)
    return _VQA_ACCURACY.compute(predictions=list(predictions), references=list(references), attributes=attributes,
                                 synonyms=synonyms or {})


# -- zero-shot FLIP on the same images ----------------------------------------------------------------
def zero_shot(flip_model, flip_processor, records: Sequence, attributes: Sequence[str], batch_size: int = 64) -> dict:
    """{attribute: by-description accuracy} on the records' visible labels (attributes with a prompt file)."""
    from eval.tasks.attributes import evaluate_attributes
    from flip.data.synthetic.attributes import visible_attributes
    from flip.prompts import label_key, load_prompts

    with_prompts = []
    for a in attributes:
        try:
            load_prompts(a)
            with_prompts.append(a)
        except (FileNotFoundError, ValueError):
            continue
    if not with_prompts:
        return {}
    labels = []
    for record in records:
        shown = visible_attributes(record.attributes())
        labels.append({a: label_key(shown[a]) for a in with_prompts if shown.get(a) is not None})
    rows, _ = evaluate_attributes(flip_model, flip_processor, [r.image for r in records], labels, with_prompts,
                                  ("descriptors",), batch_size=batch_size, num_workers=0)
    return {r["attribute"]: r["descriptors"] for r in rows}


# -- tables -----------------------------------------------------------------------------------------
def build_rows(examples: Sequence, columns: dict[str, dict[str, float]], synonyms: dict | None = None) -> list[dict]:
    """One row per attribute: n, classes, chance, majority, then each column's accuracy (None if absent)."""
    from flip.vqa.answers import normalize_answer, synonym_table

    table = synonym_table(synonyms)
    rows = []
    for attribute in sorted({e.attribute for e in examples}):
        answers = [normalize_answer(e.answer, table) for e in examples if e.attribute == attribute]
        counts = Counter(answers)
        row = {"attribute": attribute, "n": len(answers), "classes": len(counts), "chance": 1 / len(counts),
               "majority": counts.most_common(1)[0][1] / len(answers)}
        row.update({name: values.get(attribute) for name, values in columns.items()})
        rows.append(row)
    return rows


def format_table(rows: list[dict], columns: Sequence[str]) -> str:
    head = ["attribute", "n", "classes", "chance", "majority", *columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]

    def cell(v):
        return "—" if v is None else f"{100 * v:.1f}"

    for r in rows:
        lines.append("| " + " | ".join([r["attribute"], str(r["n"]), str(r["classes"])]
                                        + [cell(r[k]) for k in head[3:]]) + " |")
    means = {k: [r[k] for r in rows if r[k] is not None] for k in head[3:]}
    lines.append("| **mean** | | | " + " | ".join(f"**{100 * np.mean(v):.1f}**" if v else "—" for v in means.values()) + " |")
    return "\n".join(lines)


# -- command ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.tasks.vqa", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", required=True, help="the base VLM (folder or Hub id)")
    p.add_argument("--adapter", default=None, help="the LoRA adapter folder (runs/<run>/adapter)")
    p.add_argument("--config", type=Path, default=None,
                   help="the vqa_lora recipe YAML: its data.questions, eval.synonyms and model.template are used")
    p.add_argument("--flip-model", default=None, help="FLIP model for the zero-shot column (default: embedded)")
    p.add_argument("--no-zero-shot", action="store_true")
    p.add_argument("--data", required=True, help="labelled faces (anything flip.data.loaders.load_records reads)")
    p.add_argument("--dataset", default="auto")
    p.add_argument("--split", default="test")
    p.add_argument("--attributes", nargs="+", default=None)
    p.add_argument("--limit", type=int, default=200, help="images to score (every labelled attribute of each)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-new-tokens", type=int, default=8)
    p.add_argument("--device", default=None)
    p.add_argument("--out", default="report", help="folder for vqa.json / vqa.md / predictions / confusion/")
    args = p.parse_args(argv)
    try:
        return _run(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"eval.tasks.vqa: {err}", file=sys.stderr)
        return 2


def recipe_settings(path: str | Path) -> tuple[dict, dict, str | None]:
    """(data.questions, eval.synonyms, model.template) of a `flip vqa-train` config: the run's saved,
    resolved `config.yaml` (or the YAML it ran from), read as data, never through the recipe's module."""
    import yaml

    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"--config {path}: not a readable YAML file ({err})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"--config {path}: expected a mapping of sections (model, data, eval, ...)")
    sections = {name: raw.get(name) or {} for name in ("model", "data", "eval")}
    return sections["data"].get("questions") or {}, sections["eval"].get("synonyms") or {}, \
        sections["model"].get("template")


def _run(args) -> int:
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from flip.vqa.prompting import PromptFormat, model_family
    from flip.vqa.model import VQAModel, check_supported, load_vqa
    from flip.train.vqa_loop import adapter_parameter_counts

    from flip.vqa.scoring import confusion_figures, write_predictions

    questions, synonyms, template = recipe_settings(args.config) if args.config is not None else ({}, {}, None)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    check_supported(args.base)
    examples, records = load_examples(args.data, args.split, args.attributes, args.limit, args.dataset, questions)
    references, attributes = [e.answer for e in examples], [e.attribute for e in examples]
    print(f"{len(examples)} questions on {len(records)} images", file=sys.stderr)

    columns: dict[str, dict[str, float]] = {}
    predictions: dict[str, list[str]] = {}
    info: dict = {}
    if not args.no_zero_shot:
        from flip.hub import load

        flip_model, flip_processor = load(args.flip_model, device=device)
        columns["zero-shot"] = zero_shot(flip_model, flip_processor, records, sorted(set(attributes)))
    base = AutoModelForImageTextToText.from_pretrained(args.base, dtype=torch.float32).to(device)
    processor = AutoProcessor.from_pretrained(args.base)
    vqa = VQAModel(base, processor, PromptFormat(processor, model_family(base.config), template), args.max_new_tokens)
    predictions["base"] = predict(vqa, examples, args.batch_size)
    scores = {"base": metric(predictions["base"], references, attributes, synonyms)}
    del vqa, base
    if args.adapter:
        tuned = load_vqa(args.adapter, base=args.base, template=template, device=device,
                         max_new_tokens=args.max_new_tokens)
        predictions["lora"] = predict(tuned, examples, args.batch_size)
        scores["lora"] = metric(predictions["lora"], references, attributes, synonyms)
        trained, total = adapter_parameter_counts(tuned.model)
        info = {"trained_parameters": trained, "base_parameters": total, "trained_fraction": trained / total}
    for name, s in scores.items():
        columns[name] = s["per_attribute"]
    rows = build_rows(examples, columns, synonyms)
    table = format_table(rows, list(columns))
    note = (f"\nLoRA trains {info['trained_parameters']:,} parameters, {100 * info['trained_fraction']:.2f}% of "
            f"the base's {info['base_parameters']:,}." if info else "")
    print(table + note)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = {**vars(args), "config": str(args.config) if args.config else None, "device": device,
              "flip_model": args.flip_model or "flip-tiny-synth (embedded default)"}
    means = {k: float(np.mean([r[k] for r in rows if r[k] is not None]))
             for k in ["chance", "majority", *columns] if any(r[k] is not None for r in rows)}
    overall = {name: s["exact_match"] for name, s in scores.items()}
    (out / "vqa.json").write_text(json.dumps({"config": config, "questions": len(examples), "images": len(records),
                                              "rows": rows, "mean": means, "exact_match": overall, **info},
                                             indent=2) + "\n")
    (out / "vqa.md").write_text(table + note + "\n")
    write_predictions(out / "vqa_predictions.jsonl", examples, *predictions.values(), names=list(predictions))
    final = "lora" if "lora" in predictions else "base"
    figures = confusion_figures(examples, predictions[final], out / "confusion", synonyms)
    print(f"\nwrote {out / 'vqa.json'}, vqa.md, vqa_predictions.jsonl and {len(figures)} confusion figures "
          f"({final}) under {out / 'confusion'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
