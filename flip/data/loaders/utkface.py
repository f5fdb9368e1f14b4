"""UTKFace (Zhang et al., 2017): faces labelled by age, gender and race in their file names.

Layout, as published: a folder (searched recursively, e.g. ``part1/``, ``part2/``) of images named
``[age]_[gender]_[race]_[date&time].jpg`` (the aligned-and-cropped set appends ``.chip.jpg``):

- age: an integer, 0 to 116;
- gender: 0 male, 1 female;
- race: 0 White, 1 Black, 2 Asian, 3 Indian, 4 Others.

A few files of the published set miss a field (e.g. ``61_1_20170109142408075.jpg.chip.jpg``); those
and any other name that does not parse are bad labels, reported with the file. The labels go into
``extra`` (``age`` as an int, ``gender`` and ``race`` as names); ``age_group`` is flip's group for
the age (`flip.data.loaders._common.age_to_group`: 13-17 belongs to none).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from flip.data.formats import DataError, ErrorPolicy, check_image
from flip.data.loaders._common import age_to_group, find_images, register_loader
from flip.data.records import FaceRecord

GENDERS = ("Male", "Female")
RACES = ("White", "Black", "Asian", "Indian", "Others")
MAX_AGE = 116
_NAME = re.compile(r"^(\d+)_(\d+)_(\d+)_(\d+)")


def parse_name(name: str) -> tuple[int, str, str]:
    """(age, gender, race) from a UTKFace file name; ValueError naming what is wrong."""
    match = _NAME.match(name)
    if match is None:
        raise ValueError(f"file name {name!r} is not [age]_[gender]_[race]_[date&time].jpg")
    age, gender, race = (int(g) for g in match.groups()[:3])
    if age > MAX_AGE:
        raise ValueError(f"file name {name!r}: age {age} is over {MAX_AGE}")
    if gender >= len(GENDERS):
        raise ValueError(f"file name {name!r}: gender must be 0 (male) or 1 (female), got {gender}")
    if race >= len(RACES):
        raise ValueError(f"file name {name!r}: race must be 0-4 ({', '.join(RACES)}), got {race}")
    return age, GENDERS[gender], RACES[race]


def _detect(path: Path) -> bool:
    if not path.is_dir():
        return False
    names = [p.name for p in find_images(path)[:20]]
    return bool(names) and all(_NAME.match(n) for n in names)


@register_loader("utkface", _detect, "UTKFace: [age]_[gender]_[race]_[date&time].jpg file names")
def read_utkface(source: Path, split: str | None, policy: ErrorPolicy, check_images: bool) -> Iterator[FaceRecord]:
    """UTKFace's records; `split` (if given) is a sub-folder such as part1."""
    folder = source / split if split else source
    if not folder.is_dir():
        raise FileNotFoundError(f"no UTKFace folder at {folder}")
    for path in find_images(folder):
        try:
            age, gender, race = parse_name(path.name)
            if check_images:
                check_image(path)
        except (ValueError, OSError) as e:
            policy.handle(DataError(str(e), path))
            continue
        yield FaceRecord(file_name=path.relative_to(folder).as_posix(), image=str(path), age_group=age_to_group(age),
                         extra={"age": age, "gender": gender, "race": race})
