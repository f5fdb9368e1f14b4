"""Nothing a user owns is lost: save/convert destinations, CLI outputs, and the one-line error contract."""

import json
import os
import stat

import pytest
import torch

import flip
from flip.cli import main as cli_main
from flip.hub import save
from flip.processor import FLIPProcessor


@pytest.fixture
def processor():
    return FLIPProcessor.from_settings(tokenizer="minilm", image_size=32, max_length=16)


def _one_error_line(capsys, *words):
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for word in words:
        assert word in err, (word, err)
    return err


# -- flip.save and flip convert: destinations ------------------------------------------------------
def test_save_refuses_a_folder_of_user_files_and_keeps_them(tmp_path, tiny_model, processor):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="photos.*not a flip checkpoint.*overwrite=True"):
        save(tiny_model, processor, folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]  # no temporary folder left either
    assert [p.name for p in folder.iterdir()] == ["holiday.jpg"]
    assert (folder / "holiday.jpg").read_bytes() == b"precious"


def test_save_with_overwrite_writes_into_the_folder_and_keeps_the_users_files(tmp_path, tiny_model, processor):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    save(tiny_model, processor, folder, overwrite=True)
    assert (folder / "notes.txt").read_text() == "keep me"
    flip.load(folder)


def test_replacing_a_checkpoint_removes_only_what_flip_wrote(tmp_path, tiny_model, processor):
    out = save(tiny_model, processor, tmp_path / "ckpt")
    (out / "notes.txt").write_text("my notes")
    (out / "eval").mkdir()
    (out / "eval" / "scores.csv").write_text("1,2")
    (out / "added_tokens.json").write_text("{}")  # flip's own name from an older save: removed
    with torch.no_grad():
        tiny_model.text_proj.bias.fill_(0.25)
    save(tiny_model, processor, out)
    assert (out / "notes.txt").read_text() == "my notes" and (out / "eval" / "scores.csv").read_text() == "1,2"
    assert not (out / "added_tokens.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    assert torch.all(flip.load(out)[0].text_proj.bias == 0.25)


def test_save_refuses_a_file_at_the_destination(tmp_path, tiny_model, processor):
    file = tmp_path / "model"
    file.write_text("a user's file")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="model: is a file"):
            save(tiny_model, processor, file, overwrite=overwrite)
    assert file.read_text() == "a user's file"


def test_saved_weights_have_a_normal_file_mode(tmp_path, tiny_model, processor):
    umask = os.umask(0)
    os.umask(umask)
    out = save(tiny_model, processor, tmp_path / "ckpt")
    for name in ("model.safetensors", "config.json"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o666 & ~umask, name


def test_cli_convert_refuses_a_user_folder_names_the_flag_and_keeps_the_file(checkpoint, tmp_path, capsys):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    assert cli_main(["convert", checkpoint, str(folder)]) == 2
    _one_error_line(capsys, "flip convert:", "docs", "--overwrite")
    assert [p.name for p in folder.iterdir()] == ["thesis.tex"]
    assert cli_main(["convert", checkpoint, str(folder), "--overwrite"]) == 0
    assert (folder / "thesis.tex").read_text() == "years of work" and (folder / "model.safetensors").is_file()


def test_cli_convert_refuses_a_file_destination(checkpoint, tmp_path, capsys):
    file = tmp_path / "out.bin"
    file.write_bytes(b"data")
    assert cli_main(["convert", checkpoint, str(file)]) == 2
    _one_error_line(capsys, "flip convert:", "out.bin", "is a file")
    assert file.read_bytes() == b"data"
