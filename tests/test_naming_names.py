"""flip.naming.names: the rule-based person-name extractor on news captions, and the model wrapper."""

from __future__ import annotations

import numpy as np
import pytest

from flip.naming.names import ModelNameExtractor, RuleNameExtractor, extract_names


@pytest.mark.parametrize("caption, names", [
    ("Ana Silva at the summit in Lima on Monday.", ["Ana Silva"]),
    ("Lima, Monday: Ana Silva and Omar Al-Amin attend the book launch.", ["Ana Silva", "Omar Al-Amin"]),
    ("Earlier, Seo-yeon Van Dijk had criticised the plan.", ["Seo-yeon Van Dijk"]),
    ("A spokesperson for Jomo Park declined to comment.", ["Jomo Park"]),
    ("Guests at the charity gala in Oslo on Sunday.", []),
    ("The Prime Minister Jane Doe and Dr. Kofi Mensah.", ["Jane Doe", "Kofi Mensah"]),
    ("April Smith met President Ana Silva in May.", ["April Smith", "Ana Silva"]),
    ("Ludwig van Beethoven, Ana Silva and Ana Silva again.", ["Ludwig van Beethoven", "Ana Silva"]),
    ("On Monday the University of Lima hosted nobody.", []),
    ("Madonna sings.", []),  # one-word names are missed by design
])
def test_rules_on_news_captions(caption, names):
    assert RuleNameExtractor()(caption) == names
    assert extract_names(caption) == names


def test_extra_stopwords_drop_corpus_places():
    caption = "Ana Silva at Central Park."
    assert RuleNameExtractor()(caption) == ["Ana Silva", "Central Park"]
    assert RuleNameExtractor(extra_stopwords=["Central"])(caption) == ["Ana Silva"]


def test_rules_find_exactly_the_names_of_synthetic_scene_captions():
    """Every caption grammar of the synthetic scenes, with the world's own first and last names."""
    from flip.data.synthetic.faces import load_names
    from flip.data.synthetic.scenes import news_caption

    first, last = load_names()
    rng = np.random.default_rng(0)
    extractor = RuleNameExtractor()
    checked = 0
    for _ in range(1500):
        k, a = int(rng.integers(0, 5)), int(rng.integers(0, 3))
        people = list({f"{rng.choice(first)} {rng.choice(last)}": None for _ in range(k + a)})
        if len(people) != k + a or not people:
            continue
        caption, order = news_caption(people[:k], people[k:], rng)
        assert extractor(caption) == order, caption
        checked += 1
    assert checked > 1000


def test_rules_on_generated_scene_records():
    from flip.data.synthetic.world import SynthConfig, generate

    cfg = SynthConfig(kind="scenes", n=4, size=48, seed=1, split_fractions={"train": 1})
    for record in generate(cfg, "train"):
        assert RuleNameExtractor()(record.caption) == record.names


def test_rules_reject_bad_input():
    with pytest.raises(TypeError, match="caption"):
        RuleNameExtractor()(None)
    with pytest.raises(ValueError, match="min_words"):
        RuleNameExtractor(min_words=0)


def test_model_extractor_keeps_person_entities_in_order_once():
    extractor = object.__new__(ModelNameExtractor)
    caption = "Ana Silva met Kofi Mensah in Lima; Ana Silva spoke."
    extractor.label = "PER"
    extractor._pipe = lambda text: [
        {"entity_group": "PER", "start": 0, "end": 9},
        {"entity_group": "PER", "start": 14, "end": 25},
        {"entity_group": "LOC", "start": 29, "end": 33},
        {"entity_group": "PER", "start": 35, "end": 44},
    ]
    assert extractor(caption) == ["Ana Silva", "Kofi Mensah"]


def test_model_extractor_missing_folder():
    with pytest.raises(FileNotFoundError, match="no such folder"):
        ModelNameExtractor("/nonexistent/ner-model")
