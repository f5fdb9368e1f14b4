"""The three on-disk formats that the synthetic world writes and the loaders read.

Every format stores the same record fields (`flip.data.records.FaceRecord`), so that a dataset can
move between them without losing a label:

- ``imagefolder``: ``DIR/<split>/metadata.jsonl`` plus the image files beside it. This is the
  Hugging Face ``imagefolder`` convention: one JSON object per line, ``file_name`` relative to the
  folder, every other key a column. ``datasets.load_dataset("imagefolder", data_dir=DIR)`` reads it.
- ``parquet``: ``DIR/<split>.parquet`` (or ``DIR/<split>/part-%05d.parquet`` with
  ``rows_per_file``), written with pyarrow in row groups. The ``image`` column is a struct
  ``{bytes: binary, path: string}``, the layout of the Hugging Face ``datasets.Image`` feature; the
  record fields are typed columns (``faces`` is ``list<struct<box: list<double>, name: string>>``).
- ``webdataset``: tar shards ``DIR/<split>/shard-%05d.tar``; each sample is ``<key>.<png|jpg>``
  plus ``<key>.json`` holding the record fields (the webdataset convention: members of one sample
  share the key, the part of the base name before its first dot).

Design choices:
- Writing streams: records are consumed one at a time, never held in memory together.
- Reading returns records whose ``image`` is the encoded file **bytes** (PNG/JPEG), never a decoded
  array, so that reading a dataset is cheap and the caller decides when and how to decode
  (`decode_image` turns bytes, a path or a PIL image into an RGB PIL image).
- Labels keep their types in every format: bools stay bools, None stays None, ``faces``/``names``
  stay lists. Face boxes are stored as floats (``[x0, y0, x1, y1]`` in pixels) in all three formats,
  so a record reads back identically whichever format it went through.
- ``extra`` (a source's own fields) is a JSON object in ``metadata.jsonl`` and in the shards' JSON,
  and a JSON string column in Parquet (its keys differ from source to source, which a fixed Parquet
  schema cannot hold). It is left out when empty.
- The column types are derived from `FaceRecord`'s annotations, so a field added there is carried
  by every format or fails loudly here.
- Output is byte-for-byte deterministic for the same records: tar members carry mtime 0 and no
  owner, PNG encoding is deterministic, and nothing records the time of writing.

Errors: a bad row is reported as a `DataError` naming the file and the row. Readers take
``on_error="raise"`` (stop at the first problem) or ``"skip"`` (collect the problem in a
`LoadReport`, warn with the count at the end). Nothing is dropped silently.
"""

from __future__ import annotations

import io
import json
import math
import tarfile
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Iterator

from flip.data.records import FaceRecord

FORMATS = ("imagefolder", "parquet", "webdataset")
METADATA_FILE = "metadata.jsonl"
#: image extensions recognised when reading (the first of each group is the one written)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
_WRITE_EXT = {"png": ".png", "jpg": ".jpg", "jpeg": ".jpg"}
_PIL_FORMAT = {".png": "PNG", ".jpg": "JPEG"}


def _field_kinds() -> dict[str, str]:
    """FaceRecord field -> "str" | "bool" | "faces" | "strlist", from the dataclass annotations."""
    by_annotation = {"str | None": "str", "bool | None": "bool", "list[dict] | None": "faces",
                     "list[str] | None": "strlist"}
    kinds = {}
    for f in fields(FaceRecord):
        if f.name in ("image", "extra"):
            continue
        annotation = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        if annotation not in by_annotation:
            raise TypeError(f"flip.data.formats does not know how to store FaceRecord.{f.name}: {annotation}")
        kinds[f.name] = by_annotation[annotation]
    return kinds


#: every stored label field, in FaceRecord order, and its kind
FIELD_KINDS: dict[str, str] = _field_kinds()


# --------------------------------------------------------------------------- errors and reports


class DataError(ValueError):
    """A problem with one row of a data file; the message names the file and the row."""

    def __init__(self, message: str, file: str | Path | None = None, row: int | str | None = None):
        self.message, self.file, self.row = message, None if file is None else str(file), row
        where = ", ".join(p for p in (self.file, None if row is None else _where(row)) if p)
        super().__init__(f"{where}: {message}" if where else message)


