"""The bad-input matrix: every image command on a table of hostile inputs, and the model commands on
hostile checkpoints. Each case asserts the exit code, no traceback (errors on one line), that the file
is named, and that nothing outside the command's own outputs changed (the folder is hashed before and
after)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from flip.cli import main as cli_main


# -- hostile images: name -> (writer, readable) ----------------------------------------------------
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _bomb(path: Path) -> None:
    """A PNG whose header claims 40000 x 40000 pixels (1.6 gigapixels) in a few bytes."""
    header = struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + _png_chunk(b"IEND", b""))


def _rgb(w=48, h=40):
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def _truncated_jpeg(path: Path) -> None:
    buf = io.BytesIO()
    _rgb().save(buf, "JPEG")
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])


def _sixteen_bit(path: Path) -> None:
    Image.fromarray(np.arange(48 * 40, dtype=np.uint16).reshape(40, 48) * 30).save(path)


def _palette_alpha(path: Path) -> None:
    image = _rgb().convert("P", palette=Image.ADAPTIVE, colors=16)
    image.info["transparency"] = 0
    image.save(path, transparency=0)


def _animated(path: Path) -> None:
    frames = [_rgb(), _rgb().transpose(Image.FLIP_LEFT_RIGHT)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)


def _exif_rotated(path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90
    _rgb(60, 30).save(path, "JPEG", exif=exif)


def _symlink_loop(path: Path) -> None:
    other = path.with_name("loop-b.png")
    os.symlink(other.name, path)
    os.symlink(path.name, other)


IMAGES = {
    "empty.png": (lambda p: p.write_bytes(b""), False),
    "truncated.jpg": (_truncated_jpeg, False),
    "text.jpg": (lambda p: p.write_text("this is not a picture\n"), False),
    "bomb.png": (_bomb, False),
    "loop.png": (_symlink_loop, False),
    "missing.png": (lambda p: None, False),
    "sixteen-bit.png": (_sixteen_bit, True),
    "cmyk.jpg": (lambda p: _rgb().convert("CMYK").save(p, "JPEG"), True),
    "palette-alpha.png": (_palette_alpha, True),
    "animated.gif": (_animated, True),
    "one-pixel.png": (lambda p: _rgb(1, 1).save(p), True),
    "wide-10000x40.png": (lambda p: Image.new("RGB", (10000, 40), (90, 120, 30)).save(p), True),
    "exif-rotated.jpg": (_exif_rotated, True),
    "visage-é-😀.png": (lambda p: _rgb().save(p, "PNG"), True),
    "new\nline.png": (lambda p: _rgb().save(p, "PNG"), True),
}


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


def _command(kind: str, image: Path, checkpoint: str, out: Path) -> list[str]:
    if kind == "classify":
        return ["classify", str(image), "--model", checkpoint, "--task", "hat", "--json", "--out", str(out),
                "--workers", "0"]
    if kind == "liveness":
        return ["liveness", str(image), "--model", checkpoint, "--json", "--workers", "0"]
    return ["embed", "--model", checkpoint, "--image", str(image), "--out", str(out)]


@pytest.mark.parametrize("name", list(IMAGES), ids=[n.encode("unicode_escape").decode() for n in IMAGES])
@pytest.mark.parametrize("kind", ["classify", "embed", "liveness"])
def test_image_commands_on_hostile_images(checkpoint, tmp_path, capsys, kind, name):
    folder = tmp_path / "in"
    folder.mkdir()
    write, readable = IMAGES[name]
    image = folder / name
    write(image)
    out = tmp_path / ("out.jsonl" if kind == "classify" else "out.npz")
    before = _tree_hash(tmp_path, {out})
    capsys.readouterr()
    rc = cli_main(_command(kind, image, checkpoint, out))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert _tree_hash(tmp_path, {out}) == before  # only the command's own output may appear
    if readable:
        assert rc == 0, captured.err
        if kind == "classify":
            assert json.loads(out.read_text())["path"] == str(image)
        if kind == "embed":
            assert np.load(out)["image"].shape == (1, 16)
    else:
        assert rc == 1, captured.err
        assert not out.exists()  # nothing written when nothing was read
        skipped = [line for line in captured.err.splitlines() if line.startswith("skipped")]
        assert skipped and name.split(".")[0] in skipped[0], captured.err


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
