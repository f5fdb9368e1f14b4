"""The face-naming evaluation (eval/tasks/naming.py) end to end on a handful of tiny scenes.

Plumbing only (a tiny random model cannot name anyone): the table's figures are checked against
labels recomputed from the same features, and the metric against hand-computed values.
"""

from __future__ import annotations

import json

import pytest
import torch


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    from flip.data.synthetic.world import SynthConfig, write_synthetic

    out = tmp_path_factory.mktemp("scenes")
    cfg = SynthConfig(kind="scenes", n=16, size=64, seed=4, split_fractions={"train": 0.75, "test_seen": 0.25})
    write_synthetic(cfg, out, workers=1, progress=False)
    return out


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_metric_matches_hand_computed_values():
    from eval.tasks.naming import metric

    # faces: A named right, B left unnamed, an unnamed face given C, an unnamed face left unnamed
    scores = metric([["A", None], ["C", None]], [["A", "B"], [None, None]])
    assert scores["precision"] == pytest.approx(1 / 2) and scores["recall"] == pytest.approx(1 / 2)
    assert scores["f1_noname"] == scores["precision_noname"] == scores["recall_noname"] == pytest.approx(2 / 4)


def test_baseline_threshold_decides_no_name(checkpoint, scenes):
    from eval.tasks.naming import featurize, load_examples, predict
    from flip.hub import load
    from flip.naming.embed import FlipFaceEmbedder

    model, processor = load(checkpoint)
    pairs = featurize(load_examples(scenes, "train"), model, processor, FlipFaceEmbedder(model, processor))
    assert all(label is None for labels in predict(None, pairs, threshold=1.01) for label in labels)
    named = predict(None, pairs, threshold=-1.01)  # every face named while names last, each name once
    for labels, pair in zip(named, pairs):
        given = [n for n in labels if n is not None]
        assert len(given) == min(len(pair.faces), len(pair.names)) == len(set(given))


def test_command_writes_the_table(checkpoint, scenes, tmp_path, one_thread, capsys):
    from eval.tasks.naming import KEYS, featurize, load_examples, main, metric, predict
    from flip.hub import load
    from flip.naming.embed import FlipFaceEmbedder

    out = tmp_path / "report"
    argv = ["--data", str(scenes), "--model", checkpoint, "--embedders", "flip", "--steps", "12",
            "--stage1-steps", "4", "--batch-size", "4", "--threshold", "0.1", "--out", str(out)]
    assert main(argv) == 0
    first = json.loads((out / "naming.json").read_text())
    capsys.readouterr()
    assert main(argv) == 0  # a rerun into the same --out starts its own training runs over
    report = json.loads((out / "naming.json").read_text())
    assert report["rows"] == first["rows"]
    rows = report["rows"]
    assert [(r["faces"], r["method"]) for r in rows] == [("flip", "baseline"), ("flip", "secla"), ("flip", "secla-b")]
    recipes = report["config"]["recipes"]  # the heads came from flip name-faces-train; its saved configs
    assert {k: (v["method"], v["steps"], v["stage1_steps"]) for k, v in recipes.items()} == {
        "flip secla": ("secla", 12, 4), "flip secla-b": ("secla-b", 12, 4)}
    assert (out / "naming-heads" / "flip-secla-b" / "heads.pt").is_file()
    train, heldout = load_examples(scenes, "train"), load_examples(scenes, "test_seen")
    assert report["counts"]["flip"]["corpus"]["faces"] == sum(len(r.faces) for r in train)
    assert report["counts"]["flip"]["new images"]["faces"] == sum(len(r.faces) for r in heldout)
    model, processor = load(checkpoint)
    for records, setting in ((train, "corpus"), (heldout, "new images")):
        pairs = featurize(records, model, processor, FlipFaceEmbedder(model, processor))
        assert rows[0][setting] == pytest.approx(metric(predict(None, pairs, 0.1), [p.face_names for p in pairs]))
    for row in rows:
        for setting in ("corpus", "new images"):
            assert set(row[setting]) == set(KEYS) and all(0 <= v <= 1 for v in row[setting].values())
            assert row[setting]["precision_noname"] == row[setting]["recall_noname"] == row[setting]["f1_noname"]
    table = (out / "naming.md").read_text()
    assert table.count("\n") == 2 + len(rows)
    assert f"{100 * rows[1]['new images']['f1']:.1f}" in table.splitlines()[3]
    assert capsys.readouterr().out.strip() == table.strip()


def test_corpus_only_and_bad_input(checkpoint, scenes, tmp_path, one_thread, capsys):
    from eval.tasks.naming import main

    rc = main(["--data", str(scenes), "--model", checkpoint, "--embedders", "flip", "--methods", "baseline",
               "--heldout-split", "none", "--out", str(tmp_path / "a")])
    assert rc == 0
    row = json.loads((tmp_path / "a" / "naming.json").read_text())["rows"][0]
    assert row["new images"] is None and row["corpus"]["f1_noname"] >= 0
    capsys.readouterr()
    assert main(["--data", str(scenes), "--model", checkpoint, "--heldout-split", "test", "--out", str(tmp_path)]) == 2
    assert "no split 'test'" in capsys.readouterr().err
    assert main(["--data", str(scenes), "--steps", "10", "--stage1-steps", "10", "--out", str(tmp_path)]) == 2
    assert "stage1_steps=10" in capsys.readouterr().err
