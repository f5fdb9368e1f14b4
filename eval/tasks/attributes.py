"""Zero-shot attribute classification on held-out labelled faces: by description against its
baseline and chance, in one table.

    python -m eval.tasks.attributes --model flip-tiny-synth --data runs/synth --split test --out report/

One row per attribute (default: every attribute of the synthetic world's records):
- chance: 1 / number of classes; majority: the share of the most common label in the data.
- baseline: class phrases in the face templates, averaged (CLIP's prompt ensemble).
- descriptors: classification by description with the shipped prompt file (Menon & Vondrick).
- rephrased: the same classes described in words the training captions never use
  (`prompts/rephrased/`): does the model understand descriptions, or match caption words?
- random: every descriptor replaced by a string of random letters, same count per class (the
  WaffleCLIP control): how much of any gain over the baseline is ensembling rather than meaning.
Accuracy comes from the local `evaluate` module `eval/metrics/accuracy`, loaded by path.

Only labels an image shows are scored (`flip.data.synthetic.attributes.visible_attributes`): eye
colour behind sunglasses is not a fair question. Writes `attributes.json` (the resolved config, the
table, per-variant means), `attributes.md` (the table) and `attributes_predictions.jsonl` (labels and
predictions per example, and the demographic groups of `GROUP_FIELDS` a record carries, for the
per-group breakdowns of `eval/tasks/fairness.py`) under --out.

The shape follows the harness of issue 9: `load_examples`, `predict`, `metric`.
"""

from __future__ import annotations

import argparse
import json
import string
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from flip.data.records import ATTRIBUTES
from flip.prompts import PromptSet, label_key, load_prompts

METRICS_DIR = Path(__file__).resolve().parents[1] / "metrics"
#: The columns of the table, in order.
VARIANTS = ("baseline", "descriptors", "rephrased", "random")


# -- examples ---------------------------------------------------------------------------------------
#: The demographic fields a record may carry, for per-group breakdowns (the fairness audit): the first
#: two are attributes of the synthetic world, gender and race come from real datasets' `extra`.
GROUP_FIELDS = ("skin_tone", "age_group", "gender", "race")


def group_labels(record) -> dict[str, str]:
    """{field: group} for the GROUP_FIELDS a record is labelled with (attributes first, then `extra`)."""
    groups = {}
    for name in GROUP_FIELDS:
        value = getattr(record, name, None)
        if value is None:
            value = record.extra.get(name)
        if value is not None:
            groups[name] = label_key(value)
    return groups


def read_examples(data: str | Path, split: str | None = None, attributes: Sequence[str] = ATTRIBUTES,
                  limit: int | None = None, format: str | None = None) -> Iterator[tuple[Any, dict, dict]]:
    """(image, visible labels as class keys, demographic groups) per record, in the data's order.

    Presentation attacks (``live`` False, in a world-v3 caption corpus) are skipped. A record's
    rendered cues, when it has them, ride along in the groups dict under "_cues"."""
    from flip.data.formats import read_dataset

    try:
        from flip.data.synthetic.attributes import visible_attributes
    except ImportError:  # a real dataset without the synthetic world installed: score every label
        def visible_attributes(labels):
            return dict(labels)

    kept = 0
    for record in read_dataset(data, format=format, split=split):
        if record.live is False:  # a presentation attack in the caption corpus: not a face to label
            continue
        if limit is not None and kept >= limit:
            break
        kept += 1
        shown = visible_attributes(record.attributes())
        groups = group_labels(record)
        if "cues" in record.extra:  # the synthetic world's rendered cues, for explanation faithfulness
            groups = {**groups, "_cues": list(record.extra["cues"])}
        yield record.image, {a: label_key(shown[a]) for a in attributes if shown.get(a) is not None}, groups


