"""People and their photos: `Identity` (who, and what stays fixed) and `Face` (one photo of them).

An `Identity` holds a person's name, the identity-stable labels and hidden geometry (nose, brows,
eye spacing, mouth, ears, hairline) that make two people with equal labels still look different,
which face naming and recognition need. A `Face` adds the per-image labels and the per-image
styling (hat shape and colour, frame colour, lipstick shade, clothes, ...) plus head pose. Drawing
is a pure function of a `Face` and a `render.Nuisance`, so changing one field changes only what that
field draws (the tests rely on this).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from flip.data.synthetic.attributes import (
    IDENTITY_ATTRIBUTES,
    IMAGE_ATTRIBUTES,
    AttributeSampler,
)
from flip.data.synthetic.cues import sample_identity_cues, sample_image_cues

#: Hidden, identity-stable shape classes (not record attributes; they make people distinct).
NOSE_SHAPES = ("straight", "wide", "narrow", "round", "hooked")
BROW_SHAPES = ("straight", "arched", "angled")
HAT_STYLES = ("beanie", "cap", "brimmed")
EARRING_STYLES = ("hoop", "stud", "drop")

RGB = tuple[int, int, int]
_HAT_COLORS: tuple[RGB, ...] = ((200, 40, 40), (40, 70, 170), (30, 120, 60), (230, 180, 30), (90, 50, 120),
                                (30, 30, 35), (235, 235, 225), (200, 100, 30), (60, 150, 170))
_FRAME_COLORS: tuple[RGB, ...] = ((20, 20, 20), (90, 50, 25), (200, 170, 60), (170, 30, 40), (40, 60, 150))
_LENS_COLORS: tuple[RGB, ...] = ((15, 15, 20), (45, 30, 20), (20, 30, 55), (25, 45, 30))
_LIPSTICK_COLORS: tuple[RGB, ...] = ((200, 20, 45), (225, 70, 125), (140, 25, 70), (165, 15, 25))
_EYESHADOW_COLORS: tuple[RGB, ...] = ((120, 60, 160), (60, 100, 190), (150, 90, 60), (40, 130, 110))
_EARRING_COLORS: tuple[RGB, ...] = ((240, 200, 60), (215, 215, 225), (245, 240, 230), (220, 40, 60), (40, 160, 220))
_CLOTHES_COLORS: tuple[RGB, ...] = ((40, 60, 110), (120, 30, 40), (60, 60, 60), (220, 220, 215), (30, 100, 70),
                                    (170, 120, 60), (90, 60, 130), (200, 150, 40), (20, 20, 25))


@lru_cache(maxsize=1)
def load_names() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The committed first and last names (`names.json`), diverse by design."""
    data = json.loads(resources.files(__package__).joinpath("names.json").read_text(encoding="utf-8"))
    first, last = tuple(data["first"]), tuple(data["last"])
    if len(set(first)) != len(first) or len(set(last)) != len(last):
        raise ValueError("flip/data/synthetic/names.json: first and last names must be unique")
    return first, last


@dataclass(frozen=True)
class Identity:
    """One person: a name, the identity-stable labels, and hidden geometry (units: half face width)."""

    identity: str
    name: str
    face_shape: str
    skin_tone: str
    eye_color: str
    hair_color: str
    hair_style: str
    age_group: str
    nose_shape: str = "straight"
    brow_shape: str = "straight"
    eye_spacing: float = 0.42  # distance of each eye centre from the midline
    eye_size: float = 1.0  # relative
    feature_shift: float = 0.0  # vertical offset of eyes, nose and mouth
    nose_length: float = 1.0
    mouth_width: float = 1.0
    lip_thickness: float = 1.0
    brow_thickness: float = 1.0
    ear_size: float = 1.0
    hair_part: float = 0.0  # -1 (parted left) .. 1 (parted right)
    hair_volume: float = 1.0
    skin_shift: tuple[int, int, int] = (0, 0, 0)  # small per-person colour variation
    hair_shift: tuple[int, int, int] = (0, 0, 0)
    # identity cues (`cues.sample_identity_cues`): drawn, varying within an age group
    wrinkles: int = 0  # 0 none, 1 some, 2 deep
    bags_under_eyes: bool = False
    greying: bool = False  # grey temples
    receding_hairline: bool = False
    double_chin: bool = False
    chubby: bool = False
    high_cheekbones: bool = False
    sideburns: bool = False
    narrow_eyes: bool = False

    def labels(self) -> dict[str, Any]:
        return {a: getattr(self, a) for a in IDENTITY_ATTRIBUTES}


