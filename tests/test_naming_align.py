"""flip.naming.align: similarity matrix and Hungarian assignment with "no name", on hand-checked cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flip.naming.align import FaceLabel, assign_names, similarity_matrix


def test_similarity_matrix_is_cosine():
    faces = np.array([[1.0, 0.0], [3.0, 4.0]])
    names = torch.tensor([[0.0, 2.0], [1.0, 1.0]])
    expected = np.array([[0.0, 1 / np.sqrt(2)], [0.8, 7 / 5 / np.sqrt(2)]])
    assert np.allclose(similarity_matrix(faces, names), expected)
    assert similarity_matrix(np.zeros((2, 3)), np.zeros((0, 3))).shape == (2, 0)


def names_of(labels):
    return [label.name for label in labels]


@pytest.mark.parametrize("scores, threshold, expected", [
    # greedy would give face 0 name 0 (0.9) and face 1 name 1 (0.1): total 1.0; Hungarian finds 0.8 + 0.8
    ([[0.9, 0.8], [0.8, 0.1]], 0.0, [1, 0]),
    # the same with a threshold of 0.5: still both named (each pair scores 0.8)
    ([[0.9, 0.8], [0.8, 0.1]], 0.5, [1, 0]),
    # threshold 0.85: naming only face 0 with name 0 (0.9 - 0.85) beats the pair (2 x (0.8 - 0.85))
    ([[0.9, 0.8], [0.8, 0.1]], 0.85, [0, None]),
    # everything under the threshold: nobody is named
    ([[0.2, 0.1], [0.3, 0.25]], 0.5, [None, None]),
    # more faces than names: the third face is left out even above the threshold
    ([[0.9], [0.7], [0.6]], 0.0, [0, None, None]),
    # more names than faces: the best name for each face, the rest unused
    ([[0.1, 0.9, 0.3, 0.2]], 0.0, [1]),
    # a name is used once: both faces want name 1, the weaker gets name 0 above the threshold
    ([[0.2, 0.9], [0.6, 0.8]], 0.3, [1, 0]),
    # ...but not when name 0 is under it
    ([[0.2, 0.9], [0.25, 0.8]], 0.3, [1, None]),
    # no names at all
    ([[], []], 0.0, [None, None]),
])
def test_assignment(scores, threshold, expected):
    scores = np.array(scores, dtype=float).reshape(len(scores), -1)
    assert names_of(assign_names(scores, threshold)) == expected


def test_scores_of_named_and_unnamed_faces():
    labels = assign_names(np.array([[0.9, 0.8], [0.8, 0.1]]), 0.85)
    assert labels == [FaceLabel(0, 0.9), FaceLabel(None, 0.8)]
    assert assign_names(np.zeros((1, 0))) == [FaceLabel(None, None)]
    assert assign_names(np.zeros((0, 3))) == []


def test_per_face_threshold_from_a_noname_token():
    # face 1 is more similar to NONAME (0.7) than to any name: unnamed; face 0 takes name 0
    scores = np.array([[0.6, 0.1], [0.5, 0.4]])
    assert names_of(assign_names(scores, threshold=np.array([0.2, 0.7]))) == [0, None]
    assert names_of(assign_names(scores, threshold=torch.tensor([0.2, 0.2]))) == [0, 1]


@pytest.mark.parametrize("scores, threshold, message", [
    (np.zeros(3), 0.0, "scores: expected 2 dimensions"),
    (np.array([[np.nan]]), 0.0, "scores: holds a non-finite"),
    (np.zeros((2, 2)), np.zeros(3), r"threshold: expected a number or one per face \(2\)"),
    (np.zeros((2, 2)), float("inf"), "threshold: holds a non-finite"),
])
def test_bad_input(scores, threshold, message):
    with pytest.raises(ValueError, match=message):
        assign_names(scores, threshold)


def test_dimension_mismatch():
    with pytest.raises(ValueError, match="dimensions differ"):
        similarity_matrix(np.ones((1, 3)), np.ones((1, 4)))
