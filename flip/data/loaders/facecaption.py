"""FaceCaption-15M (Dai et al., 2024), the data FLIP was trained on, in its two published forms.

1. **The Hub Parquet** (``OpenFace-CQUPT/FaceCaption-15M``, e.g. ``FaceCaption-v2.parquet``): one
   row per face with the image URL, the face box, the original LAION caption and the face caption;
   no pixels (a 1M variant ships images). The dataset card names the contents ("url, face box,
   laion_caption, face_caption") but not the exact columns. Public code that reads
   ``FaceCaption-v2.parquet`` uses ``_id``, ``caption`` (a list holding one string), ``url`` (a string,
   sometimes several URLs joined by ", " or "UNKNOWN"), ``laion_caption`` (a list, possibly empty)
   and ``box`` (a JSON string ``"[x1, y1, x2, y2]"``). As that is not the authors' word, each field
   is looked up among candidate names (`COLUMN_CANDIDATES`, first match wins, exact then any case),
   values are accepted as a string or a list of strings (boxes as a JSON string or a list), and a
   file without any caption column fails with an error listing the columns it has. Records carry
   ``caption``, ``faces=[{"box": box, "name": None}]`` and, in ``extra``, ``id``, ``url`` (as
   found), ``laion_caption`` and any other column. ``image`` is the image bytes when the file has
   an image column, else the file ``image_root / image_name.format(id=...)`` when `image_root` is
   given (e.g. images fetched by id), else None (download the URLs first).
2. **The authors' annotation folders**, which their training code reads::

       ann_root/<part>/*.json    each a JSON list of {"image": path, "image_id": id, "caption": [captions]}
       image_root/...            the images

   All files sorted by path; the last one is the test split and the others train, as in the
   authors' code. Their loader drops the first seven characters of every ``image`` path (a folder
   prefix such as ``images/``) before joining it to ``image_root``; flip tries the path as given and
   then without those seven characters, unless `strip_image_prefix` fixes the number. `image_root`
   defaults to ``ann_root/../images`` when that folder exists (their config's layout), else
   ``ann_root/..``. ``caption`` is the first caption; all of them are in ``extra["captions"]`` when
   there are several. (Their test loader keeps only the first 5,000 items; flip keeps all.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from flip.data.formats import DataError, ErrorPolicy, check_image
from flip.data.loaders._common import first_column, register_loader, resolve_image
from flip.data.records import FaceRecord

#: field -> column names tried in order (exact, then case-insensitive)
COLUMN_CANDIDATES = {
    "caption": ("face_caption", "caption", "facecaption", "face_captions", "captions", "text"),
    "id": ("_id", "id", "image_id", "sample_id", "key"),
    "url": ("url", "image_url", "img_url"),
    "laion_caption": ("laion_caption", "laion_text", "original_caption", "TEXT"),
    "box": ("box", "face_box", "facebox", "face_bbox", "bbox"),
    "image": ("image", "img", "jpg", "image_bytes"),
}
#: characters the authors' loader drops from each annotation's image path
AUTHORS_PREFIX_CHARS = 7
SPLITS = ("train", "test")


def _texts(value: Any, column: str) -> list[str]:
    """A caption cell as a list of strings (a string, a list of strings, or null)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) or v is None for v in value):
        return [v for v in value if v and v.strip()]
    raise ValueError(f"column {column!r} must be a string or a list of strings, got {value!r}")


def parse_box(value: Any) -> list[float] | None:
    """A face box [x0, y0, x1, y1] from a JSON string, a "x0,y0,x1,y1" string or a list; None when empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    box = value
    if isinstance(value, str):
        try:
            box = json.loads(value)
        except json.JSONDecodeError:
            box = value.strip("[]() ").split(",")
    try:
        box = [float(v) for v in box]
    except (TypeError, ValueError):
        raise ValueError(f"bad face box {value!r}: expected 4 numbers [x0, y0, x1, y1]") from None
    if len(box) != 4 or not (box[0] < box[2] and box[1] < box[3]):
        raise ValueError(f"bad face box {value!r}: expected [x0, y0, x1, y1] with x0 < x1 and y0 < y1")
    return box


def _is_annotation_root(path: Path) -> bool:
    return path.is_dir() and next(path.glob("*/*.json"), None) is not None


def _is_facecaption_parquet(path: Path) -> bool:
    files = [path] if path.is_file() else sorted(path.glob("*.parquet")) if path.is_dir() else []
    if not files or files[0].suffix != ".parquet":
        return False
    import pyarrow.parquet as pq

    columns = pq.read_schema(files[0]).names
    return (first_column(columns, COLUMN_CANDIDATES["caption"]) is not None
            and first_column(columns, COLUMN_CANDIDATES["url"] + COLUMN_CANDIDATES["box"]) is not None
            and "file_name" not in columns)


def _detect(path: Path) -> bool:
    return _is_annotation_root(path) or _is_facecaption_parquet(path)


@register_loader("facecaption", _detect,
                 "FaceCaption-15M: its Parquet (url, face box, captions) or ann_root/<part>/*.json + image_root")
def read_facecaption(source: Path, split: str | None, policy: ErrorPolicy, check_images: bool,
                     image_root: str | Path | None = None, image_name: str = "{id}.jpg",
                     strip_image_prefix: int | None = None) -> Iterator[FaceRecord]:
    """FaceCaption-15M records from its Parquet file(s) or the authors' annotation folders."""
    if (source.is_file() and source.suffix == ".parquet") or (source.is_dir() and next(source.glob("*.parquet"), None)):
        if split not in (None, "train"):
            raise ValueError(f"the FaceCaption-15M Parquet has one split, 'train'; got split={split!r}")
        files = [source] if source.is_file() else sorted(source.glob("*.parquet"))
        yield from _read_parquet(files, policy, check_images, Path(image_root) if image_root else None, image_name)
        return
    if not _is_annotation_root(source):
        raise FileNotFoundError(f"{source}: neither FaceCaption-15M Parquet nor annotation folders "
                                "(ann_root/<part>/*.json)")
    if split is not None and split not in SPLITS:
        raise ValueError(f"FaceCaption-15M annotation split must be 'train' or 'test', got {split!r}")
    files = sorted(source.glob("*/*.json"))
    files = {"train": files[:-1], "test": files[-1:], None: files}[split]
    if image_root is None:
        image_root = source.parent / "images" if (source.parent / "images").is_dir() else source.parent
    yield from _read_annotations(files, policy, check_images, Path(image_root), strip_image_prefix)


