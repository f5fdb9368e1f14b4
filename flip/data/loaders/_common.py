"""What the dataset readers share: the registry entry, row-numbered CSV reading, image checks, ages.

A reader is a generator function ``read(source, split, policy, check_images, **options)`` yielding
`FaceRecord`s. It hands every problem with a row to ``policy.handle(DataError(...))`` and moves on:
the policy raises (``on_error="raise"``) or records it (``"skip"``), so a reader never decides alone
to drop a row.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from flip.data.formats import IMAGE_EXTENSIONS, DataError, ErrorPolicy, check_image


@dataclass(frozen=True)
class Loader:
    """A registered dataset reader: its name, reader, layout detector and a one-line description."""

    name: str
    read: Callable[..., Iterator]
    detect: Callable[[Path], bool] | None
    help: str


#: name -> Loader, in registration order (the order `dataset="auto"` tries them)
LOADERS: dict[str, Loader] = {}


def register_loader(name: str, detect: Callable[[Path], bool] | None = None, help: str = ""):
    """Register a reader under `name`; `detect(path)` says whether a path looks like this dataset."""

    def wrap(read):
        if name in LOADERS:
            raise ValueError(f"a loader named {name!r} is already registered")
        LOADERS[name] = Loader(name, read, detect, help)
        return read

    return wrap


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def find_images(folder: Path) -> list[Path]:
    """Every image file under `folder` (recursively), in a stable order."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_image(p))


def readable_images(paths: Iterable[Path], policy: ErrorPolicy, check: bool) -> Iterator[Path]:
    """`paths` in order, leaving out (through `policy`) those that are not readable images when `check`
    (header and checksums: `flip.data.formats.check_image`)."""
    for path in paths:
        if check:
            try:
                check_image(path)
            except (ValueError, OSError) as e:
                policy.handle(DataError(str(e), path))
                continue
        yield path


def resolve_image(root: Path, relative: str, check: bool) -> str:
    """The absolute path of `relative` under `root` as a string; ValueError when missing or unreadable."""
    if not relative:
        raise ValueError("empty image path")
    path = Path(relative)
    path = path if path.is_absolute() else root / path
    if not path.is_file():
        raise ValueError(f"image file not found: {path}")
    if check:
        check_image(path)
    return str(path)


def read_jsonl_rows(file: Path, policy: ErrorPolicy) -> Iterator[tuple[int, dict]]:
    """(line number, object) of a JSON Lines file; blank lines are skipped, a line that is not a JSON
    object is reported through `policy` with its number."""
    with open(file, encoding="utf-8") as lines:
        for line_no, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError(f"expected a JSON object, got {type(row).__name__}")
            except ValueError as e:
                policy.handle(DataError(str(e), file, f"line {line_no}"))
                continue
            yield line_no, row


def read_csv_rows(file: Path, required: tuple[str, ...], policy: ErrorPolicy,
                  delimiter: str = ",") -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of a CSV with a header; a missing required column is reported once for the file.

    Column names are stripped of spaces; a row with the wrong number of fields is reported.
    """
    with open(file, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            policy.handle(DataError("empty file, expected a header line", file, "line 1"))
            return
        header = [h.strip() for h in header]
        missing = [c for c in required if c not in header]
        if missing:
            policy.handle(DataError(f"missing column(s) {missing}; columns found: {header}", file, "line 1"))
            return
        for values in reader:
            line = reader.line_num
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(header):
                policy.handle(DataError(f"expected {len(header)} fields ({', '.join(header)}), got {len(values)}",
                                        file, f"line {line}"))
                continue
            yield line, {h: v.strip() for h, v in zip(header, values)}


def first_column(columns, candidates: tuple[str, ...]) -> str | None:
    """The first of `candidates` present in `columns` (exact name first, then case-insensitive)."""
    columns = list(columns)
    for name in candidates:
        if name in columns:
            return name
    lowered = {c.lower(): c for c in columns}
    for name in candidates:
        if name.lower() in lowered:
            return lowered[name.lower()]
    return None


_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


def parse_bool(text: str) -> bool | None:
    """A boolean from CSV text: true/false, 1/0, yes/no (any case); empty -> None; else ValueError."""
    value = text.strip().lower()
    if value == "":
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"expected true/false, got {text!r}")


# --------------------------------------------------------------------------- ages

#: flip's age groups (as `flip.data.synthetic.attributes.AGE_GROUPS`) and the years each covers.
#: 13-17 belongs to none of them: teenagers are neither the child nor the young adult that flip draws.
AGE_GROUP_YEARS = {"child": (0, 12), "young adult": (18, 39), "middle-aged": (40, 59), "senior": (60, 200)}


def age_to_group(age: int) -> str | None:
    """flip's age group for an age in years, or None for 13-17 (see `AGE_GROUP_YEARS`)."""
    for group, (low, high) in AGE_GROUP_YEARS.items():
        if low <= age <= high:
            return group
    return None


def age_range_to_group(low: int, high: int) -> str | None:
    """flip's age group when the whole range [low, high] lies in one group, else None."""
    group = age_to_group(low)
    return group if group is not None and group == age_to_group(high) else None
