"""The bad-input matrix: the image commands on hostile images, the model commands on hostile checkpoints.
Each case asserts the exit code, no traceback (each bad input or error on one line, naming the file),
and that nothing outside the command's own outputs changed (the folder is hashed before and after).

Images: one run per command over every hostile file plus good ones (cheap: one model load each);
an unreadable or missing image is a skipped input (exit 1), a strange but valid one is read.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import zlib
from pathlib import Path

import pytest
import numpy as np
import torch
from PIL import Image

from flip.cli import main as cli_main
from flip.cli._common import printable


def _rgb(w=48, h=40):
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def _encoded(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def _exif_rotated() -> bytes:
    """A 60 x 30 JPEG whose EXIF orientation says: rotate 90 degrees."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return _encoded(_rgb(60, 30), "JPEG", exif=exif)


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

    (tmp_path / "r.jpg").write_bytes(_exif_rotated())
    assert load_image(tmp_path / "r.jpg").size == (30, 60)  # stored 60 x 30, shown rotated


# -- hostile images ---------------------------------------------------------------------------------
def _png_bomb() -> bytes:
    """A 1-bit PNG that claims 30000 x 30000 pixels in a few bytes: refused at open, never decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 30000, 30000, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + 30000 // 8), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def _palette_with_alpha() -> bytes:
    image = _rgb().convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    return _encoded(image, "PNG", transparency=0)


def _animated_gif() -> bytes:
    frames = [Image.new("RGB", (48, 40), colour) for colour in ((255, 0, 0), (0, 255, 0))]
    return _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)


#: Files that cannot be read: each is skipped, named on one line (a missing file and a symlink loop too).
BAD_IMAGES = {
    "empty.png": lambda: b"",
    "truncated.png": lambda: _encoded(_rgb(), "PNG")[:200],
    "truncated.jpg": lambda: _encoded(_rgb(), "JPEG")[:300],
    "text.png": lambda: b"not an image\n",
    "bomb.png": _png_bomb,
    "bad\nname.png": lambda: b"not an image either\n",  # a newline in the name: still one line
    "loop.png": None,  # a symbolic link to itself
    "missing.png": None,  # not there
}
#: Strange but valid images: each is read.
GOOD_IMAGES = {
    "16bit.png": lambda: _encoded(Image.fromarray(np.arange(40 * 48, dtype=np.uint16).reshape(40, 48) * 30), "PNG"),
    "cmyk.jpg": lambda: _encoded(_rgb().convert("CMYK"), "JPEG"),
    "palette-alpha.png": _palette_with_alpha,
    "animated.gif": _animated_gif,
    "1x1.png": lambda: _encoded(Image.new("RGB", (1, 1), (9, 9, 9)), "PNG"),
    "10000x40.png": lambda: _encoded(Image.new("RGB", (10000, 40), (90, 90, 90)), "PNG"),
    "exif.jpg": _exif_rotated,
    "visage-é-顔.png": lambda: _encoded(_rgb(), "PNG"),
    "new\nline.png": lambda: _encoded(_rgb(), "PNG"),
    "face.png": lambda: _encoded(_rgb(32, 32), "PNG"),
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A folder of the files above; returns (folder, good paths, bad paths)."""
    folder = tmp_path_factory.mktemp("hostile")
    for name, make in {**BAD_IMAGES, **GOOD_IMAGES}.items():
        if make is not None:
            (folder / name).write_bytes(make())
    os.symlink("loop.png", folder / "loop.png")
    return folder, [str(folder / n) for n in GOOD_IMAGES], [str(folder / n) for n in BAD_IMAGES]


@pytest.fixture(scope="module")
def vqa_model(tmp_path_factory):
    """A toy LLaVA saved as a model folder for `flip ask` (a tiny random FLIP image tower, 32 px)."""
    from conftest import tiny_config
    from flip.model import FLIPModel
    from flip.processor import FLIPProcessor
    from flip.vqa.tokenizer import train_sentencepiece_tokenizer
    from flip.vqa.toy import IMAGE_TOKEN, ToyVLMConfig, build_toy_vlm

    torch.manual_seed(0)
    texts = ["What emotion does this face show?", "happy", "sad", "yes", "no", "USER: ASSISTANT:"] * 10
    tokenizer = train_sentencepiece_tokenizer(texts, 300, [IMAGE_TOKEN])
    model, processor = build_toy_vlm(FLIPModel(tiny_config()).vision_model,
                                     FLIPProcessor.from_settings(tokenizer="minilm", image_size=32, max_length=32),
                                     tokenizer, ToyVLMConfig(hidden_size=32, num_hidden_layers=2,
                                                             num_attention_heads=4, intermediate_size=64))
    folder = tmp_path_factory.mktemp("vqa") / "toy"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return str(folder)


