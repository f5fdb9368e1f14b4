"""The bad-input matrix: the model commands on hostile checkpoints. Each case asserts the exit code, no traceback (errors on one line), that the file
is named, and that nothing outside the command's own outputs changed (the folder is hashed before and
after)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import numpy as np
import torch
from PIL import Image

from flip.cli import main as cli_main


def _rgb(w=48, h=40):
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def _exif_rotated(path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90
    _rgb(60, 30).save(path, "JPEG", exif=exif)


def _tree_hash(root: Path, skip: set[Path]) -> dict[str, str]:
    out = {}
    for path in sorted(root.rglob("*")):
        if path in skip:
            continue
        if path.is_symlink() or not path.is_file():
            out[str(path)] = "link" if path.is_symlink() else "dir"
            continue
        out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FLIP_CACHE", str(tmp_path_factory.getbasetemp() / "bad-inputs-cache"))


def test_exif_orientation_is_applied(tmp_path):
    from flip.processor import load_image

    _exif_rotated(tmp_path / "r.jpg")
    assert load_image(tmp_path / "r.jpg").size == (30, 60)  # stored 60 x 30, shown rotated


# -- hostile checkpoints ---------------------------------------------------------------------------
def _edit_config(folder: Path, **changes):
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def _edit_weights(folder: Path, change):
    from safetensors.torch import load_file, save_file

    state = load_file(folder / "model.safetensors")
    change(state)
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})


def _truncate(file: Path):
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])


def _official(folder: Path, drop: str):
    """A FaceCaption-15M-layout state dict (FLIP-base.pth) without one tensor, as a .pth file."""
    from test_convert import _official_modules, _official_state_dict  # the converter tests' tiny builders

    state = _official_state_dict(*_official_modules(), temp=0.05)
    for key in [k for k in state if k == drop or k.startswith(drop)]:
        del state[key]
    torch.save({"model": state}, folder / "FLIP-base.pth")


CHECKPOINTS = {
    # name: (break the saved folder, what the message must contain)
    "config of the wrong type": (lambda f: _edit_config(f, projection_dim="sixteen"), "FLIPConfig.projection_dim"),
    "sub-config not a mapping": (lambda f: _edit_config(f, vision_config=5), "config.json"),
    "config.json a list": (lambda f: (f / "config.json").write_text("[1, 2]"), "config.json"),
    "config.json not JSON": (lambda f: (f / "config.json").write_text("{model_type: flip"), "not valid JSON"),
    "no weights": (lambda f: (f / "model.safetensors").unlink(), "no weights"),
    "truncated weights": (lambda f: _truncate(f / "model.safetensors"), "truncated or corrupt"),
    "tensor of the wrong shape": (lambda f: _edit_weights(f, lambda s: s.update({"text_proj.weight": torch.zeros(3, 5)})),
                                  "text_proj.weight (3, 5) != (16, 32)"),
    "NaN weights": (lambda f: _edit_weights(f, lambda s: s["text_proj.weight"].fill_(float("nan"))), "NaN"),
}


@pytest.mark.parametrize("case", list(CHECKPOINTS))
@pytest.mark.parametrize("command", ["info", "convert", "classify", "embed"])
def test_model_commands_on_hostile_checkpoints(checkpoint, tmp_path, capsys, case, command):
    import shutil

    folder = tmp_path / "ckpt"
    shutil.copytree(checkpoint, folder)
    breaker, words = CHECKPOINTS[case]
    breaker(folder)
    face = tmp_path / "face.png"
    _rgb().save(face)
    argv = {"info": ["info", str(folder)], "convert": ["convert", str(folder), str(tmp_path / "out")],
            "classify": ["classify", str(face), "--model", str(folder), "--workers", "0"],
            "embed": ["embed", "--model", str(folder), "--image", str(face)]}[command]
    before = _tree_hash(tmp_path, set())
    capsys.readouterr()
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith(f"flip {command}: ") and str(folder) in err and words in err, err
    assert _tree_hash(tmp_path, set()) == before


@pytest.mark.parametrize("drop, words", [("temp", "temp"),
                                         ("visual_encoder.vision_model.encoder.layers.0.", "layers.0")])
def test_an_incomplete_flip_base_pth_names_what_is_missing(tmp_path, capsys, drop, words):
    _official(tmp_path, drop)
    assert cli_main(["info", str(tmp_path / "FLIP-base.pth")]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1 and "FLIP-base.pth" in err and words in err, err
