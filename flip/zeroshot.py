"""Zero-shot classification by description, after Menon & Vondrick ("Visual Classification via
Description from Large Language Models", ICLR 2023), for faces.

The method. Each class of a task has descriptors ("grey hair", "deep wrinkles around the eyes").
Each descriptor becomes a sentence with the class phrase, by the paper's rule (`descriptor_sentence`):
"{class}, which is {d}" when d starts with an indefinite article or "used", "{class}, which {d}" when
it starts with has/often/typically/may/can, else "{class}, which has {d}". A class's score is the
mean cosine similarity between the image and its descriptor sentences (`max` and `sum` by option);
the prediction is the best class, and the descriptors with the highest similarity explain it. The
baseline writes the class phrase into templates ("a photo of {}.") and averages their embeddings,
as CLIP's prompt ensembling does; with the paper's template "{}" it is the class name alone.

Design choices
- The rule tests whole words; the released code tests the first letter (`startswith('a')`), which
  also turns "almond-shaped eyes" into "which is almond-shaped eyes". flip's face files use
  "who" (`_meta.relative`, "a senior person, who has grey hair") and readable class phrases
  (`_meta.names`); reference-format files keep the paper's "which" and the class name itself.
- Builders are pure functions on tensors: descriptor embeddings (M, D) and a class index (M,)
  give class weights (C, D) or per-class scores (N, C). With mean aggregation the score equals
  image @ (mean of the class's descriptor embeddings), but similarities are computed per
  descriptor anyway: they are the explanation, and M is small next to the image encoder's cost.
- `FLIPClassifier` embeds the text side once per (text-tower fingerprint, sentences) and keeps it
  in a `TextCache` (in memory, and on disk when given a folder). The fingerprint hashes the text
  tower's weights, the model config and the tokenizer settings, so another or a retrained model
  never reads stale embeddings; the key hashes the exact sentences, so editing a prompt file (or
  the template list it names) invalidates it.
- Images from files are decoded and preprocessed in DataLoader workers while the model runs; an
  unreadable file is reported and skipped, never fatal. Nothing on the image path knows prompts.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .prompts import PromptSet
from .textside import (  # noqa: F401  (descriptor_sentence, default_cache_dir, TaskHead, FileBatch are public here too)
    AGGREGATES,
    METHODS,
    FileBatch,
    TaskHead,
    cache_key,
    photo_records,
    classifier_prompts,
    default_cache_dir,
    descriptor_prompts,
    descriptor_sentence,
    read_embeds,
    template_prompts,
    try_write_embeds,
)


# -- prompts -> sentences -------------------------------------------------------------------------
def build_descriptor_prompts(prompts: PromptSet) -> tuple[list[str], list[str], torch.Tensor]:
    """Sentences, their raw descriptors (both M, class by class in file order) and class index (M,)."""
    sentences, descriptors, index = descriptor_prompts(prompts)
    return sentences, descriptors, torch.tensor(index, dtype=torch.long)


def build_template_prompts(prompts: PromptSet) -> tuple[list[str], torch.Tensor]:
    """The baseline's sentences, C * T of them (each class phrase in each template), and class index."""
    sentences, index = template_prompts(prompts)
    return sentences, torch.tensor(index, dtype=torch.long)


# -- pure builders on tensors ---------------------------------------------------------------------
def class_ranges(class_index: torch.Tensor, num_classes: int) -> list[slice]:
    """Per-class slices into the descriptor axis; `class_index` (M,) must be sorted (file order is)."""
    counts = torch.bincount(class_index, minlength=num_classes).tolist()
    if class_index.numel() > 1 and bool((class_index[1:] < class_index[:-1]).any()):
        raise ValueError("class_index must be sorted (descriptors grouped class by class)")
    ends = torch.tensor(counts).cumsum(0).tolist()
    return [slice(end - n, end) for n, end in zip(counts, ends)]