def _where(row: int | str) -> str:
    return f"row {row}" if isinstance(row, int) else str(row)


@dataclass
class LoadReport:
    """The problems met while reading with ``on_error="skip"``: print it, or inspect ``problems``."""

    problems: list[DataError] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.problems)

    def __str__(self) -> str:
        if not self.problems:
            return "no problems"
        return "\n".join([f"{len(self.problems)} skipped:"] + [f"  {p}" for p in self.problems])


class ErrorPolicy:
    """What a reader does with a bad row: raise it, or skip it and record it in `report`."""

    def __init__(self, on_error: str = "raise", report: LoadReport | None = None):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.on_error = on_error
        self.report = LoadReport() if report is None else report

    def handle(self, error: DataError) -> None:
        if self.on_error == "raise":
            raise error
        self.report.problems.append(error)

    def run(self, records: Iterator[FaceRecord], what: str) -> Iterator[FaceRecord]:
        """Yield `records`; at the end, warn once with the number of rows skipped."""
        before = len(self.report)
        yield from records
        skipped = len(self.report) - before
        if skipped:
            first = self.report.problems[before]
            warnings.warn(f"{what}: skipped {skipped} bad row(s), first: {first}. "
                          "Pass a LoadReport as report= to see them all.", stacklevel=2)


# --------------------------------------------------------------------------- record <-> row


def _check_value(name: str, kind: str, value: Any) -> Any:
    """Return `value` in its stored form, or raise ValueError naming the field."""
    if value is None:
        return None
    if kind == "str":
        if not isinstance(value, str):
            raise ValueError(f"field {name!r} must be a string or null, got {value!r}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"field {name!r} must be true, false or null, got {value!r}")
        return value
    if kind == "strlist":
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"field {name!r} must be a list of strings or null, got {value!r}")
        return list(value)
    # faces: [{"box": [x0, y0, x1, y1], "name": str | None}]
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"field 'faces' must be a list of {{box, name}} objects or null, got {value!r}")
    faces = []
    for i, face in enumerate(value):
        if not isinstance(face, dict) or set(face) - {"box", "name"} or "box" not in face:
            raise ValueError(f"faces[{i}] must be an object with keys 'box' and 'name', got {face!r}")
        box, face_name = face["box"], face.get("name")
        if (not isinstance(box, (list, tuple)) or len(box) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box)):
            raise ValueError(f"faces[{i}].box must be 4 finite numbers [x0, y0, x1, y1], got {box!r}")
        if face_name is not None and not isinstance(face_name, str):
            raise ValueError(f"faces[{i}].name must be a string or null, got {face_name!r}")
        faces.append({"box": [float(v) for v in box], "name": face_name})
    return faces


def record_to_row(record: FaceRecord) -> dict[str, Any]:
    """The stored fields of `record` (no image): every label field, plus ``extra`` when non-empty.

    Raises ValueError naming the field whose value has the wrong type.
    """
    row = {name: _check_value(name, kind, getattr(record, name)) for name, kind in FIELD_KINDS.items()}
    if record.extra:
        if not isinstance(record.extra, dict):
            raise ValueError(f"field 'extra' must be a dict, got {type(record.extra).__name__}")
        try:
            json.dumps(record.extra)
        except (TypeError, ValueError) as e:
            raise ValueError(f"field 'extra' must be JSON-serialisable: {e}") from None
        row["extra"] = record.extra
    return row


def row_to_record(row: dict[str, Any], image: Any = None) -> FaceRecord:
    """A FaceRecord from a stored row; keys that are not record fields go to ``extra``.

    Raises ValueError naming the field whose value has the wrong type.
    """
    row = dict(row)
    row.pop("image", None)
    extra = row.pop("extra", None)
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except json.JSONDecodeError as e:
            raise ValueError(f"field 'extra' is not valid JSON: {e}") from None
    if extra is not None and not isinstance(extra, dict):
        raise ValueError(f"field 'extra' must be an object, got {extra!r}")
    for name, kind in FIELD_KINDS.items():
        if name in row:
            row[name] = _check_value(name, kind, row[name])
    record = FaceRecord.from_dict(row)
    record.extra = {**(extra or {}), **record.extra}
    record.image = image
    return record


