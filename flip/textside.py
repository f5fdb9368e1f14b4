"""The text side of zero-shot classification, without torch: sentences from prompt files, the text
cache's keys and files.

`flip.zeroshot` (torch) and `flip.onnx_backend` (numpy and onnxruntime only) both build on this, so
a classification through either backend reads and writes the same cache entries: an export carries
the text fingerprint of the model it came from (`flip.export`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .prompts import PromptSet

_VERB_STARTS = ("has", "often", "typically", "may", "can")
_IS_STARTS = ("a", "an", "used")


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
    """Write a cache file atomically: a reader never sees half a file."""
    from safetensors.numpy import save_file

    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    save_file({"embeds": np.ascontiguousarray(embeds, dtype=np.float32)}, str(tmp), metadata=dict(info or {}))
    os.replace(tmp, file)


def default_cache_dir() -> Path:
    """Where the command line keeps text embeddings: `$FLIP_CACHE`, else `$XDG_CACHE_HOME/flip`,
    else `~/.cache/flip`; then `text/`."""
    base = os.environ.get("FLIP_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "flip"
    return Path(base).expanduser() / "text"
