"""Prompt files: the one loader and validator of the descriptor data that zero-shot tasks read.

A prompt file is JSON in the shape of Menon & Vondrick's published descriptor files,
`{"class": ["descriptor", ...], ...}`, so that a file from their repository loads unchanged. flip's
own files add one reserved top-level key, `_meta`, which no reference file has:

    {
      "_meta": {
        "format": 1,                      # schema version; the loader refuses formats it does not know
        "version": "1",                   # the content's version, for provenance (free text)
        "task": "emotion",                # must equal the file's task name when given
        "description": "...", "note": "...",
        "names": {"happy": "a happy person"},   # class -> phrase written in prompts (default: the class)
        "relative": "who",                # "which" (the paper's, default) or "who": the relative pronoun
        "templates": "face"               # baseline templates: a list, or a list name in _templates.json
      },
      "happy": ["a broad smile", "raised cheeks"],
      ...
    }

Design choices
- Class keys are the label values of the data they classify, spelled as JSON spells them
  (`label_key`): the synthetic world's `True` is the class "true". The readable phrase used in
  the text lives in `_meta.names`, so that labels stay machine-comparable and prompts stay natural.
- Task names are file paths under a prompt folder without `.json`: `emotion` (the synthetic world's
  record attributes, at the top), `celeba/Smiling`, `fairface/race`, `rephrased/emotion` (the same
  classes described in words the synthetic captions never use). Files whose name starts with `_`
  are not tasks (`_templates.json` holds the shared baseline template lists).
- Everything is validated on load and every problem is one `ValueError` naming the file and key:
  fewer than two classes, an empty class, a duplicate class or descriptor (case and spacing
  ignored), a non-string, an unknown `_...` key or `_meta` field.
- The shipped files live inside the package (`flip/assets/prompts/`, package data), so an installed
  flip finds them; the repository's top-level `prompts/` is a link to that folder, not a copy.
- Loading is pure file reading: no model, no tokenizer. Sentence building is `flip.zeroshot`'s job.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

#: The folder of the prompt files that ship with flip.
PROMPT_DIR = Path(__file__).parent / "assets" / "prompts"
#: The shared template lists, in a prompt folder (a data file, not a task).
TEMPLATES_FILE = "_templates.json"
#: The schema versions this loader reads.
FORMATS = (1,)
#: The one reserved top-level key of a prompt file.
META_KEY = "_meta"
#: Fields `_meta` may hold, with what each means (also the error message's list).
META_FIELDS = {
    "format": "schema version (int)",
    "version": "content version (str or int)",
    "task": "the task name (must match the file's name)",
    "description": "what the task is (str)",
    "note": "caveats for users (str)",
    "source": "where the label set comes from (str)",
    "names": "class -> phrase used in prompts",
    "relative": "'which' or 'who'",
    "templates": "list of templates with one '{}', or the name of a list in _templates.json",
}
#: The relative pronouns a descriptor sentence may use ("which" is the paper's).
RELATIVES = ("which", "who")
#: Baseline templates when a file names none: the class name alone, as the paper's baseline.
PAPER_TEMPLATES = ("{}",)


@dataclass(frozen=True)
class PromptSet:
    """One task's validated prompts.

    classes: class keys in file order (the label values a prediction is compared with).
    descriptors: class -> its descriptors, in file order.
    names: class -> the phrase written in prompts ("a happy person"); by default the class with
        underscores as spaces (the paper's `wordify`).
    templates: baseline templates, each with one "{}" for the class phrase.
    relative: "which" or "who", the pronoun that joins a class phrase to a descriptor.
    sha256: hash of the file's bytes (of the canonical JSON for prompts built from a dict).
    """

    task: str
    classes: tuple[str, ...]
    descriptors: dict[str, tuple[str, ...]]
    names: dict[str, str]
    templates: tuple[str, ...] = PAPER_TEMPLATES
    relative: str = "which"
    version: str | None = None
    description: str | None = None
    note: str | None = None
    source: str | None = None
    path: Path | None = None
    sha256: str = ""
    meta: dict = field(default_factory=dict, repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def num_descriptors(self) -> int:
        return sum(len(d) for d in self.descriptors.values())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], task: str = "custom", source: str = "<dict>",
                  root: str | os.PathLike | None = None) -> "PromptSet":
        """Validate an in-memory prompt mapping (same rules as a file); `source` names it in errors."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{source}: a prompt file must be a JSON object of class -> descriptors, "
                             f"got {type(data).__name__}")
        raw = json.dumps(data, sort_keys=True, ensure_ascii=False).encode()
        return _validate(dict(data), task, source, None, hashlib.sha256(raw).hexdigest(), root)

    def to_dict(self) -> dict:
        """The prompt-file mapping that `from_dict` reads back into this set (templates spelled out)."""
        meta = {"names": dict(self.names), "relative": self.relative, "templates": list(self.templates)}
        meta.update({k: getattr(self, k) for k in ("description", "note", "source") if getattr(self, k) is not None})
        return {META_KEY: meta, **{c: list(d) for c, d in self.descriptors.items()}}

    def without(self, classes: Iterable[str], task: str | None = None) -> "PromptSet":
        """This set less `classes` (their descriptors and names), as task `task` (default: this one). A new
        set with its own sha256, so a threshold calibrated on the whole set does not apply to it."""
        classes = list(classes)
        missing = sorted(set(classes) - set(self.classes))
        if missing:
            raise ValueError(f"{missing}: not classes of the prompts {self.task!r} ({list(self.classes)})")
        data = self.to_dict()
        for c in classes:
            del data[c], data[META_KEY]["names"][c]
        return PromptSet.from_dict(data, task=task or self.task, source=str(self.path or self.source or self.task))


