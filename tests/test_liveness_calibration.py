"""The shipped liveness operating point: `flip liveness-calibrate` writes it, `flip liveness` uses it."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from flip.liveness import DEFAULT_THRESHOLD, LivenessClassifier, LivenessResult, shipped_threshold
from flip.prompts import load_prompts
from tests.test_liveness import _write_antispoof


@pytest.fixture
def model_dir(checkpoint, tmp_path):
    """A copy of the tiny checkpoint this test may write into."""
    return shutil.copytree(checkpoint, tmp_path / "model")


def _config(folder) -> dict:
    return json.loads((folder / "config.json").read_text())


def test_a_result_decides_at_its_own_threshold_unless_given_one():
    r = LivenessResult(("live", "print"), torch.tensor([[0.2, 0.8], [0.05, 0.95]]), threshold=0.1)
    assert r.is_live() == [True, False] and r.is_live(0.5) == [False, False]
    assert r.record(0)["decision"] == "live" and r.record(0)["threshold"] == 0.1
    assert LivenessResult.cat([r, r]).threshold == 0.1


def test_the_shipped_threshold_applies_only_to_the_prompts_it_was_chosen_for(tiny_model):
    prompts = load_prompts("liveness")
    assert shipped_threshold(tiny_model, prompts)[0] == DEFAULT_THRESHOLD
    tiny_model.config.liveness_calibration = {"threshold": 0.04, "prompts_sha256": prompts.sha256,
                                              "method": "descriptors", "aggregate": "mean",
                                              "data": "dev", "split": "val", "criterion": "the EER"}
    threshold, source = shipped_threshold(tiny_model, prompts)
    assert threshold == 0.04 and "chosen on dev val" in source
    other = load_prompts("emotion")
    threshold, source = shipped_threshold(tiny_model, other)
    assert threshold == DEFAULT_THRESHOLD and "other prompts" in source
    assert shipped_threshold(tiny_model, prompts, aggregate="max")[0] == DEFAULT_THRESHOLD


def test_a_hand_edited_calibration_is_refused_by_name():
    from flip.config import FLIPConfig
    from tests.conftest import tiny_config

    good = tiny_config().to_dict()
    for bad in ({"threshold": 1.5, "prompts_sha256": "x"}, {"threshold": 0.2}, [0.2], {"threshold": True,
                                                                                        "prompts_sha256": "x"}):
        with pytest.raises(ValueError, match="liveness_calibration"):
            FLIPConfig(**{**good, "liveness_calibration": bad})


def test_calibrate_writes_the_config_and_liveness_answers_at_it(model_dir, tmp_path, capsys):
    from flip.cli import main as flip_main
    from flip.hub import load

    dev = _write_antispoof(tmp_path / "dev", 4, {"printed_photo": 3, "screen_replay": 3, "3d_mask": 2})
    before = {p.name: p.read_bytes() for p in model_dir.iterdir() if p.name != "config.json"}
    assert flip_main(["liveness-calibrate", str(model_dir), str(dev), "--split", "all", "--exclude", "3d_mask",
                      "--workers", "0"]) == 0
    out = capsys.readouterr().out
    saved = _config(model_dir)["liveness_calibration"]
    assert saved["counts"] == {"live": 4, "attack": 6}  # 3d_mask left out
    assert saved["excluded"] == ["3d_mask"] and saved["prompts_sha256"] == load_prompts("liveness").sha256
    assert f"threshold {saved['threshold']:.4f}" in out
    assert {p.name: p.read_bytes() for p in model_dir.iterdir() if p.name != "config.json"} == before
    assert not [p for p in model_dir.iterdir() if p.name.endswith(".tmp")]

    assert flip_main(["info", str(model_dir)]) == 0
    assert json.loads(capsys.readouterr().out)["liveness_threshold"] == saved["threshold"]

    # the threshold is the dev EER's, on the same scores
    from flip.attack_metrics import eer
    from flip.data.loaders import load_records
    from flip.liveness import score_records

    model, processor = load(str(model_dir))
    clf = LivenessClassifier(model, processor)
    assert clf.threshold == pytest.approx(saved["threshold"]) and "the model's" in clf.threshold_source
    records = [r for r in load_records(dev, check_images=False) if r.attack != "3d_mask"]
    result, labels, _ = score_records(LivenessClassifier(model, processor, threshold=0.5), records, num_workers=0)
    assert eer(result.live_score.tolist(), labels)[1] == pytest.approx(saved["threshold"])

    # flip liveness answers at it, and says so; --threshold still wins
    faces = dev / "live"
    assert flip_main(["liveness", str(faces), "--model", str(model_dir), "--json", "--workers", "0"]) == 0
    captured = capsys.readouterr()
    assert all(json.loads(line)["liveness"]["threshold"] == pytest.approx(saved["threshold"])
               for line in captured.out.splitlines())
    assert "(the model's, chosen on" in captured.err
    assert flip_main(["liveness", str(faces), "--model", str(model_dir), "--json", "--threshold", "0.7",
                      "--workers", "0"]) == 0
    captured = capsys.readouterr()
    assert all(json.loads(line)["liveness"]["threshold"] == 0.7 for line in captured.out.splitlines())
    assert "(--threshold)" in captured.err

    # a second calibration needs --overwrite, and the first stays as it was
    config_before = (model_dir / "config.json").read_bytes()
    assert flip_main(["liveness-calibrate", str(model_dir), str(dev), "--split", "all", "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "already carries a liveness calibration" in err and "--overwrite" in err and len(err.splitlines()) == 1
    assert (model_dir / "config.json").read_bytes() == config_before
    assert flip_main(["liveness-calibrate", str(model_dir), str(dev), "--split", "all", "--target-bpcer", "0.25",
                      "--overwrite", "--workers", "0"]) == 0
    assert _config(model_dir)["liveness_calibration"]["criterion"] == "BPCER <= 0.25"


def test_calibrate_bad_input_is_one_line(model_dir, tmp_path, capsys):
    from flip.cli import main as flip_main

    dev = _write_antispoof(tmp_path / "dev", 2, {"printed_photo": 2})
    only_live = _write_antispoof(tmp_path / "only_live", 2, {})
    cases = [([str(tmp_path), str(dev)], "no config.json"),
             ([str(model_dir), str(dev), "--split", "all", "--exclude", "cartoon"], "--exclude: ['cartoon']"),
             ([str(model_dir), str(tmp_path / "missing")], "missing"),
             ([str(model_dir), str(only_live), "--split", "all", "--dataset", "antispoof"], "only live")]
    for argv, message in cases:
        assert flip_main(["liveness-calibrate", *argv, "--workers", "0"]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert _config(model_dir).get("liveness_calibration") is None


def test_training_a_calibrated_checkpoint_clears_its_calibration(model_dir):
    from flip.train.config import ModelSection
    from flip.train.modeling import build_model

    config = _config(model_dir)
    config["liveness_calibration"] = {"threshold": 0.1, "prompts_sha256": "x"}
    (model_dir / "config.json").write_text(json.dumps(config))
    model, _ = build_model(ModelSection(name=str(model_dir)))
    assert model.config.liveness_calibration is None


def test_an_onnx_export_carries_the_calibration(model_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    from flip.export import export_onnx
    from flip.hub import load
    from flip.onnx_backend import ExportInfo, OnnxFLIP

    config = _config(model_dir)
    config["liveness_calibration"] = {"threshold": 0.1, "prompts_sha256": load_prompts("liveness").sha256}
    (model_dir / "config.json").write_text(json.dumps(config))
    model, processor = load(str(model_dir))
    export_onnx(model, processor, tmp_path / "onnx")
    onnx = OnnxFLIP(tmp_path / "onnx")
    assert LivenessClassifier(onnx, onnx.processor).threshold == 0.1
    info = json.loads((tmp_path / "onnx" / "flip_onnx.json").read_text())
    del info["liveness_calibration"]  # an export written before the field existed still reads
    (tmp_path / "onnx" / "flip_onnx.json").write_text(json.dumps(info))
    assert ExportInfo.read(tmp_path / "onnx").liveness_calibration is None


def test_the_shipped_liveness_model_is_the_default_fine_tuned_with_the_unseen_attack_held_out():
    """`flip liveness`'s model: the embedded default's architecture and text tower, fine-tuned (its image
    tower differs), 3d_mask kept out of its training (recorded beside it), calibrated for the shipped prompts."""
    import flip
    from eval.tasks.liveness import finetuned_recipe
    from flip.hub import embedded_path
    from flip.liveness import DEFAULT_LIVENESS_MODEL

    base, _ = flip.load()
    model, processor = flip.load(DEFAULT_LIVENESS_MODEL)
    assert model.config.vision_config.to_dict() == base.config.vision_config.to_dict()
    assert all(torch.equal(v, base.text_model.state_dict()[k]) for k, v in model.text_model.state_dict().items())
    tuned = base.vision_model.state_dict()
    assert any(not torch.equal(v, tuned[k]) for k, v in model.vision_model.state_dict().items())
    recipe = finetuned_recipe(embedded_path(DEFAULT_LIVENESS_MODEL), ["3d_mask"])  # raises if it trained on one
    assert recipe["liveness"]["exclude"] == ["3d_mask"] and recipe["model"]["name"] == "flip-tiny-synth"
    threshold, source = shipped_threshold(model, load_prompts("liveness"))
    assert threshold == model.config.liveness_calibration["threshold"] != DEFAULT_THRESHOLD
    assert "3d_mask" in model.config.liveness_calibration["excluded"] and source.startswith("the model's")


def test_the_shipped_liveness_adapter_was_trained_on_the_default_that_ships():
    """The adapter's copies of the image tower's batch norms keep their frozen affine weights, which
    are the base's at training time: a retrained default without a retrained adapter fails here."""
    import json

    from safetensors.torch import load_file

    from flip.hub import ADAPTER_CONFIG, SAFETENSORS_FILE, embedded_path
    from flip.liveness import DEFAULT_LIVENESS_MODEL

    folder = embedded_path(DEFAULT_LIVENESS_MODEL)
    assert json.loads((folder / ADAPTER_CONFIG).read_text())["base_model_name_or_path"] == "flip-tiny-synth"
    adapter = load_file(folder / "adapter_model.safetensors")
    base = load_file(embedded_path("flip-tiny-synth") / SAFETENSORS_FILE)
    frozen = {k.removeprefix("base_model.model."): v for k, v in adapter.items()
              if k.endswith(("normalization.weight", "normalization.bias"))}
    assert frozen.keys() == {k for k in base if k.startswith("vision_model.")  # every batch norm of the tower
                             and k.endswith(("normalization.weight", "normalization.bias"))}
    for key, value in frozen.items():
        assert torch.equal(value, base[key].float()), f"{key}: the adapter was trained on other base weights"
