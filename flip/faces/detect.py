"""Face detection behind one small interface: the first step of flip's face stage.

Design choices:
- A detector is anything with `detect(image) -> list[Box]` (the `FaceDetector` protocol), so a
  user's own boxes (`GivenBoxes`), OpenCV's Haar cascade (`HaarDetector`) or facenet-pytorch's
  MTCNN (`MTCNNDetector`, the default) plug in the same way. Boxes are pixels (x0, y0, x1, y1)
  clipped to the image, with a score in [0, 1] and, when the detector gives them, five landmarks
  (eyes, nose, mouth corners) in image pixels.
- Both real detectors ship their weights in their wheels and run offline: the Haar cascades in
  `opencv-python-headless<5` (`cv2.data.haarcascades`; 5.x dropped them), MTCNN's three small nets
  in `facenet-pytorch` (install it with `--no-deps`; its pins are outdated). Each is imported when
  first used, with a message naming the package when it is missing. No stronger detector ships its
  weights inside a PyPI wheel that installs here (YuNet/SCRFD packages download them at run time).
- Boxes come back sorted left to right, the order a caption reader expects a row of faces in.
  MTCNN's boxes reach past the image edge for faces cut by it (its square refinement); they are
  clipped, so every box is a region of the image.
- Neither detector was trained on drawings: on the synthetic world's cartoon scenes they may find
  nothing; give those scenes' boxes with `GivenBoxes`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from flip.processor import load_image

__all__ = ["Box", "FaceDetector", "GivenBoxes", "HaarDetector", "MTCNNDetector", "build_detector", "DETECTORS"]


@dataclass(frozen=True)
class Box:
    """One face: pixel corners, a confidence in [0, 1], optional landmarks ((x, y) x 5: left eye,
    right eye, nose, left and right mouth corner, as seen in the image)."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 1.0
    landmarks: tuple[tuple[float, float], ...] | None = None

    def __post_init__(self):
        values = (self.x0, self.y0, self.x1, self.y1, self.score)
        if not all(math.isfinite(float(v)) for v in values):
            raise ValueError(f"Box: non-finite value in {values}")
        if self.x1 <= self.x0 or self.y1 <= self.y0:
            raise ValueError(f"Box: ({self.x0}, {self.y0}, {self.x1}, {self.y1}) is inverted or empty "
                             "(need x0 < x1 and y0 < y1)")

    @property
    def xyxy(self) -> list[float]:
        return [float(self.x0), float(self.y0), float(self.x1), float(self.y1)]

    @property
    def area(self) -> float:
        return (self.x1 - self.x0) * (self.y1 - self.y0)

    def clip(self, width: int, height: int) -> "Box | None":
        """This box cut to the image (landmarks kept as they are); None when nothing of it is inside."""
        x0, y0 = max(0.0, float(self.x0)), max(0.0, float(self.y0))
        x1, y1 = min(float(width), float(self.x1)), min(float(height), float(self.y1))
        if x1 <= x0 or y1 <= y0:
            return None
        if (x0, y0, x1, y1) == (self.x0, self.y0, self.x1, self.y1):
            return self
        return Box(x0, y0, x1, y1, self.score, self.landmarks)


@runtime_checkable
class FaceDetector(Protocol):
    """Finds faces: `detect(image)` takes a path, PIL image or array and returns boxes, left to right."""

    def detect(self, image) -> list[Box]: ...


def _sorted(boxes: list[Box]) -> list[Box]:
    return sorted(boxes, key=lambda b: (b.x0 + b.x1, b.y0))


class GivenBoxes:
    """The user's own boxes (or a dataset's): `detect` returns them unchanged, score 1 unless given.

    `boxes` are [x0, y0, x1, y1] or [x0, y0, x1, y1, score] lists, or `Box`es. They are checked
    against the image size at `detect`: a box outside the image is an error, not an empty crop; a
    box reaching past an edge is clipped.
    """

    def __init__(self, boxes):
        self.boxes = [b if isinstance(b, Box) else _parse_box(b, f"boxes[{i}]") for i, b in enumerate(boxes)]

    def detect(self, image) -> list[Box]:
        width, height = load_image(image).size
        for i, b in enumerate(self.boxes):
            if b.x1 <= 0 or b.y1 <= 0 or b.x0 >= width or b.y0 >= height:
                raise ValueError(f"boxes[{i}]: {b.xyxy} lies outside the {width}x{height} image")
        return [b.clip(width, height) for b in self.boxes]


