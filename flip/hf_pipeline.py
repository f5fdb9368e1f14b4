"""flip models in transformers' `pipeline`.

    import flip
    from transformers import pipeline
    clf = pipeline("zero-shot-image-classification", model="path/to/flip-checkpoint")
    clf("face.jpg", candidate_labels=["a happy person", "a sad person"])
    by_desc = pipeline("zero-shot-image-classification-by-description", model="path/to/flip-checkpoint")
    by_desc("face.jpg", task="emotion")          # a prompt task name, or a prompt-file path

Design choices:
- `register()` teaches transformers' auto classes the `flip` model type: `AutoConfig`, `AutoModel`,
  `AutoModelForZeroShotImageClassification` (FLIPModel's `forward` already returns
  `logits_per_image`, which the stock pipeline reads) and `AutoImageProcessor` (`FLIPImageProcessor`,
  which reads flip's own `preprocessor_config.json`). It also registers the by-description task, whose
  pipeline runs `flip.zeroshot.FLIPClassifier` and answers with the deciding descriptors.
- `import flip` stays light: it does not import transformers, it only arranges for `register()` to run
  right after `transformers.pipelines` is first imported (or at once if it already is).
- The stock pipeline tokenizes with the checkpoint's tokenizer directly, so CLIP-tokenizer models skip
  flip's open_clip text cleaning there; the by-description pipeline goes through `FLIPProcessor`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForZeroShotImageClassification,
    BatchFeature,
    Pipeline,
)
from transformers.image_processing_utils import BaseImageProcessor
from transformers.pipelines import PIPELINE_REGISTRY

from .config import FLIPConfig
from .model import FLIPModel
from .processor import ProcessorSettings, load_face, normalize_array, resize_array

#: The by-description task's name in transformers' pipeline registry.
BY_DESCRIPTION_TASK = "zero-shot-image-classification-by-description"
_SETTINGS = {f.name for f in dataclasses.fields(ProcessorSettings)}


class FLIPImageProcessor(BaseImageProcessor):
    """flip's image preprocessing as a transformers image processor (PIL resize, as open_clip's), built
    from the `ProcessorSettings` in a checkpoint's `preprocessor_config.json`."""

    model_input_names = ["pixel_values"]

    def __init__(self, **kwargs):
        settings = {k: kwargs.pop(k) for k in list(kwargs) if k in _SETTINGS}
        kwargs.pop("processor_class", None)
        super().__init__(**kwargs)
        self.settings = ProcessorSettings(**settings)

    def preprocess(self, images, return_tensors=None, **kwargs) -> BatchFeature:
        items = images if isinstance(images, (list, tuple)) else [images]
        pixels = np.stack([resize_array(load_face(image, i), self.settings) for i, image in enumerate(items)])
        return BatchFeature({"pixel_values": normalize_array(pixels, self.settings)}, tensor_type=return_tensors)

    def to_dict(self) -> dict:
        return {"processor_class": "FLIPProcessor", **self.settings.to_dict()}


class FLIPDescriptionPipeline(Pipeline):
    """Zero-shot classification by description: `pipe(image, task="emotion")` -> classes by score, each
    with its top descriptors (`top_k_descriptors`, default 3). `task` is a prompt task name or a prompt
    file; `method` ("descriptors" or "baseline") and `aggregate` ("mean", "max", "sum") as `flip classify`."""

    _load_processor = False
    _load_image_processor = True
    _load_feature_extractor = False
    _load_tokenizer = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._classifiers = {}

    def _sanitize_parameters(self, task=None, method=None, aggregate=None, top_k_descriptors=None, **kwargs):
        forward = {"task": task or "emotion", "method": method or "descriptors", "aggregate": aggregate or "mean"}
        return {}, forward, {"k": 3 if top_k_descriptors is None else top_k_descriptors}

    def classifier(self, task: str, method: str, aggregate: str):
        """The `FLIPClassifier` of one (task, method, aggregate), built once (its text side is cached)."""
        key = (task, method, aggregate)
        if key not in self._classifiers:
            from .processor import FLIPProcessor
            from .zeroshot import FLIPClassifier

            processor = FLIPProcessor.__new__(FLIPProcessor)  # as FLIPProcessor.from_pretrained assembles one
            processor._setup(self.tokenizer, ProcessorSettings(**self.image_processor.settings.to_dict()))
            self._classifiers[key] = FLIPClassifier(self.model, processor, [task], method=method, aggregate=aggregate)
        return self._classifiers[key]

    def preprocess(self, image):
        from transformers.image_utils import load_image

        return self.image_processor(images=[load_image(image)], return_tensors="pt")

    def _forward(self, model_inputs, task="emotion", method="descriptors", aggregate="mean"):
        clf = self.classifier(task, method, aggregate)
        (result,) = clf.classify_embeddings(clf.encode_images(model_inputs["pixel_values"]), to_cpu=True).values()
        return {"result": result}

    def postprocess(self, model_outputs, k=3):
        result = model_outputs["result"]
        ranked = sorted(zip(result.classes, result.scores[0].tolist()), key=lambda cs: -cs[1])
        return [{"label": c, "score": s,
                 "descriptors": [{"text": t, "similarity": v} for t, v in result.top_descriptors(0, k, cls=c)]}
                for c, s in ranked]


def register() -> None:
    """Register flip with transformers' auto classes and pipelines (idempotent)."""
    AutoConfig.register(FLIPConfig.model_type, FLIPConfig, exist_ok=True)
    AutoModel.register(FLIPConfig, FLIPModel, exist_ok=True)
    AutoModelForZeroShotImageClassification.register(FLIPConfig, FLIPModel, exist_ok=True)
    AutoImageProcessor.register(FLIPConfig, slow_image_processor_class=FLIPImageProcessor, exist_ok=True)
    if BY_DESCRIPTION_TASK not in PIPELINE_REGISTRY.get_supported_tasks():
        PIPELINE_REGISTRY.register_pipeline(BY_DESCRIPTION_TASK, pipeline_class=FLIPDescriptionPipeline,
                                            pt_model=AutoModelForZeroShotImageClassification, type="multimodal")
