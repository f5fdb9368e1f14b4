"""CelebA's 40 attributes on the synthetic world's faces, in the shape of FLIP's attribute table.

    python -m eval.tasks.celeba40 --data data/synth-fresh --split test \
        --probe-data data/synth-captions --probe-split train --out report/

World v3 draws CelebA's attributes as cues and records them per face (`extra["celeba"]`,
`flip.data.synthetic.cues.celeba_labels`); the two it cannot draw honestly (Attractive, Male) are
None for every face and left out, as are labels a face hides (bags under sunglasses). Per attribute:
- probe: FLIP's own protocol, a linear layer on frozen image embeddings (`flip.probe.fit_probe`,
  its L2 penalty chosen from `PROBE_PENALTIES` on a validation part), trained on `--probe-n`
  faces of the probe split, its penalty chosen by accuracy (as CLIP's probes are);
- probe_balanced: the same probe with classes weighted by inverse frequency and the penalty chosen
  by balanced accuracy (`ProbeConfig.balanced`), the probe that matches the measure: the plain
  one fits a rare attribute that the embedding holds weakly as "always no", which scores 0.5;
- descriptors: zero-shot by description with the shipped `celeba/<Attribute>` prompt files;
- baseline: zero-shot with the class phrases alone ("a person with bags under the eyes").
The measure is balanced accuracy (mean recall of true and false, the local `evaluate` module
`eval/metrics/balanced_accuracy`): most attributes are rare, so plain accuracy would reward "no".
Writes `celeba40.json` (config, rows, means) and `celeba40.md` under --out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

METRICS_DIR = Path(__file__).resolve().parents[1] / "metrics"
VARIANTS = ("probe", "probe_balanced", "descriptors", "baseline")
#: 38 probes per run: two penalties to choose from keep the run to minutes on a 2-core CPU
PROBE_PENALTIES = (1e-3, 1e-2)


def load_examples(data: str | Path, split: str | None, limit: int | None = None) -> tuple[list, list[dict]]:
    """Images and their CelebA labels ({attribute: "true" | "false"}, hidden and undrawn ones left out)
    of the live faces of one split."""
    from flip.data.formats import read_dataset

    images, labels = [], []
    for record in read_dataset(data, split=split):
        if record.live is False or "celeba" not in record.extra:
            continue
        images.append(record.image)
        labels.append({a: "true" if v else "false" for a, v in record.extra["celeba"].items() if v is not None})
        if limit is not None and len(images) >= limit:
            break
    if not images:
        raise ValueError(f"{data}: no faces with CelebA labels in split {split!r} (world v3 data needed)")
    return images, labels


_BACC = None


def metric(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Balanced accuracy through the local evaluate module ("false" = 0, "true" = 1)."""
    global _BACC
    if _BACC is None:
        import evaluate

        _BACC = evaluate.load(str(METRICS_DIR / "balanced_accuracy"))
    ids = {"false": 0, "true": 1}
    return float(_BACC.compute(predictions=[ids[p] for p in predictions],
                               references=[ids[r] for r in references])["balanced_accuracy"])


