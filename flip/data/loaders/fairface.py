"""FairFace (Kärkkäinen & Joo, 2021): faces balanced over seven race groups, with gender and age.

Layout, as published::

    root/fairface_label_train.csv   file,age,gender,race,service_test
    root/fairface_label_val.csv     e.g. "train/1.jpg,50-59,Male,East Asian,True"
    root/train/1.jpg, root/val/1.jpg  (image paths are relative to the CSV's folder)

Every label is checked against FairFace's sets (`RACES`, `GENDERS`, `AGES`); any other value is a
bad label reported with its line. The labels go into ``extra`` as they are (``age``, ``gender``,
``race``, ``service_test`` as a bool); ``age_group`` is set where the FairFace age range lies in
one of flip's groups (see `flip.data.loaders._common.AGE_GROUP_YEARS`): 0-2 and 3-9 -> child,
20-29 and 30-39 -> young adult, 40-49 and 50-59 -> middle-aged, 60-69 and "more than 70" ->
senior, 10-19 -> None (it straddles child and young adult).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from flip.data.formats import DataError, ErrorPolicy
from flip.data.loaders._common import age_range_to_group, parse_bool, read_csv_rows, register_loader, resolve_image
from flip.data.records import FaceRecord

RACES = ("White", "Black", "Latino_Hispanic", "East Asian", "Southeast Asian", "Indian", "Middle Eastern")
GENDERS = ("Male", "Female")
AGES = ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70")
COLUMNS = ("file", "age", "gender", "race")  # service_test is optional
SPLIT_FILES = {"train": "fairface_label_train.csv", "val": "fairface_label_val.csv"}


def _age_group(age: str) -> str | None:
    if age == "more than 70":
        return "senior"
    low, high = (int(v) for v in age.split("-"))
    return age_range_to_group(low, high)


def _csv_files(source: Path, split: str | None) -> list[Path]:
    if source.is_file():
        if split is not None:
            raise ValueError(f"split={split!r} needs the FairFace folder, but {source} is a file")
        return [source]
    if split is not None:
        if split not in SPLIT_FILES:
            raise ValueError(f"FairFace split must be one of {sorted(SPLIT_FILES)}, got {split!r}")
        path = source / SPLIT_FILES[split]
        if not path.is_file():
            raise FileNotFoundError(f"{source}: no {SPLIT_FILES[split]}")
        return [path]
    files = [source / name for name in SPLIT_FILES.values() if (source / name).is_file()]
    if not files:
        raise FileNotFoundError(f"{source}: no FairFace label file ({', '.join(SPLIT_FILES.values())})")
    return files


def _detect(path: Path) -> bool:
    if path.is_file():
        return path.name.startswith("fairface_label") and path.suffix == ".csv"
    return any((path / name).is_file() for name in SPLIT_FILES.values())


@register_loader("fairface", _detect, "FairFace: fairface_label_{train,val}.csv (race 7, gender 2, age 9) + images")
def read_fairface(source: Path, split: str | None, policy: ErrorPolicy, check_images: bool,
                  image_root: str | Path | None = None) -> Iterator[FaceRecord]:
    """FairFace's records from its label CSVs (both, or the `split`'s); images relative to the CSV's
    folder unless `image_root` is given."""
    for csv_file in _csv_files(source, split):
        images = Path(image_root) if image_root else csv_file.parent
        for line, row in read_csv_rows(csv_file, COLUMNS, policy):
            try:
                for column, allowed in (("age", AGES), ("gender", GENDERS), ("race", RACES)):
                    if row[column] not in allowed:
                        raise ValueError(f"bad {column} {row[column]!r}; FairFace's are {list(allowed)}")
                service_test = parse_bool(row["service_test"]) if "service_test" in row else None
                image = resolve_image(images, row["file"], check_images)
            except (ValueError, OSError) as e:
                policy.handle(DataError(str(e), csv_file, f"line {line}"))
                continue
            extra = {"age": row["age"], "gender": row["gender"], "race": row["race"]}
            if service_test is not None:
                extra["service_test"] = service_test
            yield FaceRecord(file_name=row["file"], image=image, age_group=_age_group(row["age"]), extra=extra)
