"""Classification by description: the sentence rule, the pure builders, the classifier and its cache.

Most tests use a hand-made "model" whose text embedding of each sentence is given, so every score
has a known value; the last ones run the tiny random FLIPModel with the real processor (plumbing).
"""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from flip.prompts import PromptSet, load_prompts
from flip.zeroshot import (
    FLIPClassifier,
    TextCache,
    aggregate_scores,
    build_class_weights,
    build_descriptor_prompts,
    build_template_prompts,
    class_ranges,
    descriptor_sentence,
    text_fingerprint,
)


@pytest.mark.parametrize("name,descriptor,relative,expected", [
    ("Bengal", "green or blue eyes", "which", "Bengal, which has green or blue eyes"),
    ("Bengal", "a large, muscular body", "which", "Bengal, which is a large, muscular body"),
    ("x", "an oval face", "which", "x, which is an oval face"),
    ("x", "has a tail", "which", "x, which has a tail"),
    ("x", "often found near water", "which", "x, which often found near water"),
    ("x", "may have spots", "which", "x, which may have spots"),
    ("x", "typically brown", "which", "x, which typically brown"),
    ("x", "can swim", "which", "x, which can swim"),
    ("x", "used for hunting", "which", "x, which is used for hunting"),
    # Whole words, not first letters (the released code's startswith('a') would say "which is").
    ("x", "almond-shaped eyes", "which", "x, which has almond-shaped eyes"),
    ("x", "hash marks", "which", "x, which has hash marks"),
    ("a senior person", "grey hair", "who", "a senior person, who has grey hair"),
    ("a happy person", "  has a broad smile ", "who", "a happy person, who has a broad smile"),
])
def test_descriptor_sentence_follows_the_paper(name, descriptor, relative, expected):
    assert descriptor_sentence(name, descriptor, relative) == expected


MOOD = {
    "_meta": {"names": {"up": "a cheerful person"}, "relative": "who", "templates": ["{}", "a photo of {}."]},
    "up": ["has a grin", "raised cheeks"],
    "down": ["droopy lips", "a frown", "teary eyes"],
}


def mood(data=MOOD) -> PromptSet:
    return PromptSet.from_dict(data, task="mood")


def test_prompt_builders_give_sentences_and_class_index():
    sentences, descriptors, index = build_descriptor_prompts(mood())
    assert sentences == ["a cheerful person, who has a grin", "a cheerful person, who has raised cheeks",
                         "down, who has droopy lips", "down, who is a frown", "down, who has teary eyes"]
    assert descriptors == ["has a grin", "raised cheeks", "droopy lips", "a frown", "teary eyes"]
    assert index.tolist() == [0, 0, 1, 1, 1]
    templates, tindex = build_template_prompts(mood())
    assert templates == ["a cheerful person", "a photo of a cheerful person.", "down", "a photo of down."]
    assert tindex.tolist() == [0, 0, 1, 1]
    assert class_ranges(index, 2) == [slice(0, 2), slice(2, 5)]
    with pytest.raises(ValueError, match="must be sorted"):
        class_ranges(torch.tensor([0, 1, 0]), 2)