# --------------------------------------------------------------------------- images


def decode_image(image: Any, mode: str | None = "RGB"):
    """A PIL image from a PIL image, encoded bytes, a path or an (H, W[, C]) array.

    In RGB (the default) this is `flip.processor.load_image`, the one decoder whatever a model sees
    goes through (upright by EXIF, transparency on white, truncated files refused), so that a
    recipe trains on the pixels inference will see. Another mode converts that RGB image;
    `mode=None` is the lenient reading for re-encoding: the image as stored, any PIL mode, unchecked.
    """
    from PIL import Image

    from flip.processor import load_image

    if mode is not None:
        rgb = load_image(image)
        return rgb if mode == "RGB" else rgb.convert(mode)
    if isinstance(image, Image.Image):
        pil = image
    elif isinstance(image, (bytes, bytearray, memoryview)):
        pil = Image.open(io.BytesIO(bytes(image)))
    elif isinstance(image, (str, Path)):
        pil = Image.open(image)
    elif hasattr(image, "__array_interface__"):
        pil = Image.fromarray(image)
    else:
        raise TypeError(f"cannot read an image from {type(image).__name__}; "
                        "expected a PIL image, bytes, a path or an array")
    return pil


def check_image(data: bytes | str | Path) -> None:
    """Raise ValueError when `data` (bytes or a path) is not a readable image (header and checksums)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data) as im:
            im.verify()
    except FileNotFoundError:
        raise
    except Exception as e:  # PIL raises many types (UnidentifiedImageError, OSError, SyntaxError, ...)
        where = "" if isinstance(data, (bytes, bytearray)) else f" {data}"
        raise ValueError(f"unreadable image{where}: {e}") from None


def encode_image(image: Any, ext: str, quality: int = 95, compress_level: int = 3) -> bytes:
    """Encoded bytes of `image` in the format of `ext` (".png" or ".jpg").

    Bytes (or a file) already in that format are passed through unchanged, so converting a dataset
    between formats does not re-encode (and degrade) its JPEGs.
    """
    from PIL import Image

    if isinstance(image, (str, Path)):
        image = Path(image).read_bytes()
    if isinstance(image, (bytes, bytearray, memoryview)):
        data = bytes(image)
        with Image.open(io.BytesIO(data)) as im:
            if im.format == _PIL_FORMAT[ext]:
                return data
            image = im.copy()
    pil = decode_image(image, mode=None) if not isinstance(image, Image.Image) else image
    buffer = io.BytesIO()
    if ext == ".jpg":
        if pil.mode not in ("RGB", "L"):
            pil = pil.convert("RGB")
        pil.save(buffer, format="JPEG", quality=quality)
    else:
        pil.save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


# --------------------------------------------------------------------------- writing


def write_dataset(records: Iterable[FaceRecord], out_dir: str | Path, format: str, split: str,
                  image_format: str = "png", **opts) -> Path:
    """Write `records` (each with ``image`` a PIL image, encoded bytes or a path) as one split.

    Returns the split's path: ``out_dir/<split>`` (a folder) or ``out_dir/<split>.parquet``.
    Options: ``overwrite=False`` (replace an existing split), ``quality=95`` (JPEG),
    ``compress_level=3`` (PNG); for parquet ``row_group_size=256`` and ``rows_per_file=None``
    (several files under ``out_dir/<split>/``); for webdataset ``shard_size=1000`` samples per shard.
    A record without ``file_name`` is named by its index (``00000000.png``); an existing name keeps
    its folder and stem, its extension set to the image format.
    """
    format = _check_format(format)
    ext = _WRITE_EXT.get(str(image_format).lower().lstrip("."))
    if ext is None:
        raise ValueError(f"image_format must be one of {sorted(_WRITE_EXT)}, got {image_format!r}")
    _check_split_name(split)
    allowed = {"overwrite", "quality", "compress_level"} | _WRITER_OPTS[format]
    unknown = set(opts) - allowed
    if unknown:
        raise TypeError(f"write_dataset(format={format!r}) got unknown option(s) {sorted(unknown)}; "
                        f"known: {sorted(allowed)}")
    out_dir = Path(out_dir)
    target = out_dir / (f"{split}.parquet" if format == "parquet" and not opts.get("rows_per_file") else split)
    _prepare_target(target, opts.pop("overwrite", False))
    quality, compress_level = int(opts.pop("quality", 95)), int(opts.pop("compress_level", 3))

    def encode(image: Any) -> bytes:
        return encode_image(image, ext, quality=quality, compress_level=compress_level)

    return _WRITERS[format](records, target, ext, encode, opts)


def _check_format(format: str) -> str:
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    return format


def _check_split_name(split: str) -> None:
    if not isinstance(split, str) or not split or split in (".", "..") or "/" in split or "\\" in split:
        raise ValueError(f"split must be a plain name such as 'train', got {split!r}")


def _prepare_target(target: Path, overwrite: bool) -> None:
    import shutil

    if target.exists() and (target.is_file() or any(target.iterdir())):
        if not overwrite:
            raise FileExistsError(f"{target} already exists; pass overwrite=True to replace it")
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)


def _file_name(record: FaceRecord, index: int, ext: str) -> str:
    name = record.file_name or f"{index:08d}{ext}"
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or not path.name:
        raise ValueError(f"record {index}: file_name must be a relative path inside the dataset, got {name!r}")
    if path.suffix.lower() not in ((".jpg", ".jpeg") if ext == ".jpg" else (ext,)):
        path = path.with_suffix(ext) if path.suffix.lower() in IMAGE_EXTENSIONS else path.with_name(path.name + ext)
    return str(path)


def _rows(records: Iterable[FaceRecord], ext: str, encode: Callable) -> Iterator[tuple[int, dict, bytes]]:
    """(index, row with file_name, encoded image) per record, with errors naming the record's index."""
    for index, record in enumerate(records):
        if not isinstance(record, FaceRecord):
            raise TypeError(f"record {index}: expected a FaceRecord, got {type(record).__name__}")
        if record.image is None:
            raise ValueError(f"record {index} ({record.file_name}): has no image")
        try:
            row = record_to_row(record)
            row["file_name"] = _file_name(record, index, ext)
            data = encode(record.image)
        except (ValueError, OSError) as e:
            raise ValueError(f"record {index} ({record.file_name}): {e}") from None
        yield index, row, data


