"""Face detection for face naming: now flip's shared face stage (`flip.faces`), re-exported here.

`align_face` here is `flip.faces.align.level_face` (eyes levelled, box cut), the alignment face
naming has always used; `flip.faces.align_face` is the five-point alignment onto a template.
"""

from __future__ import annotations

from flip.faces.align import crop_face, level_face
from flip.faces.detect import DETECTORS, Box, FaceDetector, GivenBoxes, HaarDetector, MTCNNDetector, build_detector

__all__ = ["Box", "FaceDetector", "GivenBoxes", "HaarDetector", "MTCNNDetector", "build_detector", "crop_face",
           "align_face", "DETECTORS"]


def align_face(image, box: Box, margin: float = 0.0):
    """The eyes levelled, then the box cut: `flip.faces.align.level_face` under face naming's old name."""
    return level_face(image, box, margin)
