"""ONNX export and the onnxruntime backend: parity with torch for every tower family, the int8 path,
the torch-free classify, and the exported model in place of the torch one on the image path."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

import torch  # noqa: E402

from conftest import TINY_RESNET, TINY_TEXT, TINY_VISION, tiny_config  # noqa: E402

SIGLIP_TEXT = dict(model_type="siglip_text_model", vocab_size=30522, hidden_size=32, intermediate_size=64,
                   num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=32)
#: (vision tower, text tower) -> config overrides and processor settings: every family flip builds.
FAMILIES = {
    "clip+bert": (dict(), dict()),
    "clip+clip_text": (dict(text="clip_text_model"), dict(tokenizer="clip")),
    "clip+blip_text": (dict(text="blip_text_model"), dict()),
    "resnet+bert": (dict(vision_config=TINY_RESNET), dict()),
    "siglip+siglip_text": (
        dict(vision_config=dict(TINY_VISION, model_type="siglip_vision_model"), text_config=SIGLIP_TEXT,
             projection_dim=None, text_pooling="pooler", logit_bias_init=-10.0),
        dict(padding="max_length", return_attention_mask=False),
    ),
}
IMAGES = [np.random.default_rng(i).integers(0, 256, (40 + 9 * i, 50, 3), dtype=np.uint8) for i in range(3)]
TEXTS = ["a smiling woman", "a man with a grey beard and round glasses, who looks surprised", "a child"]


def build(family: str):
    from flip.model import FLIPModel
    from flip.processor import FLIPProcessor

    overrides, settings = FAMILIES[family]
    overrides = dict(overrides)
    text = overrides.pop("text", "bert")
    torch.manual_seed(0)
    model = FLIPModel(tiny_config(text, **overrides)).eval()
    processor = FLIPProcessor.from_settings(**{"tokenizer": "minilm", "image_size": 32, "max_length": 32, **settings})
    return model, processor


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The clip+bert family exported in float32: (model, processor, folder)."""
    from flip.export import export_onnx

    model, processor = build("clip+bert")
    return model, processor, export_onnx(model, processor, tmp_path_factory.mktemp("onnx") / "fp32")


@pytest.mark.parametrize("family", list(FAMILIES))
def test_export_matches_torch_on_images_and_texts(family, tmp_path):
    from flip.export import export_onnx
    from flip.onnx_backend import OnnxFLIP

    model, processor = build(family)
    folder = export_onnx(model, processor, tmp_path / "out")
    onnx_model = OnnxFLIP(folder)
    pixel_values = processor.images(IMAGES, boxes=None)
    with torch.no_grad():
        want_image = model.encode_image(pixel_values).numpy()
        want_text = model.encode_text(processor.texts(TEXTS)).numpy()
    got_image = onnx_model.encode_image(pixel_values.numpy())
    got_text = onnx_model.encode_text(dict(processor.texts(TEXTS, return_tensors="np")))
    assert got_image.shape == want_image.shape and got_text.shape == want_text.shape
    np.testing.assert_allclose(got_image, want_image, atol=1e-4, rtol=0)
    np.testing.assert_allclose(got_text, want_text, atol=1e-4, rtol=0)
    # a batch size and text length the trace never saw
    one = processor.texts(["a face"])
    with torch.no_grad():
        np.testing.assert_allclose(onnx_model.encode_text(one), model.encode_text(one).numpy(), atol=1e-4, rtol=0)
    info = json.loads((folder / "flip_onnx.json").read_text())
    assert info["logit_scale"] == pytest.approx(float(model.scale().detach()), rel=1e-6)
    assert info["temperature"] == pytest.approx(1 / float(model.scale().detach()), rel=1e-6)
    assert (info["logit_bias"] is None) == (model.logit_bias is None)
    assert info["processor"]["image_size"] == 32 and info["int8"] is None


def test_export_refuses_an_existing_folder_and_bad_opset(exported, tmp_path):
    from flip.export import export_onnx

    model, processor, folder = exported
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(FileExistsError, match="overwrite"):
        export_onnx(model, processor, folder)
    assert sorted(p.name for p in folder.iterdir()) == before
    with pytest.raises(ValueError, match="opset"):
        export_onnx(model, processor, tmp_path / "x", opset=9)
    assert not (tmp_path / "x").exists()


def test_int8_dynamic_and_static_stay_close_to_float32(exported, tmp_path):
    from flip.export import export_onnx
    from flip.onnx_backend import OnnxFLIP

    model, processor, _ = exported
    pixel_values = processor.images(IMAGES)
    with torch.no_grad():
        want = model.encode_image(pixel_values).numpy()
    for name, calibration in (("dynamic", None), ("static", IMAGES)):
        folder = export_onnx(model, processor, tmp_path / name, int8=True, calibration_images=calibration)
        onnx_model = OnnxFLIP(folder)
        assert onnx_model.info.int8 == name
        got = onnx_model.encode_image(pixel_values.numpy())
        cosine = (got * want).sum(-1)
        assert cosine.min() > 0.9, (name, cosine)
        assert not np.allclose(got, want, atol=1e-6)  # it is really quantised
        # the text tower stays float32, so the text cache is shared with the float32 model
        assert onnx_model.text_fingerprint == OnnxFLIP(exported[2]).text_fingerprint
    assert (tmp_path / "dynamic" / "image.onnx").stat().st_size < (exported[2] / "image.onnx").stat().st_size


