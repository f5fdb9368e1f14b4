"""World v3 (issue 15): cues that vary within a class, CelebA-40 labels, captions with a held-out
phrasing family, attacks in the caption corpus, and the evaluation code that reads them."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from flip.data.synthetic import SynthConfig, make_record, make_identities, sample_face
from flip.data.synthetic.captions import ATTACK_PHRASES
from flip.data.synthetic.cues import CELEBA_40, CUE_PHRASES, CUES, HELDOUT, UNDRAWN, celeba_labels, rendered_cues
from flip.data.synthetic.world import UNSEEN_ATTACK, identity_pools, write_synthetic

ROOT = Path(__file__).resolve().parents[1]


def _faces(n=600, seed=3):
    rng = np.random.default_rng(seed)
    people = make_identities(n // 2, seed)
    return [sample_face(rng, people[i % len(people)]) for i in range(n)]


def test_class_attributes_are_built_from_cues_that_vary_within_the_class():
    faces = _faces()
    seniors = [set(f.cues()) for f in faces if f.person.age_group == "senior"]
    surprised = [set(f.cues()) for f in faces if f.emotion == "surprised"]
    assert len(seniors) > 60 and len(surprised) > 40
    for cue in ("wrinkles", "bags_under_eyes", "grey_hair"):  # usual on seniors, not universal
        share = sum(cue in c for c in seniors) / len(seniors)
        assert 0.3 < share < 0.97, (cue, share)
    children = [set(f.cues()) for f in faces if f.person.age_group == "child"]
    assert not any("deep_wrinkles" in c or "bags_under_eyes" in c for c in children)
    for cue in ("raised_brows", "mouth_open"):  # surprise, to varying degrees
        share = sum(cue in c for c in surprised) / len(surprised)
        assert 0.3 < share < 0.99, (cue, share)


def test_cues_and_celeba_labels_are_what_the_face_shows():
    faces = _faces(300)
    assert {c for f in faces for c in f.cues()} <= set(CUES)
    for f in faces:
        labels = celeba_labels(f)
        assert list(labels) == list(CELEBA_40)
        assert all(labels[a] is None for a in UNDRAWN)
        if f.eyewear == "sunglasses":  # hidden under dark lenses: no label, no cue
            assert labels["Bags_Under_Eyes"] is None and "bags_under_eyes" not in f.cues()
        assert labels["Smiling"] == ("smile" in rendered_cues(f))
    drawn = [a for a in CELEBA_40 if a not in UNDRAWN and a != "Blurry"]
    seen = {a: Counter(celeba_labels(f)[a] for f in faces) for a in drawn}
    assert all(c[True] > 0 and c[False] > 0 for c in seen.values()), seen  # every drawn attribute occurs both ways


def test_captions_name_cues_and_the_heldout_family_stays_out_of_training_captions():
    cfg = SynthConfig(kind="captions", n=400, seed=5, attack_fraction=0.25)
    pools = identity_pools(cfg)
    records = [make_record(cfg, "train", i, pools) for i in range(300)]
    attacks = [r for r in records if r.live is False]
    assert 40 < len(attacks) < 110 and UNSEEN_ATTACK not in {r.attack for r in attacks}
    faces = [r for r in records if r.live is not False]
    assert sum(bool(r.extra["mentioned_cues"]) for r in faces) == len(faces)  # every face caption names a cue
    assert sum(not r.extra["mentioned"] for r in faces) > 30  # some name cues only
    heldout = {p.lower() for fams in CUE_PHRASES.values() for p in fams[HELDOUT]}
    heldout |= {p.split("{who}")[0].lower() for fams in ATTACK_PHRASES.values() for p in fams[-1]}
    text = " ".join(r.caption.lower() for r in records)
    assert not [p for p in heldout if p in text]
    held = SynthConfig(kind="captions", n=60, seed=5, phrasing="heldout", attack_fraction=0.0)
    pools = identity_pools(held)
    for i in range(20):
        r = make_record(held, "train", i, pools)
        assert len(r.extra["mentioned_cues"]) >= 1 and not r.extra["mentioned"]
        assert any(p in r.caption.lower() for p in heldout), r.caption


@pytest.fixture(scope="module")
def v3_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("v3")
    write_synthetic(SynthConfig(kind="captions", n=80, size=48, seed=2, attack_fraction=0.3,
                                split_fractions={"train": 0.5, "test": 0.5}), out, progress=False, workers=1)
    return out


def test_evaluations_skip_attacks_and_read_cues(v3_data):
    from eval.tasks.attributes import read_examples
    from eval.tasks.celeba40 import load_examples as celeba_examples
    from eval.tasks.retrieval import ambiguity_ceiling, load_examples

    images, captions, labels, mentioned = load_examples(v3_data, "test", n=1000)
    assert 15 < len(images) < 40  # the attacks are left out
    assert all(any(m.startswith("cue:") for m in row) for row in mentioned)
    assert all(all(labels[i].get(m) is not None for m in mentioned[i]) for i in range(len(images)))
    assert ambiguity_ceiling(labels, mentioned, ks=(1,))["t2i_r1"] > 0
    rows = list(read_examples(v3_data, "test"))
    assert len(rows) == len(images) and all("_cues" in groups for _, _, groups in rows)
    _, celeba = celeba_examples(v3_data, "test")
    assert len(celeba) == len(images) and not ({"Male", "Attractive"} & set(celeba[0]))


def test_balanced_accuracy_module(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    from eval.tasks.celeba40 import metric

    assert metric(["false", "false", "false", "true"], ["false", "false", "true", "true"]) == pytest.approx(0.75)
    assert metric(["false"] * 9 + ["false"], ["false"] * 9 + ["true"]) == pytest.approx(0.5)  # "always no" is chance


def test_descriptor_cue_map_names_real_descriptors_and_cues():
    from flip.prompts import load_prompts

    mapping = json.loads((ROOT / "eval" / "configs" / "descriptor_cues.json").read_text())
    for task, classes in mapping.items():
        if task.startswith("_"):
            continue
        prompts = load_prompts(task)
        for cls, named in classes.items():
            assert set(named) <= set(prompts.descriptors[cls]), (task, cls)
            assert all(set(cues) <= set(CUES) for cues in named.values()), (task, cls)


def test_supervised_reference_learns_a_visible_cue_and_ignores_unlabelled_entries(monkeypatch, tmp_path):
    """eval.tasks.celeba40_supervised: a cue drawn plainly (a bright image) is learned to balanced
    accuracy 1; a missing label adds no loss."""
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    import torch

    from eval.tasks.celeba40_supervised import (balanced_bce, predict, score_columns, small_cnn,
                                                train_supervised)

    logits = torch.tensor([[0.0, 5.0]])
    targets = torch.tensor([[1.0, float("nan")]])
    assert balanced_bce(logits, targets, torch.tensor([3.0, 1.0])).item() == pytest.approx(3 * 0.6931, abs=1e-3)
    g = torch.Generator().manual_seed(0)
    bright = torch.rand(64, generator=g) < 0.25  # a rare cue, as most CelebA attributes are
    pixels = torch.randint(0, 100, (64, 3, 32, 32), generator=g, dtype=torch.uint8)
    pixels[bright] += 120
    targets = torch.stack([bright.float(), torch.full((64,), float("nan"))], dim=1)
    torch.manual_seed(0)
    net = small_cnn(2)
    train_supervised(net, pixels, targets, epochs=15, batch_size=16, lr=3e-3, seed=0)
    labels = [{"Bright": "true" if b else "false"} for b in bright.tolist()]
    scores = score_columns(predict(net, pixels), labels, ["Bright", "Never_labelled"])
    assert scores == {"Bright": pytest.approx(1.0)}


def test_supervised_reference_command_writes_its_table(v3_data, checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    from eval.tasks.celeba40_supervised import main

    assert main(["--model", checkpoint, "--data", str(v3_data), "--train-data", str(v3_data), "--train-n", "20",
                 "--epochs", "1", "--batch-size", "16", "--models", "probe", "cnn", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "celeba40_supervised.json").read_text())
    assert set(result["columns"]) == {"probe", "cnn"} and result["train_faces"] == 20
    assert all(0.0 <= v <= 1.0 for column in result["columns"].values() for v in column.values())
    assert "**mean**" in (tmp_path / "celeba40_supervised.md").read_text()
    assert main(["--data", str(tmp_path / "missing"), "--train-data", str(v3_data)]) == 2