def _read_outputs(command: str, out: str, outputs: Path) -> list[str]:
    """The paths a command's output answered (JSON Lines on stdout, embed's .npz, the index's table)."""
    if command == "embed":
        return [str(p) for p in np.load(outputs / "embeddings.npz")["path"]]
    if command == "index":
        from flip.tasks.search import FaceIndex

        with FaceIndex.open(outputs / "faces.index") as index:  # the index keeps resolved paths
            return [row[0] for row in index.conn.execute("SELECT path FROM faces")]
    return [json.loads(line)["path"] for line in out.splitlines()]


IMAGE_COMMANDS = {
    # command: its argv over `files` (each run reads every file, the model from `model`)
    "classify": lambda files, model, out: ["classify", *files, "--model", model, "--task", "hat", "--json",
                                           "--faces", "none", "--workers", "0"],
    "liveness": lambda files, model, out: ["liveness", *files, "--model", model, "--json", "--faces", "none",
                                           "--workers", "0"],
    "embed": lambda files, model, out: ["embed", "--model", model, "--image", *files, "--faces", "none",
                                        "--out", str(out / "embeddings.npz")],
    "index": lambda files, model, out: ["index", *files, "--out", str(out / "faces.index"), "--model", model,
                                        "--task", "hat", "--workers", "0"],
    "ask": lambda files, model, out: ["ask", *files, "-q", "What emotion does this face show?", "--model", model,
                                      "--json", "--faces", "none", "--max-new-tokens", "2"],
}


def _stderr_lines_naming(err: str, path: str) -> list[str]:
    return [line for line in err.splitlines() if printable(path) in line]


@pytest.mark.parametrize("command", list(IMAGE_COMMANDS))
def test_image_commands_skip_each_hostile_file_on_one_line_and_read_the_rest(
        command, hostile, checkpoint, tmp_path, capsys, request):
    folder, good, bad = hostile
    model = request.getfixturevalue("vqa_model") if command == "ask" else checkpoint
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    argv = IMAGE_COMMANDS[command](bad[:4] + good + bad[4:], model, outputs)
    before = {**_tree_hash(folder, set()), **_tree_hash(Path(model), set())}
    capsys.readouterr()
    rc = cli_main(argv)
    out, err = capsys.readouterr()
    assert rc == 1, err  # some inputs were skipped
    assert "Traceback" not in err, err
    for path in bad:
        lines = _stderr_lines_naming(err, path)
        assert len(lines) == 1 and lines[0].startswith(f"skipped {printable(path)}: "), (path, err)
    answered = _read_outputs(command, out, outputs)
    if command == "index":
        good = [str(Path(p).resolve()) for p in good]
    assert sorted(set(answered)) == sorted(good), err
    assert {**_tree_hash(folder, set()), **_tree_hash(Path(model), set())} == before


@pytest.mark.parametrize("command", ["classify", "liveness", "index"])
def test_a_run_where_every_input_is_missing_exits_1_before_loading_a_model(command, hostile, tmp_path, capsys):
    folder, _, bad = hostile
    missing = [p for p in bad if p.endswith(("loop.png", "missing.png"))]
    argv = IMAGE_COMMANDS[command](missing, str(tmp_path / "no-model-here"), tmp_path)
    assert cli_main(argv) == 1
    assert cli_main([*argv, "--skip-bad"]) == 1  # nothing was read: --skip-bad does not make it a success
    err = capsys.readouterr().err
    assert "Traceback" not in err and "no-model-here" not in err
    assert f"skipped {folder / 'missing.png'}: no such file" in err
    assert f"skipped {folder / 'loop.png'}: a symbolic link that leads to no file" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", [*BAD_IMAGES, "1x1.png", "10000x40.png", "face.png"])
def test_name_faces_on_a_hostile_image(name, hostile, checkpoint, capsys):
    """One image per run: an unreadable one is skipped (exit 1, before the model loads); the 1x1 and
    10000 x 40 images go through the face detector and find no face."""
    folder, _, _ = hostile
    path = str(folder / name)
    before = {**_tree_hash(folder, set()), **_tree_hash(Path(checkpoint), set())}
    rc = cli_main(["name-faces", path, "--caption", "Ana Silva at the summit.", "--model", checkpoint,
                   "--detector", "haar"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    if name in BAD_IMAGES:
        assert rc == 1 and err.count("\n") == 1 and err.startswith(f"skipped {printable(path)}: "), err
    else:
        assert rc == 0, err
        assert out.strip() == f"{path}: no faces found" or out.strip().startswith("0  ["), out
    assert {**_tree_hash(folder, set()), **_tree_hash(Path(checkpoint), set())} == before


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
