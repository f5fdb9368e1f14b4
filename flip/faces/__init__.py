"""The face stage: find the faces of a photo, cut them as the model expects, one answer per face.

`detect` holds the detectors (MTCNN by default, OpenCV's Haar cascade, the user's own boxes),
`align` the crops (a grown box, or five points on a template), `stage` the policy every command
shares (`--faces auto|all|largest|none`, minimum size, maximum count, no face found) and the
DataLoader that runs it in worker processes, `draw` the pictures of `--draw`:

    from flip.faces import FaceStage
    stage = FaceStage(mode="all")
    faces, pixels = stage.pixels("group.jpg", processor)   # [Face, ...], uint8 (F, 3, S, S)

Names are imported on first use, so `import flip.faces` pulls in neither OpenCV nor facenet-pytorch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Box": "detect", "FaceDetector": "detect", "GivenBoxes": "detect", "HaarDetector": "detect",
    "MTCNNDetector": "detect", "build_detector": "detect", "DETECTORS": "detect",
    "ARCFACE_TEMPLATE": "align", "face_template": "align", "similarity_transform": "align", "crop_face": "align",
    "align_face": "align", "level_face": "align", "face_crop": "align",
    "FACE_MODES": "stage", "FaceStageConfig": "stage", "Face": "stage", "FaceStage": "stage",
    "is_face_crop": "stage", "face_file_loader": "stage",
    "draw_faces": "draw", "save_drawing": "draw",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