def test_onnx_model_replaces_the_torch_model_in_the_classifier(exported):
    from flip.onnx_backend import OnnxClassifier, load_onnx
    from flip.zeroshot import FLIPClassifier, TextCache

    model, processor, folder = exported
    torch_clf = FLIPClassifier(model, processor, ["emotion", "age_group"], cache=TextCache())
    onnx_model, onnx_processor = load_onnx(folder)
    swapped = FLIPClassifier(onnx_model, onnx_processor, ["emotion", "age_group"], cache=TextCache())
    numpy_clf = OnnxClassifier(onnx_model, ["emotion", "age_group"])
    want = torch_clf.classify(IMAGES)
    for got in (swapped.classify(IMAGES), numpy_clf.classify(IMAGES)):
        for task in want:
            np.testing.assert_allclose(np.asarray(got[task].scores), want[task].scores.numpy(), atol=2e-3)
            assert got[task].record(0, 2)["descriptors"][0]["text"] in torch_clf.heads[task].texts


def test_the_numpy_classifier_answers_as_the_torch_one_on_the_same_pixels(exported):
    from flip.onnx_backend import OnnxClassifier, OnnxFLIP
    from flip.zeroshot import FLIPClassifier, TextCache

    model, processor, folder = exported
    onnx_model = OnnxFLIP(folder)
    pixels = onnx_model.pixels(IMAGES)
    for method, aggregate in (("descriptors", "mean"), ("descriptors", "max"), ("baseline", "mean")):
        want = FLIPClassifier(model, processor, ["emotion"], method=method, aggregate=aggregate, cache=TextCache())
        got = OnnxClassifier(onnx_model, ["emotion"], method=method, aggregate=aggregate)
        w, g = want.classify(torch.from_numpy(pixels))["emotion"], got.classify_embeddings(
            onnx_model.encode_image(pixels))["emotion"]
        np.testing.assert_allclose(g.scores, w.scores.numpy(), atol=1e-4)
        np.testing.assert_allclose(g.similarities, w.similarities.numpy(), atol=1e-4)
        assert g.predictions == w.predictions
        assert [d["text"] for d in g.record(1, 3)["descriptors"]] == [d["text"] for d in w.record(1, 3)["descriptors"]]


