"""flip.naming.secla: SECLA scores and loss against a hand-computed example, SECLA-B pieces, heads."""

from __future__ import annotations

import math

import pytest
import torch

from flip.naming.embed import embed_faces, embed_names
from flip.naming.secla import (SECLAConfig, SECLAHeads, easy_pairs, face_prototypes, prototype_loss, secla_loss,
                               secla_scores)

X, Y, JUNK = [1.0, 0.0], [0.0, 1.0], [-5.0, 7.0]


def tiny_batch():
    """Image 0: faces x, y. Image 1: face x (+ a padded junk slot). Caption 0: name x (+ junk);
    caption 1: names y, x."""
    faces = torch.tensor([[X, Y], [X, JUNK]])
    face_mask = torch.tensor([[True, True], [True, False]])
    names = torch.tensor([[X, JUNK], [Y, X]])
    name_mask = torch.tensor([[True, False], [True, True]])
    return faces, face_mask, names, name_mask


def test_scores_by_hand():
    scores = secla_scores(*tiny_batch())
    # names->faces [caption, image]: caption 1's name y finds no y in image 1: (0 + 1) / 2
    assert torch.allclose(scores.names_to_faces, torch.tensor([[1.0, 1.0], [1.0, 0.5]]))
    # faces->names: image 0's face y finds no y in caption 0: (1 + 0) / 2
    assert torch.allclose(scores.faces_to_names, torch.tensor([[0.5, 1.0], [1.0, 1.0]]))


def test_noname_lets_an_unnamed_face_score_on_the_faces_side_only():
    scores = secla_scores(*tiny_batch(), noname=torch.tensor(Y) * 3)
    assert torch.allclose(scores.faces_to_names, torch.ones(2, 2))
    assert torch.allclose(scores.names_to_faces, torch.tensor([[1.0, 1.0], [1.0, 0.5]]))


def test_loss_by_hand():
    loss = secla_loss(secla_scores(*tiny_batch()), temperature=1.0, symmetry_weight=0.15)
    hard = -0.5 + math.log(math.exp(1) + math.exp(0.5))  # logits (1, 0.5) or (0.5, 1), target the 0.5 one
    # each direction: mean of log 2 and `hard`; symmetry: diagonals (1, .5) vs (.5, 1): MSE .25
    expected = 2 * (math.log(2) + hard) / 2 + 0.15 * 0.25
    assert loss.item() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("mask_index, pair, message", [
    (1, 1, "faces: pair 1 has none"),
    (3, 0, "names: pair 0 has none"),
])
def test_empty_pairs_are_refused(mask_index, pair, message):
    batch = list(tiny_batch())
    batch[mask_index] = batch[mask_index].clone()
    batch[mask_index][pair] = False
    with pytest.raises(ValueError, match=message):
        secla_scores(*batch)


def test_prototypes_and_prototype_loss():
    faces = torch.tensor([[2.0, 0.0], [1.0, 0.0], [0.0, 3.0]])
    protos, known = face_prototypes(faces, torch.tensor([0, 0, 1]), 3)
    assert torch.allclose(protos, torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
    assert known.tolist() == [True, True, False]
    loss = prototype_loss(torch.tensor([X, Y]), protos[:2], temperature=1.0)
    assert loss.item() == pytest.approx(-1 + math.log(math.e + 1), abs=1e-6)
    assert prototype_loss(torch.tensor([Y, X]), protos[:2], temperature=1.0) > loss


def test_easy_pairs():
    assert easy_pairs([1, 2, 1, 1], [1, 1, 3, 1]) == [0, 3]


def test_config_validation():
    with pytest.raises(ValueError, match="name_dim"):
        SECLAConfig(face_dim=8)
    with pytest.raises(ValueError, match="temperature"):
        SECLAConfig(face_dim=8, name_dim=8, temperature=0)
    with pytest.raises(ValueError, match="name_table"):
        SECLAConfig(face_dim=8, name_table=["A B", "A B"])


@pytest.fixture
def one_thread():
    """Tiny tensors: one thread avoids thread hand-off costs on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_heads_learn_a_hidden_pairing(one_thread):
    """Eight people, faces and names random features; pairs hold 1-3 people and name them all. The
    heads must learn to align a person's face with their name from pairs alone."""
    torch.manual_seed(0)
    people, d = 8, 12
    face_feat, name_feat = torch.randn(people, d), torch.randn(people, d)
    groups = [torch.randperm(people)[: int(torch.randint(1, 4, ()))] for _ in range(32)]
    faces = torch.zeros(32, 3, d)
    names = torch.zeros(32, 3, d)
    mask = torch.zeros(32, 3, dtype=torch.bool)
    for i, g in enumerate(groups):
        faces[i, : len(g)] = face_feat[g] + 0.05 * torch.randn(len(g), d)
        names[i, : len(g)] = name_feat[g[torch.randperm(len(g))]]
        mask[i, : len(g)] = True
    heads = SECLAHeads(SECLAConfig(face_dim=d, name_dim=d, dim=16, hidden=32))
    opt = torch.optim.Adam(heads.parameters(), lr=1e-2)

    def accuracy():
        with torch.no_grad():
            sim = torch.nn.functional.normalize(heads.faces(face_feat), dim=-1) @ \
                torch.nn.functional.normalize(heads.names(name_feat), dim=-1).t()
        return (sim.argmax(1) == torch.arange(people)).float().mean().item()

    for _ in range(60):
        loss = secla_loss(secla_scores(heads.faces(faces), mask, heads.names(names), mask, heads.noname))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert accuracy() == 1.0


def test_name_table_heads():
    heads = SECLAHeads(SECLAConfig(face_dim=4, dim=6, name_table=["Ana Silva", "Kofi Mensah"]))
    rows = heads.names(names=["Kofi Mensah", "Ana Silva"])
    assert rows.shape == (2, 6) and torch.equal(rows[0], heads.name_embedding.weight[1])
    with pytest.raises(ValueError, match="not in the name table"):
        heads.names(names=["Jane Doe"])


def test_frozen_embeddings_of_faces_and_names(tiny_model):
    from PIL import Image

    from flip.processor import FLIPProcessor

    processor = FLIPProcessor.from_settings(tokenizer="minilm", image_size=32, max_length=16)
    image = Image.new("RGB", (64, 32), (200, 30, 30))
    image.paste((20, 20, 220), (32, 0, 64, 32))
    faces = embed_faces(tiny_model, processor, image, [[0, 0, 32, 32], [32, 0, 64, 32], [2, 2, 30, 30]])
    assert faces.shape == (3, 16) and torch.allclose(faces.norm(dim=1), torch.ones(3))
    assert torch.allclose(faces[0], faces[2], atol=1e-5) and not torch.allclose(faces[0], faces[1], atol=1e-3)
    names = embed_names(tiny_model, processor, ["Ana Silva", "Kofi Mensah"])
    assert names.shape == (2, 16) and not torch.allclose(names[0], names[1])
    assert embed_faces(tiny_model, processor, image, []).shape == (0, 16)
