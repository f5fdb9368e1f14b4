"""`flip classify` end to end on a tiny random model saved to disk: outputs, bad input, the disk cache."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from flip.cli import main as flip_main
from flip.cli.classify import main


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "faces"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name in ("a.png", "b.jpg", "sub/c.png"):
        Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(folder / name)
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    (folder / "notes.txt").write_text("not an image, and not collected from a folder")
    return folder


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FLIP_CACHE", str(tmp_path / "cache"))


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_json_lines_carry_prediction_scores_and_ordered_descriptors(checkpoint, images, capsys, tmp_path):
    rc, out, err = run(capsys, images, "--model", checkpoint, "--task", "emotion", "--task", "hat", "--json",
                       "--workers", "0", "--batch-size", "2")
    assert rc == 1  # broken.png was skipped: a partial failure
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["path"] for r in rows] == [str(images / n) for n in ("a.png", "b.jpg", "sub/c.png")]
    for row in rows:
        assert set(row) == {"path", "face", "box", "detector_score", "whole_image", "emotion", "hat", "model"}
        # noise has no face: the whole image is answered, and the record and stderr say so
        assert row["face"] is None and row["whole_image"] and row["detector_score"] is None
        assert row["box"] == [0, 0, 40, 48] and row["model"] == checkpoint
        assert f"{row['path']}: no face found; answered on the whole image" in err
        for task in ("emotion", "hat"):
            answer = row[task]
            assert answer["prediction"] == max(answer["scores"], key=answer["scores"].get)
            assert answer["prediction"] == max(answer["probabilities"], key=answer["probabilities"].get)
            assert sum(answer["probabilities"].values()) == pytest.approx(1.0)
            sims = [d["similarity"] for d in answer["descriptors"]]
            assert len(sims) == 3 and sims == sorted(sims, reverse=True)
    assert set(rows[0]["hat"]["scores"]) == {"true", "false"}
    assert f"skipped {images / 'broken.png'}" in err and "classified 3 face(s) in 3 image(s)" in err and "skipped 1" in err

    # The same answers as the Python API, and the second run reads the text side from the disk cache.
    from flip.hub import load
    from flip.zeroshot import FLIPClassifier, TextCache

    model, processor = load(checkpoint)
    api = FLIPClassifier(model, processor, ["emotion", "hat"], cache=TextCache()).classify([r["path"] for r in rows])
    assert api["emotion"].predictions == [r["emotion"]["prediction"] for r in rows]
    np.testing.assert_allclose(api["hat"].scores[:, 0].numpy(), [r["hat"]["scores"]["true"] for r in rows], atol=1e-5)
    cached = sorted((tmp_path / "cache" / "text").glob("*.safetensors"))
    assert len(cached) == 2
    rc, again, _ = run(capsys, images, "--model", checkpoint, "--task", "emotion,hat", "--json", "--workers", "0",
                       "--skip-bad")
    assert rc == 0 and sorted((tmp_path / "cache" / "text").glob("*.safetensors")) == cached
    for a, b in zip(rows, map(json.loads, again.splitlines()), strict=True):  # batch size 64, not 2
        assert a["emotion"]["prediction"] == b["emotion"]["prediction"]
        assert a["emotion"]["scores"] == pytest.approx(b["emotion"]["scores"], abs=1e-5)


def test_table_csv_explain_baseline_and_plot(checkpoint, images, capsys, tmp_path):
    rc, out, _ = run(capsys, images / "a.png", "--model", checkpoint, "--task", "age_group", "--explain", "2",
                     "--workers", "0", "--faces", "none")
    lines = out.splitlines()
    assert rc == 0 and lines[0].split() == ["image", "face", "task", "prediction", "score", "prob", "runner-up"]
    assert lines[1].split()[0].endswith("faces/a.png")  # long paths: "…" + tail
    assert lines[1].split()[1:3] == ["whole", "age_group"]
    assert len(lines) == 4 and all(line.strip().startswith("+ ") for line in lines[2:])

    rc, out, _ = run(capsys, images / "a.png", images / "b.jpg", "--model", checkpoint, "--task", "eyewear",
                     "--csv", "--explain", "--baseline", "--workers", "0", "--faces", "none")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rc == 0 and [r["path"] for r in rows] == [str(images / "a.png"), str(images / "b.jpg")]
    assert rows[0]["eyewear"] in ("none", "eyeglasses", "sunglasses") and rows[0]["whole_image"] == "True"
    assert rows[0]["model"] == checkpoint and 0 < float(rows[0]["eyewear.probability"]) <= 1
    # The baseline's "descriptors" are the class phrases themselves.
    assert rows[0]["eyewear.descriptors"].split("; ")[0].startswith("a person")

    pytest.importorskip("matplotlib")
    plot = tmp_path / "plot.png"
    rc, _, err = run(capsys, images, "--model", checkpoint, "--task", "emotion", "--plot", plot, "--json",
                     "--out", tmp_path / "answers.jsonl", "--workers", "0", "--skip-bad")
    assert rc == 0 and plot.read_bytes()[:4] == b"\x89PNG" and f"wrote {plot}" in err
    assert len((tmp_path / "answers.jsonl").read_text().splitlines()) == 3


def test_bad_input_is_reported_clearly(checkpoint, images, capsys, tmp_path):
    rc, _, err = run(capsys, images, "--model", checkpoint, "--task", "emotions")
    assert rc == 2 and "unknown task 'emotions'" in err and "emotion, eye_color" in err
    (tmp_path / "empty").mkdir()
    rc, _, err = run(capsys, tmp_path / "empty", "--model", checkpoint, "--task", "emotion")
    assert rc == 1 and "a folder with no images" in err  # an input, skipped: not a usage error
    rc, _, err = run(capsys, images / "broken.png", "--model", checkpoint, "--task", "emotion", "--workers", "0")
    assert rc == 1 and "not an image" in err and "in 0 image(s)" in err
    rc, _, err = run(capsys, images / "a.png", tmp_path / "missing.png", "--model", checkpoint, "--task", "hat",
                     "--json", "--workers", "0")
    assert rc == 1 and f"skipped {tmp_path / 'missing.png'}: no such file" in err and "skipped 1" in err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"a": ["x"], "b": []}))
    rc, _, err = run(capsys, images, "--model", checkpoint, "--task", bad)
    assert rc == 2 and f"{bad}: class 'b' has no descriptors" in err


def test_list_tasks_and_the_flip_entry_point(capsys):
    rc, out, _ = run(capsys, "--list-tasks")
    assert rc == 0 and "emotion  " in out and "fairface/race" in out and "celeba/Smiling" in out
    assert flip_main(["--help"]) == 0 and "classify" in capsys.readouterr().out


def test_worker_commands_let_idle_openmp_threads_sleep(monkeypatch):
    """`flip classify` sets OMP_WAIT_POLICY=PASSIVE before torch would load, unless the user chose one."""
    import os

    monkeypatch.setenv("OMP_WAIT_POLICY", "recorded")  # so that monkeypatch restores the original state
    monkeypatch.delenv("OMP_WAIT_POLICY")
    with pytest.raises(SystemExit):
        flip_main(["info", "--help"])
    assert "OMP_WAIT_POLICY" not in os.environ
    with pytest.raises(SystemExit):
        flip_main(["classify", "--help"])
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    with pytest.raises(SystemExit):
        flip_main(["classify", "--help"])
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
