"""flip: a face-aware CLIP (FLIP, Facial Language-Image Pretraining) and the face tasks built on it.

    import flip
    model, processor = flip.load("flip-tiny-synth")
    emb_i = model.encode_image(processor.images([img]))
    emb_t = model.encode_text(**processor.texts(["a smiling man with a beard"]))

The public names are imported lazily, so `import flip` (and the `flip` command's help) stays fast.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "FLIPConfig": "flip.config",
    "PRESETS": "flip.config",
    "FLIPModel": "flip.model",
    "FLIPOutput": "flip.model",
    "FLIPProcessor": "flip.processor",
    "load": "flip.hub",
    "load_model": "flip.hub",
    "save": "flip.hub",
    "push_to_hub": "flip.hub",
    "FLIPClassifier": "flip.zeroshot",
    "LivenessClassifier": "flip.liveness",
    "load_prompts": "flip.prompts",
    "FaceRecord": "flip.data.records",
    "read_dataset": "flip.data.formats",
    "write_dataset": "flip.data.formats",
    "load_records": "flip.data.loaders",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'flip' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_PUBLIC))