def load_examples(data: str | Path, split: str | None = None, attributes: Sequence[str] = ATTRIBUTES,
                  limit: int | None = None, format: str | None = None) -> tuple[list, list[dict[str, str]]]:
    """Encoded images and their visible labels as class keys ({attribute: "true" | "senior" | ...})."""
    examples = list(read_examples(data, split, attributes, limit, format))
    if not examples:
        raise ValueError(f"{data}: no examples (split {split!r})")
    return [image for image, _, _ in examples], [labels for _, labels, _ in examples]


def embed_images(model, processor, images: Sequence, batch_size: int = 64, num_workers: int | None = None) -> torch.Tensor:
    """(N, D) normalised image embeddings, images decoded in DataLoader workers; a bad image is an error."""
    from flip.probe import extract_features

    return extract_features(model, processor, images, batch_size, num_workers)


def random_descriptors(prompts: PromptSet, seed: int = 0, words: int = 2, letters: int = 6) -> PromptSet:
    """The same classes and phrases, each descriptor replaced by random lowercase letters."""
    rng = np.random.default_rng([seed, len(prompts.classes)])
    alphabet = np.array(list(string.ascii_lowercase))
    fake = {cls: [" ".join("".join(rng.choice(alphabet, letters)) for _ in range(words)) for _ in items]
            for cls, items in prompts.descriptors.items()}
    meta = prompts.to_dict()["_meta"]
    return PromptSet.from_dict({"_meta": meta, **fake}, task=prompts.task, source=f"random({prompts.task})")


# -- predict and score ------------------------------------------------------------------------------
def prompt_sets(variant: str, attributes: Sequence[str], root=None, seed: int = 0) -> list[PromptSet]:
    if variant == "rephrased":
        sets = []
        for a in attributes:
            p = load_prompts(f"rephrased/{a}", root)
            sets.append(PromptSet.from_dict(p.to_dict(), task=a, source=str(p.path)))  # keyed by attribute
        return sets
    sets = [load_prompts(a, root) for a in attributes]
    return [random_descriptors(p, seed) for p in sets] if variant == "random" else sets


def predict(model, processor, image_embeds: torch.Tensor, attributes: Sequence[str], variants: Sequence[str] = VARIANTS,
            root=None, aggregate: str = "mean", seed: int = 0) -> dict[str, dict[str, list[str]]]:
    """{variant: {attribute: predicted class per image}} for precomputed image embeddings (N, D)."""
    from flip.zeroshot import FLIPClassifier, TextCache

    out = {}
    for variant in variants:
        clf = FLIPClassifier(model, processor, prompt_sets(variant, attributes, root, seed),
                             method="baseline" if variant == "baseline" else "descriptors",
                             aggregate=aggregate, cache=TextCache())
        device = next(model.parameters()).device
        results = clf.classify_embeddings(image_embeds.to(device))
        out[variant] = {a: results[a].predictions for a in attributes}
    return out


DESCRIPTOR_CUES = Path(__file__).resolve().parents[1] / "configs" / "descriptor_cues.json"


