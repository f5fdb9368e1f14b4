"""`flip name-faces` end to end on a tiny random model and a synthetic group scene with its boxes."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from flip.cli import COMMANDS
from flip.cli.name_faces import main, parse_boxes


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from conftest import tiny_config
    from flip.hub import save
    from flip.model import FLIPModel
    from flip.processor import FLIPProcessor

    torch.manual_seed(0)
    model = FLIPModel(tiny_config()).eval()
    processor = FLIPProcessor.from_settings(tokenizer="minilm", image_size=32, max_length=16)
    return str(save(model, processor, tmp_path_factory.mktemp("ckpt") / "tiny"))


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    from flip.data.synthetic.world import SynthConfig, generate

    record = next(generate(SynthConfig(kind="scenes", n=1, size=96, seed=3, split_fractions={"train": 1}), "train"))
    path = tmp_path_factory.mktemp("scene") / "scene.png"
    record.image.save(path)
    return path, record


def boxes_arg(record) -> str:
    return ";".join(",".join(str(v) for v in f["box"]) for f in record.faces)


def test_registered():
    assert COMMANDS["name-faces"][0] == "name_faces"


def test_json_names_each_given_face_once(checkpoint, scene, capsys, tmp_path):
    path, record = scene
    rc = main([str(path), "--caption", record.caption, "--boxes", boxes_arg(record), "--model", checkpoint,
               "--json", "--threshold", "-1", "--draw", str(tmp_path / "drawn")])
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]  # one line per face
    assert rc == 0 and all(f["path"] == str(path) and f["model"] == checkpoint for f in out)
    assert [f["face"] for f in out] == list(range(len(record.faces)))
    assert [f["box"] for f in out] == [f["box"] for f in record.faces]
    named = [f["naming"]["name"] for f in out if f["naming"]["name"] is not None]
    # threshold -1: every face is named while names last, each name at most once
    assert len(named) == min(len(record.faces), len(record.names)) and len(set(named)) == len(named)
    assert set(named) <= set(record.names)
    assert all(-1 <= f["naming"]["score"] <= 1 and f["detector_score"] == 1 for f in out)
    assert Image.open(tmp_path / "drawn" / "scene.faces.png").size == (96, 96)


def test_high_threshold_names_nobody_and_text_output(checkpoint, scene, capsys):
    path, record = scene
    rc = main([str(path), "--caption", record.caption, "--boxes", boxes_arg(record), "--model", checkpoint,
               "--threshold", "1.01"])
    lines = capsys.readouterr().out.splitlines()
    assert rc == 0 and len(lines) == len(record.faces) and all("(no name)" in line for line in lines)


def test_names_given_explicitly(checkpoint, scene, capsys):
    path, record = scene
    rc = main([str(path), "--caption", "no names here", "--names", "Ana Silva", "--boxes", boxes_arg(record),
               "--model", checkpoint, "--json", "--threshold", "-1"])
    faces = [json.loads(line)["naming"] for line in capsys.readouterr().out.splitlines()]
    assert rc == 0 and [f["name"] for f in faces].count("Ana Silva") == 1


def test_detector_path_runs(checkpoint, scene, capsys):
    path, record = scene
    rc = main([str(path), "--caption", record.caption, "--detector", "haar", "--model", checkpoint, "--json",
               "--min-face-size", "8"])
    out, err = capsys.readouterr()
    faces = [json.loads(line) for line in out.splitlines()]
    assert rc == 0 and (faces or "no faces found" in err)
    assert all(0 <= f["box"][0] < f["box"][2] <= 96 and 0 <= f["box"][1] < f["box"][3] <= 96 for f in faces)


@pytest.mark.parametrize("extra, message", [
    (["--boxes", "1,2,3"], "--boxes: each box is 4 numbers"),
    (["--boxes", "1,2,x,4"], "--boxes: expected"),
    (["--boxes", "500,500,600,600"], "outside the 96x96 image"),
    (["--heads", "/nonexistent/heads.pt"], "no checkpoint at"),
])
def test_bad_input_is_one_clear_error(checkpoint, scene, capsys, extra, message):
    path, record = scene
    rc = main([str(path), "--caption", record.caption, "--model", checkpoint, *extra])
    assert rc == 2 and message in capsys.readouterr().err


def test_missing_image_is_a_skipped_input(checkpoint, capsys, tmp_path):
    rc = main([str(tmp_path / "nope.png"), "--caption", "Ana Silva.", "--model", checkpoint])
    assert rc == 1 and capsys.readouterr().err == f"skipped {tmp_path / 'nope.png'}: no such file\n"


def test_parse_boxes_forms():
    assert parse_boxes("1,2,3,4; 5,6,7,8") == [[1, 2, 3, 4], [5, 6, 7, 8]]
    assert parse_boxes("[[1, 2, 3, 4]]") == [[1, 2, 3, 4]]
