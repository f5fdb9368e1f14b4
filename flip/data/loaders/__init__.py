"""Readers for the real face datasets, behind one entry point: `load_records`.

One small module per dataset, each turning that dataset's exact published layout into
`flip.data.records.FaceRecord`s:

=================  ==========================================================================
name               layout (see each module for details)
=================  ==========================================================================
``flip``           flip's own formats (`flip.data.formats`): imagefolder + metadata.jsonl,
                   Parquet with image bytes, webdataset tar shards
``facecaption``    FaceCaption-15M: its Parquet (url, face box, captions), or the authors'
                   BLIP-style annotation folders ``ann_root/<part>/*.json`` + ``image_root``
``celeba``         ``list_attr_celeba.txt`` + ``img_align_celeba/`` (+ ``list_eval_partition.txt``,
                   ``identity_CelebA.txt``)
``fairface``       ``fairface_label_{train,val}.csv`` (file,age,gender,race,service_test) + images
``utkface``        ``[age]_[gender]_[race]_[date&time].jpg`` file names
``lfw``            ``lfw/<Name>/<Name>_0001.jpg`` (pairs lists: `load_lfw_pairs`)
``antispoof``      ``live/``, ``attack/<type>/`` (or ``spoof/``) folders, or a CSV/JSONL list
``imagefolder``    a folder of images: with ``metadata.jsonl``/``metadata.csv`` (Hugging Face
                   imagefolder), or class sub-folders
``csv``/``jsonl``  a table with a ``file_name`` column (or image/path/file) and record fields
=================  ==========================================================================

Design choices:
- Records from image files carry ``image`` as the file's absolute **path** (a string); records from
  Parquet or tar shards carry the encoded **bytes**. `flip.data.formats.decode_image` opens either.
- Labels that flip knows (`flip.data.records.ATTRIBUTES`) are filled where a dataset's label means
  the same thing (each module documents its mapping); everything a dataset has of its own goes into
  ``record.extra`` under the dataset's names, so nothing is lost.
- Nothing is dropped silently: every bad row, missing column or unreadable image is a `DataError`
  naming the file and row, raised (``on_error="raise"``, the default) or skipped and collected in
  the `LoadReport` at ``records.report`` (``on_error="skip"``), with a warning giving the count.
- ``dataset="auto"`` recognises a layout by its tell-tale files; pass the name to be explicit.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Iterator

from flip.data.formats import ErrorPolicy, LoadReport
from flip.data.loaders._common import LOADERS, register_loader
from flip.data.records import FaceRecord

# Each import registers its readers (in this order, which is the order "auto" tries them).
from flip.data.loaders import celeba, fairface, facecaption, lfw, antispoof, utkface, generic  # noqa: E402,F401,I001
from flip.data.loaders.lfw import LFWPair, load_lfw_pairs  # noqa: E402

__all__ = ["LOADERS", "LFWPair", "Records", "detect_dataset", "load_lfw_pairs", "load_records", "register_loader"]


class Records:
    """The records of one dataset: iterate over it (again and again); problems collect in ``report``."""

    def __init__(self, source: Path, dataset: str, split: str | None, policy: ErrorPolicy,
                 check_images: bool, options: dict):
        self.source, self.dataset, self.split = source, dataset, split
        self.policy, self.check_images, self.options = policy, check_images, options

    @property
    def report(self) -> LoadReport:
        return self.policy.report

    def __iter__(self) -> Iterator[FaceRecord]:
        read = LOADERS[self.dataset].read
        records = read(self.source, self.split, self.policy, self.check_images, **self.options)
        return self.policy.run(records, what=f"load_records({str(self.source)!r}, dataset={self.dataset!r})")

    def __repr__(self) -> str:
        return f"Records(source={str(self.source)!r}, dataset={self.dataset!r}, split={self.split!r})"


def detect_dataset(source: str | Path) -> str:
    """The name of the registered loader whose layout `source` matches (the first that does)."""
    source = Path(source)
    for loader in LOADERS.values():
        if loader.detect is not None and loader.detect(source):
            return loader.name
    raise ValueError(f"cannot tell which dataset {source} holds; pass dataset= one of {sorted(LOADERS)}")


def load_records(source: str | Path, dataset: str = "auto", split: str | None = None, *, on_error: str = "raise",
                 report: LoadReport | None = None, check_images: bool = True, **options) -> Records:
    """The records of a dataset on disk: ``for record in load_records("data/celeba", "celeba", "test")``.

    dataset: a name in `LOADERS` or "auto" (detected from the layout). split: a dataset's own split
    names (train/val/test for most; None = everything). on_error: "raise" at the first bad row, or
    "skip" it and record it in ``.report`` (pass your own `LoadReport` as `report` to collect several
    loads in one). check_images: open and verify every image (catches truncated and non-image files).
    Further keyword options go to the dataset's reader (documented in its module).
    """
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"no dataset at {source}")
    if dataset == "auto":
        dataset = detect_dataset(source)
    if dataset not in LOADERS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(LOADERS)} or 'auto'")
    try:
        inspect.signature(LOADERS[dataset].read).bind(source, split, None, check_images, **options)
    except TypeError as e:
        raise TypeError(f"load_records(dataset={dataset!r}): {e}") from None
    return Records(source, dataset, split, ErrorPolicy(on_error, report), check_images, options)
