"""`flip probe` and flip.probe: a tiny random model on hand-made faces whose `hat` label is the
background colour (red with a hat, blue without), so a linear probe must find it; `emotion` is drawn
at random, independent of the image."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

N_TRAIN, N_TEST = 40, 20
EMOTIONS = ("happy", "sad", "neutral")


def _image(rng: np.random.Generator, hat: bool):
    from PIL import Image

    pixels = rng.integers(0, 60, size=(32, 32, 3))
    pixels[..., 0 if hat else 2] += 160  # red or blue
    x, y = rng.integers(0, 20, size=2)
    pixels[y:y + 12, x:x + 12] = 128  # a grey square somewhere, so no two images are alike
    return Image.fromarray(pixels.astype(np.uint8))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from conftest import tiny_config
    from flip.data.formats import write_dataset
    from flip.data.records import FaceRecord
    from flip.hub import save
    from flip.model import FLIPModel
    from flip.processor import FLIPProcessor

    root = tmp_path_factory.mktemp("probe")
    rng = np.random.default_rng(0)
    splits = {}
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        hats = [bool(i % 2) for i in range(n)]
        records = [FaceRecord(image=_image(rng, hat), hat=hat, emotion=EMOTIONS[rng.integers(3)],
                              extra={"Smiling": hat, "source_id": f"s{i}"}) for i, hat in enumerate(hats)]
        write_dataset(records, root / "data", "imagefolder", split)
        splits[split] = records
    torch.manual_seed(0)
    processor = FLIPProcessor.from_settings(tokenizer="minilm", image_size=32, max_length=32)
    ckpt = save(FLIPModel(tiny_config()).eval(), processor, root / "ckpt")
    return root, splits, ckpt


def _run(capsys, *argv):
    from flip.cli import main

    code = main(["probe", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _base(world):
    root, _, ckpt = world
    return ["--model", ckpt, "--train", root / "data", "--workers", "0", "--batch-size", "16"]


# -- the linear head ------------------------------------------------------------------------------
def test_logistic_regression_reaches_the_penalised_optimum():
    from flip.probe import fit_logistic_regression

    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, 5, generator=g)
    y = torch.randint(0, 3, (60,), generator=g)
    weight, bias = fit_logistic_regression(x, y, 3, weight_decay=0.1)
    w, b = weight.clone().requires_grad_(), bias.clone().requires_grad_()
    loss = torch.nn.functional.cross_entropy(x @ w.t() + b, y) + 0.05 * w.pow(2).sum()
    loss.backward()
    assert w.grad.abs().max() < 1e-4 and b.grad.abs().max() < 1e-4  # stationary: the optimum of a convex loss
    assert weight.abs().max() > 0.01  # and not the all-zero start


def test_probe_separates_separable_classes_and_keeps_label_names():
    from flip.probe import ProbeConfig, accuracy, fit_probe

    g = torch.Generator().manual_seed(1)
    centres = torch.randn(3, 8, generator=g) * 4
    labels = ["a", "b", "c"] * 20
    features = centres[[ord(c) - ord("a") for c in labels]] + torch.randn(60, 8, generator=g)
    probe = fit_probe(features[:45], labels[:45], ProbeConfig(weight_decays=(1e-3, 1e-1)))
    assert probe.classes == ("a", "b", "c") and probe.weight_decay in (1e-3, 1e-1)
    assert accuracy(probe.predict(features[45:]), labels[45:]) == 1.0
    with pytest.raises(ValueError, match="at least two classes"):
        fit_probe(features[:5], ["a"] * 5)


def test_balanced_probe_finds_a_rare_class_the_plain_probe_calls_always_no():
    """A weak signal for a 10% class: the plain probe's best accuracy is "always no" (balanced
    accuracy 0.5); weighting classes by inverse frequency recovers the class."""
    from flip.probe import ProbeConfig, fit_probe

    g = torch.Generator().manual_seed(2)
    labels = (["yes"] * 10 + ["no"] * 90) * 4
    signal = torch.tensor([0.8 if y == "yes" else -0.8 for y in labels])
    features = torch.randn(len(labels), 4, generator=g)
    features[:, 0] += signal
    train, test = slice(0, 300), slice(300, None)

    def balanced_accuracy(probe):
        predicted, truth = probe.predict(features[test]), labels[test]
        recalls = [sum(p == t for p, t in zip(predicted, truth) if t == c) / truth.count(c) for c in ("yes", "no")]
        return sum(recalls) / 2

    plain = fit_probe(features[train], labels[train], ProbeConfig(weight_decays=(1e-2,)))
    balanced = fit_probe(features[train], labels[train], ProbeConfig(weight_decays=(1e-2,), balanced=True))
    assert balanced_accuracy(plain) < 0.6
    assert balanced_accuracy(balanced) > 0.7


@pytest.mark.parametrize("kwargs, field", [({"weight_decays": ()}, "weight_decays"), ({"val_fraction": 1.0}, "val_fraction"),
                                           ({"max_iter": 0}, "max_iter")])
def test_config_names_the_bad_field(kwargs, field):
    from flip.probe import ProbeConfig

    with pytest.raises(ValueError, match=f"ProbeConfig.{field}"):
        ProbeConfig(**kwargs)


def test_labels_come_from_fields_and_boolean_extras():
    from flip.data.records import FaceRecord
    from flip.probe import label_names, record_label

    records = [FaceRecord(hat=True, extra={"Smiling": False, "id": "x1"}),
               FaceRecord(eyewear="sunglasses", eye_color="blue", extra={"Smiling": True})]
    assert label_names(records) == ["eye_color", "eyewear", "hat", "Smiling"]  # "id" is not a label
    assert [record_label(r, "Smiling") for r in records] == ["false", "true"]
    assert record_label(records[0], "hat") == "true"
    assert record_label(records[1], "eye_color") is None  # hidden behind sunglasses: not scored


# -- the command ----------------------------------------------------------------------------------
def test_probe_beats_chance_on_a_visible_label_and_reports_zero_shot(world, capsys):
    from flip.hub import load
    from flip.prompts import load_prompts
    from flip.zeroshot import FLIPClassifier, TextCache

    root, splits, ckpt = world
    code, out, err = _run(capsys, *_base(world), "--attribute", "hat,emotion", "--attribute", "Smiling", "--json")
    assert code == 0, err
    result = json.loads(out)
    rows = {r["attribute"]: r for r in result["attributes"]}
    assert list(rows) == ["hat", "emotion", "Smiling"]
    assert result["test"] == {"data": str(root / "data"), "split": "test"}

    for name in ("hat", "Smiling"):  # the background colour: a tiny random ViT's features separate it
        assert rows[name]["probe_accuracy"] >= 0.9 and rows[name]["chance"] == 0.5
        assert rows[name]["classes"] == ["false", "true"]
    assert (rows["hat"]["n_train"], rows["hat"]["n_test"]) == (N_TRAIN, N_TEST)
    emotions = {r.emotion for split in splits.values() for r in split}
    assert rows["emotion"]["chance"] == pytest.approx(1 / len(emotions))
    assert rows["Smiling"]["zeroshot_task"] == "celeba/Smiling" and rows["hat"]["zeroshot_task"] == "hat"

    # zero-shot equals the classifier's own answer on the test images
    model, processor = load(ckpt, device="cpu")
    clf = FLIPClassifier(model, processor, [load_prompts("hat"), load_prompts("emotion")], cache=TextCache())
    answers = clf.classify([r.image for r in splits["test"]])
    for name, field in (("hat", "hat"), ("emotion", "emotion")):
        truth = [str(getattr(r, field)).lower() for r in splits["test"]]
        expected = np.mean([p == t for p, t in zip(answers[name].predictions, truth)])
        assert rows[name]["zeroshot_accuracy"] == pytest.approx(expected)
    means = result["mean"]
    assert means["probe"] == pytest.approx(np.mean([r["probe_accuracy"] for r in rows.values()]))
    assert means["zeroshot_attributes"] == 3


def test_table_shows_the_json_figures(world, capsys):
    code, out, _ = _run(capsys, *_base(world), "--attribute", "hat", "--json")
    assert code == 0
    row = json.loads(out)["attributes"][0]
    code, table, _ = _run(capsys, *_base(world), "--attribute", "hat")
    assert code == 0
    lines = table.splitlines()
    assert lines[0].split() == ["attribute", "probe", "zero-shot", "chance", "n", "train", "n", "test"]
    assert lines[1].split() == ["hat", f"{row['probe_accuracy']:.3f}", f"{row['zeroshot_accuracy']:.3f}", "0.500",
                                str(N_TRAIN), str(N_TEST)]
    assert lines[2].split()[0] == "mean" and len(lines) == 3


def test_default_attributes_are_every_label_with_two_values(world, capsys):
    code, out, err = _run(capsys, *_base(world), "--json", "--weight-decay", "0.01")
    assert code == 0, err
    rows = json.loads(out)["attributes"]
    assert [r["attribute"] for r in rows] == ["emotion", "hat", "Smiling"]
    assert all(r["weight_decay"] == 0.01 for r in rows)


def test_missing_attribute_is_one_clear_error(world, capsys):
    root = world[0]
    code, out, err = _run(capsys, *_base(world), "--attribute", "hat", "--attribute", "Bald")
    assert code == 2 and out == ""
    assert "attribute 'Bald'" in err and str(root / "data") in err and "labels present: emotion, hat, Smiling" in err
    assert "Traceback" not in err


def test_unknown_zero_shot_task_and_bad_arguments(world, capsys):
    code, _, err = _run(capsys, *_base(world), "--attribute", "hat", "--task", "hat=no_such_task")
    assert code == 2 and "attribute 'hat'" in err and "unknown task 'no_such_task'" in err
    with pytest.raises(SystemExit):
        _run(capsys, *_base(world), "--task", "hat")
    assert "ATTRIBUTE=TASK" in capsys.readouterr().err