def _parse_box(values, what: str) -> Box:
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"{what}: a box is 4 numbers x0, y0, x1, y1 (and an optional score), got {values!r}") from None
    if len(numbers) not in (4, 5):
        raise ValueError(f"{what}: a box is 4 numbers x0, y0, x1, y1 (and an optional score), got {values!r}")
    try:
        return Box(*numbers)
    except ValueError as err:
        raise ValueError(f"{what}: {err}") from None


class HaarDetector:
    """OpenCV's Viola-Jones Haar cascade (frontal faces). Fast, weights in the opencv wheel; misses
    profiles and drawn faces. Its detections have no confidence, so `score` is 1."""

    def __init__(self, cascade: str = "haarcascade_frontalface_default.xml", scale_factor: float = 1.1,
                 min_neighbors: int = 5, min_size: int = 20):
        if scale_factor <= 1:
            raise ValueError(f"scale_factor={scale_factor}: expected > 1")
        cv2 = _import_cv2()
        path = cascade if "/" in cascade else cv2.data.haarcascades + cascade
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise FileNotFoundError(f"cascade={cascade!r}: no Haar cascade at {path}")
        self.scale_factor, self.min_neighbors, self.min_size = scale_factor, int(min_neighbors), int(min_size)

    def detect(self, image) -> list[Box]:
        cv2 = _import_cv2()
        image = load_image(image)
        gray = cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2GRAY)
        found = self._cascade.detectMultiScale(gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                                               minSize=(self.min_size, self.min_size))
        rects = np.reshape(found, (-1, 4))
        boxes = [Box(float(x), float(y), float(x + w), float(y + h)).clip(*image.size) for x, y, w, h in rects]
        return _sorted([b for b in boxes if b is not None])


class MTCNNDetector:
    """facenet-pytorch's MTCNN (Zhang et al. 2016): boxes, a probability and five landmarks, on the CPU."""

    def __init__(self, min_face_size: int = 20, thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
                 min_score: float = 0.9, device: str = "cpu"):
        try:
            from facenet_pytorch import MTCNN
        except ImportError as err:
            raise ImportError("MTCNNDetector needs facenet-pytorch: pip install --no-deps facenet-pytorch "
                              f"({err})") from None
        self._mtcnn = MTCNN(min_face_size=int(min_face_size), thresholds=list(thresholds), keep_all=True,
                            device=device)
        self.min_score = float(min_score)

    def detect(self, image) -> list[Box]:
        image = load_image(image)
        boxes, probs, points = self._mtcnn.detect(image, landmarks=True)
        if boxes is None:
            return []
        out = []
        for box, p, pts in zip(boxes, probs, points):
            if p is None or p < self.min_score:
                continue
            x0, y0, x1, y1 = (float(v) for v in box)
            if x1 > x0 and y1 > y0:
                box = Box(x0, y0, x1, y1, float(p), tuple((float(x), float(y)) for x, y in pts)).clip(*image.size)
                if box is not None:
                    out.append(box)
        return _sorted(out)


#: detector name -> class, for configs and the command line
DETECTORS = {"haar": HaarDetector, "mtcnn": MTCNNDetector}


def build_detector(name: str, **kwargs) -> FaceDetector:
    """A detector by name ("haar" or "mtcnn"), with its keyword settings."""
    if name not in DETECTORS:
        raise ValueError(f"detector={name!r}: expected one of {sorted(DETECTORS)}")
    return DETECTORS[name](**kwargs)


def _import_cv2():
    try:
        import cv2
    except ImportError as err:
        raise ImportError(f"HaarDetector needs OpenCV: pip install 'opencv-python-headless<5' ({err})") from None
    if not hasattr(cv2, "data"):
        raise ImportError("HaarDetector needs OpenCV's bundled cascades (cv2.data), which opencv 5.x dropped: "
                          "pip install 'opencv-python-headless<5'")
    return cv2

