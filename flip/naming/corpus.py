"""A corpus of image-caption pairs for face naming, featurised once and labelled by SECLA heads or by
the untrained baseline.

Design choices:
- The towers are frozen, so a pair's face features (from the `faces` embedder: FLIP's image tower
  or dlib's descriptor, `flip.naming.embed`) and its names' text features are computed once
  (`featurize`); training (`flip.train.naming`) and evaluation (eval/tasks/naming.py) then run only
  small heads on cached tensors.
- Names come from the caption (`RuleNameExtractor`), never from the face labels; a record's true
  face names, when it has them, are kept beside the features for scoring only.
- Labelling is Hungarian matching (`flip.naming.align`): with heads, a face's similarity to NONAME
  is its bar for taking a name; without, frozen-feature cosines against a fixed threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from flip.naming.align import assign_names
from flip.naming.embed import embed_names
from flip.naming.names import RuleNameExtractor
from flip.naming.secla import SECLAHeads

__all__ = ["PairFeatures", "featurize", "name_embeddings", "label_pairs", "evaluate_pairs"]


@dataclass
class PairFeatures:
    """One image-caption pair, featurised: frozen face features (F, D), the caption's names and
    their frozen text features (N, D); `face_names` is the truth when the record has it (else
    empty), kept for evaluation only."""

    faces: torch.Tensor
    names: list[str]
    name_features: torch.Tensor
    face_names: list[str | None] = field(default_factory=list)


def featurize(records, model, processor, margin: float = 0.0, extractor=None,
              face_embedder=None) -> list[PairFeatures]:
    """Frozen features of every record that has at least one face box and one name in its caption.

    Faces go through `face_embedder` (a `flip.naming.embed.FaceEmbedder`; default: the FLIP image
    tower on crops grown by `margin`), names through the FLIP text tower.
    """
    from flip.naming.embed import FlipFaceEmbedder
    from flip.processor import load_image

    extractor = extractor or RuleNameExtractor()
    face_embedder = face_embedder or FlipFaceEmbedder(model, processor, margin)
    pairs = []
    for record in records:
        faces = record.faces or []
        names = extractor(record.caption or "")
        if not faces or not names:
            continue
        image = load_image(record.image)
        pairs.append(PairFeatures(face_embedder(image, [f["box"] for f in faces]),
                                  names, embed_names(model, processor, names),
                                  [f.get("name") for f in faces] if any("name" in f for f in faces) else []))
    return pairs


def name_embeddings(heads: SECLAHeads, pair: PairFeatures) -> torch.Tensor:
    """The pair's names through the heads: their text features through the name head, or the
    heads' own table of names."""
    return heads.names(pair.name_features) if heads.name_head is not None else heads.names(names=pair.names)


@torch.no_grad()
def label_pairs(heads: SECLAHeads | None, pairs: list[PairFeatures], threshold: float = -1.0) -> list[list[str | None]]:
    """Each pair's faces labelled by Hungarian matching. With heads, through them, a face's NONAME
    similarity (or `threshold`, when higher) being its bar for taking a name; with `heads=None`,
    the untrained baseline: frozen-feature cosines against `threshold`."""
    out = []
    for pair in pairs:
        if heads is None:
            faces, names = F.normalize(pair.faces, dim=-1), F.normalize(pair.name_features, dim=-1)
            bar = torch.full((len(faces),), float(threshold))
        else:
            faces = F.normalize(heads.faces(pair.faces), dim=-1)
            names = F.normalize(name_embeddings(heads, pair), dim=-1)
            bar = torch.clamp(faces @ F.normalize(heads.noname, dim=-1), min=threshold)
        labels = assign_names(faces @ names.t(), bar)
        out.append([None if lab.name is None else pair.names[lab.name] for lab in labels])
    return out


def evaluate_pairs(heads: SECLAHeads | None, pairs: list[PairFeatures], threshold: float = -1.0) -> dict[str, float]:
    """Face-label precision, recall and F1 with and without NONAME (`flip.naming.label_scores`) of
    `label_pairs` against the pairs' true face names."""
    from flip.naming.label_scores import face_label_report

    return face_label_report(label_pairs(heads, pairs, threshold), [p.face_names for p in pairs])
