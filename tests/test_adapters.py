"""LoRA fine-tunes as adapters: a LoRA run's `adapter/` (peft's format) loads through `flip.load` on its
base and gives exactly the merged model; a calibration lives beside it; bad adapters are one error."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from conftest import TINY_RESNET, tiny_config

import flip
from flip.hub import ADAPTER_CALIBRATION, ADAPTER_CONFIG, save
from flip.model import FLIPModel
from flip.processor import FLIPProcessor


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    """A tiny checkpoint with a ResNet image tower: batch norms, as the embedded default has."""
    torch.manual_seed(0)
    model = FLIPModel(tiny_config(vision_config=dict(TINY_RESNET))).eval()
    processor = FLIPProcessor.from_settings(tokenizer="minilm", image_size=32, max_length=32)
    return save(model, processor, tmp_path_factory.mktemp("base") / "tiny")


@pytest.fixture(scope="module")
def lora_run(base_dir, tmp_path_factory):
    """Three LoRA steps on the image tower (text tower locked), from `base_dir`."""
    from test_train import _records

    from flip.data.formats import write_dataset
    from flip.train import load_config, train

    root = tmp_path_factory.mktemp("lora")
    write_dataset(_records(16), root / "pairs", "imagefolder", "train")
    settings = {
        "model": {"name": str(base_dir)},
        "data": {"train": str(root / "pairs"), "eval_size": 4, "batch_size": 4, "num_workers": 0},
        "optim": {"lr": 1e-2, "warmup_steps": 0},
        "towers": {"vision": "lora", "text": "lock", "lora_rank": 4},
        "run": {"output_dir": str(root / "run"), "max_steps": 3, "progress": False, "save_every": 0,
                "precision": "fp32"},
    }
    result = train(load_config(None, settings))
    assert result.status == "finished"
    return root / "run"


def test_a_lora_run_writes_an_adapter_that_loads_as_its_merged_model(base_dir, lora_run):
    adapter = lora_run / "adapter"
    assert {p.name for p in adapter.iterdir()} == {ADAPTER_CONFIG, "adapter_model.safetensors", "README.md"}
    assert json.loads((adapter / ADAPTER_CONFIG).read_text())["base_model_name_or_path"] == str(base_dir.resolve())
    merged, _ = flip.load(lora_run / "final")
    loaded, processor = flip.load(adapter)
    base, _ = flip.load(base_dir)
    assert isinstance(loaded, FLIPModel) and not any("lora_" in k for k in loaded.state_dict())
    want, got, start = merged.state_dict(), loaded.state_dict(), base.state_dict()
    assert want.keys() == got.keys()
    for key, value in want.items():
        torch.testing.assert_close(got[key], value, rtol=0, atol=1e-6, msg=key)
    changed = {k for k, v in start.items() if not torch.equal(v, want[k])}
    # what the run changed: adapted convolutions, the batch norms' running statistics, the projections;
    # not the temperature, not the locked text tower
    assert any(k.endswith("convolution.weight") for k in changed)
    assert any(k.endswith("running_mean") for k in changed)
    assert {"vision_proj.weight", "text_proj.weight"} <= changed
    assert "logit_scale" not in changed and not any(k.startswith("text_model.") for k in changed)
    pixels = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(loaded.encode_image(pixels), merged.encode_image(pixels), rtol=0, atol=1e-5)
    assert processor.settings.to_dict() == FLIPProcessor.from_pretrained(base_dir).settings.to_dict()  # the base's


def test_an_adapter_keeps_only_what_the_run_trained(lora_run):
    from safetensors import safe_open

    with safe_open(lora_run / "adapter" / "adapter_model.safetensors", "pt") as f:
        keys = list(f.keys())
    assert keys and all("lora_" in k or "modules_to_save" in k or k.endswith((".weight", ".bias", "running_mean",
                                                                             "running_var", "num_batches_tracked"))
                        for k in keys)
    assert not any("text_model" in k for k in keys)  # the locked tower stays in the base
    # no base convolution weight travels unadapted: every convolution key is a LoRA factor
    assert all("lora_" in k for k in keys if "convolution" in k)


def test_adapter_calibration_lives_beside_it_and_replaces_the_bases(base_dir, lora_run, tmp_path):
    base = shutil.copytree(base_dir, tmp_path / "base")
    config = json.loads((base / "config.json").read_text())
    config["liveness_calibration"] = {"threshold": 0.9, "prompts_sha256": "for the base's weights"}
    (base / "config.json").write_text(json.dumps(config))
    adapter = shutil.copytree(lora_run / "adapter", tmp_path / "adapter")
    settings = json.loads((adapter / ADAPTER_CONFIG).read_text())
    (adapter / ADAPTER_CONFIG).write_text(json.dumps({**settings, "base_model_name_or_path": str(base)}))
    assert flip.load(base)[0].config.liveness_calibration["threshold"] == 0.9
    assert flip.load(adapter)[0].config.liveness_calibration is None  # chosen for other weights
    calibration = {"threshold": 0.25, "prompts_sha256": "abc", "criterion": "the EER"}
    (adapter / ADAPTER_CALIBRATION).write_text(json.dumps(calibration))
    assert flip.load(adapter)[0].config.liveness_calibration == calibration
    (adapter / ADAPTER_CALIBRATION).write_text(json.dumps({"threshold": 2}))
    with pytest.raises(ValueError, match=f"{ADAPTER_CALIBRATION}: an object with a threshold"):
        flip.load(adapter)


def _adapter_naming(lora_run, tmp_path, base, name="adapter"):
    adapter = shutil.copytree(lora_run / "adapter", tmp_path / name)
    settings = json.loads((adapter / ADAPTER_CONFIG).read_text())
    settings["base_model_name_or_path"] = base
    (adapter / ADAPTER_CONFIG).write_text(json.dumps(settings))
    return adapter


def test_bad_adapters_are_one_error_naming_the_folder(lora_run, checkpoint, tmp_path):
    missing = _adapter_naming(lora_run, tmp_path, str(tmp_path / "nowhere"), "missing")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        flip.load(missing)
    other = _adapter_naming(lora_run, tmp_path, checkpoint, "other")  # a ViT image tower: no such convolutions
    with pytest.raises(ValueError, match="does not (fit|match) its base"):
        flip.load(other)
    unnamed = _adapter_naming(lora_run, tmp_path, None, "unnamed")
    with pytest.raises(ValueError, match="no base_model_name_or_path"):
        flip.load(unnamed)
    itself = _adapter_naming(lora_run, tmp_path, str(tmp_path / "itself"), "itself")
    with pytest.raises(ValueError, match="the adapter's own folder"):
        flip.load(itself)


def test_the_cli_answers_with_an_adapter_and_calibrates_beside_it(lora_run, tmp_path, capsys):
    from test_liveness import _write_antispoof

    from flip.cli import main as flip_main

    adapter = shutil.copytree(lora_run / "adapter", tmp_path / "adapter")
    before = {p.name: p.read_bytes() for p in adapter.iterdir()}
    dev = _write_antispoof(tmp_path / "dev", 4, {"printed_photo": 3, "screen_replay": 3})
    assert flip_main(["liveness-calibrate", str(adapter), str(dev), "--split", "all", "--workers", "0"]) == 0
    assert f"written to {adapter / ADAPTER_CALIBRATION}" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in adapter.iterdir() if p.name != ADAPTER_CALIBRATION} == before
    saved = json.loads((adapter / ADAPTER_CALIBRATION).read_text())
    assert flip.load(adapter)[0].config.liveness_calibration == saved
    assert flip_main(["liveness-calibrate", str(adapter), str(dev), "--split", "all", "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "already carries a liveness calibration" in err and len(err.strip().splitlines()) == 1
    faces = _write_antispoof(tmp_path / "faces", 2, {})
    assert flip_main(["liveness", str(faces), "--model", str(adapter), "--json", "--workers", "0"]) == 0
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert lines and all(line["liveness"]["threshold"] == saved["threshold"] for line in lines)
    broken = _adapter_naming(lora_run, tmp_path, str(tmp_path / "nowhere"), "broken")
    assert flip_main(["liveness", str(faces), "--model", str(broken), "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def test_a_new_run_with_overwrite_removes_the_previous_adapter(base_dir, lora_run, tmp_path):
    from flip.train.checkpoint import claim_output_dir

    run = shutil.copytree(lora_run, tmp_path / "run")
    (run / "adapter" / "notes.txt").write_text("the user's")
    with pytest.raises(FileExistsError, match="holds a previous run"):
        claim_output_dir(run, None)
    claim_output_dir(run, None, overwrite=True)
    assert sorted(p.name for p in (run / "adapter").iterdir()) == ["notes.txt"]
    assert not (run / "final").exists()


def test_a_resumed_lora_run_writes_the_adapter_an_uninterrupted_one_does(base_dir, lora_run, tmp_path):
    """The peft wrappers (adapters, kept modules, their batch-norm statistics) live in the checkpoint:
    stopped by SIGTERM after step 2 and resumed, the run ends with the same adapter, bit for bit."""
    import os
    import signal

    from safetensors.torch import load_file

    from flip.train import load_config, train

    def settings(out, **run):
        return {"model": {"name": str(base_dir)},
                "data": {"train": str(lora_run.parent / "pairs"), "eval_size": 4, "batch_size": 4, "num_workers": 0},
                "optim": {"lr": 1e-2, "warmup_steps": 0},
                "towers": {"vision": "lora", "text": "lock", "lora_rank": 4},
                "run": {"output_dir": str(out), "max_steps": 3, "progress": False, "save_every": 0,
                        "precision": "fp32", "deterministic": True, **run}}

    straight = train(load_config(None, settings(tmp_path / "a")))

    def sigterm_at_step_1(info):
        if info.step == 1:
            os.kill(os.getpid(), signal.SIGTERM)

    first = train(load_config(None, settings(tmp_path / "b")), on_step=sigterm_at_step_1)
    assert first.status == "interrupted" and first.step == 2 and not (tmp_path / "b" / "adapter").exists()
    second = train(load_config(None, settings(tmp_path / "b", resume="auto")))
    assert second.status == "finished" and first.losses + second.losses == straight.losses
    a = load_file(tmp_path / "a" / "adapter" / "adapter_model.safetensors")
    b = load_file(tmp_path / "b" / "adapter" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
