"""`FaceNamer`: detect faces, find names, embed both, assign, for one image and its caption.

Design choices:
- The four stages are the four modules of this package and each is swappable: any
  `FaceDetector` (or the user's boxes), any name extractor, the frozen FLIP towers, and
  optionally trained SECLA heads (`load_heads`, a `flip name-faces-train` checkpoint).
- Faces are embedded by the heads' own face embedder (`SECLAConfig.faces`: FLIP's image tower
  or dlib's descriptor, `flip.naming.embed`), or by the one given.
- Without heads this is the untrained baseline of issue 7: cosine between the FLIP face-crop
  embedding and the FLIP embedding of the bare name, assigned with a fixed threshold. With heads,
  the faces and names go through them and a face's similarity to NONAME is its threshold (a face
  is unnamed when NONAME beats every name it could take), raised to `threshold` if that is higher.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from flip.naming.align import assign_names
from flip.faces.detect import Box, FaceDetector, GivenBoxes
from flip.naming.embed import FaceEmbedder, FlipFaceEmbedder, build_face_embedder, embed_names
from flip.naming.names import RuleNameExtractor
from flip.naming.secla import SECLAConfig, SECLAHeads
from flip.processor import load_image

__all__ = ["NamedFace", "FaceNamer", "load_heads", "HEADS_FORMAT"]

HEADS_FORMAT = "flip-secla-heads"


@dataclass
class NamedFace:
    """One face of the image: its box, its name (None = no name), the similarity behind it and the
    detector's confidence in the box (1 for given boxes)."""

    box: list[float]
    name: str | None
    score: float | None
    detector_score: float | None = None

    def to_dict(self) -> dict:
        return {"box": [round(v, 2) for v in self.box], "name": self.name,
                "score": None if self.score is None else round(self.score, 4),
                "detector_score": None if self.detector_score is None else round(self.detector_score, 4)}


def load_heads(path: str | os.PathLike) -> SECLAHeads:
    """SECLA heads from a `flip name-faces-train` checkpoint (or a file saved by `save_heads`)."""
    from flip.state_file import load_checkpoint

    state = load_checkpoint(path)
    if state.get("kind") != HEADS_FORMAT:
        raise ValueError(f"{path}: not a SECLA heads checkpoint (written by `flip name-faces-train`)")
    heads = SECLAHeads(SECLAConfig(**state["config"]))
    heads.load_state_dict(state["heads"])
    return heads.eval()


class FaceNamer:
    """Names the faces of an image from its caption (see the module docstring)."""

    def __init__(self, model, processor, detector: FaceDetector | None = None, extractor=None,
                 heads: SECLAHeads | None = None, threshold: float = 0.0, margin: float = 0.0,
                 face_embedder: FaceEmbedder | None = None):
        self.model, self.processor = model, processor
        self.detector, self.extractor = detector, extractor or RuleNameExtractor()
        self.heads, self.threshold, self.margin = heads, float(threshold), float(margin)
        self.face_embedder = face_embedder or build_face_embedder(
            heads.config.faces if heads is not None else "flip", model, processor, margin)
        dim = model.config.projection_dim
        if heads is None and not isinstance(self.face_embedder, FlipFaceEmbedder):
            raise ValueError("face_embedder: without heads, faces are compared with name text, which needs FLIP's "
                             "image tower; give heads trained on these face features")
        if heads is not None and (heads.config.face_dim != self.face_embedder.dim or (
                heads.name_head is not None and heads.config.name_dim != dim)):
            raise ValueError(f"heads: trained on {heads.config.face_dim}-d features ({heads.config.faces}), but this "
                             f"model's embeddings are {self.face_embedder.dim}-d (faces) and {dim}-d (names); use the "
                             "model the heads were trained with")

    @torch.no_grad()
    def __call__(self, image, caption: str, boxes=None, names: list[str] | None = None) -> list[NamedFace]:
        """Faces of `image` (boxes given or detected) labelled with `names` (default: found in `caption`)."""
        image = load_image(image)
        if boxes is not None:
            found = GivenBoxes(boxes).detect(image)
        elif self.detector is not None:
            found = self.detector.detect(image)
        else:
            raise ValueError("boxes: give the face boxes or build the FaceNamer with a detector")
        names = list(self.extractor(caption)) if names is None else list(names)
        if not found:
            return []
        scores, threshold = self.scores(image, found, names)
        labels = assign_names(scores, threshold)
        return [NamedFace(box.xyxy, None if lab.name is None else names[lab.name], lab.score, box.score)
                for box, lab in zip(found, labels)]

    def scores(self, image, boxes: list[Box], names: list[str]):
        """(F, N) face-name cosines and the per-face threshold."""
        faces = self.face_embedder(image, [b.xyxy for b in boxes])
        text = embed_names(self.model, self.processor, names) if names and (
            self.heads is None or self.heads.name_head is not None) else None
        threshold = torch.full((len(boxes),), self.threshold)
        if self.heads is not None:
            faces = F.normalize(self.heads.faces(faces), dim=-1)
            threshold = torch.maximum(threshold, faces @ F.normalize(self.heads.noname, dim=-1))
            if names:
                text = self.heads.names(text) if text is not None else self.heads.names(names=names)
        if not names:
            return torch.zeros(len(boxes), 0), threshold
        return F.normalize(faces, dim=-1) @ F.normalize(text, dim=-1).t(), threshold