def evaluate_celeba(model, processor, images, labels, probe_images, probe_labels, attributes: Sequence[str],
                    batch_size: int = 64, num_workers: int | None = None) -> list[dict]:
    """One row per attribute: n, share of positives, and each variant's balanced accuracy."""
    from eval.tasks.attributes import embed_images
    from flip.probe import ProbeConfig, fit_probe
    from flip.prompts import load_prompts
    from flip.zeroshot import FLIPClassifier, TextCache

    probe_configs = {"probe": ProbeConfig(weight_decays=PROBE_PENALTIES, max_iter=200),
                     "probe_balanced": ProbeConfig(weight_decays=PROBE_PENALTIES, max_iter=200, balanced=True)}
    embeds = embed_images(model, processor, images, batch_size, num_workers)
    probe_embeds = embed_images(model, processor, probe_images, batch_size, num_workers)
    tasks = [f"celeba/{a}" for a in attributes]
    device = next(model.parameters()).device
    zeroshot = {}
    for variant in ("descriptors", "baseline"):
        clf = FLIPClassifier(model, processor, [load_prompts(t) for t in tasks], method=variant, cache=TextCache())
        results = clf.classify_embeddings(embeds.to(device), to_cpu=True)
        zeroshot[variant] = {a: results[t].predictions for a, t in zip(attributes, tasks)}
    rows = []
    for a in attributes:
        keep = [i for i, row in enumerate(labels) if a in row]
        train = [i for i, row in enumerate(probe_labels) if a in row]
        refs = [labels[i][a] for i in keep]
        if len(set(refs)) < 2:
            continue  # balanced accuracy needs both classes among the test faces
        row = {"attribute": a, "n": len(keep), "positives": refs.count("true") / len(refs)}
        train_labels = [probe_labels[i][a] for i in train]
        if len(set(train_labels)) == 2:
            for column, probe_config in probe_configs.items():
                probe = fit_probe(probe_embeds[train], train_labels, probe_config)
                row[column] = metric(probe.predict(embeds[keep]), refs)
        for variant, predictions in zeroshot.items():
            row[variant] = metric([predictions[a][i] for i in keep], refs)
        rows.append(row)
    return rows


def summarise(rows: list[dict]) -> dict[str, float]:
    return {v: float(np.mean([r[v] for r in rows if v in r])) for v in VARIANTS if any(v in r for r in rows)}


def format_table(rows: list[dict], means: dict[str, float]) -> str:
    head = ["attribute", "n", "positives", *[v for v in VARIANTS if v in means]]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for r in rows:
        cells = [r["attribute"], str(r["n"]), f"{100 * r['positives']:.1f}"]
        cells += ["-" if v not in r else f"{100 * r[v]:.1f}" for v in head[3:]]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("| **mean** | | | " + " | ".join(f"**{100 * means[v]:.1f}**" for v in head[3:]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from flip.data.synthetic.cues import CELEBA_40, UNDRAWN

    p = argparse.ArgumentParser(prog="python -m eval.tasks.celeba40", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="model for flip.load (default: the embedded model)")
    p.add_argument("--data", required=True, help="world-v3 faces to score (captions kind)")
    p.add_argument("--split", default="test")
    p.add_argument("--probe-data", default=None, help="faces the linear probe trains on (default: --data)")
    p.add_argument("--probe-split", default="train")
    p.add_argument("--probe-n", type=int, default=3000, help="faces the probe trains on (default 3000)")
    p.add_argument("--limit", type=int, default=None, help="score at most this many faces")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--out", default="report")
    args = p.parse_args(argv)

    import flip

    try:
        model, processor = flip.load(args.model)
        images, labels = load_examples(args.data, args.split, args.limit)
        probe_images, probe_labels = load_examples(args.probe_data or args.data, args.probe_split, args.probe_n)
    except (FileNotFoundError, ValueError) as err:
        print(f"eval.tasks.celeba40: {err}", file=sys.stderr)
        return 2
    attributes = [a for a in CELEBA_40 if a not in UNDRAWN]
    with torch.no_grad():
        rows = evaluate_celeba(model, processor, images, labels, probe_images, probe_labels, attributes,
                               args.batch_size, args.workers)
    means = summarise(rows)
    table = format_table(rows, means)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = {**vars(args), "model": args.model or "flip-tiny-synth (embedded default)", "left_out": UNDRAWN}
    (out / "celeba40.json").write_text(json.dumps({"config": config, "faces": len(images),
                                                   "probe_faces": len(probe_images), "rows": rows, "mean": means},
                                                  indent=2) + "\n")
    (out / "celeba40.md").write_text(table + "\n")
    print(f"\nwrote {out / 'celeba40.json'} and celeba40.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