def _write_imagefolder(records, target: Path, ext, encode, opts) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    with open(target / METADATA_FILE, "w", encoding="utf-8") as meta:
        for index, row, data in _rows(records, ext, encode):
            name = row["file_name"]
            if name in seen or name == METADATA_FILE:
                raise ValueError(f"record {index}: file_name {name!r} is used twice")
            seen.add(name)
            path = target / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            meta.write(json.dumps(row, ensure_ascii=False) + "\n")
    return target


def arrow_schema():
    """The Parquet schema: ``image`` as the HF Image struct, then one typed column per field, then ``extra``."""
    import pyarrow as pa

    types = {
        "str": pa.string(),
        "bool": pa.bool_(),
        "strlist": pa.list_(pa.string()),
        "faces": pa.list_(pa.struct([("box", pa.list_(pa.float64())), ("name", pa.string())])),
    }
    columns = [("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())]))]
    columns += [(name, types[kind]) for name, kind in FIELD_KINDS.items()]
    columns += [("extra", pa.string())]
    return pa.schema(columns)


def _write_parquet(records, target: Path, ext, encode, opts) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema()
    group_size = int(opts.get("row_group_size", 256))
    per_file = opts.get("rows_per_file")
    if group_size < 1 or (per_file is not None and int(per_file) < 1):
        raise ValueError("row_group_size and rows_per_file must be positive")
    writer, buffer, file_index, in_file = None, [], 0, 0

    def flush():
        nonlocal buffer
        if buffer:
            writer.write_table(pa.Table.from_pylist(buffer, schema=schema), row_group_size=group_size)
            buffer = []

    try:
        for _, row, data in _rows(records, ext, encode):
            if writer is None or (per_file and in_file == int(per_file)):
                if writer is not None:
                    flush()
                    writer.close()
                path = target / f"part-{file_index:05d}.parquet" if per_file else target
                path.parent.mkdir(parents=True, exist_ok=True)
                writer, file_index, in_file = pq.ParquetWriter(path, schema), file_index + 1, 0
            if "extra" in row:
                row["extra"] = json.dumps(row["extra"], ensure_ascii=False, sort_keys=True)
            row["image"] = {"bytes": data, "path": row["file_name"]}
            buffer.append(row)
            in_file += 1
            if len(buffer) == group_size:
                flush()
        if writer is None:  # no records: still write an empty, well-typed file
            path = target / "part-00000.parquet" if per_file else target
            path.parent.mkdir(parents=True, exist_ok=True)
            writer = pq.ParquetWriter(path, schema)
        flush()
    finally:
        if writer is not None:
            writer.close()
    return target


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))


