"""flip.faces: the face stage on real photographs (public-domain samples that packages ship) and on
made-up images whose answers are known: counts, boxes inside the image, alignment, one record per face."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from flip.faces import (Box, FaceStage, FaceStageConfig, GivenBoxes, align_face, draw_faces, face_template,
                        is_face_crop, similarity_transform)
from flip.faces.draw import font_size


@pytest.fixture(scope="module")
def hopper():
    """Grace Hopper's US Navy portrait (public domain), shipped by matplotlib: one face."""
    cbook = pytest.importorskip("matplotlib.cbook")
    return Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")


@pytest.fixture(scope="module")
def group(hopper):
    """Three portraits side by side on a wide canvas, the middle one mirrored and smaller, the right
    one cut by the image edge: a group photo whose faces are known."""
    canvas = Image.new("RGB", (3 * hopper.width, hopper.height + 100), (200, 200, 200))
    canvas.paste(hopper, (0, 100))
    small = hopper.transpose(Image.Transpose.FLIP_LEFT_RIGHT).resize((hopper.width * 3 // 4, hopper.height * 3 // 4))
    canvas.paste(small, (hopper.width + 60, 160))
    canvas.paste(hopper, (2 * hopper.width + 150, 0))  # its face's right side runs past the edge
    return canvas


@pytest.fixture(scope="module")
def mtcnn_stage():
    pytest.importorskip("facenet_pytorch")
    return FaceStage(mode="all")


def _inside(box, image) -> bool:
    x0, y0, x1, y1 = box
    return 0 <= x0 < x1 <= image.width and 0 <= y0 < y1 <= image.height


def test_a_portrait_has_exactly_one_face_and_a_group_one_per_person(mtcnn_stage, hopper, group):
    (face,) = mtcnn_stage.find(hopper, 112)
    assert face.index == 0 and not face.whole_image and face.score > 0.99 and _inside(face.box, hopper)
    assert 120 < face.box[2] - face.box[0] < 280 and len(face.landmarks) == 5
    faces = mtcnn_stage.find(group, 112)
    assert [f.index for f in faces] == [0, 1, 2]
    assert all(_inside(f.box, group) for f in faces)
    assert [f.box[0] for f in faces] == sorted(f.box[0] for f in faces)  # left to right
    assert faces[2].box[2] == group.width  # the cut face's box is clipped to the edge
    assert faces[1].box[2] - faces[1].box[0] < faces[0].box[2] - faces[0].box[0]


def test_largest_max_faces_min_size_and_no_face(mtcnn_stage, group):
    full = mtcnn_stage.find(group, 112)
    (largest,) = FaceStage(mode="largest").find(group, 112)
    areas = [(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) for f in full]
    assert largest.box == full[int(np.argmax(areas))].box
    two = FaceStage(mode="all", max_faces=2).find(group, 112)
    assert len(two) == 2 and {f.score for f in two} == set(sorted((f.score for f in full), reverse=True)[:2])
    small_side = min(f.box[2] - f.box[0] for f in full)
    assert len(FaceStage(mode="all", min_face_size=int(small_side) + 1).find(group, 112)) == 2
    blank = Image.new("RGB", (300, 200), (128, 128, 128))
    (whole,) = FaceStage(mode="all").find(blank, 112)
    assert whole.index is None and whole.whole_image and whole.box == (0, 0, 300, 200)
    assert whole.record() == {"face": None, "box": [0, 0, 300, 200], "detector_score": None, "whole_image": True}
    assert FaceStage(mode="all", if_none="skip").find(blank, 112) == []


@pytest.mark.parametrize("size, taken_whole", [((112, 112), True), ((224, 224), True), ((225, 225), False),
                                               ((112, 100), False), ((512, 600), False)])
def test_auto_takes_face_crops_whole_and_none_never_detects(size, taken_whole):
    assert is_face_crop(size, 112) is taken_whole
    image = Image.new("RGB", size)
    if taken_whole:  # no detector is even built
        stage = FaceStage(mode="auto", detector=GivenBoxes([]))
        assert [(f.index, f.whole_image) for f in stage.find(image, 112)] == [(0, True)]
    (face,) = FaceStage(mode="none").find(image, 112)
    assert face.whole_image and face.index == 0 and face.box == (0, 0, *size)


def test_given_boxes_reaching_past_the_edge_are_clipped():
    image = Image.new("RGB", (100, 80))
    faces = FaceStage(mode="all", detector=GivenBoxes([[-10, 5, 30, 40], [60, 50, 130, 95]]), min_face_size=1) \
        .find(image, 32)
    assert [f.box for f in faces] == [(0, 5, 30, 40), (60, 50, 100, 80)]


def test_stage_config_errors_name_the_field():
    with pytest.raises(ValueError, match="FaceStageConfig.mode"):
        FaceStageConfig(mode="every")
    with pytest.raises(ValueError, match="FaceStageConfig.max_faces"):
        FaceStageConfig(max_faces=0)
    with pytest.raises(ValueError, match="FaceStageConfig.detector"):
        FaceStageConfig(detector="yolo")


def test_similarity_transform_recovers_a_known_one():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -4.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ (scale * rot).T + shift
    np.testing.assert_allclose(similarity_transform(src, dst), np.hstack([scale * rot, shift[:, None]]), atol=1e-9)


def test_alignment_puts_known_points_on_the_template():
    """Five bright dots placed at a rotated, scaled, shifted template land on the template's pixels
    (each dot's centroid in the aligned crop, pixel j spanning [j, j + 1), within half a pixel)."""
    size, margin = 64, 0.2
    template = face_template(size, margin)
    angle, scale, shift = 0.4, 2.5, np.array([70.0, 40.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centres = np.round(template @ (scale * rot).T + shift)
    canvas = Image.new("L", (300, 300), 0)
    for x, y in centres.astype(int):
        canvas.paste(255, (x - 6, y - 6, x + 7, y + 7))  # pixels x-6..x+6: centred on x + 0.5
    aligned = np.asarray(align_face(canvas.convert("RGB"), centres + 0.5, size, margin))[..., 0].astype(float)
    for tx, ty in template:
        r0, r1, c0, c1 = int(ty) - 5, int(ty) + 6, int(tx) - 5, int(tx) + 6
        window = aligned[r0:r1, c0:c1]
        rows, cols = np.mgrid[r0:r1, c0:c1] + 0.5
        assert window.sum() > 0
        centroid = np.array([(cols * window).sum(), (rows * window).sum()]) / window.sum()
        np.testing.assert_allclose(centroid, [tx, ty], atol=0.5)


def test_alignment_puts_hoppers_eyes_where_the_template_says(mtcnn_stage, hopper):
    (face,) = mtcnn_stage.find(hopper, 112)
    size, margin = 112, 0.25
    aligned = align_face(hopper, face.landmarks, size, margin)
    assert aligned.size == (size, size)
    (again,) = FaceStage(mode="all", min_score=0.5).detect(aligned)
    found = np.asarray(again.landmarks[:2])
    np.testing.assert_allclose(found, face_template(size, margin)[:2], atol=3.0)  # pixels


def test_crops_follow_the_processor_settings(mtcnn_stage, hopper):
    from flip.processor import FLIPProcessor

    for how, margin in (("box", 0.0), ("box", 0.3), ("aligned", 0.1)):
        processor = FLIPProcessor("minilm", image_size=48, box_margin=margin, face_crop=how)
        faces, pixels = mtcnn_stage.pixels(hopper, processor)
        assert len(faces) == 1 and pixels.dtype == torch.uint8 and pixels.shape == (1, 3, 48, 48)
    with pytest.raises(ValueError, match="face_crop"):
        FLIPProcessor("minilm", face_crop="tight")


def test_drawing_labels_scale_with_the_image(hopper):
    assert font_size(1920, 1080) == 30 and font_size(112, 112) == 12
    drawn = draw_faces(hopper, [(174, 120, 356, 340)], ["happy 0.81"])
    diff = np.abs(np.asarray(drawn, dtype=int) - np.asarray(hopper, dtype=int)).sum(-1) > 0
    rows = np.nonzero(diff[:119].any(1))[0]  # the label band sits above the box
    assert len(rows) >= font_size(*hopper.size)
    with pytest.raises(ValueError, match="2 boxes but 1 labels"):
        draw_faces(hopper, [(0, 0, 1, 1), (1, 1, 2, 2)], ["x"])


def test_classify_answers_once_per_face_in_cli_and_api(mtcnn_stage, group, checkpoint, tmp_path, capsys,
                                                       monkeypatch):
    from flip.cli.classify import main
    from flip.hub import load
    from flip.zeroshot import FLIPClassifier, TextCache

    monkeypatch.setenv("FLIP_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "group.jpg"
    group.save(path)
    rc = main([str(path), "--model", checkpoint, "--task", "emotion", "--json", "--workers", "0",
               "--draw", str(tmp_path / "drawn")])
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert rc == 0 and [r["face"] for r in rows] == [0, 1, 2] and "3 face(s) in 1 image(s)" in err
    assert all(_inside(r["box"], group) and r["detector_score"] > 0.9 and not r["whole_image"] for r in rows)
    assert Image.open(tmp_path / "drawn" / "group.faces.png").size == group.size
    model, processor = load(checkpoint)
    api = FLIPClassifier(model, processor, ["emotion"], cache=TextCache()).classify_photos(path)
    assert [(r["face"], r["box"]) for r in api] == [(r["face"], r["box"]) for r in rows]
    for a, b in zip(api, rows):
        assert a["emotion"]["scores"] == pytest.approx(b["emotion"]["scores"], abs=1e-5)


def test_insightface_group_sample_where_installed(mtcnn_stage):
    """insightface's t1.jpg, a group photo of six people, where the package is installed."""
    insightface = pytest.importorskip("insightface")
    from pathlib import Path

    sample = next(Path(insightface.__file__).parent.rglob("t1.jpg"), None)
    if sample is None:
        pytest.skip("insightface ships no t1.jpg here")
    image = Image.open(sample).convert("RGB")
    faces = mtcnn_stage.find(image, 112)
    assert len(faces) == 6 and all(_inside(f.box, image) for f in faces)


def test_the_synthetic_default_says_once_that_photos_are_beyond_it(mtcnn_stage, hopper, tmp_path, capsys,
                                                                   monkeypatch):
    from flip.cli.liveness import main

    monkeypatch.setenv("FLIP_CACHE", str(tmp_path / "cache"))
    photo, crop = tmp_path / "hopper.jpg", tmp_path / "crop.png"
    hopper.save(photo)
    hopper.crop((165, 110, 365, 310)).resize((112, 112)).save(crop)  # a face crop the model's size
    assert main([str(crop), "--json", "--workers", "0"]) == 0
    out, err = capsys.readouterr()
    cli = json.loads(out)
    assert cli["model"] == "flip-tiny-synth-liveness" and "note:" not in err  # the shipped liveness fine-tune
    import flip
    from flip.liveness import DEFAULT_LIVENESS_MODEL, LivenessClassifier

    (api,) = LivenessClassifier(*flip.load(DEFAULT_LIVENESS_MODEL)).score_photos(crop)  # the Python API: the same
    assert api["face"] == cli["face"] and api["liveness"]["live_score"] == pytest.approx(cli["liveness"]["live_score"])
    assert main([str(photo), str(photo), "--json", "--workers", "0"]) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line)["face"] for line in out.splitlines()] == [0, 0]
    assert err.count("note: the default model flip-tiny-synth-liveness") == 1 and "FLIP-80M" in err
