"""Question-answer and caption examples from any attribute-labelled records.

Design choices:
- The source is whatever `flip.data.loaders.load_records` reads (the synthetic world, FairFace,
  UTKFace, CelebA, imagefolders with metadata): questions are made from labels, so any labelled
  face set becomes a VQA set. A record's attributes are its flip fields plus any `extra` field a
  question is given for (FairFace's ``gender`` and ``race``, with phrasings in the recipe config).
- Phrasings and answers are the synthetic world's (`flip.data.synthetic.qa`: `QUESTIONS`,
  `label_to_answer`); a recipe may add or replace phrasings per attribute.
- Only labels an image shows are asked about (`visible_attributes`: no eye colour behind
  sunglasses). An attribute asked for that no record labels is an error naming it and the
  attributes the data does label, not an empty dataset.
- Each image gives one example per labelled attribute (`per_image=None`) or `per_image` of them at
  random; the phrasing is drawn at random too. Everything is a pure function of `seed`.
"""

from __future__ import annotations

import itertools
from typing import Iterable, Mapping, Sequence

import numpy as np

from flip.data.records import FaceRecord
from flip.data.synthetic.attributes import visible_attributes
from flip.data.synthetic.qa import QUESTIONS, label_to_answer
from flip.vqa.prompting import QAExample

#: How the captioning pretraining asks for a caption (one drawn at random per example).
CAPTION_PROMPTS = ("Describe this face.", "Write a caption for this photo.", "What does this person look like?")


def read_records(source: str, dataset: str = "auto", split: str | None = None, check_images: bool = False,
                 limit: int | None = None) -> list[FaceRecord]:
    """The first `limit` records of `source`'s split, read by `flip.data.loaders.load_records`; an
    empty split is an error naming the source and split."""
    from flip.data.loaders import load_records

    records = list(itertools.islice(load_records(source, dataset, split, check_images=check_images), limit))
    if not records:
        raise ValueError(f"{source}: no records in split {split!r}")
    return records


def record_labels(record: FaceRecord, questions: Mapping[str, Sequence[str]]) -> dict:
    """The labels of a record that can be asked about: its attributes, plus `extra` fields with questions."""
    labels = dict(record.attributes())
    labels.update({k: v for k, v in record.extra.items() if k in questions and v is not None and k not in labels})
    return visible_attributes(labels)


def qa_examples(records: Iterable[FaceRecord], attributes: Sequence[str] | None = None,
                questions: Mapping[str, Sequence[str]] | None = None, per_image: int | None = None,
                seed: int = 0, limit: int | None = None) -> list[QAExample]:
    """QA examples (image, question, answer, attribute) from labelled records.

    attributes: which labels to ask about (None: every labelled attribute with phrasings; one that
    no record labels is an error). questions:
    {attribute: [phrasing, ...]} added to (and overriding) the synthetic world's `QUESTIONS`.
    per_image: questions per image (None: one per labelled attribute). limit: stop after this many images.
    """
    questions = {**QUESTIONS, **{k: tuple(v) for k, v in (questions or {}).items()}}
    explicit = attributes is not None
    attributes = list(questions) if attributes is None else list(attributes)
    unknown = [a for a in attributes if a not in questions]
    if unknown:
        raise ValueError(f"attributes {unknown}: no question phrasings; add them under `questions` "
                         f"(known: {sorted(questions)})")
    empty = [a for a, q in questions.items() if not q]
    if empty:
        raise ValueError(f"questions[{empty[0]!r}]: no phrasings")
    rng = np.random.default_rng(seed)
    examples, seen, images = [], set(), 0
    for record in records:
        labels = record_labels(record, questions)
        asked = [a for a in attributes if a in labels]
        seen.update(labels)
        if per_image is not None and len(asked) > per_image:
            asked = [asked[i] for i in sorted(rng.choice(len(asked), per_image, replace=False))]
        for attribute in asked:
            phrasings = questions[attribute]
            question = phrasings[int(rng.integers(len(phrasings)))]
            examples.append(QAExample(record.image, question, label_to_answer(labels[attribute]), attribute))
        images += 1
        if limit is not None and images >= limit:
            break
    missing = [a for a in attributes if a not in seen]
    if explicit and missing and images:
        raise ValueError(f"attribute(s) {missing} not labelled in this data (it labels {sorted(seen)}); "
                         "drop them from `attributes`")
    if not examples:
        raise ValueError("no QA examples: the records carry no labels for the attributes asked about")
    return examples


def caption_examples(records: Iterable[FaceRecord], seed: int = 0, limit: int | None = None,
                     prompts: Sequence[str] = CAPTION_PROMPTS) -> list[QAExample]:
    """(image, caption request, caption) examples for captioning pretraining; records without captions are skipped."""
    rng = np.random.default_rng(seed)
    examples = []
    for record in records:
        if record.caption:
            examples.append(QAExample(record.image, prompts[int(rng.integers(len(prompts)))], record.caption))
            if limit is not None and len(examples) >= limit:
                break
    if not examples:
        raise ValueError("no captioning examples: the records carry no captions")
    return examples


def corpus(records: Iterable[FaceRecord], questions: Mapping[str, Sequence[str]] | None = None,
           prompts: Sequence[str] = CAPTION_PROMPTS) -> list[str]:
    """Every text a model will read or write on this data: captions, question phrasings, answers, prompts."""
    from flip.data.synthetic.attributes import VOCABULARIES

    questions = {**QUESTIONS, **(questions or {})}
    texts = [r.caption for r in records if r.caption]
    texts += [q for qs in questions.values() for q in qs] + list(prompts)
    texts += [label_to_answer(v) for vocab in VOCABULARIES.values() for v in vocab]
    return texts
