"""flip.naming.label_scores: face-label precision, recall and F1 with and without NONAME, by hand."""

from __future__ import annotations

import pytest

from flip.naming.label_scores import LabelScores, face_label_scores

TRUTH = [["Ana", None, "Kofi"], ["Mei"]]


@pytest.mark.parametrize("predicted, with_noname, expected", [
    (TRUTH, False, (1.0, 1.0, 1.0)),
    (TRUTH, True, (1.0, 1.0, 1.0)),
    # one named face left unnamed: precision 2/2, recall 2/3
    ([["Ana", None, None], ["Mei"]], False, (1.0, 2 / 3, 0.8)),
    # ...with NONAME: 3 of 4 faces right
    ([["Ana", None, None], ["Mei"]], True, (0.75, 0.75, 0.75)),
    # an unnamed face named and two names swapped: hits 1 of 4 predictions, of 3 relevant
    ([["Kofi", "Ana", "Ana"], ["Mei"]], False, (0.25, 1 / 3, 2 * 0.25 / 3 / (0.25 + 1 / 3))),
    # nothing named at all
    ([[None, None, None], [None]], False, (0.0, 0.0, 0.0)),
    ([[None, None, None], [None]], True, (0.25, 0.25, 0.25)),
])
def test_scores_by_hand(predicted, with_noname, expected):
    got = face_label_scores(predicted, TRUTH, with_noname=with_noname)
    assert (got.precision, got.recall, got.f1) == pytest.approx(expected)
    assert isinstance(got, LabelScores)


def test_shapes_must_agree():
    with pytest.raises(ValueError, match="image 1: 2 predicted labels for 1 faces"):
        face_label_scores([["Ana", None, "Kofi"], ["Mei", None]], TRUTH)
    with pytest.raises(ValueError, match="predicted: 1 images, truth: 2"):
        face_label_scores([["Ana"]], TRUTH)


def test_package_exports_resolve_lazily():
    import subprocess
    import sys

    import flip.naming as naming

    for name in naming.__all__:
        assert getattr(naming, name).__name__ == name
    with pytest.raises(AttributeError):
        naming.nothing_here
    code = "import sys, flip.naming; print('cv2' in sys.modules, 'scipy' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["False", "False"]
