"""The attribute evaluation (eval/tasks/attributes.py) and its local accuracy metric.

Plumbing only: a tiny random model on a few synthetic faces. Every figure in the table is checked
against the per-example predictions the command writes, and the metric against hand-computed values.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def test_accuracy_module_loads_by_path_and_matches_hand_computed_values():
    import evaluate

    for where in (REPO / "eval/metrics/accuracy", REPO / "eval/metrics/accuracy/accuracy.py"):
        accuracy = evaluate.load(str(where))
        assert accuracy.compute(predictions=[0, 1, 1, 2], references=[0, 1, 0, 0])["accuracy"] == pytest.approx(0.5)
    assert accuracy.compute(predictions=[0, 1, 1], references=[0, 1, 0], sample_weight=[1, 1, 2])["accuracy"] == 0.5
    assert accuracy.compute(predictions=[0, 1, 1], references=[0, 1, 0], normalize=False)["accuracy"] == 2.0
    with pytest.raises(ValueError, match="no predictions"):
        accuracy.compute(predictions=[], references=[])
    with pytest.raises(ValueError, match="2 sample weights for 3 predictions"):
        accuracy.compute(predictions=[0, 1, 1], references=[0, 1, 0], sample_weight=[1, 1])


def test_random_descriptors_keep_classes_counts_and_phrases():
    from eval.tasks.attributes import random_descriptors
    from flip.prompts import load_prompts

    real = load_prompts("emotion")
    fake = random_descriptors(real, seed=3)
    assert fake.classes == real.classes and fake.names == real.names and fake.relative == "who"
    assert [len(fake.descriptors[c]) for c in fake.classes] == [len(real.descriptors[c]) for c in real.classes]
    assert all(d.replace(" ", "").isalpha() and d not in real.descriptors[c] for c in fake.classes for d in fake.descriptors[c])
    assert random_descriptors(real, seed=3) == fake and random_descriptors(real, seed=4) != fake


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Eight synthetic faces in imagefolder format and a tiny random checkpoint."""
    from conftest import tiny_config
    from flip.data.formats import write_dataset
    from flip.data.records import FaceRecord
    from flip.data.synthetic import make_identities, render_face, sample_face
    from flip.hub import save
    from flip.model import FLIPModel
    from flip.processor import FLIPProcessor

    root = tmp_path_factory.mktemp("eval")
    rng = np.random.default_rng(0)
    records = []
    for person in make_identities(4, seed=1):
        for _ in range(2):
            face = sample_face(rng, person)
            image, _ = render_face(face, size=32)
            records.append(FaceRecord(image=image, identity=person.identity, name=person.name, **face.labels()))
    write_dataset(records, root / "data", "imagefolder", "test")
    torch.manual_seed(0)
    processor = FLIPProcessor.from_settings(tokenizer="minilm", image_size=32, max_length=32)
    ckpt = save(FLIPModel(tiny_config()).eval(), processor, root / "ckpt")
    return root, records, ckpt


def test_eval_command_writes_a_table_consistent_with_its_predictions(world, capsys):
    from eval.tasks.attributes import VARIANTS, main
    from flip.data.synthetic.attributes import visible_attributes
    from flip.prompts import label_key, load_prompts

    root, records, ckpt = world
    out = root / "report"
    assert main(["--model", str(ckpt), "--data", str(root / "data"), "--split", "test", "--out", str(out),
                 "--workers", "0", "--batch-size", "3"]) == 0
    printed = capsys.readouterr().out
    result = json.loads((out / "attributes.json").read_text())
    assert result["examples"] == 8 and result["config"]["split"] == "test"
    predictions = [json.loads(line) for line in (out / "attributes_predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 8

    for row in result["rows"]:
        a = row["attribute"]
        classes = load_prompts(a).classes
        expected_labels = [label_key(visible_attributes(r.attributes()).get(a)) for r in records]
        scored = [(p, lab) for p, lab in zip(predictions, expected_labels) if lab is not None]
        assert row["n"] == len(scored) and row["classes"] == len(classes)
        assert row["chance"] == pytest.approx(1 / len(classes))
        assert row["majority"] == pytest.approx(Counter(lab for _, lab in scored).most_common(1)[0][1] / len(scored))
        for v in VARIANTS:
            assert all(p[v][a] in classes for p, _ in scored)
            assert row[v] == pytest.approx(np.mean([p[v][a] == lab for p, lab in scored])), (a, v)
        assert f"| {a} | {row['n']} |" in printed
    # Sunglasses hide the eyes: those faces are not scored on eye colour.
    hidden = sum(r.eyewear == "sunglasses" for r in records)
    assert next(r for r in result["rows"] if r["attribute"] == "eye_color")["n"] <= 8 - hidden
    assert result["mean"]["descriptors"] == pytest.approx(np.mean([r["descriptors"] for r in result["rows"]]))
    assert (out / "attributes.md").read_text().startswith("| attribute | n | classes | chance | majority | baseline")


def test_rephrased_variant_is_keyed_by_attribute(world):
    from eval.tasks.attributes import prompt_sets
    from flip.prompts import load_prompts

    sets = prompt_sets("rephrased", ["emotion", "hat"])
    assert [p.task for p in sets] == ["emotion", "hat"]
    assert sets[0].descriptors == load_prompts("rephrased/emotion").descriptors
    assert sets[0].classes == load_prompts("emotion").classes
