"""How a face's expression is drawn: the emotion table, the photo's gains, and the thresholds the
renderer and the cue labels share.

A leaf of the synthetic world (it imports nothing of it), so that the renderer (`render`) and the
labels of what a picture shows (`cues.rendered_cues`) read the same numbers without importing
each other.
"""

from __future__ import annotations

BUSHY_BROWS = 1.15  # brow_thickness above this draws bushy brows

#: emotion -> how it moves the face. brow_raise/brow_inner: upward shift of the whole brow / of its
#: inner end (face units); brow_pinch: inner ends pulled to the midline; eye_open: upper-lid height
#: (1 = neutral); eye_lower: lower lid (below 1 = raised cheeks); mouth_curve: corners up (+) or
#: down (-); mouth_open: gap between the lips; mouth_width: relative; open_up: share of the gap
#: above the lip line; teeth: which rows show; lip: lip thickness; asym: one corner raised (sneer).
EXPRESSIONS: dict[str, dict] = {
    "neutral": dict(brow_raise=0.0, brow_inner=0.0, brow_pinch=0.0, eye_open=1.0, eye_lower=1.0,
                    mouth_curve=0.0, mouth_open=0.0, mouth_width=1.0, open_up=0.3, teeth="", lip=1.0, asym=0.0),
    "happy": dict(brow_raise=0.03, brow_inner=0.0, brow_pinch=0.0, eye_open=0.8, eye_lower=0.45,
                  mouth_curve=0.21, mouth_open=0.24, mouth_width=1.28, open_up=0.05, teeth="upper", lip=0.9, asym=0.0),
    "sad": dict(brow_raise=0.0, brow_inner=0.17, brow_pinch=0.03, eye_open=0.7, eye_lower=1.0,
                mouth_curve=-0.22, mouth_open=0.0, mouth_width=0.95, open_up=0.3, teeth="", lip=1.1, asym=0.0),
    "angry": dict(brow_raise=-0.06, brow_inner=-0.2, brow_pinch=0.07, eye_open=0.65, eye_lower=0.8,
                  mouth_curve=-0.09, mouth_open=0.0, mouth_width=1.05, open_up=0.5, teeth="", lip=0.45, asym=0.0),
    "surprised": dict(brow_raise=0.16, brow_inner=0.0, brow_pinch=0.0, eye_open=1.45, eye_lower=1.2,
                      mouth_curve=0.0, mouth_open=0.42, mouth_width=0.55, open_up=0.4, teeth="", lip=0.9, asym=0.0),
    "fearful": dict(brow_raise=0.1, brow_inner=0.12, brow_pinch=0.05, eye_open=1.4, eye_lower=1.2,
                    mouth_curve=-0.07, mouth_open=0.2, mouth_width=1.22, open_up=0.45, teeth="both", lip=0.8, asym=0.0),
    "disgusted": dict(brow_raise=-0.07, brow_inner=-0.07, brow_pinch=0.04, eye_open=0.6, eye_lower=0.6,
                      mouth_curve=-0.06, mouth_open=0.1, mouth_width=1.0, open_up=0.6, teeth="upper", lip=1.0,
                      asym=0.22),
}

_GAINS = {"brow_raise": "brow_gain", "brow_inner": "brow_gain", "brow_pinch": "brow_gain", "eye_open": "eye_gain",
          "eye_lower": "eye_gain", "mouth_curve": "mouth_gain", "mouth_open": "mouth_gain",
          "mouth_width": "mouth_gain", "open_up": None, "lip": "mouth_gain", "asym": "mouth_gain"}


def effective_expression(face) -> dict:
    """The expression as drawn: the emotion's offsets from neutral scaled by the photo's gains
    (brows, eyes, mouth), lips left ajar, and narrow eyes from the person. The cue labels
    (`cues.rendered_cues`) read these same numbers."""
    base, target = EXPRESSIONS["neutral"], EXPRESSIONS[face.emotion]
    e = {}
    for k, v in target.items():
        gain = _GAINS.get(k, "")
        e[k] = v if not gain else base[k] + getattr(face, gain) * (v - base[k])
    e["mouth_open"] = max(e["mouth_open"], 0.0) + face.mouth_ajar
    if face.person.narrow_eyes:
        e["eye_open"] *= 0.62
    if e["mouth_open"] < 0.1:
        e["teeth"] = ""
    return e