def build_class_weights(text_embeds: torch.Tensor, class_index: torch.Tensor, num_classes: int,
                        normalize: bool = False) -> torch.Tensor:
    """Mean text embedding per class: (M, D) and (M,) -> (C, D).

    Without normalisation, `image_embeds @ weights.T` is exactly the mean cosine similarity with the
    class's sentences (the by-description score). With it, this is CLIP's template ensemble.
    """
    counts = torch.bincount(class_index, minlength=num_classes)
    if bool((counts == 0).any()):
        raise ValueError(f"classes {torch.nonzero(counts == 0).flatten().tolist()} have no text embeddings")
    sums = text_embeds.new_zeros(num_classes, text_embeds.shape[-1]).index_add_(0, class_index, text_embeds)
    weights = sums / counts.unsqueeze(1).to(sums.dtype)
    return F.normalize(weights, dim=-1) if normalize else weights


def aggregate_scores(similarities: torch.Tensor, class_index: torch.Tensor, num_classes: int,
                     aggregate: str = "mean") -> torch.Tensor:
    """Per-class scores (N, C) from per-descriptor similarities (N, M), by mean, max or sum."""
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate={aggregate!r}; choose one of {list(AGGREGATES)}")
    reduce = {"mean": "mean", "max": "amax", "sum": "sum"}[aggregate]
    index = class_index.to(similarities.device).expand(similarities.shape[0], -1)
    out = similarities.new_zeros(similarities.shape[0], num_classes)
    return out.scatter_reduce(1, index, similarities, reduce=reduce, include_self=False)


# -- the text side and its cache ------------------------------------------------------------------
class TextCache:
    """Embedded sentences by key: a dict in memory, plus safetensors files in `directory` if given.

    One process-wide instance (`default_text_cache()`) is shared by classifiers that name none.
    """

    def __init__(self, directory: str | os.PathLike | None = None):
        self.directory = Path(directory).expanduser() if directory is not None else None
        self._memory: dict[str, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self._memory)

    def clear(self) -> None:
        """Forget what is in memory (files on disk stay)."""
        self._memory.clear()

    def get(self, key: str) -> torch.Tensor | None:
        if key in self._memory:
            return self._memory[key]
        file = self._file(key)
        embeds = read_embeds(file) if file is not None else None
        if embeds is None:  # missing, unreadable, truncated or foreign: a miss (and rewritten if it can be)
            return None
        self._memory[key] = torch.from_numpy(embeds)
        return self._memory[key]

    def put(self, key: str, embeds: torch.Tensor, info: Mapping[str, str] | None = None) -> None:
        embeds = embeds.detach().to("cpu", torch.float32).contiguous()
        self._memory[key] = embeds
        file = self._file(key)
        if file is not None:
            if not try_write_embeds(file, embeds.numpy(), info):
                self.directory = None  # the cache only saves time: an unwritable one is skipped, once

    def _file(self, key: str) -> Path | None:
        return None if self.directory is None else self.directory / f"{key}.safetensors"


_DEFAULT_CACHE: TextCache | None = None


def default_text_cache() -> TextCache:
    """The process-wide in-memory cache (created on first use)."""
    global _DEFAULT_CACHE
    if _DEFAULT_CACHE is None:
        _DEFAULT_CACHE = TextCache()
    return _DEFAULT_CACHE


def text_fingerprint(model, processor, parts: Sequence[str] = ("text_model", "text_proj")) -> str:
    """A hash of everything that decides a text embedding: the text tower's and projection's
    weights and buffers, the model config, and the tokenizer settings. A model that states its own
    (an exported backend, `flip.onnx_backend.OnnxFLIP`) is taken at its word. `parts`: the modules
    hashed (the pooled output before the projection depends on `text_model` alone)."""
    stated = getattr(model, "text_fingerprint", None)
    if isinstance(stated, str):
        return stated
    h = hashlib.blake2b(digest_size=16)
    h.update(config_identity(getattr(model, "config", None)).encode())
    h.update(_tokenizer_settings(processor).encode())
    modules = [getattr(model, name) for name in parts if hasattr(model, name)] or [model]
    for i, module in enumerate(modules):
        for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
            t = tensor.detach().to("cpu").contiguous()
            h.update(f"{i}.{name}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


#: Config keys that say where or how a model was loaded, not what it computes.
#: (and `liveness_calibration`: a decision threshold shipped beside the weights, not part of what they compute)
_NOT_IDENTITY = ("_name_or_path", "dtype", "torch_dtype", "transformers_version", "architectures",
                 "liveness_calibration")


def config_identity(config) -> str:
    """A model config as JSON without the keys that change with where and how it was loaded (its path,
    dtype, transformers' version), so one model loaded twice has one fingerprint."""
    if not hasattr(config, "to_dict"):
        return repr(config)

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in _NOT_IDENTITY}
        return value

    return json.dumps(strip(config.to_dict()), sort_keys=True, default=str)


