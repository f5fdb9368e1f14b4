"""The face stage: photo -> faces (detect, choose, crop) -> the model's input, one row per face.

Design choices:
- One policy for every command that takes photos (`FaceStageConfig.mode`): "auto" takes an image
  that already is a face crop (square, at most twice the model's input side, as the synthetic
  world's faces and aligned-face datasets are) whole and detects faces in anything else; "all"
  and "largest" always detect; "none" never does (the whole image is the face, the processor's
  resize and centre crop as before the stage existed).
- Faces smaller than `min_face_size` pixels (the box's shorter side) are dropped, then the
  `max_faces` most confident are kept, left to right. Deepface's `analyze` and insightface's
  `FaceAnalysis.get` answer per detected face the same way.
- When detection finds nothing, `if_none` decides: "whole" answers on the whole image and the
  record says so (`face` is None, `whole_image` True); "skip" gives no row. Nothing is silent:
  callers report images without a face.
- Crops follow the processor's settings (`face_crop`, `box_margin`): what the checkpoint expects.
- `FaceFiles` / `face_file_loader` run the stage inside DataLoader workers, so detection on a
  batch of photos overlaps the model, as decoding does in `flip.zeroshot.image_file_loader`.
  Each worker builds its own detector on first use (a stage that never detects needs no detector
  package). torch is imported only by the DataLoader and by detectors that need it: the onnx
  backend (`flip.onnx_backend`) runs the same stage in threads, on numpy pixels, without torch.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from flip.faces.align import face_crop as face_crop_of
from flip.faces.detect import DETECTORS, Box, FaceDetector, build_detector
from flip.processor import load_image

__all__ = ["FACE_MODES", "IF_NONE", "FaceStageConfig", "Face", "FaceStage", "is_face_crop", "FaceFiles",
           "collate_face_files", "face_file_loader", "FaceBatch", "face_batches"]

#: How a command finds the faces of an image (`--faces`).
FACE_MODES = ("auto", "all", "largest", "none")
#: What happens to an image in which no face is found.
IF_NONE = ("whole", "skip")


@dataclasses.dataclass
class FaceStageConfig:
    """How photos become faces; the fields of `--faces`, `--detector`, `--min-face-size`, `--max-faces`."""

    mode: str = "auto"  # one of FACE_MODES (see the module docstring)
    detector: str = "mtcnn"  # one of flip.faces.detect.DETECTORS
    min_face_size: int = 20  # pixels: smaller faces (shorter box side) are dropped
    max_faces: int | None = None  # keep at most this many faces per image, the most confident; None: all
    min_score: float = 0.9  # MTCNN: the lowest face probability kept
    if_none: str = "whole"  # no face found: "whole" answers on the whole image (flagged), "skip" gives no row

    def __post_init__(self):
        if self.mode not in FACE_MODES:
            raise ValueError(f"FaceStageConfig.mode must be one of {FACE_MODES}, got {self.mode!r}")
        if self.detector not in DETECTORS:
            raise ValueError(f"FaceStageConfig.detector must be one of {sorted(DETECTORS)}, got {self.detector!r}")
        if not isinstance(self.min_face_size, int) or isinstance(self.min_face_size, bool) or self.min_face_size < 1:
            raise ValueError(f"FaceStageConfig.min_face_size must be an integer >= 1, got {self.min_face_size!r}")
        if self.max_faces is not None and (not isinstance(self.max_faces, int) or self.max_faces < 1):
            raise ValueError(f"FaceStageConfig.max_faces must be None or an integer >= 1, got {self.max_faces!r}")
        if not 0 <= self.min_score <= 1:
            raise ValueError(f"FaceStageConfig.min_score must lie in [0, 1], got {self.min_score!r}")
        if self.if_none not in IF_NONE:
            raise ValueError(f"FaceStageConfig.if_none must be one of {IF_NONE}, got {self.if_none!r}")


@dataclasses.dataclass(frozen=True)
class Face:
    """One face of an image, as every command reports it.

    index: its place among the image's faces, left to right (None: no face was found and the whole
    image stands in); box: pixels (x0, y0, x1, y1) inside the image; score: the detector's
    confidence (None when nothing was detected); whole_image: the model saw the whole image.
    """

    index: int | None
    box: tuple[float, float, float, float]
    score: float | None = None
    landmarks: tuple[tuple[float, float], ...] | None = None
    whole_image: bool = False
    detector: str | None = None

    def record(self) -> dict[str, Any]:
        """The face's fields of a JSON Lines record: face, box, detector_score, whole_image."""
        return {"face": self.index, "box": [round(float(v), 1) for v in self.box],
                "detector_score": None if self.score is None else round(float(self.score), 4),
                "whole_image": self.whole_image}


