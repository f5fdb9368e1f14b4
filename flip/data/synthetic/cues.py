"""Cues: what a face visibly shows, below the level of its class labels (world version 3).

Real face captions (FaceCaption-15M) are built from CelebA's 40 cue-level attributes (bags under the
eyes, arched eyebrows, a receding hairline, ...), not from class words. So the synthetic world draws
its class attributes *out of cues that vary within a class*: a senior usually, not always, has grey
hair, wrinkles and bags under the eyes; surprise is raised brows, an open mouth and wide eyes, each
to its own degree. A cue word then carries information beyond the class word, which is what makes
classification by description testable here.

Design choices
- Identity cues (wrinkle level, bags, greying temples, receding hairline, double chin, chubby
  cheeks, high cheekbones, sideburns, narrow eyes) are drawn once per person with probabilities
  that depend on the age group (`IDENTITY_CUE_RATES`); image cues (rosy cheeks, lipstick, necklace,
  necktie, how strongly the expression shows in brows, eyes and mouth, a mouth left ajar) per photo.
- `rendered_cues` lists the cues a picture actually shows, from the same numbers the renderer
  draws with (`expression.effective_expression`), hiding what sunglasses, hats and beards cover.
- `celeba_labels` spells the picture in CelebA's 40 attributes. Two cannot be drawn honestly and are
  None for every face (`UNDRAWN` says why); hidden ones are None for that face.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flip.data.loaders.celeba import CELEBA_ATTRIBUTES

from flip.data.synthetic.expression import BUSHY_BROWS, effective_expression

#: age group -> probability of each identity cue (wrinkles: probabilities of levels 0, 1, 2)
IDENTITY_CUE_RATES: dict[str, dict[str, Any]] = {
    "child": dict(wrinkles=(1.0, 0.0, 0.0), bags_under_eyes=0.0, greying=0.0, receding_hairline=0.0,
                  double_chin=0.0, chubby=0.3),
    "young adult": dict(wrinkles=(0.85, 0.15, 0.0), bags_under_eyes=0.1, greying=0.03, receding_hairline=0.06,
                        double_chin=0.07, chubby=0.15),
    "middle-aged": dict(wrinkles=(0.25, 0.6, 0.15), bags_under_eyes=0.35, greying=0.45, receding_hairline=0.3,
                        double_chin=0.25, chubby=0.2),
    "senior": dict(wrinkles=(0.1, 0.3, 0.6), bags_under_eyes=0.6, greying=0.6, receding_hairline=0.5,
                   double_chin=0.35, chubby=0.2),
}
#: age-independent identity cues (sideburns only on adults)
OTHER_IDENTITY_CUES = dict(high_cheekbones=0.35, sideburns=0.2, narrow_eyes=0.2)
#: image cues: probability per photo
IMAGE_CUE_RATES = dict(rosy_cheeks=0.2, lipstick_with_makeup=0.85, necklace=0.2, necktie=0.15, mouth_ajar=0.15,
                       wrinkled_nose=0.7)


def sample_identity_cues(rng: np.random.Generator, labels: dict) -> dict:
    """Identity cues for a person with these identity labels (see `IDENTITY_CUE_RATES`)."""
    rates = IDENTITY_CUE_RATES[labels["age_group"]]
    adult = labels["age_group"] != "child"
    return dict(
        wrinkles=int(rng.choice(3, p=rates["wrinkles"])),
        bags_under_eyes=bool(rng.random() < rates["bags_under_eyes"]),
        greying=bool(rng.random() < rates["greying"]),
        receding_hairline=bool(rng.random() < rates["receding_hairline"]),
        double_chin=bool(rng.random() < rates["double_chin"]),
        chubby=bool(rng.random() < rates["chubby"]),
        high_cheekbones=bool(rng.random() < OTHER_IDENTITY_CUES["high_cheekbones"]),
        sideburns=bool(adult and rng.random() < OTHER_IDENTITY_CUES["sideburns"]),
        narrow_eyes=bool(rng.random() < OTHER_IDENTITY_CUES["narrow_eyes"]),
    )


def sample_image_cues(rng: np.random.Generator, labels: dict) -> dict:
    """Image cues for a photo with these labels: accessories, rosy cheeks and how strongly the
    expression shows in each part of the face (gains multiply the emotion's offset from neutral)."""
    adult = labels["age_group"] != "child"
    mouth_gain = float(rng.uniform(0.25, 1.25))
    if labels["emotion"] in ("surprised", "fearful") and rng.random() < 0.2:
        mouth_gain = 0.0  # surprise with the mouth closed
    return dict(
        rosy_cheeks=bool(rng.random() < IMAGE_CUE_RATES["rosy_cheeks"] * (2 if not adult else 1)),
        lipstick=bool(rng.random() < IMAGE_CUE_RATES["lipstick_with_makeup"]),
        necklace=bool(rng.random() < IMAGE_CUE_RATES["necklace"]),
        necktie=bool(adult and rng.random() < IMAGE_CUE_RATES["necktie"]),
        brow_gain=float(rng.uniform(0.35, 1.25)),
        eye_gain=float(rng.uniform(0.35, 1.25)),
        mouth_gain=mouth_gain,
        mouth_ajar=float(rng.uniform(0.07, 0.14)) if rng.random() < IMAGE_CUE_RATES["mouth_ajar"] else 0.0,
        wrinkled_nose=bool(rng.random() < IMAGE_CUE_RATES["wrinkled_nose"]),
    )


#: Every cue key `rendered_cues` can return, with what it draws.
CUES: dict[str, str] = {
    "wrinkles": "forehead lines and folds from nose to mouth",
    "deep_wrinkles": "several forehead lines, crow's feet and lines beside the mouth",
    "smooth_skin": "no wrinkles at all (children and young adults)",
    "bags_under_eyes": "a dark, puffy arc under each eye",
    "grey_temples": "grey patches at the temples in otherwise coloured hair",
    "grey_hair": "grey or white hair",
    "receding_hairline": "the hairline drawn back at the temples",
    "double_chin": "a second curve under the chin",
    "chubby": "full cheeks and a wider lower face",
    "high_cheekbones": "shading below prominent cheekbones",
    "sideburns": "strips of hair in front of the ears",
    "rosy_cheeks": "red, round patches on the cheeks",
    "lipstick": "saturated lip colour",
    "eyeshadow": "coloured upper eyelids",
    "necklace": "a string of beads across the neck",
    "necktie": "a collar and a tie below the chin",
    "arched_eyebrows": "brows with a high arch",
    "bushy_eyebrows": "thick brows",
    "big_lips": "thick lips",
    "big_nose": "a wide nose",
    "pointy_nose": "a narrow, pointed nose",
    "raised_brows": "brows lifted well above the eyes",
    "inner_brows_raised": "the inner ends of the brows lifted",
    "furrowed_brows": "brows lowered and pulled together",
    "wide_eyes": "eyes opened wide, white above the iris",
    "narrow_eyes": "eyes half closed, narrowed",
    "closed_eyes": "eyelids shut",
    "mouth_open": "lips parted, the inside of the mouth showing",
    "smile": "mouth corners turned up",
    "frown": "mouth corners turned down",
    "teeth": "teeth showing",
    "wrinkled_nose": "lines across the bridge of the nose",
    "sneer": "one corner of the upper lip raised",
    "beard": "a full beard",
    "moustache": "hair above the upper lip",
    "goatee": "a beard on the chin only",
    "stubble": "dark dots of short hair on the lower face",
    "clean_shaven": "no facial hair (adults)",
    "eyeglasses": "clear lenses in frames",
    "sunglasses": "dark lenses",
    "hat": "a hat",
    "earrings": "earrings",
    "bald": "a bare scalp",
    "bangs": "a fringe over the forehead",
    "curly_hair": "curly hair",
    "long_hair": "hair down beside the face",
}


def rendered_cues(face, nuisance=None) -> list[str]:
    """The cues a render of `face` shows (keys of `CUES`), sorted. Hidden ones are left out:
    sunglasses hide the eyes and what is under them, a hat the hairline, a beard the chin."""
    p, e = face.person, effective_expression(face)
    sun = face.eyewear == "sunglasses"
    eyes_seen = face.eyes_open and not sun
    hair_grey = p.hair_color in ("grey", "white")
    shown = {
        "wrinkles": p.wrinkles >= 1,
        "deep_wrinkles": p.wrinkles == 2,
        "smooth_skin": p.wrinkles == 0 and p.age_group in ("child", "young adult"),
        "bags_under_eyes": p.bags_under_eyes and not sun,
        "grey_temples": p.greying and not hair_grey and p.age_group != "child",
        "grey_hair": hair_grey,
        "receding_hairline": p.receding_hairline and p.hair_style != "bald" and not face.hat,
        "double_chin": p.double_chin and face.facial_hair != "beard",
        "chubby": p.chubby,
        "high_cheekbones": p.high_cheekbones and face.facial_hair != "beard",
        "sideburns": p.sideburns and face.facial_hair != "beard",
        "rosy_cheeks": face.rosy_cheeks,
        "lipstick": face.makeup and face.lipstick,
        "eyeshadow": face.makeup and not sun,
        "necklace": face.necklace,
        "necktie": face.necktie,
        "arched_eyebrows": p.brow_shape == "arched",
        "bushy_eyebrows": p.brow_thickness > BUSHY_BROWS,
        "big_lips": p.lip_thickness > BIG_LIPS and face.facial_hair != "beard",
        "big_nose": p.nose_shape in ("wide", "round"),
        "pointy_nose": p.nose_shape == "narrow",
        "raised_brows": e["brow_raise"] >= 0.07,
        "inner_brows_raised": e["brow_inner"] >= 0.08,
        "furrowed_brows": e["brow_inner"] <= -0.06 and e["brow_pinch"] >= 0.03,
        "wide_eyes": eyes_seen and e["eye_open"] >= 1.2,
        "narrow_eyes": eyes_seen and e["eye_open"] <= 0.62,
        "closed_eyes": not face.eyes_open and not sun,
        "mouth_open": e["mouth_open"] >= 0.06,
        "smile": e["mouth_curve"] >= 0.08,
        "frown": e["mouth_curve"] <= -0.1,
        "teeth": bool(e["teeth"]) and e["mouth_open"] >= 0.1,
        "wrinkled_nose": face.emotion == "disgusted" and face.wrinkled_nose,
        "sneer": e["asym"] >= 0.1,
        "beard": face.facial_hair == "beard",
        "moustache": face.facial_hair == "moustache",
        "goatee": face.facial_hair == "goatee",
        "stubble": face.facial_hair == "stubble",
        "clean_shaven": face.facial_hair == "none" and p.age_group != "child",
        "eyeglasses": face.eyewear == "eyeglasses",
        "sunglasses": sun,
        "hat": face.hat,
        "earrings": face.earrings,
        "bald": p.hair_style == "bald",
        "bangs": p.hair_style.endswith("with bangs"),
        "curly_hair": p.hair_style == "curly",
        "long_hair": p.hair_style.startswith("long"),
    }
    return sorted(k for k, v in shown.items() if v)


BIG_LIPS = 1.12  # lip_thickness above this draws big lips
BLURRY = 0.008  # nuisance blur (fraction of the image side) from which a photo counts as blurry

#: CelebA's 40 attributes, spelled as CelebA spells them (the CelebA loader's list).
CELEBA_40 = CELEBA_ATTRIBUTES
#: the CelebA attributes the world does not draw, and why (None for every face)
UNDRAWN = {
    "Attractive": "subjective: a judgement about a person, not something visible that can be drawn",
    "Male": "the synthetic world has no gender by design (captions say 'person', never 'he' or 'she'), "
            "so there is nothing honest to draw or label",
}


def celeba_labels(face, nuisance=None) -> dict[str, bool | None]:
    """`face` in CelebA's 40 attributes: True/False, None where undrawn (`UNDRAWN`) or hidden."""
    p = face.person
    cues = set(rendered_cues(face, nuisance))
    sun = face.eyewear == "sunglasses"
    hidden_eyes = sun or not face.eyes_open
    out = {
        "5_o_Clock_Shadow": face.facial_hair == "stubble",
        "Arched_Eyebrows": p.brow_shape == "arched",
        "Bags_Under_Eyes": None if sun else p.bags_under_eyes,
        "Bald": p.hair_style == "bald",
        "Bangs": p.hair_style.endswith("with bangs"),
        "Big_Lips": None if face.facial_hair == "beard" else "big_lips" in cues,
        "Big_Nose": "big_nose" in cues,
        "Black_Hair": p.hair_color == "black",
        "Blond_Hair": p.hair_color == "blond",
        "Blurry": bool(nuisance is not None and nuisance.blur >= BLURRY),
        "Brown_Hair": p.hair_color == "brown",
        "Bushy_Eyebrows": "bushy_eyebrows" in cues,
        "Chubby": p.chubby,
        "Double_Chin": None if face.facial_hair == "beard" else p.double_chin,
        "Eyeglasses": face.eyewear != "none",  # CelebA counts sunglasses as eyeglasses
        "Goatee": face.facial_hair == "goatee",
        "Gray_Hair": p.hair_color in ("grey", "white"),
        "Heavy_Makeup": face.makeup,
        "High_Cheekbones": None if face.facial_hair == "beard" else p.high_cheekbones,
        "Mouth_Slightly_Open": "mouth_open" in cues,
        "Mustache": face.facial_hair in ("moustache", "goatee", "beard"),  # hair above the lip is drawn for all three
        "Narrow_Eyes": None if hidden_eyes else "narrow_eyes" in cues,
        "No_Beard": face.facial_hair not in ("beard", "goatee"),
        "Oval_Face": p.face_shape == "oval",
        "Pale_Skin": p.skin_tone == "pale",
        "Pointy_Nose": "pointy_nose" in cues,
        "Receding_Hairline": None if (face.hat or p.hair_style == "bald") else p.receding_hairline,
        "Rosy_Cheeks": face.rosy_cheeks,
        "Sideburns": None if face.facial_hair == "beard" else p.sideburns,
        "Smiling": "smile" in cues,
        "Straight_Hair": p.hair_style not in ("curly", "bald"),
        "Wavy_Hair": p.hair_style == "curly",
        "Wearing_Earrings": face.earrings,
        "Wearing_Hat": face.hat,
        "Wearing_Lipstick": face.makeup and face.lipstick,
        "Wearing_Necklace": face.necklace,
        "Wearing_Necktie": face.necktie,
        "Young": p.age_group in ("child", "young adult"),
    }
    out.update({a: None for a in UNDRAWN})
    return {a: (None if out[a] is None else bool(out[a])) for a in CELEBA_40}


__all__ = ["CELEBA_40", "CUES", "IDENTITY_CUE_RATES", "IMAGE_CUE_RATES", "UNDRAWN", "celeba_labels",
           "rendered_cues", "sample_identity_cues", "sample_image_cues"]


# --------------------------------------------------------------------------- the words for cues

#: cue -> phrase families (noun phrases). Captions draw from the training families; the last
#: family, `HELDOUT`, never appears in a training caption: it is the held-out phrasing that the
#: rephrased prompt set and the held-out-phrasing retrieval test use. Written before measuring.
CUE_PHRASES: dict[str, tuple[tuple[str, ...], ...]] = {
    "wrinkles": (("lines on the forehead", "a few wrinkles", "laugh lines around the mouth"),
                 ("a lined face", "wrinkled skin"),
                 ("a weathered countenance",)),
    "deep_wrinkles": (("deep wrinkles", "crow's feet at the corners of the eyes", "a deeply lined forehead"),
                      ("heavily wrinkled skin", "deep folds around the mouth"),
                      ("a craggy, timeworn visage",)),
    "smooth_skin": (("smooth skin", "an unlined face"),
                    ("skin without wrinkles", "a smooth forehead"),
                    ("a dewy, youthful countenance",)),
    "bags_under_eyes": (("bags under the eyes", "dark circles under the eyes"),
                        ("puffy eyes", "tired-looking eyes with dark rings"),
                        ("swollen pouches beneath the lids",)),
    "grey_temples": (("grey temples", "greying at the temples"),
                     ("streaks of grey above the ears", "hair turning grey at the sides"),
                     ("silvering sideswept tufts",)),
    "grey_hair": (("grey hair", "silver hair", "white hair"),
                  ("greying hair", "hair gone grey"),
                  ("hoary locks",)),
    "receding_hairline": (("a receding hairline", "a high, receding hairline"),
                          ("a hairline pulled back at the temples", "thinning hair at the temples"),
                          ("an M-form retreat of the scalp line",)),
    "double_chin": (("a double chin", "a fleshy chin"),
                    ("a soft fold under the chin",),
                    ("a jowly underjaw",)),
    "chubby": (("chubby cheeks", "a chubby face"),
               ("full, plump cheeks", "a round, fleshy face"),
               ("a portly, well-padded countenance",)),
    "high_cheekbones": (("high cheekbones", "prominent cheekbones"),
                        ("sculpted cheekbones", "strong cheekbones"),
                        ("chiselled zygomatic contours",)),
    "sideburns": (("sideburns", "long sideburns"),
                  ("hair growing down in front of the ears",),
                  ("mutton-chop whiskers",)),
    "rosy_cheeks": (("rosy cheeks", "red cheeks"),
                    ("flushed cheeks", "pink, glowing cheeks"),
                    ("ruddy, blushing jowls",)),
    "lipstick": (("lipstick", "red lips"),
                 ("painted lips", "bright lipstick"),
                 ("a rouged, lacquered pout",)),
    "eyeshadow": (("eyeshadow", "coloured eyelids"),
                  ("eye makeup", "eyeshadow on the lids"),
                  ("tinted lids",)),
    "necklace": (("a necklace", "a beaded necklace"),
                 ("a string of beads around the neck", "a chain of beads at the throat"),
                 ("a pendant strand draped at the collarbone",)),
    "necktie": (("a necktie", "a shirt and tie"),
                ("a tie knotted at the collar", "a collared shirt with a tie"),
                ("a cravat",)),
    "arched_eyebrows": (("arched eyebrows", "high-arched brows"),
                        ("curved eyebrows", "eyebrows with a strong arch"),
                        ("vaulted brow lines",)),
    "bushy_eyebrows": (("bushy eyebrows", "thick eyebrows"),
                       ("heavy brows", "dense, thick brows"),
                       ("shaggy superciliary tufts",)),
    "big_lips": (("full lips", "big lips"),
                 ("thick lips", "a full mouth"),
                 ("pillowy, voluptuous lips",)),
    "big_nose": (("a big nose", "a wide nose"),
                 ("a large nose", "a broad nose"),
                 ("a bulbous schnozz",)),
    "pointy_nose": (("a pointy nose", "a narrow nose"),
                    ("a thin, pointed nose", "a sharp nose"),
                    ("an aquiline beak",)),
    "raised_brows": (("raised eyebrows", "eyebrows lifted high"),
                     ("brows pulled up", "lifted eyebrows"),
                     ("upflung brow lines",)),
    "inner_brows_raised": (("eyebrows slanting up in the middle", "brows drawn up at the inner ends"),
                           ("worried eyebrows", "upturned inner brows"),
                           ("plaintively tilted brow lines",)),
    "furrowed_brows": (("furrowed brows", "knitted eyebrows"),
                       ("eyebrows pulled down and together", "a frowning brow"),
                       ("a glowering, beetled brow",)),
    "wide_eyes": (("wide eyes", "eyes opened wide"),
                  ("big, wide-open eyes", "staring eyes"),
                  ("saucer-sized, goggling peepers",)),
    "narrow_eyes": (("narrow eyes", "half-closed eyes"),
                    ("squinting eyes", "narrowed eyes"),
                    ("slitted peepers",)),
    "closed_eyes": (("closed eyes", "shut eyes"),
                    ("eyes closed", "lowered eyelids"),
                    ("sealed lids",)),
    "mouth_open": (("an open mouth", "parted lips", "a slightly open mouth"),
                   ("lips apart", "a mouth hanging open"),
                   ("an agape maw",)),
    "smile": (("a smile", "a wide smile", "a grin"),
              ("a toothy grin", "upturned lips"),
              ("a beaming countenance",)),
    "frown": (("a frown", "a downturned mouth"),
              ("turned-down lips", "a mouth curving down"),
              ("a dour, drooping pout",)),
    "teeth": (("visible teeth", "teeth showing"),
              ("bared teeth",),
              ("exposed incisors",)),
    "wrinkled_nose": (("a wrinkled nose", "a scrunched-up nose"),
                      ("a nose crinkled up",),
                      ("a puckered snout",)),
    "sneer": (("a sneer", "a curled lip"),
              ("one side of the lip raised",),
              ("a lopsided, contemptuous smirk",)),
    "beard": (("a full beard", "a thick beard"), ("a beard",), ("shaggy jowl whiskers",)),
    "moustache": (("a moustache", "a mustache"), ("hair on the upper lip",), ("a whiskered philtrum",)),
    "goatee": (("a goatee",), ("a small chin beard",), ("a tufted chin",)),
    "stubble": (("stubble", "a stubbly chin"), ("a five o'clock shadow", "an unshaved jaw"),
                ("bristly scruff",)),
    "clean_shaven": (("a clean-shaven face",), ("a shaved face",), ("a bare, razored jaw",)),
    "eyeglasses": (("glasses", "eyeglasses", "spectacles"), ("clear glasses",), ("bifocals",)),
    "sunglasses": (("sunglasses", "dark sunglasses", "shades"), ("dark glasses",), ("tinted goggles",)),
    "hat": (("a hat", "a cap"), ("a beanie", "headwear"), ("a bonnet",)),
    "earrings": (("earrings",), ("hoops in the ears", "ear jewellery"), ("lobe ornaments",)),
    "bald": (("a bald head",), ("a shaved head", "no hair on top"), ("a hairless pate",)),
    "bangs": (("bangs", "a fringe"), ("hair cut across the forehead",), ("a forelock",)),
    "curly_hair": (("curly hair", "curls"), ("wavy hair", "a head of curls"), ("frizzy ringlets",)),
    "long_hair": (("long hair",), ("hair down to the shoulders",), ("flowing tresses",)),
}
HELDOUT = -1  # index of the held-out family in each CUE_PHRASES entry


def cue_phrase(cue: str, rng: np.random.Generator, heldout: bool = False) -> str:
    """One phrase for `cue`: from the training families, or from the held-out family."""
    families = CUE_PHRASES[cue]
    if heldout:
        options = families[HELDOUT]
    else:
        options = [p for fam in families[:HELDOUT] for p in fam]
    return options[int(rng.integers(len(options)))]
