"""Face crops: a box grown by a margin, or a five-point alignment onto a template.

Design choices:
- Two crops, named in the processor's settings (`ProcessorSettings.face_crop`) because they are
  what a checkpoint was trained on: "box" cuts the detector box grown by `box_margin` of its
  width/height on each side (FLIP's authors trained on detector crops; the processor then resizes
  and centre-crops as for any image); "aligned" maps the five landmarks onto a template with one
  similarity transform (rotation, uniform scale, translation; Umeyama 1991, least squares) and
  samples a square of the model's input size directly (FaRL and face-recognition models train on
  such crops).
- The template is the five-point one insightface's ArcFace models use for 112 x 112 crops
  (`ARCFACE_TEMPLATE`, eyes at 34% and 66% of the width, 46% of the height), kept here in unit
  coordinates so it serves any output size. A margin m shrinks it about the centre by 1 + 2m, so
  "aligned" with margin 0.2 shows as much around the face as "box" with 0.2.
- Without landmarks (Haar, user boxes) "aligned" falls back to "box": a face is never dropped
  for want of landmarks.
- `level_face` is the older, gentler alignment name-faces used: the image turned about the eye
  midpoint so the eyes are level, then the box cut, no scaling.
"""

from __future__ import annotations

import math

import numpy as np

from flip.faces.detect import Box
from flip.processor import FACE_CROPS, crop_box, load_image

__all__ = ["ARCFACE_TEMPLATE", "FACE_CROPS", "face_template", "similarity_transform", "crop_face", "align_face",
           "level_face", "face_crop"]

#: insightface's ArcFace five points for a 112 x 112 crop (left eye, right eye, nose, left and right
#: mouth corner, as seen in the image), divided by 112.
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]]) / 112.0


def face_template(size: int, margin: float = 0.0) -> np.ndarray:
    """(5, 2) pixel positions of the five points in a `size` x `size` aligned crop with `margin`."""
    if not size >= 1 or not 0 <= margin < math.inf:
        raise ValueError(f"face_template: size must be >= 1 and margin >= 0, got size={size}, margin={margin}")
    return ((ARCFACE_TEMPLATE - 0.5) / (1.0 + 2.0 * margin) + 0.5) * size


def similarity_transform(src, dst) -> np.ndarray:
    """The (2, 3) matrix A of the similarity transform that best maps points `src` (K, 2) onto `dst`
    (K, 2) in least squares: dst ~ A @ [x, y, 1] (Umeyama's closed form, reflections excluded)."""
    src, dst = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"similarity_transform: expected two (K, 2) point sets, K >= 2, got {src.shape} and "
                         f"{dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var_s = (s ** 2).sum() / len(src)
    if var_s <= 0:
        raise ValueError("similarity_transform: the source points all coincide")
    u, sigma, vt = np.linalg.svd(d.T @ s / len(src))
    flip = np.diag([1.0, -1.0 if np.linalg.det(u) * np.linalg.det(vt) < 0 else 1.0])
    rotation = u @ flip @ vt
    scale = float((sigma * np.diag(flip)).sum() / var_s)
    translation = mu_d - scale * rotation @ mu_s
    return np.hstack([scale * rotation, translation[:, None]])


def crop_face(image, box: Box, margin: float = 0.0):
    """The face as a PIL image: `box` grown by `margin` x its width/height on each side, clipped."""
    image = load_image(image)
    return image.crop(crop_box(box.xyxy, image.size, margin, "crop_face"))


def align_face(image, landmarks, size: int, margin: float = 0.0):
    """A `size` x `size` PIL image in which the five `landmarks` ((x, y) x 5, image pixels) sit on
    `face_template(size, margin)`, bicubic; what lies outside the image is black."""
    from PIL import Image

    image = load_image(image)
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (5, 2) or not np.all(np.isfinite(points)):
        raise ValueError(f"align_face: landmarks must be five finite (x, y) points, got {np.shape(landmarks)}")
    # PIL's affine transform maps each output pixel to its source, so fit template -> landmarks
    inverse = similarity_transform(face_template(size, margin), points)
    return image.transform((size, size), Image.Transform.AFFINE, tuple(inverse.ravel()),
                           resample=Image.Resampling.BICUBIC)


def level_face(image, box: Box, margin: float = 0.0):
    """Like `crop_face`, after turning the image about the eye midpoint so the eyes are level.

    Needs landmarks (MTCNN gives them); without them this is `crop_face`.
    """
    image = load_image(image)
    if not box.landmarks:
        return crop_face(image, box, margin)
    (lx, ly), (rx, ry) = box.landmarks[0], box.landmarks[1]
    angle = math.degrees(math.atan2(ry - ly, rx - lx))  # PIL rotates counter-clockwise for positive angles
    centre = ((lx + rx) / 2, (ly + ry) / 2)
    return crop_face(image.rotate(angle, resample=3, center=centre), box, margin)


def face_crop(image, box: Box, how: str, size: int, margin: float = 0.0):
    """The crop a processor asks for (`how`: one of FACE_CROPS) as a PIL image: "box" as cut (the
    processor resizes it), "aligned" at `size` x `size` (falling back to "box" without landmarks)."""
    if how not in FACE_CROPS:
        raise ValueError(f"face_crop: how={how!r}, expected one of {FACE_CROPS}")
    if how == "aligned" and box.landmarks:
        return align_face(image, box.landmarks, size, margin)
    return crop_face(image, box, margin)
