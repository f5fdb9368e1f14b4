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


def test_a_checkpoint_rename_is_made_durable_by_syncing_its_folder(tmp_path, tiny_model, processor, monkeypatch):
    """A rename survives a power cut only once the folder is fsynced: after the rename, the folder
    that holds the new name (training checkpoints and saved models)."""
    import flip.hub
    import flip.state_file

    synced = []

    def record(folder):
        synced.append((str(folder), sorted(p.name for p in os.scandir(folder))))

    monkeypatch.setattr(flip.state_file, "fsync_dir", record)
    monkeypatch.setattr(flip.hub, "fsync_dir", record)
    flip.state_file.save_checkpoint({"step": 1}, tmp_path / "run" / "checkpoint-last.pt")
    assert synced == [(str(tmp_path / "run"), ["checkpoint-last.pt"])]
    save(tiny_model, processor, tmp_path / "run" / "final")
    assert synced[-1] == (str(tmp_path / "run"), ["checkpoint-last.pt", "final"])


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


def test_cli_users_are_told_the_flag_not_the_python_keyword(tmp_path, capsys):
    """The library says `pass overwrite=True`; on the command line that is `--overwrite`."""
    argv = ["data", "synth", "--kind", "captions", "--n", "6", "--size", "32", "--out", str(tmp_path / "d"),
            "--workers", "1", "--quiet"]
    assert cli_main(argv) == 0
    capsys.readouterr()
    assert cli_main(argv) == 2
    assert "overwrite=True" not in _one_error_line(capsys, "flip data synth:", "already exists", "pass --overwrite")


# -- outputs written through a temporary file ----------------------------------------------------
@pytest.fixture
def faces(tmp_path):
    from PIL import Image

    folder = tmp_path / "faces"
    folder.mkdir()
    for i, name in enumerate(("a.png", "b.png")):
        Image.new("RGB", (40, 48), (60 * i, 120, 90)).save(folder / name)
    (folder / "bad.png").write_bytes(b"\x89PNG not really")
    return folder


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FLIP_CACHE", str(tmp_path / "cache"))


def test_classify_out_is_left_as_it_was_when_no_image_is_read(checkpoint, faces, tmp_path, capsys):
    out = tmp_path / "answers.jsonl"
    out.write_text("yesterday's answers\n")
    rc = cli_main(["classify", str(faces / "bad.png"), "--model", checkpoint, "--task", "hat", "--json",
                   "--out", str(out), "--workers", "0"])
    assert rc == 1 and out.read_text() == "yesterday's answers\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answers.jsonl", "cache", "faces"]  # no temp file left


def test_classify_partial_failure_exits_1_unless_skip_bad(checkpoint, faces, tmp_path, capsys):
    out = tmp_path / "answers.jsonl"
    argv = ["classify", str(faces), "--model", checkpoint, "--task", "hat", "--json", "--out", str(out),
            "--workers", "0"]
    assert cli_main(argv) == 1
    assert [json.loads(line)["path"] for line in out.read_text().splitlines()] == [str(faces / "a.png"),
                                                                                  str(faces / "b.png")]
    assert "bad.png" in capsys.readouterr().err
    assert cli_main([*argv, "--skip-bad"]) == 0