def _write_webdataset(records, target: Path, ext, encode, opts) -> Path:
    shard_size = int(opts.get("shard_size", 1000))
    if shard_size < 1:
        raise ValueError(f"shard_size must be positive, got {shard_size}")
    target.mkdir(parents=True, exist_ok=True)
    tar = None
    try:
        for index, row, data in _rows(records, ext, encode):
            if index % shard_size == 0:
                if tar is not None:
                    tar.close()
                tar = tarfile.open(target / f"shard-{index // shard_size:05d}.tar", "w", format=tarfile.USTAR_FORMAT)
            key = f"{index:08d}"
            _tar_add(tar, key + ext, data)
            _tar_add(tar, key + ".json", json.dumps(row, ensure_ascii=False).encode("utf-8"))
    finally:
        if tar is not None:
            tar.close()
    return target


_WRITERS = {"imagefolder": _write_imagefolder, "parquet": _write_parquet, "webdataset": _write_webdataset}
_WRITER_OPTS = {"imagefolder": set(), "parquet": {"row_group_size", "rows_per_file"}, "webdataset": {"shard_size"}}


# --------------------------------------------------------------------------- finding a dataset on disk


def _detect(folder: Path) -> dict[str, list[Path]]:
    """The formats whose files lie directly in `folder`, with those files (or the folder)."""
    found = {}
    if (folder / METADATA_FILE).is_file():
        found["imagefolder"] = [folder]
    parquets = sorted(folder.glob("*.parquet"))
    if parquets:
        found["parquet"] = parquets
    tars = sorted(folder.glob("*.tar"))
    if tars:
        found["webdataset"] = tars
    return found


#: the usual split names, in the order splits are listed
SPLIT_NAMES = ("train", "validation", "valid", "val", "dev", "test")


def list_splits(path: str | Path) -> list[str]:
    """The split names of a dataset folder: sub-folders holding a format, and ``<split>.parquet`` files.

    A top-level Parquet file counts as a split only under a usual name (`SPLIT_NAMES`); other
    Parquet files there are parts of one dataset (``read_dataset(DIR, split=stem)`` still reads one).
    """
    path = Path(path)
    if not path.is_dir():
        return []
    splits = {p.stem for p in path.glob("*.parquet") if p.stem in SPLIT_NAMES}
    splits |= {p.name for p in path.iterdir() if p.is_dir() and _detect(p)}
    order = {name: i for i, name in enumerate(SPLIT_NAMES)}
    return sorted(splits, key=lambda s: (order.get(s, len(order)), s))