def is_face_crop(size: tuple[int, int], input_size: int) -> bool:
    """Whether an image of `size` (width, height) is taken whole under "auto": square (within 2%)
    and at most twice the model's input side."""
    width, height = size
    return abs(width - height) <= 0.02 * max(width, height) and max(width, height) <= 2 * input_size


class FaceStage:
    """Finds and cuts the faces of photos for a model (see the module docstring).

        stage = FaceStage(FaceStageConfig(mode="all"))
        faces = stage.find("group.jpg", input_size=224)                 # [Face, ...]
        faces, pixels = stage.pixels("group.jpg", processor)           # and uint8 (F, 3, S, S)
        faces, crops = stage.crops("group.jpg", input_size=224)        # or PIL crops, for other models

    `detector`: any `FaceDetector` to use instead of the config's (e.g. `GivenBoxes`).
    """

    def __init__(self, config: FaceStageConfig | None = None, detector: FaceDetector | None = None, **overrides):
        if config is None:
            config = FaceStageConfig(**overrides)
        elif overrides:
            config = dataclasses.replace(config, **overrides)
        self.config = config
        self._detector = detector
        self._detector_name = type(detector).__name__ if detector is not None else config.detector

    @property
    def detector(self) -> FaceDetector:
        """The detector, built on first use (so a stage that never detects needs no detector package)."""
        if self._detector is None:
            kwargs = {"min_face_size": self.config.min_face_size, "min_score": self.config.min_score} \
                if self.config.detector == "mtcnn" else {"min_size": self.config.min_face_size}
            self._detector = build_detector(self.config.detector, **kwargs)
        return self._detector

    def detect(self, image) -> list[Box]:
        """The boxes this stage keeps: detected, at least min_face_size, the max_faces most confident
        (or the largest), left to right."""
        image = load_image(image)
        boxes = [b for b in self.detector.detect(image)
                 if min(b.x1 - b.x0, b.y1 - b.y0) >= self.config.min_face_size]
        if self.config.mode == "largest" and boxes:
            boxes = [max(boxes, key=lambda b: b.area)]
        if self.config.max_faces is not None and len(boxes) > self.config.max_faces:
            keep = sorted(boxes, key=lambda b: -b.score)[:self.config.max_faces]
            boxes = [b for b in boxes if b in keep]
        return boxes

    def find(self, image, input_size: int) -> list[Face]:
        """The faces of one image for a model whose input side is `input_size`."""
        image = load_image(image)
        width, height = image.size
        whole = Face(0, (0.0, 0.0, float(width), float(height)), whole_image=True)
        mode = self.config.mode
        if mode == "none" or (mode == "auto" and is_face_crop(image.size, input_size)):
            return [whole]
        boxes = self.detect(image)
        if not boxes:
            return [dataclasses.replace(whole, index=None)] if self.config.if_none == "whole" else []
        return [Face(i, tuple(b.xyxy), b.score, b.landmarks, False, self._detector_name) for i, b in enumerate(boxes)]

    def crops(self, image, input_size: int, face_crop: str = "box", margin: float = 0.0) -> tuple[list[Face], list]:
        """The faces of one image and their crops (PIL images) for a model whose input side is
        `input_size`, cut as `face_crop` ("box" or "aligned") with `margin` says."""
        image = load_image(image)
        faces = self.find(image, input_size)
        crops = [image if face.whole_image else
                 face_crop_of(image, Box(*face.box, landmarks=face.landmarks), face_crop, input_size, margin)
                 for face in faces]
        return faces, crops

    def pixels(self, image, processor) -> tuple[list[Face], torch.Tensor | None]:
        """The faces of one image and their uint8 pixels (F, 3, S, S) from `processor.pixels` (None if F = 0).
        `processor`: a `FLIPProcessor` (torch pixels), or anything with its `settings` and `pixels`
        (`flip.onnx_backend.OnnxFLIP`: numpy pixels)."""
        settings = processor.settings
        faces, crops = self.crops(image, settings.image_size, settings.face_crop, settings.box_margin)
        return faces, (processor.pixels(crops, box_margin=0.0) if crops else None)


