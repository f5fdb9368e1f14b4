"""flip: a face-aware CLIP (FLIP, Facial Language-Image Pretraining) and the face tasks built on it.

    import flip
    model, processor = flip.load("flip-tiny-synth")
    emb_i = model.encode_image(processor.images([img]))
    emb_t = model.encode_text(**processor.texts(["a smiling man with a beard"]))

The public names are imported lazily, so `import flip` (and the `flip` command's help) stays fast.
"""

from __future__ import annotations

import importlib
import sys

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


#: Where the registration lives; reached lazily, like the public names above (it imports transformers).
_PIPELINES = "flip.hf_pipeline"


class _RegisterWithTransformers:
    """A meta-path finder that runs `flip.hf_pipeline.register()` right after `transformers.pipelines` is
    imported, so `transformers.pipeline(..., model=<flip checkpoint>)` works after `import flip` without
    `import flip` itself importing transformers."""

    target = "transformers.pipelines"

    def find_spec(self, name, path=None, target=None):
        if name != self.target:
            return None
        import importlib.util

        sys.meta_path.remove(self)  # find the real spec, once
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            run = spec.loader.exec_module

            def exec_module(module):
                run(module)
                importlib.import_module(_PIPELINES).register()

            spec.loader.exec_module = exec_module
        return spec


def _hook_transformers_pipelines() -> None:
    if "transformers.pipelines" in sys.modules:  # too late for the hook: transformers is loaded anyway
        importlib.import_module(_PIPELINES).register()
    elif not any(isinstance(f, _RegisterWithTransformers) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterWithTransformers())


_hook_transformers_pipelines()


def __dir__():
    return sorted(list(globals()) + list(_PUBLIC))
