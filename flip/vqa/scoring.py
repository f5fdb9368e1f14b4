"""Scoring answers about faces: exact match after normalisation, confusion matrices and their figures.

Pure functions on answer strings (the figures need matplotlib, imported when drawn). The recipe
(`flip.train.vqa_lora`) scores its held-out questions with them; the evaluation harness's
`eval/metrics/vqa_accuracy` module wraps `exact_match` for `evaluate`, so both report one arithmetic.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from flip.vqa.answers import normalize_answer, synonym_table

#: The confusion matrix's last column: predictions outside the references' answers.
OTHER = "(other)"


def exact_match(predictions: Sequence[str], references: Sequence[str], attributes: Sequence[str] | None = None,
                synonyms: dict | None = None) -> dict:
    """{"exact_match", "per_attribute", "counts", "n"}: the share of normalised predictions equal to their
    normalised references, overall and per attribute (questions whose attribute is "" count only overall).
    Empty input is an error, not 0."""
    if len(predictions) == 0:
        raise ValueError("vqa_accuracy: no predictions to score")
    if len(predictions) != len(references):
        raise ValueError(f"vqa_accuracy: {len(predictions)} predictions but {len(references)} references")
    table = synonym_table(synonyms)
    correct = [normalize_answer(p, table) == normalize_answer(r, table) for p, r in zip(predictions, references)]
    per_attribute, counts = {}, {}
    for attribute, ok in zip(attributes if attributes is not None else [""] * len(correct), correct):
        if not attribute:
            continue
        counts[attribute] = counts.get(attribute, 0) + 1
        per_attribute[attribute] = per_attribute.get(attribute, 0) + int(ok)
    return {"exact_match": sum(correct) / len(correct),
            "per_attribute": {a: per_attribute[a] / counts[a] for a in counts}, "counts": counts, "n": len(correct)}


def confusion_matrix(references: Sequence[str], predictions: Sequence[str],
                     synonyms: dict | None = None) -> tuple[list[str], np.ndarray]:
    """(classes, counts[reference, predicted]); answers outside the references' set go to a last column."""
    table = synonym_table(synonyms)
    refs = [normalize_answer(r, table) for r in references]
    preds = [normalize_answer(p, table) for p in predictions]
    classes = sorted(set(refs))
    index = {c: i for i, c in enumerate(classes)}
    counts = np.zeros((len(classes), len(classes) + 1), dtype=int)
    for r, p in zip(refs, preds):
        counts[index[r], index.get(p, len(classes))] += 1
    return classes, counts


def confusion_figures(examples: Sequence, predictions: Sequence[str], out_dir: str | Path,
                      synonyms: dict | None = None) -> list[Path]:
    """One PNG per attribute: rows are true answers, columns predicted ones (plus "(other)")."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for attribute in sorted({e.attribute for e in examples}):
        keep = [i for i, e in enumerate(examples) if e.attribute == attribute]
        classes, counts = confusion_matrix([examples[i].answer for i in keep], [predictions[i] for i in keep], synonyms)
        fig, ax = plt.subplots(figsize=(max(4.0, 1.2 + 0.55 * (len(classes) + 1)), max(2.6, 1.0 + 0.5 * len(classes))))
        ax.imshow(counts, cmap="Blues")
        ax.set_xticks(range(len(classes) + 1), classes + [OTHER], rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(classes)), classes, fontsize=8)
        for (i, j), n in np.ndenumerate(counts):
            if n:
                ax.text(j, i, str(n), ha="center", va="center", fontsize=7,
                        color="white" if n > counts.max() / 2 else "black")
        accuracy = np.trace(counts[:, : len(classes)]) / max(1, counts.sum())
        ax.set_title(f"{attribute}: exact match {100 * accuracy:.1f}% (n={counts.sum()})", fontsize=9)
        ax.set_xlabel("predicted answer", fontsize=8)
        ax.set_ylabel("true answer", fontsize=8)
        fig.tight_layout()
        path = out_dir / f"{attribute}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def write_predictions(path: str | Path, examples: Sequence, *columns: Sequence[str],
                      names: Sequence[str] = ("prediction",)) -> None:
    """One JSON line per example: its attribute, question, answer and each column's answer under `names`."""
    with open(path, "w") as f:
        for i, e in enumerate(examples):
            row = {"index": i, "attribute": e.attribute, "question": e.question, "answer": e.answer}
            row.update({name: column[i] for name, column in zip(names, columns)})
            f.write(json.dumps(row) + "\n")


def format_scores(scores: dict) -> str:
    """`exact_match`'s result as lines of text: overall, then per attribute."""
    lines = [f"exact match {100 * scores['exact_match']:.1f}% on {scores['n']} questions"]
    lines += [f"  {a:<12} {100 * v:5.1f}%  (n={scores['counts'][a]})" for a, v in sorted(scores["per_attribute"].items())]
    return "\n".join(lines)
