"""Questions and short answers about a face's attributes, for visual question answering.

Each attribute has several phrasings of one question; the answer is the label itself (multi-valued
attributes: the vocabulary word, e.g. "middle-aged", "sunglasses", "none"; booleans: "yes" or
"no"), so answers can be scored by exact match and mapped back to labels with `answer_to_label`.
Only attributes the image shows are asked about (`attributes.visible_attributes`): no eye colour
behind sunglasses or closed lids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from flip.data.synthetic.attributes import VOCABULARIES, visible_attributes

QUESTIONS: dict[str, tuple[str, ...]] = {
    "face_shape": ("What shape is this person's face?", "Describe the shape of the face.",
                   "Is the face oval, round, square, heart-shaped or long?"),
    "skin_tone": ("What is this person's skin tone?", "How would you describe the skin tone?",
                  "Which skin tone does this person have?"),
    "eye_color": ("What colour are this person's eyes?", "What is the eye colour?", "Which colour are the eyes?"),
    "hair_color": ("What colour is this person's hair?", "What is the hair colour?", "Which colour is the hair?"),
    "hair_style": ("What hairstyle does this person have?", "Describe the hairstyle.", "How is the hair styled?"),
    "emotion": ("What emotion does this face show?", "How does this person feel?",
                "What is the facial expression?", "Which emotion is this person expressing?"),
    "eyes_open": ("Are this person's eyes open?", "Does this person have their eyes open?",
                  "Are the eyes open?"),
    "age_group": ("What age group does this person belong to?", "How old does this person look?",
                  "Is this a child, a young adult, a middle-aged person or a senior?"),
    "eyewear": ("What is this person wearing over their eyes?", "Does this person wear glasses or sunglasses?",
                "What kind of eyewear can you see?"),
    "facial_hair": ("What facial hair does this person have?", "Describe the facial hair.",
                    "Does this person have a beard, moustache, goatee or stubble?"),
    "hat": ("Is this person wearing a hat?", "Does this person have a hat on?", "Is there a hat on their head?"),
    "earrings": ("Is this person wearing earrings?", "Does this person have earrings on?",
                 "Can you see earrings?"),
    "makeup": ("Is this person wearing makeup?", "Does this person wear lipstick or makeup?",
               "Is there makeup on this face?"),
}


@dataclass
class QAPair:
    question: str
    answer: str
    attribute: str


def label_to_answer(value: Any) -> str:
    """The short answer for a label: booleans -> "yes"/"no", words unchanged."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def answer_to_label(attribute: str, answer: str) -> Any:
    """Inverse of `label_to_answer` for `attribute`; raises ValueError for an answer outside the vocabulary."""
    answer = answer.strip().lower()
    vocab = VOCABULARIES[attribute]
    if vocab == (False, True):
        if answer not in ("yes", "no"):
            raise ValueError(f"attribute {attribute!r}: expected 'yes' or 'no', got {answer!r}")
        return answer == "yes"
    if answer not in vocab:
        raise ValueError(f"attribute {attribute!r}: expected one of {list(vocab)}, got {answer!r}")
    return answer


def sample_qa(labels: Mapping[str, Any], rng: np.random.Generator, attribute: str | None = None) -> QAPair:
    """One question about a visible attribute (chosen at random unless given) and its answer."""
    shown = visible_attributes({k: v for k, v in labels.items() if v is not None})
    if attribute is None:
        options = [a for a in QUESTIONS if a in shown]
        attribute = options[int(rng.integers(len(options)))]
    elif attribute not in shown:
        raise ValueError(f"attribute={attribute!r}: not visible or not labelled in this face")
    phrasings = QUESTIONS[attribute]
    return QAPair(phrasings[int(rng.integers(len(phrasings)))], label_to_answer(shown[attribute]), attribute)