def faithfulness(model, processor, image_embeds: torch.Tensor, labels: Sequence[dict[str, str]],
                 cues: Sequence[Sequence[str] | None], mapping: dict | None = None, root=None) -> dict:
    """How often the explanation names a cue the face really shows, against chance.

    For each face, attribute and the true class, among that class's descriptors that name a drawn
    cue (`eval/configs/descriptor_cues.json`), take the one most similar to the image (what an
    explanation would show first) and check whether its cue is rendered on that face; the control
    is a random descriptor of the same class (its expected hit rate, computed exactly). Only
    correctly classified faces count (an explanation of a right answer), and only classes whose
    descriptors name different cues (otherwise every choice is the same). Returns per attribute and pooled: faces, top-descriptor
    hit rate, random-descriptor hit rate.
    """
    from flip.zeroshot import FLIPClassifier, TextCache

    mapping = mapping if mapping is not None else json.loads(DESCRIPTOR_CUES.read_text())
    tasks = [a for a in mapping if not a.startswith("_")]
    clf = FLIPClassifier(model, processor, [load_prompts(a, root) for a in tasks], method="descriptors",
                         cache=TextCache())
    results = clf.classify_embeddings(image_embeds.to(next(model.parameters()).device), to_cpu=True)
    out, pooled = {}, [0, 0.0, 0.0]
    for a in tasks:
        res = results[a]
        n = top_hits = random_hits = 0.0
        for i, row in enumerate(labels):
            cls, shown = row.get(a), cues[i]
            named = mapping[a].get(cls, {}) if cls is not None else {}
            if len({tuple(c) for c in named.values()}) < 2 or shown is None or res.predictions[i] != cls:
                continue  # a class whose descriptors all name one cue has no choice to explain
            ranked = [t for t, _ in res.top_descriptors(i, k=None, cls=cls) if t in named]
            if not ranked:
                continue
            hit = [any(c in shown for c in named[t]) for t in named]
            n += 1
            top_hits += any(c in shown for c in named[ranked[0]])
            random_hits += sum(hit) / len(hit)
        if n:
            out[a] = {"faces": int(n), "top": top_hits / n, "random": random_hits / n}
            pooled[0] += n
            pooled[1] += top_hits
            pooled[2] += random_hits
    if pooled[0]:
        out["_pooled"] = {"faces": int(pooled[0]), "top": pooled[1] / pooled[0], "random": pooled[2] / pooled[0]}
    return out


_ACCURACY = None


def metric(predictions: Sequence[str], references: Sequence[str], classes: Sequence[str]) -> float:
    """Accuracy through the local evaluate module (class keys mapped to ids in `classes` order)."""
    global _ACCURACY
    if _ACCURACY is None:
        import evaluate

        _ACCURACY = evaluate.load(str(METRICS_DIR / "accuracy"))
    ids = {c: i for i, c in enumerate(classes)}
    return float(_ACCURACY.compute(predictions=[ids[p] for p in predictions],
                                   references=[ids[r] for r in references])["accuracy"])


def evaluate_attributes(model, processor, images: Sequence, labels: Sequence[dict[str, str]],
                        attributes: Sequence[str] = ATTRIBUTES, variants: Sequence[str] = VARIANTS, *,
                        root=None, aggregate: str = "mean", seed: int = 0, batch_size: int = 64,
                        num_workers: int | None = None,
                        embeds: torch.Tensor | None = None) -> tuple[list[dict], dict[str, dict[str, list[str]]]]:
    """The table's rows (one per attribute) and every prediction ({variant: {attribute: [...]}}).
    `embeds`: the images' embeddings when the caller already has them."""
    attributes = [a for a in attributes if any(a in row for row in labels)]
    if not attributes:
        raise ValueError("no example has a visible label for the attributes asked for")
    if embeds is None:
        embeds = embed_images(model, processor, images, batch_size, num_workers)
    predictions = predict(model, processor, embeds, attributes, variants, root, aggregate, seed)
    rows = []
    for a in attributes:
        classes = load_prompts(a, root).classes
        keep = [i for i, row in enumerate(labels) if a in row]
        refs = [labels[i][a] for i in keep]
        unknown = sorted(set(refs) - set(classes))
        if unknown:
            raise ValueError(f"attribute {a!r}: labels {unknown} are not classes of its prompt file {list(classes)}")
        row: dict[str, Any] = {"attribute": a, "n": len(keep), "classes": len(classes), "chance": 1 / len(classes),
                               "majority": Counter(refs).most_common(1)[0][1] / len(refs)}
        for v in variants:
            row[v] = metric([predictions[v][a][i] for i in keep], refs, classes)
        rows.append(row)
    return rows, predictions


def summarise(rows: list[dict], variants: Sequence[str]) -> dict[str, float]:
    """Unweighted means over attributes, and how often by description beats the baseline."""
    keys = ["chance", "majority", *variants]
    means = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    if "descriptors" in variants and "baseline" in variants:
        means["descriptors_minus_baseline"] = means["descriptors"] - means["baseline"]
        means["attributes_where_descriptors_win"] = sum(r["descriptors"] > r["baseline"] for r in rows)
    return means