def test_class_weights_give_exactly_the_mean_cosine():
    torch.manual_seed(0)
    text = F.normalize(torch.randn(5, 8), dim=-1)
    images = F.normalize(torch.randn(3, 8), dim=-1)
    index = torch.tensor([0, 0, 1, 1, 1])
    weights = build_class_weights(text, index, 2)
    expected = torch.tensor([[sum(float(images[n] @ text[m]) for m in members) / len(members)
                              for members in ([0, 1], [2, 3, 4])] for n in range(3)])
    torch.testing.assert_close(images @ weights.T, expected)
    ensemble = build_class_weights(text, index, 2, normalize=True)
    torch.testing.assert_close(ensemble.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(ensemble[1], F.normalize(text[2:].mean(0), dim=0))
    with pytest.raises(ValueError, match=r"classes \[2\] have no text embeddings"):
        build_class_weights(text, index, 3)


def test_aggregate_scores_mean_max_sum():
    sims = torch.tensor([[0.1, 0.5, 0.2, -0.4, 0.9], [0.3, 0.3, 0.0, 0.0, 0.0]])
    index = torch.tensor([0, 0, 1, 1, 1])
    torch.testing.assert_close(aggregate_scores(sims, index, 2), torch.tensor([[0.3, 0.7 / 3], [0.3, 0.0]]))
    torch.testing.assert_close(aggregate_scores(sims, index, 2, "max"), torch.tensor([[0.5, 0.9], [0.3, 0.0]]))
    torch.testing.assert_close(aggregate_scores(sims, index, 2, "sum"), torch.tensor([[0.6, 0.7], [0.6, 0.0]]))
    with pytest.raises(ValueError, match="aggregate='median'"):
        aggregate_scores(sims, index, 2, "median")


# -- a hand-made model: every sentence's embedding is given --------------------------------------
class LookupModel(nn.Module):
    """Text embeddings from a table of sentences; an image's 'pixels' are its embedding."""

    def __init__(self, table: dict[str, list[float]]):
        super().__init__()
        self.sentences = {s: i for i, s in enumerate(table)}
        self.text_model = nn.Embedding.from_pretrained(torch.tensor(list(table.values())), freeze=True)
        self.encoded = 0  # how many sentences went through the text tower

    def encode_text(self, batch):
        self.encoded += len(batch["input_ids"])
        return F.normalize(self.text_model(batch["input_ids"]), dim=-1)

    def encode_image(self, pixel_values):
        return F.normalize(pixel_values, dim=-1)


class LookupProcessor:
    def __init__(self, model: LookupModel):
        self.model = model

    def texts(self, texts):  # a KeyError here means a sentence was not built as expected
        return {"input_ids": torch.tensor([self.model.sentences[t] for t in texts])}


S = 1 / math.sqrt(2)
TABLE = {
    "a cheerful person, who has a grin": [1, 0, 0, 0],
    "a cheerful person, who has raised cheeks": [0, 1, 0, 0],
    "down, who has droopy lips": [0, 0, 1, 0],
    "down, who is a frown": [0, 0, 0, 1],
    "down, who has teary eyes": [0, 0, S, S],
    "a cheerful person": [1, 1, 0, 0],
    "a photo of a cheerful person.": [1, 0, 0, 0],
    "down": [0, 0, 1, 0],
    "a photo of down.": [0, 0, 1, 1],
}


@pytest.fixture
def lookup():
    model = LookupModel(TABLE)
    return model, LookupProcessor(model)


def test_classifier_scores_are_the_mean_cosine_and_explanations_are_ordered(lookup):
    model, processor = lookup
    clf = FLIPClassifier(model, processor, [mood()], cache=TextCache())
    x = torch.tensor([[0.6, 0.0, 0.8, 0.0], [0.8, 0.6, 0.0, 0.0]])  # unit norm
    res = clf.classify(x)["mood"]
    # image 0: up = (0.6 + 0) / 2 = 0.3; down = (0.8 + 0 + 0.8 S) / 3
    # image 1: up = (0.8 + 0.6) / 2 = 0.7; down = 0
    expected = torch.tensor([[0.3, (0.8 + 0.8 * S) / 3], [0.7, 0.0]])
    torch.testing.assert_close(res.scores, expected)
    assert res.predictions == ["down", "up"] and res.predicted.tolist() == [1, 0]
    assert res.top_descriptors(0) == [("droopy lips", pytest.approx(0.8)), ("teary eyes", pytest.approx(0.8 * S)),
                                      ("a frown", pytest.approx(0.0))]
    assert res.top_descriptors(1, k=1) == [("has a grin", pytest.approx(0.8))]
    assert [t for t, _ in res.top_descriptors(1, cls="down")] == ["droopy lips", "a frown", "teary eyes"]  # ties: file order
    record = res.record(0, k=2)
    assert record["prediction"] == "down" and list(record["scores"]) == ["up", "down"]
    assert record["scores"]["up"] == pytest.approx(0.3)
    assert [d["text"] for d in record["descriptors"]] == ["droopy lips", "teary eyes"]
    json.dumps(record)  # plain data

    for aggregate, want in (("max", [[0.6, 0.8], [0.8, 0.0]]), ("sum", [[0.6, 0.8 + 0.8 * S], [1.4, 0.0]])):
        clf = FLIPClassifier(model, processor, [mood()], aggregate=aggregate, cache=TextCache())
        torch.testing.assert_close(clf.classify(x)["mood"].scores, torch.tensor(want))


def test_baseline_averages_the_templates(lookup):
    model, processor = lookup
    res = FLIPClassifier(model, processor, [mood()], method="baseline", cache=TextCache()).classify(
        torch.tensor([[0.6, 0.0, 0.8, 0.0]]))["mood"]
    # up: normalise(normalise([1,1,0,0]) + [1,0,0,0]); down: normalise([0,0,1,0] + normalise([0,0,1,1]))
    up = F.normalize(torch.tensor([S + 1, S, 0, 0]), dim=0)
    down = F.normalize(torch.tensor([0, 0, 1 + S, S]), dim=0)
    x = torch.tensor([0.6, 0.0, 0.8, 0.0])
    torch.testing.assert_close(res.scores, torch.stack([x @ up, x @ down]).unsqueeze(0))
    assert res.head.texts == ("a cheerful person", "down") and res.predictions == ["down"]


def test_text_side_is_cached_in_memory_and_on_disk_and_invalidated(lookup, tmp_path):
    model, processor = lookup
    path = tmp_path / "mood.json"
    path.write_text(json.dumps(MOOD))
    cache = TextCache(tmp_path / "cache")
    first = FLIPClassifier(model, processor, [path], cache=cache)
    assert model.encoded == 5 and len(list((tmp_path / "cache").glob("*.safetensors"))) == 1
    second = FLIPClassifier(model, processor, [path], cache=cache)
    assert model.encoded == 5 and second.heads["mood"].embeds is first.heads["mood"].embeds
    # A new process (a fresh cache object) reads the file instead of encoding.
    third = FLIPClassifier(model, processor, [path], cache=TextCache(tmp_path / "cache"))
    assert model.encoded == 5
    torch.testing.assert_close(third.heads["mood"].embeds, first.heads["mood"].embeds)
    # Editing the prompt file changes the key: only the new file's sentences are encoded.
    edited = dict(MOOD, down=["droopy lips", "a frown"])
    path.write_text(json.dumps(edited))
    fourth = FLIPClassifier(model, processor, [path], cache=cache)
    assert model.encoded == 9 and fourth.heads["mood"].embeds.shape == (4, 4)
    assert fourth.heads["mood"].prompts_sha256 != first.heads["mood"].prompts_sha256
    # Changing the text tower's weights changes the fingerprint, so nothing stale is read.
    before = text_fingerprint(model, processor)
    with torch.no_grad():
        model.text_model.weight[0, 0] = 0.5
    assert text_fingerprint(model, processor) != before
    FLIPClassifier(model, processor, [path], cache=cache)
    assert model.encoded == 13


def test_classifier_rejects_bad_arguments(lookup):
    model, processor = lookup
    with pytest.raises(ValueError, match="aggregate='median'"):
        FLIPClassifier(model, processor, [mood()], aggregate="median")
    with pytest.raises(ValueError, match="method='names'"):
        FLIPClassifier(model, processor, [mood()], method="names")
    with pytest.raises(ValueError, match="names a task twice"):
        FLIPClassifier(model, processor, [mood(), mood()])
    with pytest.raises(KeyError, match="unknown task 'nope'"):
        FLIPClassifier(model, processor, ["nope"])
    clf = FLIPClassifier(model, processor, [mood()], cache=TextCache())
    with pytest.raises(ValueError, match=r"expected shape \(N, 4\), got \(2, 3\)"):
        clf.classify_embeddings(torch.zeros(2, 3))


# -- the real tiny model and processor (plumbing) -------------------------------------------------
@pytest.fixture
def tiny(tiny_model):
    from flip.processor import FLIPProcessor

    return tiny_model, FLIPProcessor.from_settings(tokenizer="minilm", image_size=32, max_length=32)


def faces(n: int):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)) for _ in range(n)]