def test_classify_cli_onnx_shares_the_text_cache_and_never_imports_torch(exported, tmp_path):
    """A torch run fills the cache; the onnx run hits it in a fresh process without torch or transformers.
    `--faces none`: a face detector (MTCNN) would need torch; `--skip-bad`: broken.jpg is skipped by design."""
    from PIL import Image

    from flip.cli.classify import main

    model, processor, folder = exported
    faces = tmp_path / "faces"
    faces.mkdir()
    for i, array in enumerate(IMAGES):
        Image.fromarray(array).save(faces / f"{i}.png")
    (faces / "broken.jpg").write_bytes(b"not an image")
    env = {**os.environ, "FLIP_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    torch_ckpt = tmp_path / "ckpt"
    from flip.hub import save

    save(model, processor, torch_ckpt)
    torch_out, onnx_out = tmp_path / "torch.jsonl", tmp_path / "onnx.jsonl"
    os.environ["FLIP_CACHE"] = env["FLIP_CACHE"]
    try:
        assert main([str(faces), "--model", str(torch_ckpt), "--json", "--out", str(torch_out), "--workers", "0",
                     "--faces", "none", "--skip-bad"]) == 0
    finally:
        del os.environ["FLIP_CACHE"]
    cached = sorted((tmp_path / "cache" / "text").iterdir())
    assert len(cached) == 2
    script = (
        "import sys; from flip.cli.classify import main; "
        f"rc = main([{str(faces)!r}, '--backend', 'onnx', '--model', {str(folder)!r}, '--json', '--out', {str(onnx_out)!r}, "
        "'--faces', 'none', '--skip-bad']); "
        "heavy = sorted(m for m in ('torch', 'transformers') if m in sys.modules); "
        "print('HEAVY', heavy); sys.exit(rc)"
    )
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "HEAVY []" in run.stdout
    assert "skipped" in run.stderr and "broken.jpg" in run.stderr
    assert sorted((tmp_path / "cache" / "text").iterdir()) == cached  # hits only, nothing rewritten
    want = [json.loads(line) for line in torch_out.read_text().splitlines()]
    got = [json.loads(line) for line in onnx_out.read_text().splitlines()]
    assert [r["path"] for r in got] == [r["path"] for r in want] and len(got) == 3
    for g, w in zip(got, want):
        assert (g["face"], g["whole_image"], g["box"]) == (0, True, w["box"]) and g["model"] == str(folder)
        assert sorted(g["emotion"]) == sorted(w["emotion"])  # prediction, scores, probabilities, descriptors
        for task in ("emotion", "age_group"):
            for cls, score in w[task]["scores"].items():  # torch resizes with its own kernel, onnx with PIL's
                assert abs(g[task]["scores"][cls] - score) < 0.02


def test_the_onnx_classifier_answers_per_face_as_the_torch_one(exported, tmp_path):
    """The face stage on both backends: the same rows (faces, boxes, no-face images) and close answers."""
    from PIL import Image

    from flip.faces import FaceStage, GivenBoxes
    from flip.onnx_backend import OnnxClassifier, OnnxFLIP
    from flip.zeroshot import FLIPClassifier, TextCache

    model, processor, folder = exported
    paths = []
    for i, array in enumerate(IMAGES):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(array).save(paths[-1])
    stage = FaceStage(mode="all", detector=GivenBoxes([[2, 3, 30, 35], [20, 1, 48, 38]]), min_face_size=1)
    want = FLIPClassifier(model, processor, ["emotion"], cache=TextCache()).classify_photos(paths, faces=stage)
    got = [r for b in OnnxClassifier(OnnxFLIP(folder), ["emotion"]).classify_files(paths, 2, faces=stage)
           for r in b.records()]
    assert len(got) == len(want) == 6
    for g, w in zip(got, want):
        assert (g["path"], g["face"], g["box"], g["whole_image"]) == (w["path"], w["face"], w["box"], w["whole_image"])
        for cls, p in w["emotion"]["probabilities"].items():  # torch resizes with its own kernel, onnx with PIL's
            assert abs(g["emotion"]["probabilities"][cls] - p) < 0.05
            assert abs(g["emotion"]["scores"][cls] - w["emotion"]["scores"][cls]) < 0.02


def test_classify_cli_onnx_on_a_cache_miss_runs_the_text_tower(exported, tmp_path, capsys):
    from PIL import Image

    from flip.cli.classify import main

    _, _, folder = exported
    Image.fromarray(IMAGES[0]).save(tmp_path / "a.png")
    os.environ["FLIP_CACHE"] = str(tmp_path / "cache")
    try:
        assert main([str(tmp_path / "a.png"), "--backend", "onnx", "--model", str(folder), "--task", "emotion"]) == 0
    finally:
        del os.environ["FLIP_CACHE"]
    assert len(list((tmp_path / "cache" / "text").iterdir())) == 1
    assert "a.png" in capsys.readouterr().out


def test_backend_onnx_errors_are_one_line(tmp_path, capsys):
    from flip.cli.classify import main

    from PIL import Image

    Image.fromarray(IMAGES[0]).save(tmp_path / "a.png")
    assert main([str(tmp_path / "a.png"), "--backend", "onnx", "--model", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "flip_onnx.json" in err and "flip export" in err and "Traceback" not in err


def test_export_cli_and_embed_and_liveness_with_the_onnx_backend(exported, tmp_path, capsys):
    from flip.cli import main

    model, processor, _ = exported
    from flip.hub import save

    ckpt = save(model, processor, tmp_path / "ckpt")
    out = tmp_path / "export"
    assert main(["export", str(ckpt), str(out), "--onnx"]) == 0
    assert (out / "image.onnx").is_file() and (out / "text.onnx").is_file()
    assert main(["export", str(ckpt), str(out), "--onnx"]) == 2  # exists: refused, one line
    assert "--overwrite" in capsys.readouterr().err
    (out / "notes.txt").write_text("mine")
    assert main(["export", str(ckpt), str(out), "--onnx", "--overwrite"]) == 0  # the export's files replaced
    assert (out / "notes.txt").read_text() == "mine" and (out / "flip_onnx.json").is_file()
    from PIL import Image

    Image.fromarray(IMAGES[0]).save(tmp_path / "a.png")
    npz = tmp_path / "e.npz"
    assert main(["embed", "--backend", "onnx", "--model", str(out), "--image", str(tmp_path / "a.png"),
                 "--text", "a smiling woman", "--out", str(npz)]) == 0
    with torch.no_grad():
        want = model.encode_text(processor.texts(["a smiling woman"])).numpy()
    np.testing.assert_allclose(np.load(npz)["text"], want, atol=1e-4)
    os.environ["FLIP_CACHE"] = str(tmp_path / "cache")
    try:
        assert main(["liveness", str(tmp_path / "a.png"), "--backend", "onnx", "--model", str(out), "--json"]) == 0
    finally:
        del os.environ["FLIP_CACHE"]
    record = json.loads([line for line in capsys.readouterr().out.splitlines() if line.startswith("{")][-1])
    assert 0.0 <= record["liveness"]["live_score"] <= 1.0 and record["model"] == str(out)  # one record per face