def format_table(rows: list[dict], variants: Sequence[str], means: dict[str, float]) -> str:
    """A Markdown table, accuracies in percent."""
    head = ["attribute", "n", "classes", "chance", "majority", *variants]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for r in rows:
        cells = [r["attribute"], str(r["n"]), str(r["classes"])] + [f"{100 * r[k]:.1f}" for k in head[3:]]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("| **mean** | | | " + " | ".join(f"**{100 * means[k]:.1f}**" for k in head[3:]) + " |")
    return "\n".join(lines)


# -- command ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.tasks.attributes", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="model for flip.load (default: the embedded model)")
    p.add_argument("--data", required=True, help="labelled faces in a flip data format (imagefolder, parquet, shards)")
    p.add_argument("--split", default="test")
    p.add_argument("--format", default=None, help="imagefolder | parquet | webdataset (default: detected)")
    p.add_argument("--attributes", nargs="+", default=list(ATTRIBUTES))
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--aggregate", default="mean", choices=("mean", "max", "sum"))
    p.add_argument("--prompts", default=None, help="prompt folder (default: flip's own)")
    p.add_argument("--limit", type=int, default=None, help="score at most this many examples")
    p.add_argument("--seed", type=int, default=0, help="seed of the random-descriptor control")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--out", default="report", help="folder for attributes.json / .md / _predictions.jsonl")
    args = p.parse_args(argv)

    from flip.hub import load

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, processor = load(args.model, device=device)
    examples = list(read_examples(args.data, args.split, args.attributes, args.limit, args.format))
    if not examples:
        raise SystemExit(f"eval.tasks.attributes: {args.data}: no examples (split {args.split!r})")
    images, labels, groups = (list(column) for column in zip(*examples))
    cues = [g.pop("_cues", None) for g in groups]
    embeds = embed_images(model, processor, images, args.batch_size, args.workers)
    rows, predictions = evaluate_attributes(model, processor, images, labels, args.attributes, args.variants,
                                            root=args.prompts, aggregate=args.aggregate, seed=args.seed,
                                            batch_size=args.batch_size, num_workers=args.workers, embeds=embeds)
    means = summarise(rows, args.variants)
    table = format_table(rows, args.variants, means)
    print(table)
    if "descriptors_minus_baseline" in means:
        print(f"\nby description - baseline: {100 * means['descriptors_minus_baseline']:+.1f} points on average; "
              f"better on {means['attributes_where_descriptors_win']} of {len(rows)} attributes")
    faithful = None
    if any(c is not None for c in cues) and args.prompts is None:
        faithful = faithfulness(model, processor, embeds, labels, cues)
        if "_pooled" in faithful:
            f = faithful["_pooled"]
            print(f"explanations: the top descriptor names a cue the face shows in {100 * f['top']:.1f}% of "
                  f"{f['faces']} correct answers; a random descriptor of the class in {100 * f['random']:.1f}%")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from flip.runtime import package_version

    config = {**vars(args), "model": args.model or "flip-tiny-synth (embedded default)", "device": device}
    (out / "attributes.json").write_text(json.dumps(
        {"config": config, "package_version": package_version(), "examples": len(images), "rows": rows, "mean": means,
         **({"faithfulness": faithful} if faithful is not None else {})},
        indent=2) + "\n")
    (out / "attributes.md").write_text(table + "\n")
    with open(out / "attributes_predictions.jsonl", "w") as f:
        for i, row in enumerate(labels):
            f.write(json.dumps({"index": i, "labels": row, "groups": groups[i],
                                **{v: {a: predictions[v][a][i] for a in predictions[v]} for v in predictions}}) + "\n")
    print(f"\nwrote {out / 'attributes.json'}, attributes.md and attributes_predictions.jsonl", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
