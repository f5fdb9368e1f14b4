"""flip on onnxruntime: an exported model (`flip export --onnx`) for classify, liveness and embed.

    model = OnnxFLIP("flip-onnx/")                 # numpy and onnxruntime only: torch is never imported
    clf = OnnxClassifier(model, ["emotion", "age_group"], cache_dir=default_cache_dir())
    clf.classify(["face.jpg"])["emotion"].predictions

Design choices:
- `OnnxFLIP` answers like `FLIPModel` on the image path: `encode_image(pixel_values)` gives the
  normalised embeddings (N, D). Given numpy it answers numpy; given torch tensors it answers torch,
  and it has `device`, `dtype`, `scale()` and `text_fingerprint`, so `flip.zeroshot.FLIPClassifier`
  and `flip.liveness.LivenessClassifier` take it in place of the torch model without noticing
  (`load_onnx` gives it with a `FLIPProcessor`).
- `OnnxClassifier` is `FLIPClassifier`'s numpy twin for the torch-free path: the same sentences,
  cache keys and cache files (`flip.textside`), the same answers (`record`). The export carries the
  torch model's text fingerprint, so a prompt file embedded once by either backend is a cache hit for
  both. Only a miss loads the tokenizer (transformers) and runs `text.onnx`.
- Images are decoded and resized by PIL (bit-exact with open_clip's preprocessing, whatever the
  processor's `resize_backend` says) in a few threads, a batch ahead of the model.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ._files import read_json_object
from .processor import ProcessorSettings, load_face, normalize_array, resize_array
from .prompts import PromptSet
from .textside import (FileBatch, TaskHead, cache_key, classifier_prompts, descriptor_prompts, read_embeds,
                       template_prompts, try_write_embeds)

#: The file that marks a folder as a flip ONNX export.
INFO_NAME = "flip_onnx.json"
IMAGE_FILE, TEXT_FILE = "image.onnx", "text.onnx"
FORMAT = 1


@dataclasses.dataclass
class ExportInfo:
    """What `flip_onnx.json` holds: everything besides the graphs that a backend needs."""

    format: int  # this layout's version; readers refuse others
    opset: int  # the ONNX opset the graphs were exported with
    int8: str | None  # None (float32), "dynamic" or "static": how the image tower was quantised
    embed_dim: int  # D, the width of both towers' embeddings
    text_inputs: list[str]  # the text graph's inputs: ["input_ids"] or ["input_ids", "attention_mask"]
    logit_scale: float  # FLIPModel.scale() at export: 1 / temperature
    logit_bias: float | None  # SigLIP's learned logit bias, if any
    text_fingerprint: str  # flip.zeroshot.text_fingerprint of the torch model: the text cache's key
    model_fingerprint: str  # a hash of the config and every weight of the torch model
    processor: dict  # ProcessorSettings.to_dict()
    max_abs_error: dict  # |onnx - torch| on the export's example inputs, per tower (float32 graphs)
    liveness_calibration: dict | None = None  # the torch model's FLIPConfig.liveness_calibration (absent before)

    def __post_init__(self):
        if self.format != FORMAT:
            raise ValueError(f"{INFO_NAME}: format {self.format!r} is not one this flip reads ({FORMAT})")
        if self.int8 not in (None, "dynamic", "static"):
            raise ValueError(f"{INFO_NAME}: int8 must be null, 'dynamic' or 'static', got {self.int8!r}")
        if self.text_inputs not in (["input_ids"], ["input_ids", "attention_mask"]):
            raise ValueError(f"{INFO_NAME}: text_inputs {self.text_inputs!r} is not a layout flip writes")

    @property
    def temperature(self) -> float:
        return 1.0 / self.logit_scale

    def to_json(self) -> str:
        return json.dumps({**dataclasses.asdict(self), "temperature": self.temperature}, indent=2) + "\n"

    @classmethod
    def read(cls, folder: str | os.PathLike) -> ExportInfo:
        file = Path(folder).expanduser() / INFO_NAME
        if not file.is_file():
            raise FileNotFoundError(f"{folder}: no {INFO_NAME}; not a folder written by `flip export --onnx`")
        data = read_json_object(file)
        data.pop("temperature", None)
        known = {f.name for f in dataclasses.fields(cls)}
        data.setdefault("liveness_calibration", None)  # exports written before it existed
        if set(data) != known:
            raise ValueError(f"{file}: fields {sorted(set(data) ^ known)} are missing or unknown")
        try:
            return cls(**data)
        except ValueError as err:
            raise ValueError(f"{file}: {err}") from None


def _session(file: Path, threads: int | None):
    try:
        import onnxruntime as ort
    except ImportError:
        raise ImportError('the onnx backend needs onnxruntime: pip install "flip-face[onnx]"') from None
    if not file.is_file():
        raise FileNotFoundError(f"{file}: missing from the export folder")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])


def _is_torch(x) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


class OnnxFLIP:
    """An export folder as a model: `encode_image`, `encode_text`, and the image preprocessing."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        self.path = Path(path).expanduser()
        self.info = ExportInfo.read(self.path)
        self.settings = ProcessorSettings(**self.info.processor)
        self.text_fingerprint = self.info.text_fingerprint
        self.liveness_calibration = self.info.liveness_calibration
        self.threads = threads
        self._image = _session(self.path / IMAGE_FILE, threads)
        self._text = None
        self._processor = None

    # -- the image path ----------------------------------------------------------------------------
    def pixels(self, images, boxes=None, box_margin: float | None = None) -> np.ndarray:
        """uint8 (N, 3, S, S), as `FLIPProcessor.pixels` (resized by PIL)."""
        items = list(images) if isinstance(images, (list, tuple)) else [images]
        if boxes is not None and len(boxes) != len(items):
            raise ValueError(f"boxes: got {len(boxes)} boxes for {len(items)} images")
        margin = self.settings.box_margin if box_margin is None else box_margin
        return np.stack([resize_array(load_face(item, i, None if boxes is None else boxes[i], margin), self.settings)
                         for i, item in enumerate(items)])

    def images(self, images, boxes=None, box_margin: float | None = None) -> np.ndarray:
        """float32 pixel values (N, 3, S, S), normalised."""
        return normalize_array(self.pixels(images, boxes, box_margin), self.settings)

    def encode_image(self, pixel_values, normalize: bool = True):
        """(N, 3, S, S) float pixel values, or uint8 from `pixels` -> L2-normalised (N, D), numpy or torch
        as given. The graph always normalises, so `normalize=False` is refused."""
        if not normalize:
            raise ValueError("an ONNX export gives normalised embeddings only (normalize=False is not available)")
        as_torch = _is_torch(pixel_values)
        x = pixel_values.detach().cpu().numpy() if as_torch else np.asarray(pixel_values)
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"pixel_values: expected (N, 3, H, W), got {x.shape}")
        x = normalize_array(x, self.settings) if x.dtype == np.uint8 else x.astype(np.float32, copy=False)
        out = self._image.run(None, {"pixel_values": x})[0]
        return _like(out, pixel_values) if as_torch else out

    # -- the text path -----------------------------------------------------------------------------
    @property
    def processor(self):
        """The export's `FLIPProcessor` (loads the tokenizer, so transformers: only on a text-cache miss)."""
        if self._processor is None:
            from .processor import FLIPProcessor

            self._processor = FLIPProcessor.from_pretrained(self.path)
        return self._processor

    def encode_text(self, input_ids, attention_mask=None, normalize: bool = True):
        """Token ids (N, L) [and mask] -> L2-normalised (N, D); numpy or torch as given. `input_ids` may be
        the processor's whole output (a mapping)."""
        if not normalize:
            raise ValueError("an ONNX export gives normalised embeddings only (normalize=False is not available)")
        if isinstance(input_ids, Mapping):
            input_ids, attention_mask = input_ids["input_ids"], input_ids.get("attention_mask", attention_mask)
        as_torch = _is_torch(input_ids)
        ids = input_ids.detach().cpu().numpy() if as_torch else np.asarray(input_ids)
        feed = {"input_ids": ids.astype(np.int64, copy=False)}
        if "attention_mask" in self.info.text_inputs:
            mask = np.ones_like(ids) if attention_mask is None else (
                attention_mask.detach().cpu().numpy() if as_torch else np.asarray(attention_mask))
            feed["attention_mask"] = mask.astype(np.int64, copy=False)
        if self._text is None:
            self._text = _session(self.path / TEXT_FILE, self.threads)
        out = self._text.run(None, feed)[0]
        return _like(out, input_ids) if as_torch else out

    def embed_texts(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """Normalised text embeddings (M, D), float32, in batches."""
        out = [self.encode_text(dict(self.processor.texts(list(texts[i:i + batch_size]), return_tensors="np")))
               for i in range(0, len(texts), batch_size)]
        return np.concatenate(out)

    # -- what torch callers read -------------------------------------------------------------------
    @property
    def device(self):
        import torch

        return torch.device("cpu")

    @property
    def dtype(self):
        import torch

        return torch.float32

    def scale(self):
        """The logit scale (1 / temperature), as a torch scalar like `FLIPModel.scale()`."""
        import torch

        return torch.tensor(self.info.logit_scale)

    def eval(self) -> OnnxFLIP:
        return self

    def __repr__(self) -> str:
        kind = f"int8 ({self.info.int8})" if self.info.int8 else "float32"
        return f"OnnxFLIP({str(self.path)!r}, {kind}, embed_dim={self.info.embed_dim})"


def _like(array: np.ndarray, reference):
    import torch

    return torch.from_numpy(array).to(reference.device)


def load_onnx(path: str | os.PathLike, threads: int | None = None):
    """`(OnnxFLIP, FLIPProcessor)`: an export in place of `flip.load`'s pair, for torch callers."""
    model = OnnxFLIP(path, threads)
    return model, model.processor


# -- classification without torch ------------------------------------------------------------------
def build_head(model: OnnxFLIP, prompts: PromptSet, method: str = "descriptors",
               cache_dir: str | os.PathLike | None = None) -> TaskHead:
    """A task's text side from the cache (`flip.textside`), else from `text.onnx` (and then cached; an
    unwritable cache is skipped with a warning)."""
    if method == "descriptors":
        sentences, texts, index = descriptor_prompts(prompts)
    else:
        sentences, index = template_prompts(prompts)
        texts = [prompts.names[c] for c in prompts.classes]
    file = None if cache_dir is None else Path(cache_dir).expanduser() / f"{cache_key(model.text_fingerprint, sentences)}.safetensors"
    embeds = read_embeds(file) if file is not None else None
    if embeds is None or embeds.shape[0] != len(sentences):
        embeds = model.embed_texts(sentences)
        if file is not None:
            try_write_embeds(file, embeds, {"task": prompts.task, "model": model.text_fingerprint,
                                            "prompts_sha256": prompts.sha256})
    index = np.asarray(index, dtype=np.int64)
    if method == "baseline":  # CLIP's template ensemble: the normalised mean per class
        embeds = np.stack([embeds[index == c].mean(0) for c in range(prompts.num_classes)])
        embeds /= np.linalg.norm(embeds, axis=-1, keepdims=True)
        index = np.arange(prompts.num_classes)
    return TaskHead(prompts.task, method, prompts.classes, tuple(texts), embeds.astype(np.float32), index,
                    prompts.sha256)


@dataclasses.dataclass
class Result:
    """One task's answers for N images: scores (N, C), similarities (N, M), and the logit scale that makes
    probabilities of the scores, as `flip.zeroshot.TaskResult`."""

    head: TaskHead
    scores: np.ndarray
    similarities: np.ndarray
    aggregate: str = "mean"
    scale: float | None = None

    @property
    def classes(self) -> tuple[str, ...]:
        return self.head.classes

    @property
    def predictions(self) -> list[str]:
        return [self.head.classes[i] for i in self.scores.argmax(-1)]

    @property
    def probabilities(self) -> np.ndarray | None:
        """(N, C) softmax over classes of scale x scores, or None (no scale, or "sum")."""
        if self.scale is None or self.aggregate == "sum":
            return None
        logits = self.scores.astype(np.float32) * np.float32(self.scale)
        e = np.exp(logits - logits.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    def top_descriptors(self, i: int, k: int | None = None, cls: str | None = None) -> list[tuple[str, float]]:
        c = int(self.scores[i].argmax()) if cls is None else self.head.classes.index(cls)
        members = np.flatnonzero(self.head.class_index == c)
        sims = self.similarities[i, members]
        order = np.argsort(-sims, kind="stable")[:k]
        return [(self.head.texts[members[j]], float(sims[j])) for j in order]

    def record(self, i: int, k: int | None = 3) -> dict[str, Any]:
        out = {"prediction": self.predictions[i], "scores": dict(zip(self.head.classes, self.scores[i].tolist()))}
        probs = self.probabilities
        if probs is not None:
            out["probabilities"] = dict(zip(self.head.classes, probs[i].tolist()))
        out["descriptors"] = [{"text": t, "similarity": s} for t, s in self.top_descriptors(i, k)]
        return out

    def __len__(self) -> int:
        return self.scores.shape[0]


class OnnxClassifier:
    """Zero-shot classification by description on an `OnnxFLIP`, in numpy: `FLIPClassifier`'s answers."""

    def __init__(self, model: OnnxFLIP, tasks: Sequence[str | os.PathLike | PromptSet] | str = ("emotion",), *,
                 method: str = "descriptors", aggregate: str = "mean", prompt_root: str | os.PathLike | None = None,
                 cache_dir: str | os.PathLike | None = None):
        prompt_sets = classifier_prompts(tasks, method, aggregate, prompt_root)
        self.model, self.method, self.aggregate = model, method, aggregate
        self.scale = float(model.info.logit_scale)
        self.heads = {p.task: build_head(model, p, method, cache_dir) for p in prompt_sets}
        self._all_embeds = np.concatenate([h.embeds for h in self.heads.values()])

    @property
    def tasks(self) -> list[str]:
        return list(self.heads)

    def classify_embeddings(self, image_embeds: np.ndarray) -> dict[str, Result]:
        """Results per task for L2-normalised image embeddings (N, D)."""
        sims = np.asarray(image_embeds, dtype=np.float32) @ self._all_embeds.T
        results, start = {}, 0
        reduce = {"mean": np.mean, "max": np.max, "sum": np.sum}[self.aggregate]
        for task, head in self.heads.items():
            s = sims[:, start:start + head.embeds.shape[0]]
            start += head.embeds.shape[0]
            scores = np.stack([reduce(s[:, head.class_index == c], axis=1) for c in range(head.num_classes)], 1)
            results[task] = Result(head, scores, s, self.aggregate, self.scale)
        return results

    def classify(self, images) -> dict[str, Result]:
        """Classify paths, PIL images or a list of them."""
        return self.classify_embeddings(self.model.encode_image(self.model.pixels(images)))

    def classify_files(self, paths: Sequence[str | os.PathLike], batch_size: int = 64,
                       num_workers: int | None = None, faces=None) -> Iterator[FileBatch]:
        """Classify image files in batches, decoding in `num_workers` threads (default 1) one batch ahead
        of the model. Unreadable files land in `failed`, by path. `faces`: a `flip.faces.FaceStage` (or its
        mode), for one row per face of each photo, as `FLIPClassifier.classify_files`."""
        stage = None
        if faces is not None:
            from .faces.stage import FaceStage

            stage = faces if isinstance(faces, FaceStage) else FaceStage(mode=faces)
        for batch in decode_batches(paths, self.model, batch_size, num_workers, stage):
            done = [str(paths[i]) for i in batch["index"]]
            results = self.classify_embeddings(self.model.encode_image(batch["pixels"])) if done else {}
            yield FileBatch(done, results, [(str(paths[i]), why) for i, why in batch["failed"]],
                            batch["faces"] if stage is not None else None, [str(paths[i]) for i in batch["no_face"]])


def decode_batches(paths: Sequence, model: OnnxFLIP, batch_size: int = 64, num_workers: int | None = None,
                   stage=None) -> Iterator[dict[str, Any]]:
    """Yield `flip.faces.stage.collate_face_files` batches of `paths` (a row per face, numpy uint8 pixels)
    through `stage` (default: the whole image), decoded in threads (PIL releases the GIL) with the next
    batch in flight while the caller runs the model."""
    from .faces.stage import FaceFiles, FaceStage, collate_face_files

    files = FaceFiles(paths, model, stage if stage is not None else FaceStage(mode="none"))
    with ThreadPoolExecutor(max(1, num_workers or 1)) as pool:
        pending = deque()
        for start in range(0, len(paths), batch_size):
            pending.append([pool.submit(files.__getitem__, i) for i in range(start, min(start + batch_size, len(paths)))])
            if len(pending) > 1:
                yield collate_face_files([f.result() for f in pending.popleft()])
        while pending:
            yield collate_face_files([f.result() for f in pending.popleft()])
