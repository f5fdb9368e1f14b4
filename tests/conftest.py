"""Shared fixtures: tiny random FLIP configs (hidden 32, 2 layers) that build and run in milliseconds."""

from __future__ import annotations

import os

import pytest

# Hub calls must fail fast, and evaluate/datasets caches must not touch the user's home.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TINY_VISION = dict(
    model_type="clip_vision_model",
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    image_size=32,
    patch_size=8,
)
#: A two-stage ResNet image tower (transformers' ResNetModel); FLIPConfig reads its input side from image_size.
TINY_RESNET = dict(model_type="resnet", image_size=32, embedding_size=8, hidden_sizes=[16, 32], depths=[1, 1],
                   layer_type="basic", hidden_act="relu")
TINY_TEXT = {
    "bert": dict(model_type="bert", vocab_size=30522, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                 num_attention_heads=4, max_position_embeddings=128),
    "clip_text_model": dict(model_type="clip_text_model", vocab_size=49408, hidden_size=32, intermediate_size=64,
                            num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=77),
    "blip_text_model": dict(model_type="blip_text_model", vocab_size=30524, hidden_size=32, encoder_hidden_size=32,
                            intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                            max_position_embeddings=128, pad_token_id=0, bos_token_id=30522, sep_token_id=102),
}


def tiny_config(text: str = "bert", **overrides):
    from flip.config import FLIPConfig

    kwargs = dict(vision_config=dict(TINY_VISION), text_config=dict(TINY_TEXT[text]), projection_dim=16)
    if text == "clip_text_model":
        kwargs["text_pooling"] = "pooler"
    if text == "blip_text_model":
        kwargs["use_itm_head"] = True
    kwargs.update(overrides)
    return FLIPConfig(**kwargs)


@pytest.fixture(autouse=True)
def _hf_home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path_factory.getbasetemp() / "hf_home"))


@pytest.fixture
def tiny_model():
    import torch

    from flip.model import FLIPModel

    torch.manual_seed(0)
    return FLIPModel(tiny_config()).eval()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny random FLIP model saved with a MiniLM-tokenizer processor (32 px): a path for flip.load."""
    import torch

    from flip.hub import save
    from flip.model import FLIPModel
    from flip.processor import FLIPProcessor

    torch.manual_seed(0)
    model = FLIPModel(tiny_config()).eval()
    processor = FLIPProcessor.from_settings(tokenizer="minilm", image_size=32, max_length=32)
    return str(save(model, processor, tmp_path_factory.mktemp("ckpt") / "tiny"))