def test_embed_finishes_the_good_images_when_one_is_bad(checkpoint, faces, tmp_path, capsys):
    import numpy as np

    out = tmp_path / "emb"
    rc = cli_main(["embed", "--model", checkpoint, "--image", str(faces / "a.png"), str(faces / "bad.png"),
                   str(faces / "b.png"), "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 1 and "Traceback" not in captured.err and f"skipped {faces / 'bad.png'}" in captured.err
    assert f"wrote {out}.npz" in captured.out  # the file that was written, with its suffix
    arrays = np.load(f"{out}.npz")
    assert arrays["image"].shape == (2, 16)
    assert list(arrays["path"]) == [str(faces / "a.png"), str(faces / "b.png")]
    assert cli_main(["embed", "--model", checkpoint, "--image", str(faces / "a.png"), str(faces / "bad.png"),
                     "--skip-bad"]) == 0


def test_an_unwritable_text_cache_does_not_stop_classification(checkpoint, faces, tmp_path, monkeypatch, capsys,
                                                               caplog):
    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("FLIP_CACHE", str(blocker))
    rc = cli_main(["classify", str(faces / "a.png"), "--model", checkpoint, "--task", "hat", "--workers", "0"])
    err = capsys.readouterr().err
    assert rc == 0 and "Traceback" not in err and "cache-is-a-file/text: not writable" in caplog.text
    assert blocker.read_text() == "not a folder"


# -- the one-line error contract ------------------------------------------------------------------
@pytest.mark.parametrize("argv, words", [
    (["classify", "{face}", "--device", "tpu"], ["flip classify:", "'tpu'"]),
    (["embed", "--image", "{face}", "--devise", "cpu"], ["flip embed:", "--devise"]),
    (["classify", "{face}", "--device", "cuda:7"], ["flip classify:", "'cuda:7'"]),
    (["liveness", "{face}", "--device", "cuda"], ["flip liveness:", "'cuda'"]),
    (["classify", "{face}", "--workers", "-1"], ["--workers", "-1"]),
    (["classify", "{face}", "--task", ""], ["flip classify:", "--task"]),
    (["classify", "{face}", "--explain", "-2"], ["--explain", "-2"]),
    (["liveness", "{face}", "--threshold", "nan"], ["--threshold", "nan"]),
    (["liveness", "{face}", "--threshold", "5"], ["--threshold", "5"]),
    (["classify", "{face}", "--out", "{folder}"], ["flip classify:", "--out", "is a folder"]),
    (["classify", "{face}", "--out", "{face}/x.jsonl"], ["flip classify:", "--out", "is a file"]),
])
def test_user_errors_are_one_line_and_exit_2(checkpoint, faces, tmp_path, capsys, argv, words):
    if words is not None and "'cuda" in words[-1] and torch.cuda.is_available() and torch.cuda.device_count() > 7:
        pytest.skip("this machine has the device")
    argv = [a.format(face=faces / "a.png", folder=faces) for a in argv]
    if argv[0] in ("classify", "liveness"):
        argv += ["--model", checkpoint]
    try:
        rc = cli_main(argv)
    except SystemExit as stop:  # argparse's errors
        rc = stop.code
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    if words is not None:
        assert len(err.splitlines()) == 1, err
        for word in words:
            assert word in err, (word, err)


def test_flip_debug_shows_the_traceback(checkpoint, faces, monkeypatch):
    monkeypatch.setenv("FLIP_DEBUG", "1")
    with pytest.raises(ValueError, match="tpu"):
        cli_main(["classify", str(faces / "a.png"), "--model", checkpoint, "--device", "tpu"])


# -- conversions that would be silently wrong --------------------------------------------------------
@pytest.mark.parametrize("quick_gelu", [False, True])
def test_an_open_clip_state_dict_file_without_openai_marks_is_refused_with_the_way_out(tmp_path, quick_gelu):
    """GELU and QuickGELU towers (and any head width) have the same tensors: a plain file cannot say
    which it is, and converting it as QuickGELU with 64-wide heads gave wrong embeddings silently."""
    from test_convert import _assert_open_clip_parity, _open_clip_model

    source = _open_clip_model(quick_gelu=quick_gelu, width=128, head_width=64, seed=4)
    file = tmp_path / "laion-tiny.pt"
    torch.save({"state_dict": source.state_dict()}, file)
    with pytest.raises(ValueError, match=r"laion-tiny\.pt: .*GELU.*open_clip:<architecture>/"):
        flip.load(file)
    # named by its architecture, it converts exactly
    import open_clip

    arch = f"flip-test-w128{'-quickgelu' if quick_gelu else ''}"
    cfg = dict(embed_dim=16, quick_gelu=quick_gelu,
               vision_cfg=dict(layers=2, width=128, head_width=64, image_size=32, patch_size=8),
               text_cfg=dict(context_length=12, vocab_size=100, width=128, heads=2, layers=2))
    (tmp_path / f"{arch}.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp_path / f"{arch}.json")
    model, _ = flip.load(f"open_clip:{arch}/{file}")
    _assert_open_clip_parity(source, model)


def test_clip_processor_with_a_larger_shortest_edge_resizes_then_crops(tmp_path):
    """CLIP processors with size.shortest_edge > crop_size (e.g. 256 then 224) resize first, then crop
    the centre; resizing straight to the crop size gave other pixels (embeddings off by 0.05-0.1)."""
    import numpy as np
    from PIL import Image
    from test_convert import _save_hf_clip
    from transformers import CLIPImageProcessor

    _save_hf_clip(tmp_path)
    CLIPImageProcessor(size={"shortest_edge": 48}, crop_size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    _, processor = flip.load(tmp_path)
    assert processor.settings.resize_size == 48 and processor.settings.image_size == 32
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (60, 96, 3), dtype=np.uint8))
    expected = CLIPImageProcessor.from_pretrained(tmp_path)(images=[image], return_tensors="pt")["pixel_values"]
    actual = processor.images([image])
    assert actual.shape == expected.shape == (1, 3, 32, 32)
    # the same crop of the same resize: within a resampling level (not a differently framed picture)
    assert (actual - expected).abs().mean() < 0.05, (actual - expected).abs().mean()
    assert "resize_size" in processor.settings.to_dict()
    from flip.processor import ProcessorSettings

    assert "resize_size" not in ProcessorSettings().to_dict()  # saved only when used
    with pytest.raises(ValueError, match="resize_size"):
        ProcessorSettings(image_size=32, resize_size=16)


def test_a_huge_prompt_file_or_descriptor_is_refused(tmp_path, checkpoint, capsys):
    from flip.prompts import MAX_DESCRIPTOR_CHARS, load_prompts

    long = tmp_path / "long.json"
    long.write_text(json.dumps({"a": ["x" * (MAX_DESCRIPTOR_CHARS + 1)], "b": ["short"]}))
    with pytest.raises(ValueError, match=r"long\.json.*descriptor 0 is 1001 characters long"):
        load_prompts(long)
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps({"a": ["y" * 5_000_000], "b": ["short"]}))
    face = tmp_path / "face.png"
    from PIL import Image

    Image.new("RGB", (32, 32)).save(face)
    assert cli_main(["classify", str(face), "--model", checkpoint, "--task", str(huge), "--workers", "0"]) == 2
    _one_error_line(capsys, "flip classify:", "huge.json", "too large")

