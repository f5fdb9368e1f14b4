"""What a synthetic face is: the attribute vocabularies, the couplings between them, and the sampler.

Design choices
- Every value in a vocabulary is drawn so that a small ViT can see it at 112 px (see `render.py`),
  and the vocabularies are module constants so that captions, QA, prompts and tests share them.
- Attributes are of three kinds. *Identity-stable* ones (face shape, skin tone, eye colour, hair
  colour and style, age group, plus hidden geometry such as nose and brow shape) are drawn once per
  person and persist across that person's images. *Per-image* ones (emotion, eyes open, eyewear,
  facial hair, hat, earrings, makeup) are drawn for every image. *Nuisances* (pose, scale, lighting,
  background, blur, noise, JPEG) live in `render.Nuisance` and carry no label.
- Sampling is uniform over each vocabulary by default and every distribution can be overridden
  (`AttributeSampler(distributions={...})`). Attributes are independent except for the couplings in
  `COUPLINGS`, which are applied after sampling and recorded in every dataset card.
- Some labels are not visible in some images (eye colour behind sunglasses or closed lids, eyes
  open/closed behind sunglasses). The label is still recorded; `visible_attributes` says which
  labels an image shows, and captions and questions only use those.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

FACE_SHAPES = ("oval", "round", "square", "heart", "long")
#: Six levels, lightest to darkest (after the Fitzpatrick scale's six types).
SKIN_TONES = ("pale", "fair", "medium", "olive", "brown", "dark")
EYE_COLORS = ("brown", "blue", "green", "grey")
HAIR_COLORS = ("black", "brown", "blond", "red", "grey", "white")
HAIR_STYLES = ("bald", "short", "short with bangs", "long", "long with bangs", "curly")
EMOTIONS = ("neutral", "happy", "sad", "angry", "surprised", "fearful", "disgusted")
AGE_GROUPS = ("child", "young adult", "middle-aged", "senior")
EYEWEAR = ("none", "eyeglasses", "sunglasses")
FACIAL_HAIR = ("none", "moustache", "beard", "goatee", "stubble")
BOOLEAN = (False, True)

#: attribute -> its vocabulary, in the order of `flip.data.records.ATTRIBUTES`.
VOCABULARIES: dict[str, tuple] = {
    "face_shape": FACE_SHAPES,
    "skin_tone": SKIN_TONES,
    "eye_color": EYE_COLORS,
    "hair_color": HAIR_COLORS,
    "hair_style": HAIR_STYLES,
    "emotion": EMOTIONS,
    "eyes_open": BOOLEAN,
    "age_group": AGE_GROUPS,
    "eyewear": EYEWEAR,
    "facial_hair": FACIAL_HAIR,
    "hat": BOOLEAN,
    "earrings": BOOLEAN,
    "makeup": BOOLEAN,
}
IDENTITY_ATTRIBUTES = ("face_shape", "skin_tone", "eye_color", "hair_color", "hair_style", "age_group")
IMAGE_ATTRIBUTES = ("emotion", "eyes_open", "eyewear", "facial_hair", "hat", "earrings", "makeup")

#: The only dependencies between attributes, applied after independent sampling: a human-readable
#: rule -> (condition attribute, condition value, constrained attribute, allowed values).
#: When a sampled value is not allowed it is redrawn from the allowed values (same weights).
COUPLINGS: tuple[tuple[str, str, Any, str, tuple], ...] = (
    ("children have no facial hair", "age_group", "child", "facial_hair", ("none",)),
    ("children wear no makeup", "age_group", "child", "makeup", (False,)),
    ("children's hair is not grey or white", "age_group", "child", "hair_color",
     ("black", "brown", "blond", "red")),
)


#: Soft couplings (world version 3): (rule, condition attribute, value, attribute, values, probability).
#: With the probability, the attribute is redrawn from the values (same weights): most seniors are
#: grey, not all, so "grey hair" says something about age without deciding it.
SOFT_COUPLINGS: tuple[tuple[str, str, Any, str, tuple, float], ...] = (
    ("seniors are often grey", "age_group", "senior", "hair_color", ("grey", "white"), 0.45),
    ("the middle-aged are sometimes grey", "age_group", "middle-aged", "hair_color", ("grey", "white"), 0.12),
)


def describe_couplings() -> list[str]:
    """The couplings as sentences, for dataset cards."""
    return [
        f"{rule}: if {cond} == {val!r} then {attr} in {list(allowed)!r}"
        for rule, cond, val, attr, allowed in COUPLINGS
    ] + [
        f"{rule}: if {cond} == {val!r}, with probability {p}, {attr} is redrawn from {list(values)!r}"
        for rule, cond, val, attr, values, p in SOFT_COUPLINGS
    ]


def visible_attributes(labels: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of `labels` that an image actually shows.

    Sunglasses hide the eyes (colour and open/closed); closed eyes hide the eye colour.
    """
    shown = dict(labels)
    if labels.get("eyewear") == "sunglasses":
        shown.pop("eye_color", None)
        shown.pop("eyes_open", None)
    if labels.get("eyes_open") is False:
        shown.pop("eye_color", None)
    return shown