@dataclass(frozen=True)
class Face:
    """One photo of a person: identity, per-image labels, styling and head pose (degrees)."""

    person: Identity
    emotion: str = "neutral"
    eyes_open: bool = True
    eyewear: str = "none"
    facial_hair: str = "none"
    hat: bool = False
    earrings: bool = False
    makeup: bool = False
    yaw: float = 0.0
    roll: float = 0.0
    gaze: float = 0.0  # iris offset, fraction of the eye half-width
    hat_style: str = "beanie"
    hat_color: RGB = _HAT_COLORS[0]
    frame_color: RGB = _FRAME_COLORS[0]
    lens_color: RGB = _LENS_COLORS[0]
    lipstick_color: RGB = _LIPSTICK_COLORS[0]
    eyeshadow_color: RGB = _EYESHADOW_COLORS[0]
    earring_style: str = "hoop"
    earring_color: RGB = _EARRING_COLORS[0]
    clothes_color: RGB = _CLOTHES_COLORS[0]
    texture_seed: int = 0  # seeds the fine texture (stubble, curls) so drawing stays pure
    # image cues (`cues.sample_image_cues`)
    rosy_cheeks: bool = False
    lipstick: bool = True  # with makeup: lipstick as well as eyeshadow
    necklace: bool = False
    necktie: bool = False
    brow_gain: float = 1.0  # how strongly the expression shows in the brows (1 = the EXPRESSIONS table)
    eye_gain: float = 1.0
    mouth_gain: float = 1.0
    mouth_ajar: float = 0.0  # lips parted this much on top of the expression
    wrinkled_nose: bool = True  # disgust wrinkles the nose

    def cues(self) -> list[str]:
        """The cues a render of this photo shows (`cues.rendered_cues`)."""
        from flip.data.synthetic.cues import rendered_cues

        return rendered_cues(self)

    def labels(self) -> dict[str, Any]:
        """All 13 attribute labels of this photo."""
        out = self.person.labels()
        out.update({a: getattr(self, a) for a in IMAGE_ATTRIBUTES})
        return out

    def with_labels(self, **labels) -> "Face":
        """This photo with some labels changed (identity labels included), all else kept."""
        person_kw = {k: v for k, v in labels.items() if k in IDENTITY_ATTRIBUTES}
        face_kw = {k: v for k, v in labels.items() if k not in IDENTITY_ATTRIBUTES}
        return replace(self, person=replace(self.person, **person_kw), **face_kw)


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _shift(rng: np.random.Generator, amount: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(-amount, amount + 1, size=3))


def sample_identity(rng: np.random.Generator, identity: str, name: str,
                    sampler: AttributeSampler | None = None) -> Identity:
    """A new person with labels from `sampler` and random hidden geometry."""
    labels = (sampler or AttributeSampler()).sample_identity(rng)
    return Identity(
        identity=identity,
        name=name,
        **labels,
        nose_shape=_pick(rng, NOSE_SHAPES),
        brow_shape=_pick(rng, BROW_SHAPES),
        eye_spacing=float(rng.uniform(0.37, 0.47)),
        eye_size=float(rng.uniform(0.88, 1.12)),
        feature_shift=float(rng.uniform(-0.06, 0.06)),
        nose_length=float(rng.uniform(0.85, 1.15)),
        mouth_width=float(rng.uniform(0.85, 1.15)),
        lip_thickness=float(rng.uniform(0.75, 1.3)),
        brow_thickness=float(rng.uniform(0.75, 1.35)),
        ear_size=float(rng.uniform(0.85, 1.15)),
        hair_part=float(rng.uniform(-1, 1)),
        hair_volume=float(rng.uniform(0.92, 1.1)),
        skin_shift=_shift(rng, 8),
        hair_shift=_shift(rng, 12),
        **sample_identity_cues(rng, labels),
    )


def make_identities(n: int, seed: int, sampler: AttributeSampler | None = None,
                    prefix: str = "id") -> list[Identity]:
    """`n` people with distinct names, deterministic in `seed`.

    Ids are `{prefix}_{i:05d}`; names are distinct (first, last) pairs from `names.json`.
    """
    first, last = load_names()
    if n > len(first) * len(last):
        raise ValueError(f"n={n}: at most {len(first) * len(last)} distinct names are available")
    rng = np.random.default_rng([seed, 0x1D])
    picks = rng.choice(len(first) * len(last), size=n, replace=False)
    people = []
    for i, k in enumerate(picks):
        name = f"{first[k // len(last)]} {last[k % len(last)]}"
        people.append(sample_identity(np.random.default_rng([seed, 0x1D, i]), f"{prefix}_{i:05d}", name, sampler))
    return people


def sample_face(rng: np.random.Generator, person: Identity, sampler: AttributeSampler | None = None,
                max_yaw: float = 30.0, max_roll: float = 12.0) -> Face:
    """One photo of `person`: per-image labels from `sampler`, random styling and pose."""
    labels = (sampler or AttributeSampler()).sample_image(rng, person.labels())
    return Face(
        person=person,
        **labels,
        yaw=float(rng.uniform(-max_yaw, max_yaw)),
        roll=float(rng.uniform(-max_roll, max_roll)),
        gaze=float(rng.uniform(-0.25, 0.25)),
        hat_style=_pick(rng, HAT_STYLES),
        hat_color=_pick(rng, _HAT_COLORS),
        frame_color=_pick(rng, _FRAME_COLORS),
        lens_color=_pick(rng, _LENS_COLORS),
        lipstick_color=_pick(rng, _LIPSTICK_COLORS),
        eyeshadow_color=_pick(rng, _EYESHADOW_COLORS),
        earring_style=_pick(rng, EARRING_STYLES),
        earring_color=_pick(rng, _EARRING_COLORS),
        clothes_color=_pick(rng, _CLOTHES_COLORS),
        texture_seed=int(rng.integers(2**31)),
        **sample_image_cues(rng, {**person.labels(), **labels}),
    )
