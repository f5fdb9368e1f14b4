"""Captions in the style of FaceCaption-15M, from attribute labels by a small grammar.

FaceCaption-15M's captions were generated from ~40 detected attributes with templates and then
rewritten by an LLM; they read as one or two natural sentences that mention some attributes and
not others. This grammar imitates that: each attribute value has noun phrases ("short blond hair",
"a goatee") and predicates ("is smiling", "wears sunglasses") with synonyms; a template joins a
random subset in random order. Design choices:
- Deliberately incomplete: each visible attribute is mentioned with probability `p_mention`
  (absences such as "no glasses" with the lower `p_absent`), at least `min_mentions` in all.
- Only what the image shows is said (`attributes.visible_attributes`), and every phrase says
  exactly its label: `Caption.mentioned` lists what a caption states, so tests and evaluators can
  check it.
- No gender: the attributes have none, so captions say "person", "they", never "he" or "she".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from flip.data.synthetic.attributes import visible_attributes
from flip.data.synthetic.cues import cue_phrase

AGE_NOUNS = {
    "child": ("child", "kid", "young child"),
    "young adult": ("young adult", "young person", "person in their twenties"),
    "middle-aged": ("middle-aged person", "middle-aged adult", "person in middle age"),
    "senior": ("elderly person", "senior", "older person"),
}
GENERIC_NOUNS = ("person", "individual")
FACE_SHAPE_NPS = {
    "oval": ("an oval face", "an oval-shaped face"),
    "round": ("a round face", "a round, full face"),
    "square": ("a square face", "a square jaw"),
    "heart": ("a heart-shaped face", "a heart-shaped face with a pointed chin"),
    "long": ("a long face", "an elongated face"),
}
SKIN_WORDS = {
    "pale": ("pale", "porcelain"),
    "fair": ("fair", "light"),
    "medium": ("medium", "medium-toned"),
    "olive": ("olive", "olive-toned"),
    "brown": ("brown", "warm brown"),
    "dark": ("dark", "deep dark"),
}
EYE_WORDS = {"brown": ("brown",), "blue": ("blue",), "green": ("green",), "grey": ("grey", "gray")}
HAIR_WORDS = {
    "black": ("black", "jet-black"),
    "brown": ("brown", "chestnut"),
    "blond": ("blond", "blonde", "golden"),
    "red": ("red", "ginger", "auburn"),
    "grey": ("grey", "gray", "silver"),
    "white": ("white", "snow-white"),
}
EMOTION_ADJECTIVES = {
    "neutral": ("calm", "expressionless"),
    "happy": ("smiling", "happy", "cheerful"),
    "sad": ("sad", "unhappy"),
    "angry": ("angry", "scowling"),
    "surprised": ("surprised", "astonished"),
    "fearful": ("frightened", "fearful", "scared"),
    "disgusted": ("disgusted", "repulsed"),
}
EMOTION_NPS = {
    "neutral": ("a neutral expression", "a blank expression"),
    "happy": ("a big smile", "a happy expression"),
    "sad": ("a sad expression", "a sorrowful frown"),
    "angry": ("an angry scowl", "a furious look"),
    "surprised": ("a surprised look", "an astonished expression"),
    "fearful": ("a fearful look", "a frightened expression"),
    "disgusted": ("a look of disgust", "a disgusted grimace"),
}
EMOTION_PREDICATES = {
    "neutral": ("has a neutral expression", "looks calm"),
    "happy": ("is smiling", "looks happy", "is grinning"),
    "sad": ("looks sad", "appears unhappy"),
    "angry": ("looks angry", "is scowling"),
    "surprised": ("looks surprised", "appears astonished"),
    "fearful": ("looks scared", "appears frightened"),
    "disgusted": ("looks disgusted", "is grimacing in disgust"),
}
EYEWEAR_NPS = {
    "eyeglasses": ("glasses", "eyeglasses", "spectacles"),
    "sunglasses": ("sunglasses", "dark sunglasses", "shades"),
}
FACIAL_HAIR_NPS = {
    "moustache": ("a moustache", "a mustache"),
    "beard": ("a full beard", "a thick beard"),
    "goatee": ("a goatee",),
    "stubble": ("stubble", "a stubbly chin"),
}
#: absences, said rarely: attribute -> value -> (noun phrases, predicates)
ABSENT = {
    "eyewear": {"none": (("no glasses",), ("wears no glasses", "is not wearing glasses"))},
    "facial_hair": {"none": (("a clean-shaven face",), ("is clean-shaven",))},
    "hat": {False: (("no hat",), ("is bareheaded", "wears no hat"))},
    "earrings": {False: (("no earrings",), ("wears no earrings",))},
    "makeup": {False: (("no makeup",), ("wears no makeup",))},
    "eyes_open": {True: (("open eyes", "wide-open eyes"), ("has open eyes", "keeps their eyes open"))},
}
_PLURAL = {"has": "have", "is": "are", "looks": "look", "wears": "wear", "appears": "appear", "keeps": "keep"}


@dataclass
class Caption:
    """A caption, the attribute labels it states (a subset of the record's labels) and the cues it
    names (a subset of the record's rendered cues)."""

    text: str
    mentioned: dict[str, Any]
    cues: list[str] = field(default_factory=list)


#: class attribute -> the cues that say the same thing; when the class is mentioned these are not
CUES_OF_CLASS = {
    "facial_hair": ("beard", "moustache", "goatee", "stubble", "clean_shaven"),
    "eyewear": ("eyeglasses", "sunglasses"),
    "hat": ("hat",),
    "earrings": ("earrings",),
    "hair_style": ("bald", "bangs", "curly_hair", "long_hair"),
    "hair_color": ("grey_hair",),
    "eyes_open": ("closed_eyes",),
    "makeup": ("lipstick", "eyeshadow"),
}


def _choice(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def article(phrase: str) -> str:
    return ("an " if phrase[:1].lower() in "aeio" else "a ") + phrase


def join(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _phrases(attr: str, value, rng: np.random.Generator) -> tuple[str, str]:
    """(noun phrase, predicate) saying attr == value."""
    if attr in ABSENT and value in ABSENT[attr]:
        nps, preds = ABSENT[attr][value]
        return _choice(rng, nps), _choice(rng, preds)
    if attr == "face_shape":
        np_ = _choice(rng, FACE_SHAPE_NPS[value])
        return np_, "has " + np_
    if attr == "skin_tone":
        word = _choice(rng, SKIN_WORDS[value])
        np_ = _choice(rng, (f"{word} skin", article(f"{word} complexion")))
        return np_, "has " + np_
    if attr == "eye_color":
        np_ = f"{_choice(rng, EYE_WORDS[value])} eyes"
        return np_, "has " + np_
    if attr == "emotion":
        return _choice(rng, EMOTION_NPS[value]), _choice(rng, EMOTION_PREDICATES[value])
    if attr == "eyes_open":  # value False here (True is in ABSENT)
        return "closed eyes", _choice(rng, ("has their eyes closed", "is blinking with eyes shut"))
    if attr == "eyewear":
        np_ = _choice(rng, EYEWEAR_NPS[value])
        return np_, "wears " + np_
    if attr == "facial_hair":
        np_ = _choice(rng, FACIAL_HAIR_NPS[value])
        return np_, "has " + np_
    if attr == "hat":
        np_ = _choice(rng, ("a hat", "a hat on"))
        return np_, _choice(rng, ("wears a hat", "has a hat on"))
    if attr == "earrings":
        return "earrings", _choice(rng, ("wears earrings", "has earrings on"))
    if attr == "makeup":
        np_ = _choice(rng, ("makeup", "lipstick", "visible makeup"))
        return np_, "wears " + np_
    raise KeyError(attr)


def _hair_phrase(color: str | None, style: str | None, rng: np.random.Generator) -> str:
    word = _choice(rng, HAIR_WORDS[color]) + " " if color else ""
    if style == "bald":
        return "a bald head" + (f" with {word}hair at the sides" if color else "")
    if style is None:
        return f"{word}hair"
    if style.endswith("with bangs"):
        length = style.split()[0]
        return f"{length} {word}hair with " + _choice(rng, ("bangs", "a fringe"))
    return f"{style} {word}hair"


def _predicates(parts: list[tuple[str, str, str]], plural: bool = False) -> list[str]:
    """Predicates with a shared verb merged: 'has X, has Y' -> 'has X and Y' (at its first place)."""
    groups: dict[str, list[str]] = {}
    out: list[str | tuple] = []
    for _, np_, pred in parts:
        head, _, rest = pred.partition(" ")
        if head in ("has", "wears") and rest == np_:
            if head not in groups:
                groups[head] = []
                out.append(("group", head))
            groups[head].append(np_)
        else:
            out.append(pred)
    preds = [f"{item[1]} {join(groups[item[1]])}" if isinstance(item, tuple) else item for item in out]
    if plural:
        preds = [f"{_PLURAL.get(p.split(' ', 1)[0], p.split(' ', 1)[0])} {p.split(' ', 1)[1]}" for p in preds]
    return preds


def describe(labels: Mapping[str, Any], rng: np.random.Generator, p_mention: float = 0.5,
             p_absent: float = 0.12, min_mentions: int = 2, cues: list[str] | None = None, p_cue: float = 0.4,
             p_cues_only: float = 0.0, heldout: bool = False) -> tuple[str, list[tuple[str, str, str]], dict]:
    """Choose what to say about a face: (subject noun, [(attribute, noun phrase, predicate)], mentioned).

    The age group goes into the subject noun; hair colour and style merge into one phrase. `cues`
    (the face's rendered cues) are named each with probability `p_cue`, at least one; with
    probability `p_cues_only` (always when `heldout`) the caption names cues and no class word, and
    `heldout` draws the cue words from the held-out phrasing family. Named cues come back in
    mentioned["_cues"].
    """
    cues_only = bool(cues) and (heldout or rng.random() < p_cues_only)
    if cues_only:
        p_mention, p_absent, min_mentions = 0.0, 0.0, 0
    shown = visible_attributes({k: v for k, v in labels.items() if v is not None})
    candidates = []
    for attr, value in shown.items():
        absent = attr in ABSENT and value in ABSENT[attr]
        if attr == "facial_hair" and value == "none" and shown.get("age_group") == "child":
            continue  # "a clean-shaven child" is odd
        candidates.append((attr, value, p_absent if absent else p_mention))
    order = rng.permutation(len(candidates))
    chosen = [candidates[i][:2] for i in order if rng.random() < candidates[i][2]]
    if len(chosen) < min_mentions:  # top up from present (not absent) attributes
        rest = [candidates[i][:2] for i in order if candidates[i][:2] not in chosen and candidates[i][2] == p_mention]
        chosen += rest[: min_mentions - len(chosen)]
    mentioned = dict(chosen)
    age = mentioned.pop("age_group", None)
    subject = _choice(rng, AGE_NOUNS[age]) if age else _choice(rng, GENERIC_NOUNS)
    parts: list[tuple[str, str, str]] = []
    hair_done = False
    for attr, value in chosen:
        if attr == "age_group":
            continue
        if attr in ("hair_color", "hair_style"):
            if hair_done:
                continue
            hair_done = True
            np_ = _hair_phrase(mentioned.get("hair_color"), mentioned.get("hair_style"), rng)
            parts.append(("hair", np_, "is bald" if np_ == "a bald head" else "has " + np_))
            continue
        parts.append((attr, *_phrases(attr, value, rng)))
    said = []
    if cues:
        blocked = {c for a in mentioned for c in CUES_OF_CLASS.get(a, ())}
        if "hair" in {p[0] for p in parts}:
            blocked |= set(CUES_OF_CLASS["hair_style"]) | set(CUES_OF_CLASS["hair_color"])
        options = [c for c in cues if c not in blocked]
        order = rng.permutation(len(options))
        said = [options[i] for i in order if rng.random() < p_cue]
        least = 2 if cues_only else 1
        if len(said) < least:
            said += [options[i] for i in order if options[i] not in said][: least - len(said)]
        said = said[:4]  # a caption stays one or two sentences
        cue_parts = [(f"cue:{c}", np_ := cue_phrase(c, rng, heldout), "has " + np_) for c in said]
        for part in cue_parts:  # cues go in among the class phrases, in random places
            parts.insert(int(rng.integers(len(parts) + 1)), part)
    if age:
        mentioned["age_group"] = age
    mentioned["_cues"] = sorted(said)
    return subject, parts, mentioned


def build_caption(labels: Mapping[str, Any], rng: np.random.Generator, p_mention: float = 0.5,
                  p_absent: float = 0.12, min_mentions: int = 2, cues: list[str] | None = None,
                  p_cue: float = 0.4, p_cues_only: float = 0.3, heldout: bool = False) -> Caption:
    """One natural caption for a face with these labels and rendered `cues` (see `describe`)."""
    subject, parts, mentioned = describe(labels, rng, p_mention, p_absent, min_mentions, cues, p_cue,
                                         p_cues_only, heldout)
    said = mentioned.pop("_cues")
    emotion = mentioned.get("emotion")
    nps = [p[1] for p in parts]
    preds = _predicates(parts)
    template = int(rng.integers(6))
    if template == 0 and emotion is not None:  # emotion as an adjective on the subject
        rest = [p[1] for p in parts if p[0] != "emotion"]
        head = article(f"{_choice(rng, EMOTION_ADJECTIVES[emotion])} {subject}")
        text = head[0].upper() + head[1:] + (f" with {join(rest)}." if rest else ".")
    elif template in (0, 1):
        text = article(subject).capitalize() + (f" with {join(nps)}." if nps else ".")
    elif template == 2:
        lead = _choice(rng, ("This", "The"))
        text = f"{lead} {subject} {join(preds)}." if preds else f"{article(subject).capitalize()}."
    elif template == 3 and len(parts) >= 2:
        k = int(rng.integers(1, len(parts)))
        text = (f"{article(subject).capitalize()} with {join(nps[:k])}. "
                f"They {join(_predicates(parts[k:], plural=True))}.")
    elif template == 4:
        lead = _choice(rng, ("Close-up of", "A photo of", "Portrait of"))
        text = f"{lead} {article(subject)}" + (f" who {join(preds)}." if preds else ".")
    else:
        lead = _choice(rng, ("The face of", "A headshot of"))
        text = f"{lead} {article(subject)}" + (f": {join(nps)}." if nps else ".")
    return Caption(text=text, mentioned=mentioned, cues=said)


#: attack -> phrase families for captions of presentation attacks, as the web and CLIPC8 describe
#: them: what is shown, then the tell-tale detail. `{who}` takes the presented person. The last
#: family is held out of training captions, like the cues' (`cues.HELDOUT`).
ATTACK_PHRASES: dict[str, tuple[tuple[str, ...], ...]] = {
    "printed_photo": (("a printed photo of {who} held up to the camera, its paper edge visible",
                       "a paper printout of {who}, with a white border and fingers holding it"),
                      ("a photograph of {who} printed on paper, halftone dots showing",
                       "a print of {who} held in front of the lens"),
                      ("a hardcopy snapshot of {who} brandished before the webcam",)),
    "screen_replay": (("{who} shown on a phone screen held up to the camera",
                       "a replay of {who} on a tablet, the screen's bezel visible"),
                      ("a video of {who} played back on a monitor, with moire stripes",
                       "a screen displaying {who}, glare on the glass"),
                      ("a re-filmed display depicting {who}",)),
    "dark_environment": (("a very dark, grainy shot of {who}", "{who} barely visible in the dark, heavy noise"),
                         ("an underexposed, noisy photo of {who} in a dim room",
                          "a dim capture of {who} with a colour cast"),
                         ("a murky, shadowy frame depicting {who}",)),
    "id_card": (("an ID card with a small photo of {who}, text lines beside it",
                 "a tampered identity card showing {who}"),
                ("a photo of {who} pasted onto an identity document",
                 "an ID card held to the camera, its picture of {who} replaced"),
                ("a doctored passport-style credential depicting {who}",)),
    "paper_mask": (("a paper mask of {who} worn over someone's face, eye holes cut out",
                    "a cut-out paper face of {who} held over a real head"),
                   ("a flat printed mask of {who} with white cut edges",
                    "someone wearing a paper cut-out of {who}"),
                   ("a cardboard disguise depicting {who}",)),
    "3d_mask": (("a plastic 3D mask of {who} with a shiny surface and hollow eyes",
                 "a rigid mask shaped like {who}, a seam at its edge"),
                ("a moulded mask of {who} worn over a head, glossy and smooth",
                 "a silicone-like mask of {who}"),
                ("a prosthetic visage depicting {who}",)),
    "warped_print": (("a curved, bent print of {who} held up to the camera",
                      "a printed photo of {who} bent into a curve"),
                     ("a warped paper photo of {who}, shading across the fold",
                      "a print of {who} curled toward the lens"),
                     ("a buckled hardcopy depicting {who}",)),
    "face_swap": (("a digitally swapped face of {who}, a blurry seam around the face",
                   "a face-swap of {who} with mismatched skin colour"),
                  ("an edited image where {who}'s face was pasted onto another head",
                   "a deepfake of {who}, the face edges blended"),
                  ("a synthetic composite depicting {who}",)),
}


def attack_caption(attack: str, labels: Mapping[str, Any], rng: np.random.Generator, p_mention: float = 0.3,
                   heldout: bool = False) -> str:
    """A caption of a presentation attack showing a face with these labels."""
    subject, parts, _ = describe(labels, rng, p_mention=p_mention, min_mentions=1)
    who = article(subject) + (f" with {join([p[1] for p in parts[:2]])}" if parts else "")
    families = ATTACK_PHRASES[attack]
    options = families[-1] if heldout else [p for fam in families[:-1] for p in fam]
    text = options[int(rng.integers(len(options)))].format(who=who)
    return text[0].upper() + text[1:] + "."