def label_key(value: Any) -> str | None:
    """A label value as a class key: strings as they are, booleans as JSON spells them, None stays None."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def prompt_root(root: str | os.PathLike | None = None) -> Path:
    """The prompt folder: `root`, else `$FLIP_PROMPTS`, else the files shipped with flip."""
    return Path(root or os.environ.get("FLIP_PROMPTS") or PROMPT_DIR).expanduser()


def available_tasks(root: str | os.PathLike | None = None) -> list[str]:
    """Task names under a prompt folder (sorted; files starting with `_` are not tasks)."""
    base = prompt_root(root)
    tasks = [p.relative_to(base).with_suffix("").as_posix() for p in base.rglob("*.json")]
    return sorted(t for t in tasks if not any(part.startswith("_") for part in t.split("/")))


def load_prompts(task_or_path: str | os.PathLike, root: str | os.PathLike | None = None) -> PromptSet:
    """Load and validate one prompt file, by task name (`emotion`, `celeba/Smiling`) or path.

    A path (anything ending in `.json` or naming an existing file) is read as is; a task name is
    looked up under `prompt_root(root)`. An unknown task raises `KeyError` listing the tasks there.
    """
    text = str(task_or_path)
    path = Path(text).expanduser()
    if text.endswith(".json") or path.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"no such prompt file: {path}")
        return _load_file(path, path.stem, root=path.parent if root is None else root)
    base = prompt_root(root)
    path = base / f"{text}.json"
    if text.startswith("_") or not path.is_file():
        known = available_tasks(base)
        raise KeyError(f"unknown task {text!r}; the tasks in {base} are: {', '.join(known) or '(none)'}")
    return _load_file(path, text, root=base)


def load_templates(name: str, root: str | os.PathLike | None = None) -> tuple[str, ...]:
    """A named template list from `_templates.json` in the prompt folder (`paper` is built in)."""
    if name == "paper":
        return PAPER_TEMPLATES
    file = prompt_root(root) / TEMPLATES_FILE
    if not file.is_file():
        raise FileNotFoundError(f"template list {name!r} asked for, but there is no {file}")
    data = _read_json(file)
    lists = {k: v for k, v in data.items() if k != META_KEY}
    if name not in lists:
        raise ValueError(f"{file}: no template list {name!r}; lists: {', '.join(sorted(lists)) or '(none)'}")
    return _check_templates(lists[name], f"{file}: template list {name!r}")


#: Limits that keep a mistaken file (a log, a data dump) from being embedded and copied into every
#: answer: descriptors are short phrases, and every text tower truncates at a few dozen tokens.
MAX_PROMPT_FILE_BYTES = 4 * 1024 * 1024
MAX_DESCRIPTOR_CHARS = 1000


def _load_file(path: Path, task: str, root: str | os.PathLike | None) -> PromptSet:
    size = path.stat().st_size
    if size > MAX_PROMPT_FILE_BYTES:
        raise ValueError(f"{path}: {size / 2**20:.1f} MiB is too large for a prompt file "
                         f"(at most {MAX_PROMPT_FILE_BYTES // 2**20} MiB of short descriptors)")
    raw = path.read_bytes()
    return _validate(_read_json(path, raw), task, str(path), path, hashlib.sha256(raw).hexdigest(), root)


def _read_json(path: Path, raw: bytes | None = None) -> dict:
    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"{path}: duplicate key {dupes[0]!r}")
        return dict(pairs)

    try:
        data = json.loads((raw if raw is not None else path.read_bytes()).decode("utf-8"),
                          object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a prompt file must be a JSON object of class -> descriptors, "
                         f"got {type(data).__name__}")
    return data


def _normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def _check_string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where} must be a string, got {type(value).__name__} {value!r}")
    if not value.strip():
        raise ValueError(f"{where} is empty")
    if len(value) > MAX_DESCRIPTOR_CHARS:
        raise ValueError(f"{where} is {len(value)} characters long; at most {MAX_DESCRIPTOR_CHARS} "
                         "(descriptors are short phrases, and text towers truncate long texts)")
    return value


def _check_templates(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where} must be a non-empty list of strings")
    for i, t in enumerate(value):
        _check_string(t, f"{where}[{i}]")
        if t.count("{}") != 1:
            raise ValueError(f"{where}[{i}] = {t!r} must hold exactly one '{{}}' for the class phrase")
    return tuple(value)


def _validate(data: dict, task: str, source: str, path: Path | None, sha256: str,
              root: str | os.PathLike | None) -> PromptSet:
    meta = data.pop(META_KEY, {})
    reserved = sorted(k for k in data if k.startswith("_"))
    if reserved:
        raise ValueError(f"{source}: unknown key {reserved[0]!r} (the only reserved key is {META_KEY!r}; "
                         "class names may not start with '_')")
    if not isinstance(meta, dict):
        raise ValueError(f"{source}: {META_KEY!r} must be an object, got {type(meta).__name__}")
    unknown = sorted(set(meta) - set(META_FIELDS))
    if unknown:
        allowed = "; ".join(f"{k}: {v}" for k, v in META_FIELDS.items())
        raise ValueError(f"{source}: unknown key '{META_KEY}.{unknown[0]}'; known keys are {allowed}")

    fmt = meta.get("format", 1)
    if fmt not in FORMATS:
        raise ValueError(f"{source}: {META_KEY}.format = {fmt!r} is not one this flip reads ({list(FORMATS)})")
    if "task" in meta and meta["task"] != task:
        raise ValueError(f"{source}: {META_KEY}.task = {meta['task']!r} but the file is task {task!r}")

    if len(data) < 2:
        raise ValueError(f"{source}: a task needs at least two classes, found {len(data)}")
    seen_classes: dict[str, str] = {}
    descriptors: dict[str, tuple[str, ...]] = {}
    for cls, items in data.items():
        where = f"{source}: class {cls!r}"
        if not cls.strip():
            raise ValueError(f"{source}: a class name is empty")
        if _normalised(cls) in seen_classes:
            raise ValueError(f"{where} duplicates class {seen_classes[_normalised(cls)]!r}")
        seen_classes[_normalised(cls)] = cls
        if not isinstance(items, list):
            raise ValueError(f"{where}: descriptors must be a list of strings, got {type(items).__name__}")
        if not items:
            raise ValueError(f"{where} has no descriptors")
        seen: dict[str, int] = {}
        for i, d in enumerate(items):
            _check_string(d, f"{where}, descriptor {i}")
            if _normalised(d) in seen:
                raise ValueError(f"{where}: descriptor {i} {d!r} duplicates descriptor {seen[_normalised(d)]}")
            seen[_normalised(d)] = i
        descriptors[cls] = tuple(items)

    names = meta.get("names", {})
    if not isinstance(names, dict):
        raise ValueError(f"{source}: {META_KEY}.names must be an object of class -> phrase")
    for cls, phrase in names.items():
        if cls not in descriptors:
            raise ValueError(f"{source}: {META_KEY}.names has unknown class {cls!r}; classes: {list(descriptors)}")
        _check_string(phrase, f"{source}: {META_KEY}.names[{cls!r}]")

    relative = meta.get("relative", "which")
    if relative not in RELATIVES:
        raise ValueError(f"{source}: {META_KEY}.relative = {relative!r}; choose one of {list(RELATIVES)}")

    templates = meta.get("templates", "paper")
    if isinstance(templates, str):
        try:
            templates = load_templates(templates, root)
        except (ValueError, FileNotFoundError) as err:
            raise ValueError(f"{source}: {META_KEY}.templates = {templates!r}: {err}") from None
    else:
        templates = _check_templates(templates, f"{source}: {META_KEY}.templates")

    for key in ("description", "note", "source"):
        if key in meta:
            _check_string(meta[key], f"{source}: {META_KEY}.{key}")
    version = meta.get("version")
    if version is not None and not isinstance(version, (str, int)):
        raise ValueError(f"{source}: {META_KEY}.version must be a string or an integer")

    return PromptSet(
        task=task,
        classes=tuple(descriptors),
        descriptors=descriptors,
        names={cls: names.get(cls, cls.replace("_", " ")) for cls in descriptors},
        templates=templates,
        relative=relative,
        version=None if version is None else str(version),
        description=meta.get("description"),
        note=meta.get("note"),
        source=meta.get("source"),
        path=path,
        sha256=sha256,
        meta=meta,
    )