@pytest.mark.parametrize("text,tokenizer", [("bert", "minilm"), ("clip_text_model", "clip"), ("blip_text_model", "bert-blip")])
def test_tiny_model_scores_equal_an_independent_computation(text, tokenizer):
    from conftest import tiny_config
    from flip.model import FLIPModel
    from flip.processor import FLIPProcessor

    torch.manual_seed(0)
    model = FLIPModel(tiny_config(text)).eval()
    processor = FLIPProcessor.from_settings(tokenizer=tokenizer, image_size=32, max_length=32)
    clf = FLIPClassifier(model, processor, ["emotion", "hat"], cache=TextCache())
    images = faces(3)
    results = clf.classify(images)
    assert list(results) == ["emotion", "hat"]
    with torch.no_grad():
        x = model.encode_image(processor.images(images))
        for task, res in results.items():
            prompts = load_prompts(task)
            sentences, _, index = build_descriptor_prompts(prompts)
            t = model.encode_text(processor.texts(sentences))
            want = torch.stack([(x @ t[index == c].T).mean(1) for c in range(prompts.num_classes)], 1)
            torch.testing.assert_close(res.scores, want, atol=1e-5, rtol=1e-5)
            assert res.predictions == [prompts.classes[i] for i in want.argmax(1).tolist()]