def resolve_dataset(path: str | Path, format: str | None = None, split: str | None = None) -> tuple[str, list[Path]]:
    """(format, sources) for a dataset path: a file, a split folder, or a root with ``split``.

    Sources are the imagefolder folder, the Parquet files or the tar shards, in order.
    """
    path = Path(path)
    if format is not None:
        _check_format(format)
    if not path.exists():
        raise FileNotFoundError(f"no dataset at {path}")
    if path.is_file():
        if split is not None:
            raise ValueError(f"split={split!r} needs a dataset folder, but {path} is a file")
        by_suffix = {".parquet": "parquet", ".tar": "webdataset", ".jsonl": "imagefolder"}
        detected = by_suffix.get(path.suffix.lower())
        if detected is None or (format and format != detected):
            raise ValueError(f"{path}: cannot read this file as {format or 'a dataset'}; expected a .parquet file, "
                             f"a .tar shard or a {METADATA_FILE}")
        return detected, [path.parent if detected == "imagefolder" else path]
    if split is not None:
        _check_split_name(split)
        if (path / f"{split}.parquet").is_file() and format in (None, "parquet"):
            return "parquet", [path / f"{split}.parquet"]
        if not (path / split).is_dir():
            raise FileNotFoundError(f"{path} has no split {split!r}; splits found: {list_splits(path) or 'none'}")
        path = path / split
    else:
        splits = list_splits(path)
        if len(splits) > 1:
            raise ValueError(f"{path} holds several splits {splits}; pass split= to choose one")
        if len(splits) == 1 and not _detect(path):
            return resolve_dataset(path, format, splits[0])
    found = _detect(path)
    if format is not None:
        found = {format: found[format]} if format in found else {}
    if not found:
        raise ValueError(f"no {format or 'dataset'} found in {path}: expected {METADATA_FILE}, *.parquet or "
                         f"*.tar shards (or split folders holding them)")
    if len(found) > 1:
        raise ValueError(f"{path} holds more than one format ({', '.join(found)}); pass format= to choose")
    (detected, sources), = found.items()
    return detected, sources


# --------------------------------------------------------------------------- reading


def read_dataset(path: str | Path, format: str | None = None, split: str | None = None, *,
                 on_error: str = "raise", report: LoadReport | None = None,
                 check_images: bool = True) -> Iterator[FaceRecord]:
    """Iterate over the records of a dataset written in one of `FORMATS` (detected when None).

    Each record's ``image`` is the encoded image **bytes**; decode with `decode_image`. `path` is a
    dataset root (with `split`, or holding one split), a split folder, or one file (a ``.parquet``,
    a ``.tar`` shard, a ``metadata.jsonl``). Bad rows (a label of the wrong type, a missing or
    unreadable image when `check_images`) raise a `DataError` naming the file and row, or with
    ``on_error="skip"`` are skipped and recorded in `report`.
    """
    detected, sources = resolve_dataset(path, format, split)
    policy = ErrorPolicy(on_error, report)
    return policy.run(_READERS[detected](sources, policy, check_images), what=f"read_dataset({str(path)!r})")


def iter_dataset(path: str | Path, format: str | None, split: str | None, policy: ErrorPolicy,
                 check_images: bool = True) -> Iterator[FaceRecord]:
    """`read_dataset` under a caller's `ErrorPolicy` (the caller warns about what was skipped)."""
    detected, sources = resolve_dataset(path, format, split)
    yield from _READERS[detected](sources, policy, check_images)


def _row_or_error(row: dict, image: Any, file, where, policy: ErrorPolicy, check_images: bool) -> FaceRecord | None:
    """The record of one stored row, or None after handing a DataError to the policy."""
    try:
        if check_images:
            check_image(image)
        return row_to_record(row, image)
    except (ValueError, OSError) as e:
        policy.handle(DataError(str(e), file, where))
        return None


def _read_imagefolder(sources: list[Path], policy: ErrorPolicy, check_images: bool) -> Iterator[FaceRecord]:
    for folder in sources:
        meta = folder / METADATA_FILE
        with open(meta, encoding="utf-8") as lines:
            for line_no, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                where = f"line {line_no}"
                try:
                    row = json.loads(line)
                    if not isinstance(row, dict):
                        raise ValueError(f"expected a JSON object, got {type(row).__name__}")
                    name = row.get("file_name")
                    if not isinstance(name, str) or not name:
                        raise ValueError("missing column 'file_name'")
                    image_path = folder / name
                    if not image_path.is_file():
                        raise ValueError(f"image file not found: {image_path}")
                    data = image_path.read_bytes()
                except (ValueError, OSError) as e:  # json.JSONDecodeError is a ValueError
                    policy.handle(DataError(str(e), meta, where))
                    continue
                record = _row_or_error(row, data, meta, where, policy, check_images)
                if record is not None:
                    yield record


