"""The one record type that every loader and the synthetic world return.

Every kind of data (captions, spoofs, scenes, QA) in every format (imagefolder + metadata.jsonl,
Parquet, webdataset shards) carries the same field names, so that all tasks and scripts agree.
A field a source does not know is None.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

#: The facial attributes, in a fixed order; each is a key of `FaceRecord` and of `metadata.jsonl`.
ATTRIBUTES = (
    "face_shape",
    "skin_tone",
    "eye_color",
    "hair_color",
    "hair_style",
    "emotion",
    "eyes_open",
    "age_group",
    "eyewear",
    "facial_hair",
    "hat",
    "earrings",
    "makeup",
)


@dataclass
class FaceRecord:
    """One example. `image` is whatever the source holds (a path, bytes or a PIL image)."""

    file_name: str | None = None
    image: Any = None
    caption: str | None = None
    # attributes (see ATTRIBUTES)
    face_shape: str | None = None
    skin_tone: str | None = None
    eye_color: str | None = None
    hair_color: str | None = None
    hair_style: str | None = None
    emotion: str | None = None
    eyes_open: bool | None = None
    age_group: str | None = None
    eyewear: str | None = None
    facial_hair: str | None = None
    hat: bool | None = None
    earrings: bool | None = None
    makeup: bool | None = None
    # identity
    identity: str | None = None
    name: str | None = None
    # spoofs
    live: bool | None = None
    attack: str | None = None
    # group scenes: faces = [{"box": [x0, y0, x1, y1], "name": str | None}], names = names in the caption
    faces: list[dict] | None = None
    names: list[str] | None = None
    # question answering
    question: str | None = None
    answer: str | None = None
    attribute: str | None = None
    # anything else a source carries (e.g. CelebA's 40 binary attributes, a dataset's own ids)
    extra: dict = field(default_factory=dict)

    def attributes(self) -> dict[str, Any]:
        """The attribute labels this record knows (None values left out)."""
        return {k: getattr(self, k) for k in ATTRIBUTES if getattr(self, k) is not None}

    def to_dict(self, with_image: bool = False) -> dict:
        d = asdict(self)
        if not with_image:
            d.pop("image")
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FaceRecord":
        known = {f.name for f in fields(cls)}
        rec = cls(**{k: v for k, v in d.items() if k in known})
        rec.extra.update({k: v for k, v in d.items() if k not in known})
        return rec
