"""Face anti-spoofing data (OULU-NPU, CASIA-FASD, Replay-Attack, MSU-MFSD, ...) as frames on disk.

These benchmarks ship videos under licences that forbid redistribution, with layouts that differ
from one to the next; what they share once frames are extracted is live versus attack, and the
attack's type. flip reads that in two forms:

1. Folders::

       root[/<split>]/live/**/*.jpg            live=True,  attack=None
       root[/<split>]/attack/<type>/**/*.jpg   live=False, attack=<type>  (e.g. print, replay, mask)
       root[/<split>]/attack/*.jpg             live=False, attack=None    (type unknown)

   ``real`` is read as ``live``; ``spoof`` and ``fake`` as ``attack`` (folder names in any case).
2. A list, CSV with a header or JSON Lines: ``path,label[,attack]``, paths relative to the list's
   folder (or `image_root`). Labels are words: live / real / bonafide / genuine, or attack / spoof /
   fake. Numeric labels mean opposite things in different benchmarks (OULU-NPU's 1 is real, other
   lists use 1 for attack), so they are refused unless `label_map` says what they mean, e.g.
   ``label_map={"1": "live", "0": "attack"}``.

`attack_map` renames attack types (e.g. OULU-NPU's ``{"print1": "print", "replay2": "replay"}``) so
that datasets agree with the categories of a liveness prompt file. A record with live=False and
attack=None is an attack of unknown type.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from flip.data.formats import DataError, ErrorPolicy
from flip.data.loaders._common import (
    find_images,
    first_column,
    is_image,
    read_csv_rows,
    read_jsonl_rows,
    readable_images,
    register_loader,
    resolve_image,
)
from flip.data.records import FaceRecord

LIVE_FOLDERS = ("live", "real")
ATTACK_FOLDERS = ("attack", "spoof", "fake")
LIVE_LABELS = ("live", "real", "bonafide", "bona fide", "bona-fide", "genuine")
ATTACK_LABELS = ("attack", "spoof", "fake")
PATH_COLUMNS = ("path", "file_name", "file", "image", "filename")
ATTACK_COLUMNS = ("attack", "attack_type", "type")


def _class_folders(folder: Path) -> tuple[list[Path], list[Path]]:
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    return ([p for p in subdirs if p.name.lower() in LIVE_FOLDERS],
            [p for p in subdirs if p.name.lower() in ATTACK_FOLDERS])


def _detect(path: Path) -> bool:
    if path.is_file():
        if path.suffix.lower() not in (".csv", ".jsonl"):
            return False
        # a list whose first row has a path and a live/attack word as its label
        with open(path, encoding="utf-8-sig") as handle:
            head, first = handle.readline(), handle.readline()
        try:
            if path.suffix.lower() == ".csv":
                row = dict(zip([c.strip() for c in head.split(",")], [v.strip() for v in first.split(",")]))
            else:
                row = json.loads(head)
            return (first_column(row, PATH_COLUMNS) is not None
                    and str(row.get("label", "")).lower() in LIVE_LABELS + ATTACK_LABELS)
        except (ValueError, TypeError, AttributeError):
            return False
    live, attack = _class_folders(path)
    return bool(live and attack)


def parse_label(value, label_map: dict | None) -> bool:
    """True for live, False for attack; ValueError for anything else."""
    text = str(value).strip()
    if label_map is not None and text in label_map:
        text = str(label_map[text])
    low = text.lower()
    if low in LIVE_LABELS:
        return True
    if low in ATTACK_LABELS:
        return False
    hint = " (numeric labels need label_map=, e.g. {'1': 'live', '0': 'attack'})" if low.lstrip("-").isdigit() else ""
    raise ValueError(f"bad label {value!r}: expected one of {LIVE_LABELS + ATTACK_LABELS}{hint}")


@register_loader("antispoof", _detect, "anti-spoofing frames: live/ and attack/<type>/ folders, or a path,label list")
def read_antispoof(source: Path, split: str | None, policy: ErrorPolicy, check_images: bool,
                   image_root: str | Path | None = None, label_map: dict | None = None,
                   attack_map: dict | None = None) -> Iterator[FaceRecord]:
    """Live and attack records from folders or a list (see the module docstring)."""
    rename = (lambda a: attack_map.get(a, a) if attack_map and a is not None else a)  # noqa: E731
    if source.is_file():
        if split is not None:
            raise ValueError(f"split={split!r} needs a folder, but {source} is a list file")
        yield from _read_list(source, policy, check_images, Path(image_root) if image_root else source.parent,
                              label_map, rename)
        return
    folder = source / split if split else source
    live_dirs, attack_dirs = _class_folders(folder)
    if not live_dirs and not attack_dirs:
        raise FileNotFoundError(f"{folder}: no live/ or attack/ (spoof/) folder")
    for live_dir in live_dirs:
        yield from _read_folder(folder, live_dir, True, None, policy, check_images)
    for attack_dir in attack_dirs:
        for path in sorted(attack_dir.iterdir()):
            if path.is_dir():
                yield from _read_folder(folder, path, False, rename(path.name), policy, check_images)
        loose = sorted(p for p in attack_dir.iterdir() if p.is_file())
        yield from _read_folder(folder, attack_dir, False, None, policy, check_images, loose)


def _read_folder(root: Path, folder: Path, live: bool, attack: str | None, policy: ErrorPolicy, check_images: bool,
                 files: list[Path] | None = None) -> Iterator[FaceRecord]:
    paths = find_images(folder) if files is None else [f for f in files if is_image(f)]
    for path in readable_images(paths, policy, check_images):
        yield FaceRecord(file_name=path.relative_to(root).as_posix(), image=str(path), live=live, attack=attack)


def _list_rows(path: Path, policy: ErrorPolicy) -> Iterator[tuple[str, dict]]:
    rows = read_jsonl_rows(path, policy) if path.suffix.lower() == ".jsonl" else read_csv_rows(path, ("label",), policy)
    for line_no, row in rows:
        yield f"line {line_no}", row


def _read_list(path: Path, policy: ErrorPolicy, check_images: bool, images: Path, label_map, rename):
    for where, row in _list_rows(path, policy):
        try:
            path_column = first_column(row, PATH_COLUMNS)
            if path_column is None:
                raise ValueError(f"missing column 'path' (or one of {PATH_COLUMNS}); columns found: {list(row)}")
            if "label" not in row:
                raise ValueError(f"missing column 'label'; columns found: {list(row)}")
            live = parse_label(row["label"], label_map)
            attack_column = first_column(row, ATTACK_COLUMNS)
            attack = (row.get(attack_column) or None) if attack_column else None
            if live and attack:
                raise ValueError(f"a live image cannot have an attack type ({attack!r})")
            image = resolve_image(images, str(row[path_column]), check_images)
        except (ValueError, OSError) as e:
            policy.handle(DataError(str(e), path, where))
            continue
        yield FaceRecord(file_name=str(row[path_column]), image=image, live=live,
                         attack=None if live else rename(attack))
