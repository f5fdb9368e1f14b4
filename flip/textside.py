"""The text side of zero-shot classification, without torch: sentences from prompt files, the text
cache's keys and files, and the batches of answers (`FileBatch`) both classifiers yield.

`flip.zeroshot` (torch) and `flip.onnx_backend` (numpy and onnxruntime only) both build on this, so
a classification through either backend reads and writes the same cache entries: an export carries
the text fingerprint of the model it came from (`flip.export`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .prompts import PromptSet, load_prompts

logger = logging.getLogger(__name__)

#: How descriptor similarities become a class score ("mean" is the paper's).
AGGREGATES = ("mean", "max", "sum")
#: The two ways to build a task's text side.
METHODS = ("descriptors", "baseline")

_VERB_STARTS = ("has", "often", "typically", "may", "can")
_IS_STARTS = ("a", "an", "used")


@dataclass(frozen=True)
class TaskHead:
    """A task's embedded text side.

    texts: what an explanation shows, (M,): the descriptors, or the class phrases for the baseline.
    embeds: (M, D) float32 on the CPU (a torch tensor in flip.zeroshot, a numpy array in
    flip.onnx_backend); class_index: (M,) the class of each text.
    """

    task: str
    method: str
    classes: tuple[str, ...]
    texts: tuple[str, ...]
    embeds: Any
    class_index: Any
    prompts_sha256: str

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass
class FileBatch:
    """What `classify_files` yields per batch (`flip.zeroshot.FLIPClassifier`, `flip.onnx_backend.OnnxClassifier`):
    the readable paths in order, their results by task (`TaskResult`s, or the numpy backend's `Result`s),
    and the unreadable ones as (path, reason). With a face stage, a row is a face:
    `paths` repeats an image's path once per face, `faces` holds each row's `flip.faces.Face`, and
    images in which no face was found (and none stood in) are in `no_face`."""

    paths: list[str]
    results: dict[str, Any]
    failed: list[tuple[str, str]] = field(default_factory=list)
    faces: list | None = None
    no_face: list[str] = field(default_factory=list)

    def records(self, k: int | None = 3) -> list[dict[str, Any]]:
        """One plain-data record per row: {path, face, box, detector_score, whole_image, <task>: {...}}
        (the face fields only with a face stage)."""
        out = []
        for i, path in enumerate(self.paths):
            face = self.faces[i].record() if self.faces is not None else {}
            out.append({"path": path, **face, **{task: res.record(i, k) for task, res in self.results.items()}})
        return out


def photo_records(batches, records) -> list[dict[str, Any]]:
    """Every batch's `records(batch)` in order, for the Python API's `*_photos` (classify, liveness):
    unlike the CLI, which skips and reports them, an unreadable file raises, naming it."""
    out = []
    for batch in batches:
        if batch.failed:
            raise ValueError(f"{batch.failed[0][0]}: {batch.failed[0][1]}")
        out += records(batch)
    return out


def classifier_prompts(tasks, method: str, aggregate: str, prompt_root=None) -> list[PromptSet]:
    """A classifier's arguments checked, and its tasks (names, prompt-file paths or `PromptSet`s; one
    alone may be given bare) as prompt sets, each task once."""
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate={aggregate!r}; choose one of {list(AGGREGATES)}")
    if method not in METHODS:
        raise ValueError(f"method={method!r}; choose one of {list(METHODS)}")
    if isinstance(tasks, (str, os.PathLike, PromptSet)):
        tasks = [tasks]
    if not tasks:
        raise ValueError("tasks: give at least one task")
    prompt_sets = [t if isinstance(t, PromptSet) else load_prompts(t, prompt_root) for t in tasks]
    names = [p.task for p in prompt_sets]
    if len(set(names)) != len(names):
        raise ValueError(f"tasks: {names} names a task twice")
    return prompt_sets


def descriptor_sentence(name: str, descriptor: str, relative: str = "which") -> str:
    """The paper's sentence for one descriptor: "Bengal, which has green or blue eyes"."""
    descriptor = descriptor.strip()
    first = descriptor.split(maxsplit=1)[0].lower()
    if first in _IS_STARTS:
        clause = f"is {descriptor}"
    elif first in _VERB_STARTS:
        clause = descriptor
    else:
        clause = f"has {descriptor}"
    return f"{name}, {relative} {clause}"


def descriptor_prompts(prompts: PromptSet) -> tuple[list[str], list[str], list[int]]:
    """Sentences, their raw descriptors (both M, class by class in file order) and class index (M,)."""
    sentences, descriptors, index = [], [], []
    for c, cls in enumerate(prompts.classes):
        for d in prompts.descriptors[cls]:
            sentences.append(descriptor_sentence(prompts.names[cls], d, prompts.relative))
            descriptors.append(d)
            index.append(c)
    return sentences, descriptors, index


def template_prompts(prompts: PromptSet) -> tuple[list[str], list[int]]:
    """The baseline's sentences, C * T of them (each class phrase in each template), and class index."""
    sentences = [t.format(prompts.names[cls]) for cls in prompts.classes for t in prompts.templates]
    index = [c for c in range(prompts.num_classes) for _ in prompts.templates]
    return sentences, index


def cache_key(fingerprint: str, sentences: Sequence[str]) -> str:
    """The cache entry of `sentences` embedded by the text tower whose fingerprint is given."""
    return hashlib.sha256("\x1f".join([fingerprint, *sentences]).encode()).hexdigest()[:40]


def read_embeds(file: Path) -> np.ndarray | None:
    """A cache file's float32 embeddings (M, D), or None when missing, truncated or foreign."""
    if not file.is_file():
        return None
    from safetensors.numpy import load_file

    try:
        return load_file(file)["embeds"]
    except Exception:  # a truncated or foreign file is a miss, and is rewritten
        return None


def write_embeds(file: Path, embeds: np.ndarray, info: Mapping[str, str] | None = None) -> None:
    """Write a cache file atomically: a reader never sees half a file (a failed write leaves no temporary
    file behind)."""
    from safetensors.numpy import save_file

    tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        save_file({"embeds": np.ascontiguousarray(embeds, dtype=np.float32)}, str(tmp), metadata=dict(info or {}))
        os.replace(tmp, file)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def try_write_embeds(file: Path, embeds: np.ndarray, info: Mapping[str, str] | None = None) -> bool:
    """`write_embeds`, or a warning when the cache cannot be written: the cache only saves time, so both
    backends go on without it (and stop trying: False)."""
    try:
        write_embeds(file, embeds, info)
    except OSError as err:
        logger.warning("text cache %s: not writable (%s); continuing without it", file.parent, err)
        return False
    return True


def default_cache_dir() -> Path:
    """Where the command line keeps text embeddings: `$FLIP_CACHE`, else `$XDG_CACHE_HOME/flip`,
    else `~/.cache/flip`; then `text/`."""
    base = os.environ.get("FLIP_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "flip"
    return Path(base).expanduser() / "text"
