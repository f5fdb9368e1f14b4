"""Group scenes: one to four people in a news-style photo, with boxes and a caption naming some.

The face-naming datasets (Labeled Faces in the Wild's news photos, Berg et al.; SECLA and SECLA-B
in papers.md) pair an image holding several faces with a caption holding several names, where
some faces are not named and some names have no face. This module draws such scenes and writes
such captions. Design choices:
- Each face is named in the caption with probability `p_named`; 0 to 2 further names of people
  who are not in the picture are mentioned ("..., Ana Silva said."). Every caption names at least
  one person. The order of names in the caption is shuffled, never left-to-right.
- Faces stand in a row, each in its own slot, so boxes overlap little; bigger faces (nearer) are
  drawn last. Boxes are the detection boxes of `render.FaceLayout` (brows to chin, cheek to
  cheek), clipped to the image.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from flip.data.synthetic.faces import Face, Identity
from flip.data.synthetic.render import apply_nuisance, draw_background, draw_face, sample_nuisance

EVENTS = ("summit", "press conference", "film festival", "charity gala", "trade fair", "election rally",
          "award ceremony", "football final", "peace talks", "book launch", "science fair", "state visit")
CITIES = ("Nairobi", "Lima", "Osaka", "Lagos", "Oslo", "Hanoi", "Quito", "Tunis", "Dhaka", "Krakow", "Accra",
          "Manila", "Montreal", "Seville", "Auckland", "Almaty", "Chennai", "Recife", "Busan", "Tbilisi")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
#: lead sentences; {who} is the named people, {verb_s} a verb agreeing with them
LEADS = (
    "{who} at the {event} in {city} on {day}.",
    "{who} {arrive} for the {event} in {city}.",
    "{who} {pose} for photographers during the {event} in {city} on {day}.",
    "{who} {speak} to reporters after the {event} in {city}.",
    "{city}, {day}: {who} {attend} the {event}.",
)
LEADS_NOBODY = (
    "Guests at the {event} in {city} on {day}.",
    "Delegates arrive for the {event} in {city}.",
    "Crowds gather for the {event} in {city} on {day}.",
)
#: sentences about people who are not in the picture; {who} is one or two names
ABSENT = (
    "{who} {was} not present.",
    "The event was organised by {who}.",
    "{who} said in a statement that talks would continue.",
    "Earlier, {who} had criticised the plan.",
    "A spokesperson for {who} declined to comment.",
)
_VERBS = {"arrive": ("arrives", "arrive"), "pose": ("poses", "pose"), "speak": ("speaks", "speak"),
          "attend": ("attends", "attend"), "was": ("was", "were")}


@dataclass
class Scene:
    """A drawn group scene: the image, one box per face, the names per face (None = not named),
    the caption and the names it mentions in order."""

    image: Image.Image
    boxes: list[list[float]]
    face_names: list[str | None]
    caption: str
    names: list[str]


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _fill(template: str, who: list[str], rng: np.random.Generator) -> str:
    plural = len(who) > 1
    words = {k: v[int(plural)] for k, v in _VERBS.items()}
    return template.format(who=_join(who), event=EVENTS[int(rng.integers(len(EVENTS)))],
                           city=CITIES[int(rng.integers(len(CITIES)))], day=DAYS[int(rng.integers(len(DAYS)))],
                           **words)


def news_caption(present: list[str], absent: list[str], rng: np.random.Generator) -> tuple[str, list[str]]:
    """A caption naming `present` (people in the picture) and `absent` (not in it), and the names in
    the order they appear."""
    if present:
        lead = _fill(LEADS[int(rng.integers(len(LEADS)))], present, rng)
    else:
        lead = _fill(LEADS_NOBODY[int(rng.integers(len(LEADS_NOBODY)))], ["x"], rng)
    text = lead
    if absent:
        text += " " + _fill(ABSENT[int(rng.integers(len(ABSENT)))], absent, rng)
    order = sorted(present + absent, key=text.index)
    return text, order


def render_scene(faces: list[Face], size: int, rng: np.random.Generator, supersample: int = 2,
                 nuisance_strength: float = 1.0) -> tuple[Image.Image, list[list[float]]]:
    """Draw 1-4 `faces` side by side in one `size` x `size` photo; returns it and one box per face
    ([x0, y0, x1, y1], pixels, in the order of `faces`)."""
    n = len(faces)
    if not 1 <= n <= 4:
        raise ValueError(f"faces: a scene holds 1 to 4 faces, got {n}")
    big = size * supersample
    nuisance = sample_nuisance(rng, nuisance_strength)
    image = draw_background(big, nuisance)
    slot = big / n
    scales = [min(slot / 2.9, big * 0.19) * rng.uniform(0.82, 1.0) for _ in range(n)]
    centres = [((k + 0.5) * slot + rng.uniform(-0.08, 0.08) * slot, big * rng.uniform(0.36, 0.5)) for k in range(n)]
    boxes: list = [None] * n
    for k in np.argsort(scales, kind="stable"):  # far (small) faces first
        layout = draw_face(image, faces[k], centres[k], scales[k]).scaled(1 / supersample)
        x0, y0, x1, y1 = layout.box
        boxes[k] = [float(np.clip(x0, 0, size)), float(np.clip(y0, 0, size)),
                    float(np.clip(x1, 0, size)), float(np.clip(y1, 0, size))]
    image = image.reduce(supersample) if supersample > 1 else image
    camera = replace(nuisance, scale=1.0, dx=0.0, dy=0.0)
    return apply_nuisance(image, camera), boxes


def sample_scene(people: list[Identity], others: list[Identity], faces: list[Face], size: int,
                 rng: np.random.Generator, p_named: float = 0.7, max_absent: int = 2) -> Scene:
    """A scene of `faces` (photos of `people`, same order) whose caption may also name some of
    `others` (people not in the picture)."""
    image, boxes = render_scene(faces, size, rng)
    named = [p.name if rng.random() < p_named else None for p in people]
    k_absent = int(rng.choice(max_absent + 1, p=_absent_weights(max_absent))) if others else 0
    absent = [others[i].name for i in rng.choice(len(others), size=min(k_absent, len(others)), replace=False)]
    if not any(named) and not absent:  # every caption names someone
        k = int(rng.integers(len(people)))
        named[k] = people[k].name
    present = [named[i] for i in rng.permutation(len(named)) if named[i] is not None]
    caption, names = news_caption(present, absent, rng)
    return Scene(image=image, boxes=boxes, face_names=named, caption=caption, names=names)


def _absent_weights(max_absent: int) -> np.ndarray:
    w = np.array([0.5, 0.35, 0.15, 0.1, 0.05][: max_absent + 1])
    return w / w.sum()