def _read_parquet(sources: list[Path], policy: ErrorPolicy, check_images: bool) -> Iterator[FaceRecord]:
    import pyarrow.parquet as pq

    for file in sources:
        parquet = pq.ParquetFile(file)
        if "image" not in parquet.schema_arrow.names:
            policy.handle(DataError(f"missing column 'image'; columns found: {parquet.schema_arrow.names}", file))
            continue
        row_no = 0
        for batch in parquet.iter_batches(batch_size=256):
            for row in batch.to_pylist():
                row_no += 1
                image = row.pop("image")
                try:
                    data = _parquet_image(image, file)
                except (ValueError, OSError) as e:
                    policy.handle(DataError(str(e), file, row_no))
                    continue
                if row.get("file_name") is None and isinstance(image, dict) and image.get("path"):
                    row["file_name"] = image["path"]
                record = _row_or_error(row, data, file, row_no, policy, check_images)
                if record is not None:
                    yield record


def _parquet_image(image: Any, file: Path) -> bytes:
    """The bytes of an HF Image struct ``{bytes, path}`` (a path relative to the Parquet file's folder)."""
    if isinstance(image, (bytes, bytearray)):
        return bytes(image)
    if not isinstance(image, dict):
        raise ValueError(f"column 'image' must be a struct {{bytes, path}}, got {type(image).__name__}")
    if image.get("bytes"):
        return image["bytes"]
    if image.get("path"):
        path = Path(image["path"])
        path = path if path.is_absolute() else file.parent / path
        if not path.is_file():
            raise ValueError(f"image has no bytes and its path does not exist: {path}")
        return path.read_bytes()
    raise ValueError("image has neither bytes nor path")


def _tar_samples(file: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: bytes}) per sample of a webdataset shard; a sample's members are consecutive."""
    key, parts = None, {}
    with tarfile.open(file, "r") as tar:
        for member in tar:
            if not member.isfile():
                continue
            folder, _, base = member.name.rpartition("/")
            stem, dot, ext = base.partition(".")
            if not dot or base.startswith("."):
                continue
            member_key = f"{folder}/{stem}" if folder else stem
            if member_key != key:
                if key is not None:
                    yield key, parts
                key, parts = member_key, {}
            parts[ext.lower()] = tar.extractfile(member).read()
    if key is not None:
        yield key, parts


def _read_webdataset(sources: list[Path], policy: ErrorPolicy, check_images: bool) -> Iterator[FaceRecord]:
    for file in sources:
        try:
            for key, parts in _tar_samples(file):
                where = f"sample {key!r}"
                image_ext = next((e for e in parts if "." + e in IMAGE_EXTENSIONS), None)
                try:
                    if image_ext is None:
                        raise ValueError(f"no image member (one of {', '.join(IMAGE_EXTENSIONS)})")
                    row = json.loads(parts["json"]) if "json" in parts else {}
                    if not isinstance(row, dict):
                        raise ValueError(f"{key}.json must hold a JSON object")
                    if row.get("caption") is None and "txt" in parts:
                        row["caption"] = parts["txt"].decode("utf-8").strip()
                    row.setdefault("file_name", f"{key}.{image_ext}")
                except (ValueError, UnicodeDecodeError) as e:
                    policy.handle(DataError(str(e), file, where))
                    continue
                record = _row_or_error(row, parts[image_ext], file, where, policy, check_images)
                if record is not None:
                    yield record
        except tarfile.TarError as e:
            policy.handle(DataError(f"unreadable tar shard: {e}", file))


_READERS = {"imagefolder": _read_imagefolder, "parquet": _read_parquet, "webdataset": _read_webdataset}