def test_classify_files_skips_unreadable_files_and_matches_classify(tiny, tmp_path):
    model, processor = tiny
    paths = []
    for i, image in enumerate(faces(5)):
        paths.append(tmp_path / f"face{i}.png")
        image.save(paths[-1])
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    paths.insert(2, tmp_path / "broken.jpg")
    clf = FLIPClassifier(model, processor, ["age_group"], cache=TextCache())
    batches = list(clf.classify_files(paths, batch_size=2, num_workers=0))
    done = [p for b in batches for p in b.paths]
    failed = [f for b in batches for f in b.failed]
    assert done == [str(p) for p in paths if p.name != "broken.jpg"]
    assert [p for p, _ in failed] == [str(tmp_path / "broken.jpg")] and "not an image" in failed[0][1]
    scores = torch.cat([b.results["age_group"].scores for b in batches if b.results])
    torch.testing.assert_close(scores, clf.classify([str(p) for p in paths if p.name != "broken.jpg"])["age_group"].scores)
    # Workers give the same answer, in the same order.
    with_workers = list(clf.classify_files(paths, batch_size=2, num_workers=1))
    assert [p for b in with_workers for p in b.paths] == done
    torch.testing.assert_close(torch.cat([b.results["age_group"].scores for b in with_workers if b.results]), scores)


def test_uint8_pixels_are_normalised_not_taken_as_values(tiny):
    """classify() takes uint8 pixels from processor.pixels as the images they are, not as raw values."""
    model, processor = tiny
    images = faces(3)
    clf = FLIPClassifier(model, processor, ["age_group"], cache=TextCache())
    want = clf.classify(images)["age_group"].scores
    pixels = processor.pixels(images)
    assert pixels.dtype == torch.uint8
    torch.testing.assert_close(clf.classify(pixels)["age_group"].scores, want)
    torch.testing.assert_close(clf.classify(processor.images(images))["age_group"].scores, want)
