"""LFW, Labeled Faces in the Wild (Huang et al., 2007): 13,233 photos of 5,749 named people.

Layout, as published::

    root/lfw/<Name>/<Name>_0001.jpg     (or lfw_funneled/, lfw-deepfunneled/, or root itself)
    root/pairs.txt                      line 1 "10 300": 10 folds of 300 matched + 300 mismatched;
                                        matched "Name  n1  n2", mismatched "Name1  n1  Name2  n2"
    root/pairsDevTrain.txt, pairsDevTest.txt   line 1 "1100": one fold
    root/peopleDevTrain.txt, peopleDevTest.txt line 1 a count, then "Name  number-of-images"

Records: ``identity`` is the folder name (``George_W_Bush``), ``name`` the same with spaces
(``George W Bush``), ``extra["image_number"]`` the photo's number. A file not named after its
folder (``<Name>_<4 digits>``) is a bad label. ``split="train"|"test"`` keeps the people of
peopleDevTrain.txt / peopleDevTest.txt. Verification pairs are not records: `load_lfw_pairs` reads them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from flip.data.formats import DataError, ErrorPolicy, LoadReport, check_image
from flip.data.loaders._common import is_image, register_loader
from flip.data.records import FaceRecord

IMAGE_FOLDERS = ("lfw", "lfw_funneled", "lfw-deepfunneled")
PEOPLE_FILES = {"train": "peopleDevTrain.txt", "test": "peopleDevTest.txt"}
_FILE = re.compile(r"^(.+)_(\d{4})$")


def image_folder(root: Path) -> Path:
    """The folder holding the <Name>/ folders: root/lfw (or a funneled variant), else root."""
    for name in IMAGE_FOLDERS:
        if (root / name).is_dir():
            return root / name
    return root


def image_path(folder: Path, name: str, number: int) -> Path:
    return folder / name / f"{name}_{number:04d}.jpg"


def _detect(path: Path) -> bool:
    if not path.is_dir():
        return False
    if (path / "pairs.txt").is_file() or any((path / n).is_dir() for n in IMAGE_FOLDERS):
        return True
    people = [p for p in sorted(path.iterdir())[:20] if p.is_dir()]
    return bool(people) and all(_has_named_image(p) for p in people)


def _has_named_image(person: Path) -> bool:
    return any(f.stem.startswith(person.name + "_") for f in person.iterdir() if is_image(f))


def _people(root: Path, split: str, policy: ErrorPolicy) -> set[str]:
    if split not in PEOPLE_FILES:
        raise ValueError(f"LFW split must be one of {sorted(PEOPLE_FILES)}, got {split!r}")
    path = root / PEOPLE_FILES[split]
    if not path.is_file():
        raise FileNotFoundError(f"{root}: split={split!r} needs {PEOPLE_FILES[split]}")
    people = set()
    with open(path, encoding="utf-8") as lines:
        for line_no, line in enumerate(lines, start=1):
            parts = line.split()
            if line_no == 1 or not parts:
                continue
            if len(parts) != 2 or not parts[1].isdigit():
                policy.handle(DataError(f"expected 'Name count', got {line.strip()!r}", path, f"line {line_no}"))
                continue
            people.add(parts[0])
    return people


@register_loader("lfw", _detect, "LFW: lfw/<Name>/<Name>_0001.jpg folders by name (pairs: load_lfw_pairs)")
def read_lfw(root: Path, split: str | None, policy: ErrorPolicy, check_images: bool) -> Iterator[FaceRecord]:
    """LFW's photos, one record each, in name order."""
    folder = image_folder(root)
    people = _people(root, split, policy) if split is not None else None
    for person in sorted(p for p in folder.iterdir() if p.is_dir()):
        if people is not None and person.name not in people:
            continue
        for path in sorted(f for f in person.iterdir() if f.is_file() and is_image(f)):
            try:
                match = _FILE.match(path.stem)
                if match is None or match.group(1) != person.name:
                    raise ValueError(f"file {path.name!r} is not named {person.name}_<4 digits> after its folder")
                if check_images:
                    check_image(path)
            except (ValueError, OSError) as e:
                policy.handle(DataError(str(e), path))
                continue
            yield FaceRecord(file_name=f"{person.name}/{path.name}", image=str(path), identity=person.name,
                             name=person.name.replace("_", " "), extra={"image_number": int(match.group(2))})


@dataclass(frozen=True)
class LFWPair:
    """One verification pair: two image paths, whether they show the same person, and its fold."""

    image_a: str
    image_b: str
    same: bool
    fold: int
    name_a: str
    name_b: str


def load_lfw_pairs(pairs_file: str | Path, image_root: str | Path | None = None, *, on_error: str = "raise",
                   report: LoadReport | None = None, check_images: bool = False) -> list[LFWPair]:
    """The pairs of an LFW pairs list (pairs.txt, pairsDevTrain.txt, pairsDevTest.txt).

    Images are looked up under `image_root` (default: the lfw/ folder beside the pairs file); a pair
    whose image is missing, a malformed line, and a header whose counts disagree with the lines are
    reported with the line (raised, or skipped into `report` with on_error="skip").
    """
    pairs_file = Path(pairs_file)
    if not pairs_file.is_file():
        raise FileNotFoundError(f"no LFW pairs file at {pairs_file}")
    policy = ErrorPolicy(on_error, report)
    before = len(policy.report)
    folder = Path(image_root) if image_root else image_folder(pairs_file.parent)
    with open(pairs_file, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    header = lines[0].split() if lines else []
    if not header or len(header) > 2 or not all(h.isdigit() for h in header):
        raise ValueError(f"{pairs_file}, line 1: expected 'folds pairs-per-fold' (e.g. '10 300') or a count, "
                         f"got {lines[0] if lines else ''!r}")
    folds, per_fold = (int(header[0]), int(header[1])) if len(header) == 2 else (1, int(header[0]))
    pairs, index = [], 0
    for line_no, line in enumerate(lines[1:], start=2):
        parts = line.split()
        if not parts:
            continue
        fold = index // (2 * per_fold) if per_fold else 0
        index += 1
        try:
            if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                a, b = (parts[0], int(parts[1])), (parts[0], int(parts[2]))
            elif len(parts) == 4 and parts[1].isdigit() and parts[3].isdigit():
                a, b = (parts[0], int(parts[1])), (parts[2], int(parts[3]))
            else:
                raise ValueError(f"expected 'Name n1 n2' or 'Name1 n1 Name2 n2', got {line.strip()!r}")
            paths = [image_path(folder, name, number) for name, number in (a, b)]
            for path in paths:
                if not path.is_file():
                    raise ValueError(f"image file not found: {path}")
                if check_images:
                    check_image(path)
        except (ValueError, OSError) as e:
            policy.handle(DataError(str(e), pairs_file, f"line {line_no}"))
            continue
        pairs.append(LFWPair(str(paths[0]), str(paths[1]), a[0] == b[0], fold, a[0], b[0]))
    if index != folds * 2 * per_fold:
        policy.handle(DataError(f"header says {folds} fold(s) of {per_fold} matched + {per_fold} mismatched pairs "
                                f"({folds * 2 * per_fold}), but the file lists {index}", pairs_file, "line 1"))
    if len(policy.report) > before:
        import warnings

        warnings.warn(f"load_lfw_pairs({str(pairs_file)!r}): skipped {len(policy.report) - before} problem(s), "
                      f"first: {policy.report.problems[before]}", stacklevel=2)
    return pairs