# -- photos in DataLoader workers --------------------------------------------------------------------
class FaceFiles:
    """Photos -> (index, faces, uint8 pixels (F, 3, S, S) or None, error or None), through a `FaceStage`:
    a map-style dataset for torch's DataLoader (which takes any object with `__getitem__` and `__len__`)."""

    def __init__(self, items: Sequence, processor, stage: FaceStage):
        self.items = [str(p) if isinstance(p, os.PathLike) else p for p in items]
        self.processor, self.stage = processor, stage

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        try:
            faces, pixels = self.stage.pixels(self.items[i], self.processor)
            return i, faces, pixels, None
        except ImportError:
            raise  # a missing detector package stops the run with its own message
        except Exception as err:  # reported by path by the caller; one bad file never stops a run
            return i, [], None, f"{type(err).__name__}: {err}"


def collate_face_files(items) -> dict[str, Any]:
    """One row per face: `index` (the image of each row), `faces`, stacked `pixels` (None when no
    row); images without a face in `no_face`, unreadable ones in `failed` (index, reason)."""
    rows = [(i, face, px) for i, faces, pixels, err in items if err is None and pixels is not None
            for face, px in zip(faces, pixels)]
    return {
        "index": [i for i, _, _ in rows],
        "faces": [face for _, face, _ in rows],
        "pixels": _stack([px for _, _, px in rows]) if rows else None,
        "no_face": [i for i, faces, _, err in items if err is None and not faces],
        "failed": [(i, err) for i, _, _, err in items if err is not None],
    }


def _stack(pixels: list):
    """Rows of pixels as one array: numpy from numpy rows (the onnx backend), else torch."""
    if isinstance(pixels[0], np.ndarray):
        return np.stack(pixels)
    import torch

    return torch.stack(pixels)


def face_file_loader(paths: Sequence, processor, stage: FaceStage, batch_size: int = 16,
                     num_workers: int | None = None, prefetch_factor: int = 2,
                     pin_memory: bool = False) -> torch.utils.data.DataLoader:
    """A DataLoader over photos yielding `collate_face_files` batches (`batch_size` photos each, in
    order), detecting and cropping in `num_workers` worker processes (default: all cores but one, at most 8)."""
    import torch

    if num_workers is None:
        num_workers = min(8, max(1, (os.cpu_count() or 2) - 1))
    num_workers = min(num_workers, max(0, -(-len(paths) // batch_size)))
    extra = dict(prefetch_factor=prefetch_factor, persistent_workers=False) if num_workers > 0 else {}
    return torch.utils.data.DataLoader(FaceFiles(paths, processor, stage), batch_size=batch_size, shuffle=False,
                                       num_workers=num_workers, collate_fn=collate_face_files,
                                       pin_memory=pin_memory, **extra)


@dataclasses.dataclass
class FaceBatch:
    """One batch of photos through the face stage: a row per face (`paths`, `faces`, uint8 `pixels`
    (F, 3, S, S) or None), images with no face row (`no_face`) and unreadable ones (`failed`)."""

    paths: list[str]
    faces: list
    pixels: torch.Tensor | None
    failed: list[tuple[str, str]]
    no_face: list[str]


def face_batches(paths: Sequence, processor, faces, batch_size: int = 16, num_workers: int | None = None,
                 pin_memory: bool = False) -> Iterator[FaceBatch]:
    """Photos through a `flip.faces.FaceStage` (or its mode) in DataLoader workers, batch by batch:
    what the tasks' `*_files` methods run on with a face stage."""
    stage = faces if isinstance(faces, FaceStage) else FaceStage(mode=faces)
    for batch in face_file_loader(paths, processor, stage, batch_size, num_workers, pin_memory=pin_memory):
        yield FaceBatch([str(paths[i]) for i in batch["index"]], batch["faces"], batch["pixels"],
                        [(str(paths[i]), why) for i, why in batch["failed"]], [str(paths[i]) for i in batch["no_face"]])