def _normalise(attr: str, dist: Mapping[Any, float] | None) -> tuple[tuple, np.ndarray]:
    vocab = VOCABULARIES[attr]
    if dist is None:
        return vocab, np.full(len(vocab), 1.0 / len(vocab))
    if vocab == BOOLEAN:  # JSON object keys are strings: accept "true"/"false" for booleans
        bools = {"true": True, "false": False}
        dist = {bools.get(k.lower(), k) if isinstance(k, str) else k: w for k, w in dist.items()}
    unknown = [v for v in dist if v not in vocab]
    if unknown:
        raise ValueError(f"distributions[{attr!r}]: unknown values {unknown!r}; choose from {list(vocab)!r}")
    weights = np.array([float(dist.get(v, 0.0)) for v in vocab])
    if (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"distributions[{attr!r}]: weights must be >= 0 and not all zero, got {dict(dist)!r}")
    return vocab, weights / weights.sum()


class AttributeSampler:
    """Draws attribute labels: uniform by default, any attribute's distribution overridable.

    `distributions` maps an attribute to {value: weight}; values left out get weight 0.
    Couplings (`COUPLINGS`) are applied after drawing; see `describe_couplings`.
    """

    def __init__(self, distributions: Mapping[str, Mapping[Any, float]] | None = None):
        distributions = dict(distributions or {})
        unknown = [a for a in distributions if a not in VOCABULARIES]
        if unknown:
            raise ValueError(f"distributions: unknown attributes {unknown!r}; choose from {list(VOCABULARIES)!r}")
        self.tables = {a: _normalise(a, distributions.get(a)) for a in VOCABULARIES}

    def _draw(self, rng: np.random.Generator, attr: str, allowed: tuple | None = None):
        vocab, p = self.tables[attr]
        if allowed is not None:
            p = np.where([v in allowed for v in vocab], p, 0.0)
            if p.sum() == 0:  # the user's distribution excludes every allowed value: uniform on allowed
                p = np.array([float(v in allowed) for v in vocab])
            p = p / p.sum()
        return vocab[int(rng.choice(len(vocab), p=p))]

    def _couple(self, rng: np.random.Generator, labels: dict, soft: bool = False) -> dict:
        for _, cond, val, attr, values, p in SOFT_COUPLINGS if soft else ():
            if attr in labels and labels.get(cond) == val and rng.random() < p:
                vocab, weights = self.tables[attr]
                if any(w > 0 for v, w in zip(vocab, weights) if v in values):  # the user's weights allow it
                    labels[attr] = self._draw(rng, attr, values)
        for _, cond, val, attr, allowed in COUPLINGS:
            if attr in labels and labels.get(cond) == val and labels[attr] not in allowed:
                labels[attr] = self._draw(rng, attr, allowed)
        return labels

    def sample_identity(self, rng: np.random.Generator) -> dict:
        """The identity-stable labels of one person."""
        return self._couple(rng, {a: self._draw(rng, a) for a in IDENTITY_ATTRIBUTES}, soft=True)

    def sample_image(self, rng: np.random.Generator, identity_labels: Mapping[str, Any]) -> dict:
        """The per-image labels of one photo of a person with `identity_labels`."""
        labels = dict(identity_labels)
        labels.update({a: self._draw(rng, a) for a in IMAGE_ATTRIBUTES})
        labels = self._couple(rng, labels)
        return {a: labels[a] for a in IMAGE_ATTRIBUTES}

    def sample(self, rng: np.random.Generator) -> dict:
        """A full set of labels (identity-stable and per-image) for one face."""
        labels = self.sample_identity(rng)
        labels.update(self.sample_image(rng, labels))
        return labels