def _tokenizer_settings(processor) -> str:
    tok = getattr(processor, "tokenizer", None)
    settings = getattr(processor, "settings", None)
    parts = {
        "processor": type(processor).__name__,
        "settings": settings.to_dict() if hasattr(settings, "to_dict") else repr(settings),
        "tokenizer": type(tok).__name__,
        "vocab": len(tok) if tok is not None and hasattr(tok, "__len__") else None,
    }
    return json.dumps(parts, sort_keys=True, default=str)


def model_device_dtype(model) -> tuple[torch.device, torch.dtype]:
    """Where a model runs and in what dtype: its `device` and `dtype` (a transformers model, or an exported
    backend that has no parameters), else those of its first parameter."""
    device, dtype = getattr(model, "device", None), getattr(model, "dtype", None)
    if isinstance(device, torch.device) and isinstance(dtype, torch.dtype):
        return device, dtype
    param = next(model.parameters())
    return param.device, param.dtype


@torch.inference_mode()
def encode_texts(model, processor, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
    """L2-normalised text embeddings (M, D), in batches, on the model's device."""
    device = model_device_dtype(model)[0]
    out = []
    for start in range(0, len(texts), batch_size):
        batch = processor.texts(list(texts[start:start + batch_size]))
        batch = {k: v.to(device) for k, v in batch.items()}
        out.append(model.encode_text(batch))
    return torch.cat(out)


def build_task_head(model, processor, prompts: PromptSet, method: str = "descriptors",
                    cache: TextCache | None = None, fingerprint: str | None = None,
                    batch_size: int = 256) -> TaskHead:
    """Embed one task's text side (or read it from `cache`)."""
    if method not in METHODS:
        raise ValueError(f"method={method!r}; choose one of {list(METHODS)}")
    if method == "descriptors":
        sentences, texts, index = build_descriptor_prompts(prompts)
    else:
        sentences, index = build_template_prompts(prompts)
        texts = [prompts.names[c] for c in prompts.classes]
    cache = cache if cache is not None else default_text_cache()
    fingerprint = fingerprint or text_fingerprint(model, processor)
    key = cache_key(fingerprint, sentences)
    embeds = cache.get(key)
    if embeds is None or embeds.shape[0] != len(sentences):
        embeds = encode_texts(model, processor, sentences, batch_size)
        cache.put(key, embeds, {"task": prompts.task, "model": fingerprint, "prompts_sha256": prompts.sha256})
        embeds = cache.get(key)
    if method == "baseline":
        embeds = build_class_weights(embeds, index, prompts.num_classes, normalize=True)
        index = torch.arange(prompts.num_classes)
    return TaskHead(prompts.task, method, prompts.classes, tuple(texts), embeds, index, prompts.sha256)


# -- results --------------------------------------------------------------------------------------
@dataclass
class TaskResult:
    """One task's answers for a batch of N images.

    scores: (N, C) class scores (mean cosine similarity by default); similarities: (N, M) cosine
    similarity of each image with each text of the head (descriptor sentences, or class prompts);
    scale: the model's logit scale (1 / temperature), which turns mean or max scores into
    probabilities as CLIP's softmax over classes does (`probabilities`; None without it or for "sum").
    """

    head: TaskHead
    scores: torch.Tensor
    similarities: torch.Tensor
    aggregate: str = "mean"
    scale: float | None = None

    @property
    def task(self) -> str:
        return self.head.task

    @property
    def classes(self) -> tuple[str, ...]:
        return self.head.classes

    @property
    def predicted(self) -> torch.Tensor:
        """(N,) index of the best class."""
        return self.scores.argmax(dim=-1)

    @property
    def predictions(self) -> list[str]:
        return [self.head.classes[i] for i in self.predicted.tolist()]

    @property
    def probabilities(self) -> torch.Tensor | None:
        """(N, C) softmax over classes of scale x scores (rows sum to 1), or None (no scale, or "sum")."""
        if self.scale is None or self.aggregate == "sum":
            return None
        return torch.softmax(self.scores.float() * self.scale, dim=-1)

    def top_descriptors(self, i: int, k: int | None = None, cls: str | None = None) -> list[tuple[str, float]]:
        """The texts of class `cls` (default: image i's prediction) by similarity, highest first."""
        c = int(self.predicted[i]) if cls is None else self.head.classes.index(cls)
        members = torch.nonzero(self.head.class_index == c).flatten()
        sims = self.similarities[i, members.to(self.similarities.device)].float().cpu()
        order = sims.argsort(descending=True, stable=True)[:k]
        return [(self.head.texts[int(members[j])], float(sims[j])) for j in order]

    def record(self, i: int, k: int | None = 3) -> dict[str, Any]:
        """Image i's answer as plain data: prediction, class scores (cosines), class probabilities
        (when the model's scale is known) and the deciding descriptors."""
        scores = self.scores[i].float().cpu().tolist()
        out = {"prediction": self.predictions[i], "scores": dict(zip(self.head.classes, scores))}
        probs = self.probabilities
        if probs is not None:
            out["probabilities"] = dict(zip(self.head.classes, probs[i].cpu().tolist()))
        out["descriptors"] = [{"text": t, "similarity": s} for t, s in self.top_descriptors(i, k)]
        return out

    def __len__(self) -> int:
        return self.scores.shape[0]

    def cpu(self) -> "TaskResult":
        return TaskResult(self.head, self.scores.cpu(), self.similarities.cpu(), self.aggregate, self.scale)

    def __getitem__(self, rows) -> "TaskResult":
        """The results of some images (an index, slice or index list), as a `TaskResult`."""
        rows = [rows] if isinstance(rows, int) else rows
        return TaskResult(self.head, self.scores[rows], self.similarities[rows], self.aggregate, self.scale)

    @staticmethod
    def cat(results: Sequence["TaskResult"]) -> "TaskResult":
        """Results of several batches of the same head, as one."""
        if not results or any(r.head is not results[0].head for r in results):
            raise ValueError("TaskResult.cat: give one or more results of the same task head")
        return TaskResult(results[0].head, torch.cat([r.scores for r in results]),
                          torch.cat([r.similarities for r in results]), results[0].aggregate, results[0].scale)


# -- the classifier -------------------------------------------------------------------------------
class FLIPClassifier:
    """Classify face images for one or more tasks, by description (default) or by the baseline.

        model, processor = flip.load()
        clf = FLIPClassifier(model, processor, tasks=["emotion", "age_group"])
        results = clf.classify(["face.jpg"])          # {task: TaskResult}
        results["emotion"].predictions, results["emotion"].top_descriptors(0, k=3)

    tasks: task names, prompt-file paths or `PromptSet`s. The text side is embedded here, once
    (see `TextCache`); `cache_dir` adds a disk cache to the process-wide memory cache.
    """

    def __init__(self, model, processor, tasks: Sequence[str | os.PathLike | PromptSet] | str = ("emotion",), *,
                 method: str = "descriptors", aggregate: str = "mean", prompt_root: str | os.PathLike | None = None,
                 cache: TextCache | None = None, cache_dir: str | os.PathLike | None = None,
                 text_batch_size: int = 256):
        prompt_sets = classifier_prompts(tasks, method, aggregate, prompt_root)
        self.model, self.processor = model, processor
        self.method, self.aggregate = method, aggregate
        self.scale = float(model.scale().detach()) if hasattr(model, "scale") else None
        if cache is None:
            cache = TextCache(cache_dir) if cache_dir is not None else default_text_cache()
        self.cache = cache
        self.prompts = {p.task: p for p in prompt_sets}
        fingerprint = text_fingerprint(model, processor)
        self.heads = {p.task: build_task_head(model, processor, p, method, cache, fingerprint, text_batch_size)
                      for p in prompt_sets}
        # All tasks in one matrix and one class index: per batch of images, one matmul and one
        # aggregation, then a slice per task (cheap at batch size 1 too).
        heads = list(self.heads.values())
        self._all_embeds = torch.cat([h.embeds for h in heads])
        text_bounds = _bounds([h.embeds.shape[0] for h in heads])
        class_bounds = _bounds([h.num_classes for h in heads])
        self._text_slices = {t: slice(a, b) for t, (a, b) in zip(self.heads, text_bounds)}
        self._class_slices = {t: slice(a, b) for t, (a, b) in zip(self.heads, class_bounds)}
        self._all_class_index = torch.cat([h.class_index + a for h, (a, _) in zip(heads, class_bounds)])
        self._num_all_classes = class_bounds[-1][1]
        self._on_device: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def tasks(self) -> list[str]:
        return list(self.heads)

    def _text_on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device not in self._on_device:
            self._on_device[device] = (self._all_embeds.to(device), self._all_class_index.to(device))
        return self._on_device[device]

    def classify_embeddings(self, image_embeds: torch.Tensor, to_cpu: bool = False) -> dict[str, TaskResult]:
        """Results per task for L2-normalised image embeddings (N, D); `to_cpu` moves them in one go."""
        if image_embeds.ndim != 2 or image_embeds.shape[1] != self._all_embeds.shape[1]:
            raise ValueError(f"image_embeds: expected shape (N, {self._all_embeds.shape[1]}), "
                             f"got {tuple(image_embeds.shape)}")
        with torch.inference_mode():
            embeds, class_index = self._text_on(image_embeds.device)
            sims = image_embeds.float() @ embeds.T  # float32 whatever the model's dtype
            scores = aggregate_scores(sims, class_index, self._num_all_classes, self.aggregate)
            if to_cpu:
                sims, scores = sims.cpu(), scores.cpu()
        return {task: TaskResult(head, scores[:, self._class_slices[task]], sims[:, self._text_slices[task]],
                                 self.aggregate, self.scale)
                for task, head in self.heads.items()}

    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, D) normalised embeddings on the model's device. Float pixel values from
        `processor.images`, or uint8 pixels from `processor.pixels` (what `image_file_loader` yields),
        which travel as uint8 and are normalised on the device."""
        device, dtype = model_device_dtype(self.model)
        with torch.inference_mode():
            x = pixel_values.to(device, non_blocking=True)
            x = self.processor.normalize(x, dtype) if x.dtype == torch.uint8 else x.to(dtype)
            return self.model.encode_image(x)

    def classify(self, images) -> dict[str, TaskResult]:
        """Classify images: paths, PIL images, a list of them, or pixels (N, 3, H, W) as `encode_images`
        takes them."""
        if isinstance(images, torch.Tensor):
            pixel_values = images
        else:
            if isinstance(images, (str, os.PathLike)) or not isinstance(images, Sequence):
                images = [images]
            pixel_values = self.processor.images(list(images))
        return self.classify_embeddings(self.encode_images(pixel_values))

    def classify_files(self, paths: Sequence[str | os.PathLike], batch_size: int = 64,
                       num_workers: int | None = None, prefetch_factor: int = 4, faces=None) -> Iterator[FileBatch]:
        """Classify image files in batches, decoding in `num_workers` DataLoader workers (default:
        all cores but one, at most 8) while the model runs. Unreadable files land in `failed`;
        results come back on the CPU, one transfer per batch. `faces`: a `flip.faces.FaceStage`
        (or its mode, "auto" | "all" | "largest" | "none"), for one row per face of each photo."""
        pin = model_device_dtype(self.model)[0].type == "cuda"
        if faces is not None:
            yield from self._classify_faces(paths, batch_size, num_workers, faces, pin)
            return
        loader = image_file_loader(paths, self.processor, batch_size, num_workers, prefetch_factor, pin_memory=pin)
        for batch in loader:
            done = [str(paths[i]) for i in batch["index"]]
            failed = [(str(paths[i]), why) for i, why in batch["failed"]]
            results = {} if not done else self.classify_embeddings(self.encode_images(batch["pixels"]), to_cpu=True)
            yield FileBatch(done, results, failed)

    def _classify_faces(self, paths, batch_size, num_workers, faces, pin) -> Iterator[FileBatch]:
        from .faces.stage import face_batches

        for batch in face_batches(paths, self.processor, faces, batch_size, num_workers, pin):
            results = {} if batch.pixels is None else \
                self.classify_embeddings(self.encode_images(batch.pixels), to_cpu=True)
            yield FileBatch(batch.paths, results, batch.failed, batch.faces, batch.no_face)

    def classify_photos(self, images: Sequence[str | os.PathLike] | str | os.PathLike, faces="auto",
                        k: int | None = 3, batch_size: int = 16, num_workers: int | None = 0) -> list[dict[str, Any]]:
        """One record per face of each photo (`FileBatch.records`), as `flip classify --json` writes
        them; unreadable files raise. `faces`: a `flip.faces.FaceStage` or its mode."""
        if isinstance(images, (str, os.PathLike)):
            images = [images]
        return photo_records(self.classify_files(list(images), batch_size, num_workers, faces=faces),
                             lambda batch: batch.records(k))


def _bounds(sizes: list[int]) -> list[tuple[int, int]]:
    """[3, 2] -> [(0, 3), (3, 5)]."""
    ends = torch.tensor(sizes).cumsum(0).tolist()
    return [(end - n, end) for n, end in zip(sizes, ends)]


# -- image files in DataLoader workers ------------------------------------------------------------
class ImageFiles(torch.utils.data.Dataset):
    """Images -> (index, uint8 pixels (3, H, W) or None, error or None), decoded by `processor.pixels`
    (normalising is left to the consumer's device: 4x fewer bytes between processes).

    Items are paths, or anything else `processor.images` reads (encoded bytes, PIL images).
    """

    def __init__(self, items: Sequence, processor):
        self.items = [str(p) if isinstance(p, os.PathLike) else p for p in items]
        self.processor = processor

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        try:
            return i, self.processor.pixels([self.items[i]])[0], None
        except Exception as err:  # reported by path by the caller; one bad file never stops a run
            return i, None, f"{type(err).__name__}: {err}"


def collate_image_files(items) -> dict[str, Any]:
    """Stack the readable images (uint8 `pixels`); keep the failures (index, reason) aside."""
    good = [(i, px) for i, px, err in items if err is None]
    return {
        "index": [i for i, _ in good],
        "pixels": torch.stack([px for _, px in good]) if good else None,
        "failed": [(i, err) for i, _, err in items if err is not None],
    }


def image_file_loader(paths: Sequence, processor, batch_size: int = 64, num_workers: int | None = None,
                      prefetch_factor: int = 4, pin_memory: bool = False) -> torch.utils.data.DataLoader:
    """A DataLoader over image files (or encoded bytes) that yields `collate_image_files` batches,
    in order, decoding in `num_workers` worker processes (default: all cores but one, at most 8)."""
    if num_workers is None:
        num_workers = min(8, max(1, (os.cpu_count() or 2) - 1))
    num_workers = min(num_workers, max(0, -(-len(paths) // batch_size)))
    extra = dict(prefetch_factor=prefetch_factor, persistent_workers=False) if num_workers > 0 else {}
    return torch.utils.data.DataLoader(ImageFiles(paths, processor), batch_size=batch_size, shuffle=False,
                                       num_workers=num_workers, collate_fn=collate_image_files,
                                       pin_memory=pin_memory, **extra)


# -- a figure of the explanations -----------------------------------------------------------------
def plot_contributions(results: Mapping[str, TaskResult], labels: Sequence[str], path: str | os.PathLike,
                       k: int = 5, max_images: int = 8) -> Path:
    """A grid (image x task) of bar charts: the predicted class's top-k descriptors by similarity.

    Needs matplotlib (`pip install "flip-face[eval]"`).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError('plotting needs matplotlib: pip install "flip-face[eval]"') from None
    tasks = list(results)
    n = min(max_images, len(labels))
    if n == 0 or not tasks:
        raise ValueError("plot_contributions: nothing to plot (no images or no tasks)")
    fig, axes = plt.subplots(n, len(tasks), figsize=(4.2 * len(tasks), 0.45 * k * n + 0.8 * n), squeeze=False)
    for r in range(n):
        for c, task in enumerate(tasks):
            res, ax = results[task], axes[r][c]
            top = res.top_descriptors(r, k)[::-1]
            ax.barh([_short(t) for t, _ in top], [s for _, s in top], color="tab:blue")
            ax.set_title(f"{Path(labels[r]).name} | {task}: {res.predictions[r]}", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.set_xlabel("cosine similarity", fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _short(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
