"""`flip ask` out of the box: the embedded toy VQA model answers per face; hints work installed."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def face(tmp_path_factory):
    from flip.data.synthetic.world import SynthConfig, generate

    record = next(generate(SynthConfig(kind="captions", n=1, size=112, seed=5, split_fractions={"train": 1}), "train"))
    path = tmp_path_factory.mktemp("ask") / "face.png"
    record.image.save(path)
    return path


def test_without_an_embedded_model_the_hint_needs_no_clone(face, capsys, monkeypatch):
    import flip.vqa.model
    from flip.cli.ask import main

    monkeypatch.setattr(flip.vqa.model, "embedded_vqa_path", lambda: None)
    assert main([str(face), "What emotion does this face show?"]) == 2
    err = capsys.readouterr().err
    assert "pass --model" in err and "finetune" not in err and "runs/" not in err


def test_the_embedded_model_answers_each_face(face, capsys):
    from flip.cli.ask import main
    from flip.vqa.model import EMBEDDED_VQA, embedded_vqa_path

    if embedded_vqa_path() is None:
        pytest.skip("no embedded vqa-toy-synth in this checkout")
    assert main([str(face), "What emotion does this face show?", "--json"]) == 0
    out, err = capsys.readouterr()
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert row["model"] == EMBEDDED_VQA and row["face"] == 0 and row["whole_image"]
    assert isinstance(row["ask"]["answer"], str) and row["ask"]["answer"] and "note:" not in err
    cbook = pytest.importorskip("matplotlib.cbook")
    pytest.importorskip("facenet_pytorch")
    hopper = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)  # a real photo: its face is detected
    assert main([str(hopper), "-q", "Is this person wearing a hat?", "--json"]) == 0
    out, err = capsys.readouterr()
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert row["face"] == 0 and not row["whole_image"] and row["detector_score"] > 0.9
    assert "note: the default model" in err
