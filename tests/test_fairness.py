"""The fairness audit (eval/tasks/fairness.py): per-group accuracy and the largest gap with its bootstrap
interval on hand-made inputs, the audit over prediction rows, and the descriptor lever on a tiny model."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from eval.tasks.fairness import audit, largest_gap


def gap(correct, groups, **options):
    """The group_gap evaluate module on outcomes: a right example predicts its reference."""
    return largest_gap(["y" if c else "n" for c in correct], ["y"] * len(correct), groups, **options)


def test_group_accuracies_are_counted_by_hand_and_unknown_groups_skipped():
    result = gap([1, 0, 1, 1, 0, 1, 1], ["dark", "dark", "light", "light", None, "medium", "medium"])
    assert result["groups"] == {"dark": {"accuracy": 0.5, "n": 2}, "light": {"accuracy": 1.0, "n": 2},
                                "medium": {"accuracy": 1.0, "n": 2}}
    assert result["gap"] == 0.5 and result["worst"] == "dark" and result["best"] == "light"  # first on ties
    with pytest.raises(ValueError, match="no predictions"):
        largest_gap([], [], [])


def test_gap_of_constant_groups_has_a_degenerate_interval():
    # Every resample of an all-right group and an all-wrong group is the same: gap 1, interval [1, 1].
    result = gap([1, 1, 1, 0, 0, 0], ["a", "a", "a", "b", "b", "b"], n_boot=200)
    assert (result["gap"], result["low"], result["high"], result["se"]) == (1.0, 1.0, 1.0, 0.0)
    assert result["best"] == "a" and result["worst"] == "b" and result["excluded"] == {}


def test_bootstrap_distribution_matches_the_hand_computed_one():
    # Group a = [right, wrong]: a resample has 0, 1 or 2 right with probabilities 1/4, 1/2, 1/4,
    # so its accuracy is 0, 0.5 or 1; group b is always 1. The gap 1 - acc(a) is 1, 0.5, 0 likewise:
    # mean 0.5, standard deviation sqrt(2 * 1/4 * 0.5^2) = 0.3536, 95% interval [0, 1].
    result = gap([1, 0, 1, 1], ["a", "a", "b", "b"], n_boot=20_000, seed=0)
    assert result["gap"] == 0.5 and (result["low"], result["high"]) == (0.0, 1.0)
    assert result["se"] == pytest.approx(0.3536, abs=0.005)
    assert result["best"] == "b" and result["worst"] == "a"
    # at 40% coverage the interval is the middle of the distribution: [0.5, 0.5]
    assert (lambda r: (r["low"], r["high"]))(gap([1, 0, 1, 1], ["a", "a", "b", "b"], n_boot=20_000,
                                                 confidence=0.4)) == (0.5, 0.5)


def test_bootstrap_is_seeded_and_narrows_with_more_examples():
    rng = np.random.default_rng(1)
    groups = ["x"] * 40 + ["y"] * 40
    correct = list(rng.random(40) < 0.9) + list(rng.random(40) < 0.6)
    a = gap(correct, groups, seed=3)
    assert a == gap(correct, groups, seed=3)
    assert (a["low"], a["high"]) != tuple(gap(correct, groups, seed=4)[k] for k in ("low", "high"))
    assert a["low"] <= a["gap"] <= a["high"]
    narrow = gap(correct * 10, groups * 10, seed=3)  # same accuracies, ten times the examples
    assert narrow["gap"] == pytest.approx(a["gap"])
    assert narrow["high"] - narrow["low"] < (a["high"] - a["low"]) / 2


def test_small_groups_are_excluded_and_too_few_groups_is_an_error():
    correct, groups = [1, 1, 0, 0, 1], ["a", "a", "b", "b", "c"]
    result = gap(correct, groups, min_count=2, n_boot=50)
    assert set(result["groups"]) == {"a", "b"} and result["excluded"] == {"c": 1} and result["gap"] == 1.0
    with pytest.raises(ValueError, match="at least two groups with >= 3 examples"):
        gap(correct, groups, min_count=3)
    with pytest.raises(ValueError, match="confidence"):
        gap(correct, groups, confidence=1.5)


def test_audit_over_prediction_rows():
    rows = []
    # hat: right for every light face, wrong for half the dark ones; skin_tone is never audited by skin tone.
    for i in range(8):
        tone = "light" if i < 4 else "dark"
        hat_pred = "true" if tone == "light" or i % 2 else "false"
        rows.append({"labels": {"hat": "true", "skin_tone": tone}, "groups": {"skin_tone": tone, "age_group": "adult"},
                     "descriptors": {"hat": hat_pred, "skin_tone": tone}})
    entries = audit(rows, group_fields=["skin_tone", "age_group"], min_count=2, n_boot=100)
    assert [(e["attribute"], e["group_field"]) for e in entries] == [("hat", "skin_tone")]  # one age group only
    (e,) = entries
    assert e["n"] == 8 and e["accuracy"] == 0.75 and e["gap"] == 0.5
    assert e["groups"] == {"dark": {"accuracy": 0.5, "n": 4}, "light": {"accuracy": 1.0, "n": 4}}
    with pytest.raises(ValueError, match="variant 'random' is missing"):
        audit(rows, variant="random")
    # Rows written before groups were recorded: the labels stand in for the attribute group fields.
    legacy = [{k: v for k, v in r.items() if k != "groups"} for r in rows]
    assert audit(legacy, group_fields=["skin_tone"], min_count=2, n_boot=100) == entries


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """48 synthetic faces at 32 px (imagefolder)."""
    from flip.data.synthetic import SynthConfig, write_synthetic

    root = tmp_path_factory.mktemp("fair")
    write_synthetic(SynthConfig(kind="captions", n=48, size=32, seed=0), root / "data", progress=False, workers=1)
    return root / "data"


def test_editing_descriptors_changes_the_audit(faces, checkpoint, tmp_path, capsys):
    """The lever: a copy of the prompt folder with hair-colour descriptors rewritten gives other figures."""
    from eval.tasks.fairness import main
    from flip.prompts import prompt_root

    edited = tmp_path / "my_prompts"
    shutil.copytree(prompt_root(), edited)
    hair = json.loads((edited / "hair_color.json").read_text())
    hair["black"] = ["black hair", "hair as black as coal"]
    hair["grey"] = ["silver hair", "the hair of a grey mouse"]
    (edited / "hair_color.json").write_text(json.dumps(hair))

    out = tmp_path / "report"
    assert main(["--model", checkpoint, "--data", str(faces), "--split", "train", "--attributes", "hair_color",
                 "--prompts", "shipped", str(edited), "--min-count", "2", "--n-boot", "200", "--workers", "0",
                 "--out", str(out)]) == 0
    result = json.loads((out / "fairness.json").read_text())
    shipped, mine = result["runs"]
    assert shipped["prompts"] == "shipped" and mine["prompts"] == str(edited)
    assert {e["group_field"] for e in shipped["audit"]} == {"skin_tone", "age_group"}
    assert all(e["attribute"] == "hair_color" for e in shipped["audit"])
    figures = [[(e["group_field"], e["accuracy"], e["groups"]) for e in run["audit"]] for run in (shipped, mine)]
    assert figures[0] != figures[1]
    printed = capsys.readouterr().out
    assert "the largest gap under each prompt folder" in printed and "| hair_color | skin_tone |" in printed


def test_audit_from_an_attributes_predictions_file(faces, checkpoint, tmp_path):
    from eval.tasks import attributes, fairness

    assert attributes.main(["--model", checkpoint, "--data", str(faces), "--split", "train", "--out", str(tmp_path),
                            "--attributes", "hat", "eyewear", "--variants", "descriptors", "--workers", "0"]) == 0
    rows = fairness.load_predictions(tmp_path / "attributes_predictions.jsonl")
    assert all(set(r["groups"]) == {"skin_tone", "age_group"} for r in rows)  # recorded though not scored
    assert fairness.main(["--predictions", str(tmp_path / "attributes_predictions.jsonl"), "--min-count", "2",
                          "--n-boot", "100", "--out", str(tmp_path)]) == 0
    (run,) = json.loads((tmp_path / "fairness.json").read_text())["runs"]
    assert {e["attribute"] for e in run["audit"]} == {"hat", "eyewear"}
    for e in run["audit"]:
        scored = [r for r in rows if e["attribute"] in r["labels"]]
        by_group = [r for r in scored if r["groups"][e["group_field"]] == e["worst"]]
        worst = np.mean([r["descriptors"][e["attribute"]] == r["labels"][e["attribute"]] for r in by_group])
        assert e["groups"][e["worst"]]["accuracy"] == pytest.approx(worst)


def test_bad_predictions_file_is_one_clear_error(tmp_path, capsys):
    from eval.tasks.fairness import main

    bad = tmp_path / "p.jsonl"
    bad.write_text('{"labels": {}}\nnot json\n')
    assert main(["--predictions", str(bad), "--out", str(tmp_path)]) == 2
    assert "p.jsonl, line 2: not JSON" in capsys.readouterr().err
