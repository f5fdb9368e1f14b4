import pytest

from eval.tasks.retrieval import ambiguity_ceiling, main


def test_ceiling_counts_the_images_each_caption_fits():
    labels = [
        {"hat": True, "emotion": "happy"},
        {"hat": True, "emotion": "sad"},
        {"hat": False, "emotion": "happy"},
        {"hat": True, "emotion": "happy"},
    ]
    mentioned = [["hat"], ["hat", "emotion"], ["emotion"], []]
    # caption 0 fits images 0, 1, 3 (m=3); caption 1 only image 1 (m=1); caption 2 fits 0, 2, 3 (m=3); caption 3 all (m=4)
    ceiling = ambiguity_ceiling(labels, mentioned, ks=(1, 5))
    assert ceiling["t2i_r1"] == pytest.approx((1 / 3 + 1 + 1 / 3 + 1 / 4) / 4)
    assert ceiling["t2i_r5"] == 1.0
    assert ceiling["mean_images_per_caption"] == pytest.approx((3 + 1 + 3 + 4) / 4)


def test_command_on_synthetic_pairs(tmp_path, capsys, tiny_model):
    import json

    from flip.data.synthetic import SynthConfig, write_synthetic
    from flip.hub import save
    from flip.processor import FLIPProcessor

    write_synthetic(SynthConfig(kind="captions", n=60, size=64, seed=3), tmp_path / "data", progress=False, workers=1)
    model_dir = save(tiny_model, FLIPProcessor.from_settings(tokenizer="minilm", image_size=32, max_length=32),
                     tmp_path / "model")
    assert main(["--model", str(model_dir), "--data", str(tmp_path / "data"), "--split", "train", "--n", "20",
                 "--out", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "retrieval.json").read_text())
    assert result["pairs"] == 20
    assert 0 < result["t2i_ceiling"]["t2i_r1"] <= 1 and result["t2i_ceiling"]["t2i_r5"] >= result["t2i_ceiling"]["t2i_r1"]
    assert set(result["recall"]) >= {"i2t_r1", "t2i_r5"}
    assert "of its ceiling" in capsys.readouterr().out