def _read_parquet(files: list[Path], policy: ErrorPolicy, check_images: bool, image_root: Path | None,
                  image_name: str) -> Iterator[FaceRecord]:
    import pyarrow.parquet as pq

    for file in files:
        parquet = pq.ParquetFile(file)
        names = parquet.schema_arrow.names
        columns = {field: first_column(names, candidates) for field, candidates in COLUMN_CANDIDATES.items()}
        if columns["caption"] is None:
            policy.handle(DataError(f"missing a caption column (one of {COLUMN_CANDIDATES['caption']}); "
                                    f"columns found: {names}", file))
            continue
        renamed = {column: field for field, column in columns.items() if column is not None}
        row_no = 0
        for batch in parquet.iter_batches(batch_size=1024):
            for row in batch.to_pylist():
                row_no += 1
                try:
                    record = _parquet_record(row, renamed, image_root, image_name, check_images)
                except (ValueError, OSError) as e:
                    policy.handle(DataError(str(e), file, row_no))
                    continue
                yield record


def _parquet_record(row: dict, renamed: dict, image_root: Path | None, image_name: str,
                    check_images: bool) -> FaceRecord:
    fields = {renamed.get(column, column): value for column, value in row.items()}
    captions = _texts(fields.pop("caption"), "caption")
    if not captions:
        raise ValueError("empty caption")
    laion = _texts(fields.pop("laion_caption", None), "laion_caption")
    box = parse_box(fields.pop("box", None))
    image = fields.pop("image", None)
    if isinstance(image, dict):
        image = image.get("bytes")
    if image is not None:
        if not isinstance(image, (bytes, bytearray)):
            raise ValueError(f"image column must hold bytes or an {{bytes, path}} struct, got {type(image).__name__}")
        if check_images:
            check_image(bytes(image))
    elif image_root is not None:
        try:
            name = image_name.format(**{**fields, "id": fields.get("id")})
        except (KeyError, IndexError) as e:
            raise ValueError(f"image_name {image_name!r} names {e}, which is not a column") from None
        image = resolve_image(image_root, name, check_images)
    extra = {k: v for k, v in fields.items() if v is not None}
    extra["laion_caption"] = laion[0] if laion else None
    if len(captions) > 1:
        extra["captions"] = captions
    file_name = None if fields.get("id") is None else str(fields["id"])
    return FaceRecord(file_name=file_name, image=image, caption=captions[0],
                      faces=None if box is None else [{"box": box, "name": None}], extra=extra)


def _annotation_image(image_root: Path, path: str, strip: int | None, check_images: bool) -> tuple[str, str]:
    """(image path, file_name) for an annotation's image path, per the authors' prefix convention."""
    tries = [path[strip:]] if strip is not None else [path, path[AUTHORS_PREFIX_CHARS:]]
    for relative in tries:
        if relative and (image_root / relative).is_file():
            return resolve_image(image_root, relative, check_images), relative
    raise ValueError(f"image file not found: {image_root / tries[0]}"
                     + (f" (nor {image_root / tries[1]})" if len(tries) > 1 else ""))


def _read_annotations(files: list[Path], policy: ErrorPolicy, check_images: bool, image_root: Path,
                      strip: int | None) -> Iterator[FaceRecord]:
    for file in files:
        try:
            with open(file, encoding="utf-8") as handle:
                items = json.load(handle)
            if not isinstance(items, list):
                raise ValueError(f"expected a JSON list of annotations, got {type(items).__name__}")
        except (ValueError, OSError) as e:
            policy.handle(DataError(f"unreadable annotation file: {e}", file))
            continue
        for index, item in enumerate(items):
            try:
                if not isinstance(item, dict):
                    raise ValueError(f"expected an object, got {item!r}")
                missing = [k for k in ("image", "caption") if k not in item]
                if missing:
                    raise ValueError(f"missing key(s) {missing}; keys found: {sorted(item)}")
                if not isinstance(item["image"], str):
                    raise ValueError(f"'image' must be a path string, got {item['image']!r}")
                captions = _texts(item["caption"], "caption")
                if not captions:
                    raise ValueError("empty caption")
                image, file_name = _annotation_image(image_root, item["image"], strip, check_images)
            except (ValueError, OSError) as e:
                policy.handle(DataError(str(e), file, f"item {index}"))
                continue
            extra = {k: v for k, v in item.items() if k not in ("image", "caption")}
            if len(captions) > 1:
                extra["captions"] = captions
            yield FaceRecord(file_name=file_name, image=image, caption=captions[0], extra=extra)
