"""flip.naming.detect: the detector interface, user boxes, Haar and MTCNN on synthetic group scenes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from flip.naming.detect import Box, FaceDetector, GivenBoxes, align_face, build_detector, crop_face


@pytest.fixture(scope="module")
def scenes():
    from flip.data.synthetic.world import SynthConfig, generate

    cfg = SynthConfig(kind="scenes", n=6, size=128, seed=0, split_fractions={"train": 1})
    return list(generate(cfg, "train"))


def _iou(a: list[float], b: list[float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_given_boxes_are_returned_exactly(scenes):
    record = scenes[0]
    detector = GivenBoxes([f["box"] for f in record.faces])
    assert isinstance(detector, FaceDetector)
    boxes = detector.detect(record.image)
    assert [b.xyxy for b in boxes] == [f["box"] for f in record.faces]
    assert all(b.score == 1.0 for b in boxes)
    assert GivenBoxes([[1, 2, 3, 4, 0.5]]).detect(record.image)[0] == Box(1, 2, 3, 4, 0.5)


@pytest.mark.parametrize("boxes, message", [
    ([[10, 10, 5, 20]], "inverted"),
    ([[1, 2, 3]], "4 numbers"),
    ([["a", 2, 3, 4]], "4 numbers"),
    ([[200, 200, 210, 210]], "outside the 128x128"),
])
def test_given_boxes_reject_bad_boxes(scenes, boxes, message):
    with pytest.raises(ValueError, match=message):
        GivenBoxes(boxes).detect(scenes[0].image)


@pytest.mark.parametrize("name", ["haar", "mtcnn"])
def test_real_detectors_run_offline_and_what_they_find_is_a_face(scenes, name):
    """Neither detector was trained on drawings, so neither must find every cartoon face; measured
    here, each finds at least one of the 17 faces in these six scenes, and every box it returns
    lies on a true face."""
    detector = build_detector(name)
    found = 0
    for record in scenes:
        truth = [f["box"] for f in record.faces]
        boxes = detector.detect(record.image)
        assert all(isinstance(b, Box) and 0 <= b.score <= 1 for b in boxes)
        assert [b.x0 for b in boxes] == sorted(b.x0 for b in boxes)
        for b in boxes:
            assert max(_iou(b.xyxy, t) for t in truth) > 0.3
            if name == "mtcnn":
                assert len(b.landmarks) == 5 and b.score >= 0.9
        found += len(boxes)
    assert found >= 1


def test_build_detector_names_the_choices():
    with pytest.raises(ValueError, match="detector='yolo'"):
        build_detector("yolo")


def test_crop_and_align():
    image = Image.new("RGB", (40, 30), "white")
    image.paste((255, 0, 0), (10, 5, 20, 15))
    crop = crop_face(image, Box(10, 5, 20, 15))
    assert crop.size == (10, 10) and crop.getpixel((5, 5)) == (255, 0, 0)
    assert crop_face(image, Box(10, 5, 20, 15), margin=0.5).size == (20, 20)
    # eyes already level: alignment changes nothing
    level = Box(10, 5, 20, 15, landmarks=((12, 8), (18, 8), (15, 10), (13, 13), (17, 13)))
    assert np.array_equal(np.asarray(align_face(image, level)), np.asarray(crop))
    # a tilted pair of eyes is levelled: a diagonal line through them becomes horizontal
    tilted = Image.new("L", (41, 41), 0)
    for t in range(-10, 11):
        for d in (-1, 0, 1):
            tilted.putpixel((20 + t, 20 + t + d), 255)
    before = np.asarray(crop_face(tilted, Box(0, 0, 41, 41)))[20, 12:29, 0]
    after = np.asarray(align_face(tilted, Box(0, 0, 41, 41, landmarks=((10, 10), (30, 30), (20, 20), (0, 0), (0, 0)))))
    assert (before > 200).sum() == 3
    assert after[20, 12:29, 0].min() > 200


@pytest.fixture(scope="module")
def hopper():
    """A real photograph: Grace Hopper's US Navy portrait (public domain), shipped by matplotlib."""
    cbook = pytest.importorskip("matplotlib.cbook")
    return Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")


@pytest.mark.parametrize("name", ["haar", "mtcnn"])
def test_real_photo_face_count(hopper, name):
    detector = build_detector(name)
    (single,) = detector.detect(hopper)
    assert 120 < single.x1 - single.x0 < 280 and single.x0 < hopper.width / 2 < single.x1
    two_up = Image.new("RGB", (2 * hopper.width, hopper.height))
    two_up.paste(hopper, (0, 0))
    two_up.paste(hopper.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (hopper.width, 0))
    boxes = detector.detect(two_up)
    assert len(boxes) == 2 and boxes[0].x1 < hopper.width < boxes[1].x0
    if name == "mtcnn":
        assert align_face(hopper, single).size == crop_face(hopper, single).size
