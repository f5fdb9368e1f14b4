"""Precision, recall and F1 of face labels, with and without "no name" (SECLA's metrics, papers.md).

Design choices (micro-averaged over all faces of a corpus):
- Without NONAME, only names count: a prediction is a face given a name, a relevant face is one
  whose true label is a name, a hit is a face given its true name. Leaving a named face unnamed
  costs recall; naming an unnamed face costs precision.
- With NONAME, "no name" is one more label: every face is a prediction and a relevant face, a
  face rightly left unnamed is a hit, so precision = recall = F1 = accuracy over faces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["LabelScores", "face_label_scores", "face_label_report"]


@dataclass(frozen=True)
class LabelScores:
    precision: float
    recall: float
    f1: float


def _scores(hits: int, predicted: int, relevant: int) -> LabelScores:
    precision = hits / predicted if predicted else 0.0
    recall = hits / relevant if relevant else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return LabelScores(precision, recall, f1)


def face_label_scores(predicted: Sequence[Sequence[str | None]], truth: Sequence[Sequence[str | None]],
                      with_noname: bool = False) -> LabelScores:
    """Scores of per-image face labels (None = no name) against the truth, same shapes."""
    if len(predicted) != len(truth):
        raise ValueError(f"predicted: {len(predicted)} images, truth: {len(truth)}")
    hits = n_predicted = n_relevant = 0
    for i, (pred, true) in enumerate(zip(predicted, truth)):
        if len(pred) != len(true):
            raise ValueError(f"image {i}: {len(pred)} predicted labels for {len(true)} faces")
        for p, t in zip(pred, true):
            if with_noname:
                hits += p == t
                n_predicted += 1
                n_relevant += 1
            else:
                hits += p is not None and p == t
                n_predicted += p is not None
                n_relevant += t is not None
    return _scores(hits, n_predicted, n_relevant)


def face_label_report(predicted: Sequence[Sequence[str | None]], truth: Sequence[Sequence[str | None]]) -> dict[str, float]:
    """Both views at once: {precision, recall, f1} without NONAME and the same keys suffixed `_noname` with it."""
    out = {}
    for suffix, with_noname in (("", False), ("_noname", True)):
        scores = face_label_scores(predicted, truth, with_noname=with_noname)
        out |= {f"precision{suffix}": scores.precision, f"recall{suffix}": scores.recall, f"f1{suffix}": scores.f1}
    return out
