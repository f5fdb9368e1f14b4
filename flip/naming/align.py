"""Face-name alignment within one image-caption pair: a similarity matrix and an assignment.

Design choices:
- Scores are cosine similarities between face and name embeddings, an (F, N) matrix.
- The assignment is one-to-one (a name labels at most one face, a face gets at most one name) and
  allows "no name": Hungarian matching (`scipy.optimize.linear_sum_assignment`) on the matrix
  widened by one null column per face, whose score is the threshold. A face takes a name only if
  that beats leaving it unnamed, so the matching maximises the total score over named faces
  minus the threshold for each, and extra faces or extra names simply stay unmatched.
- The threshold is a number, or one per face: with SECLA's NONAME token, a face's similarity to
  NONAME is its own threshold (the paper labels a face "no name" when NONAME wins).
- Pure functions on arrays (numpy or torch), no model inside; the caller embeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FaceLabel", "similarity_matrix", "assign_names"]


@dataclass(frozen=True)
class FaceLabel:
    """One face's outcome: the index of its name (None = no name) and a score: the similarity to
    that name, or for an unnamed face its best similarity to any name (None when there are no names)."""

    name: int | None
    score: float | None


def _array(x, what: str, ndim: int) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != ndim:
        raise ValueError(f"{what}: expected {ndim} dimensions, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what}: holds a non-finite value")
    return a


def similarity_matrix(face_embeds, name_embeds) -> np.ndarray:
    """Cosine similarities, (F, D) faces x (N, D) names -> (F, N); zero-size sides give empty rows/columns."""
    faces = _array(face_embeds, "face_embeds", 2)
    names = _array(name_embeds, "name_embeds", 2)
    if faces.shape[1] != names.shape[1] and faces.size and names.size:
        raise ValueError(f"face_embeds and name_embeds: dimensions differ ({faces.shape[1]} vs {names.shape[1]})")
    if not faces.size or not names.size:
        return np.zeros((faces.shape[0], names.shape[0]))
    faces = faces / np.maximum(np.linalg.norm(faces, axis=1, keepdims=True), 1e-12)
    names = names / np.maximum(np.linalg.norm(names, axis=1, keepdims=True), 1e-12)
    return faces @ names.T


def assign_names(scores, threshold=0.0) -> list[FaceLabel]:
    """One label per face (row of `scores`, (F, N)): the one-to-one matching of faces to names with
    the largest total score, where a face is left unnamed whenever its name would score below
    `threshold` (a number, or (F,) one per face)."""
    from scipy.optimize import linear_sum_assignment

    scores = _array(scores, "scores", 2)
    n_faces, n_names = scores.shape
    if np.ndim(threshold) == 0:
        null = _array(np.full(n_faces, threshold), "threshold", 1)
    else:
        null = _array(threshold, "threshold", 1)
        if null.shape != (n_faces,):
            raise ValueError(f"threshold: expected a number or one per face ({n_faces}), got shape {null.shape}")
    if n_faces == 0:
        return []
    # columns: the N names, then F null columns; face f may only use its own null column
    gain = np.full((n_faces, n_names + n_faces), -np.inf)
    gain[:, :n_names] = scores
    gain[np.arange(n_faces), n_names + np.arange(n_faces)] = null
    cost = np.where(np.isfinite(gain), -gain, 1e18)
    rows, cols = linear_sum_assignment(cost)
    labels: list[FaceLabel] = [FaceLabel(None, None)] * n_faces
    for f, c in zip(rows, cols):
        if c < n_names and scores[f, c] >= null[f]:
            labels[f] = FaceLabel(int(c), float(scores[f, c]))
        else:
            labels[f] = FaceLabel(None, float(scores[f].max()) if n_names else None)
    return labels
