"""Face naming: label each face of an image with a name from its caption, or with no name (issue 7).

`detect` finds faces, `names` finds person names in captions, `embed` turns faces into features
(the FLIP image tower, or dlib's face-recognition ResNet), `align` scores and assigns faces to
names, `secla` learns the alignment from image-caption pairs alone (SECLA and SECLA-B, papers.md),
`corpus` featurises image-caption pairs once and labels their faces, `label_scores` scores face
labels, and `pipeline.FaceNamer` puts the stages together. The training recipe that learns the
heads over a corpus is `flip.train.naming`:

    from flip.naming import FaceNamer, MTCNNDetector
    namer = FaceNamer(*flip.load(), detector=MTCNNDetector())
    namer("photo.jpg", "Ana Silva and Kofi Mensah at the summit.")  # [NamedFace(box, name, score), ...]

Names are imported on first use, so `import flip.naming` pulls in neither OpenCV nor scipy.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Box": "detect", "GivenBoxes": "detect", "HaarDetector": "detect", "MTCNNDetector": "detect",
    "build_detector": "detect", "crop_face": "detect", "align_face": "detect",
    "RuleNameExtractor": "names", "ModelNameExtractor": "names", "extract_names": "names",
    "similarity_matrix": "align", "assign_names": "align",
    "SECLAConfig": "secla", "SECLAHeads": "secla", "secla_scores": "secla", "secla_loss": "secla",
    "prototype_loss": "secla",
    "FaceNamer": "pipeline", "NamedFace": "pipeline", "load_heads": "pipeline",
    "face_label_scores": "label_scores", "face_label_report": "label_scores",
    "PairFeatures": "corpus", "featurize": "corpus", "label_pairs": "corpus", "evaluate_pairs": "corpus",
    "FaceEmbedder": "embed", "FlipFaceEmbedder": "embed", "DlibFaceEmbedder": "embed", "build_face_embedder": "embed",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
