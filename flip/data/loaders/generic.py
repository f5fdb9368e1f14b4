"""Datasets in no particular benchmark's layout: flip's own formats, image folders, CSV and JSONL tables.

- ``flip``: anything `flip.data.formats.read_dataset` reads (imagefolder + metadata.jsonl, Parquet
  with image bytes, webdataset shards), including the synthetic world's output.
- ``imagefolder``: the Hugging Face ``imagefolder`` conventions: a folder with ``metadata.jsonl``
  (read as ``flip``) or ``metadata.csv``, or, without metadata, one sub-folder per class
  (``root/<class>/*.jpg`` -> ``extra["label"] = "<class>"``). `split` picks ``root/<split>/``.
- ``csv`` / ``jsonl``: a table with one row per image: an image column (``file_name``, or one of
  image/path/file/filename) relative to the table's folder (or `image_root`), and any
  `FaceRecord` fields as columns; other columns go to ``extra``. In CSV, text is converted to each
  field's type: booleans from true/false/1/0/yes/no, empty cells to None, ``faces`` and ``names``
  from JSON. A value of the wrong type is a bad label reported with its line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from flip.data.formats import (
    FIELD_KINDS,
    METADATA_FILE,
    DataError,
    ErrorPolicy,
    iter_dataset,
    list_splits,
    resolve_dataset,
    row_to_record,
)
from flip.data.loaders._common import (
    find_images,
    first_column,
    is_image,
    parse_bool,
    read_csv_rows,
    read_jsonl_rows,
    readable_images,
    register_loader,
    resolve_image,
)
from flip.data.records import FaceRecord

IMAGE_COLUMNS = ("file_name", "image", "path", "file", "filename", "image_path")
METADATA_CSV = "metadata.csv"


def _detect_flip(path: Path) -> bool:
    try:
        resolve_dataset(path)
    except ValueError:  # a root with several splits is still flip's layout
        return path.is_dir() and bool(list_splits(path))
    except OSError:
        return False
    return True


@register_loader("flip", _detect_flip, "flip's formats: imagefolder+metadata.jsonl, Parquet with images, tar shards")
def read_flip(source: Path, split: str | None, policy: ErrorPolicy, check_images: bool,
              format: str | None = None) -> Iterator[FaceRecord]:
    """Records written by `flip.data.formats.write_dataset` (or any dataset in those layouts)."""
    yield from iter_dataset(source, format, split, policy, check_images)


def _detect_imagefolder(path: Path) -> bool:
    return path.is_dir() and ((path / METADATA_CSV).is_file() or any(is_image(p) for p in path.rglob("*")))


@register_loader("imagefolder", _detect_imagefolder,
                 "a folder of images: metadata.jsonl / metadata.csv (Hugging Face imagefolder) or class sub-folders")
def read_imagefolder(source: Path, split: str | None, policy: ErrorPolicy, check_images: bool) -> Iterator[FaceRecord]:
    """An image folder's records (see the module docstring)."""
    folder = source / split if split else source
    if not folder.is_dir():
        raise FileNotFoundError(f"no image folder at {folder}")
    if (folder / METADATA_FILE).is_file():
        yield from iter_dataset(folder, "imagefolder", None, policy, check_images)
    elif (folder / METADATA_CSV).is_file():
        yield from _read_table(folder / METADATA_CSV, policy, check_images, folder)
    else:
        for path in readable_images(find_images(folder), policy, check_images):
            relative = path.relative_to(folder)
            extra = {"label": relative.parts[0]} if len(relative.parts) > 1 else {}
            yield FaceRecord(file_name=relative.as_posix(), image=str(path), extra=extra)


@register_loader("csv", lambda p: p.is_file() and p.suffix.lower() == ".csv",
                 "a CSV table: file_name (or image/path/file) + record fields, images beside it")
def read_csv_table(source: Path, split: str | None, policy: ErrorPolicy, check_images: bool,
                   image_root: str | Path | None = None) -> Iterator[FaceRecord]:
    """A CSV table's records; images relative to the CSV's folder unless `image_root` is given."""
    _no_split(source, split)
    yield from _read_table(source, policy, check_images, Path(image_root) if image_root else source.parent)


@register_loader("jsonl", lambda p: p.is_file() and p.suffix.lower() == ".jsonl",
                 "a JSON Lines table: file_name (or image/path/file) + record fields, images beside it")
def read_jsonl_table(source: Path, split: str | None, policy: ErrorPolicy, check_images: bool,
                     image_root: str | Path | None = None) -> Iterator[FaceRecord]:
    """A JSON Lines table's records (values keep their JSON types)."""
    _no_split(source, split)
    yield from _read_table(source, policy, check_images, Path(image_root) if image_root else source.parent)


def _no_split(source: Path, split: str | None) -> None:
    if split is not None:
        raise ValueError(f"split={split!r}: {source} is a single table; it has no splits")
    if not source.is_file():
        raise FileNotFoundError(f"no table at {source}")


def csv_value(name: str, text: str):
    """A record field's value from CSV text, by the field's kind."""
    kind = FIELD_KINDS.get(name)
    if text == "":
        return None
    if kind == "bool":
        try:
            return parse_bool(text)
        except ValueError as e:
            raise ValueError(f"field {name!r}: {e}") from None
    if kind in ("faces", "strlist"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"field {name!r} must be JSON, got {text!r} ({e})") from None
    return text


def _table_rows(path: Path, policy: ErrorPolicy) -> Iterator[tuple[str, dict]]:
    if path.suffix.lower() == ".csv":
        for line, row in read_csv_rows(path, (), policy):
            try:
                converted = {key: csv_value(key, text) if key in FIELD_KINDS else text for key, text in row.items()}
            except ValueError as e:
                policy.handle(DataError(str(e), path, f"line {line}"))
                continue
            yield f"line {line}", converted
        return
    for line_no, row in read_jsonl_rows(path, policy):
        yield f"line {line_no}", row


def _read_table(path: Path, policy: ErrorPolicy, check_images: bool, images: Path) -> Iterator[FaceRecord]:
    for where, row in _table_rows(path, policy):
        try:
            column = first_column(row, IMAGE_COLUMNS)
            if column is None:
                raise ValueError(f"missing column 'file_name' (or one of {IMAGE_COLUMNS}); columns found: {list(row)}")
            name = row.pop(column)
            if not isinstance(name, str) or not name:
                raise ValueError(f"column {column!r} must be a non-empty path, got {name!r}")
            image = resolve_image(images, name, check_images)
            record = row_to_record({**row, "file_name": name}, image)
        except (ValueError, OSError) as e:
            policy.handle(DataError(str(e), path, where))
            continue
        yield record
