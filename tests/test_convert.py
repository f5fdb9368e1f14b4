"""Conversion parity: tiny random source models (open_clip, OpenAI layout / FaRL, transformers CLIP and
SigLIP, the FaceCaption-15M authors' FLIP layout) converted into FLIPModel give the source's own
embeddings and logits to 1e-5. Every weight is perturbed first, so zero biases and unit norms cannot
hide a wrong mapping.
"""

from __future__ import annotations

import json
import logging
import math

import pytest
import torch
import torch.nn.functional as F

from flip.convert import build_model, convert_hf_pretrained, convert_state_dict, detect_layout, read_state_dict
from flip.convert.open_clip import architecture, convert_model, load_open_clip, parse_name

ATOL = 1e-5
VOCAB = 100  # tiny vocabularies: the end-of-text token is the largest id, 99


def _perturb(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=generator))
    return module.eval()


def _pixels(size: int = 32, n: int = 3) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(1))


def _clip_tokens(context: int, ends=(4, 7, 11)) -> tuple[torch.Tensor, torch.Tensor]:
    """CLIP-style ids: random tokens, the end-of-text id (vocab - 1) at `ends`, zero padding after."""
    ids = torch.randint(1, VOCAB - 2, (len(ends), context), generator=torch.Generator().manual_seed(2))
    mask = torch.zeros_like(ids)
    for row, end in enumerate(ends):
        ids[row, end] = VOCAB - 1
        ids[row, end + 1:] = 0
        mask[row, : end + 1] = 1
    return ids, mask


def _close(actual: torch.Tensor, expected: torch.Tensor, rtol: float = 0.0) -> None:
    assert actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, atol=ATOL, rtol=rtol)


def _close_logits(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Logits are cosines times a scale of up to ~2000 here: float32 noise is relative, 1e-5 of them."""
    _close(actual, expected, rtol=ATOL)


# --------------------------------------------------------------------------------------------------
# open_clip and the OpenAI layout

def _open_clip_model(quick_gelu: bool, width: int = 32, head_width: int = 8, seed: int = 0, **vision):
    from open_clip.model import CLIP

    torch.manual_seed(seed)
    model = CLIP(
        16,
        dict(layers=2, width=width, head_width=head_width, image_size=32, patch_size=8, **vision),
        dict(context_length=12, vocab_size=VOCAB, width=width, heads=width // head_width, layers=2),
        quick_gelu=quick_gelu,
    )
    model.logit_scale.data.fill_(math.log(1 / 0.02))
    return _perturb(model, seed)


def _assert_open_clip_parity(source, model) -> None:
    pixels = _pixels()
    ids, mask = _clip_tokens(12)
    with torch.no_grad():
        _close(model.encode_image(pixels), source.encode_image(pixels, normalize=True))
        _close(model.encode_text(ids, mask), source.encode_text(ids, normalize=True))
        logits_per_image, _ = source.get_logits(pixels, ids)
        _close_logits(model(pixel_values=pixels, input_ids=ids, attention_mask=mask).logits_per_image, logits_per_image)


@pytest.mark.parametrize("quick_gelu", [True, False])
def test_open_clip_model_parity(quick_gelu):
    source = _open_clip_model(quick_gelu)
    config, state_dict, settings = convert_model(source)
    assert config.vision_config.hidden_act == ("quick_gelu" if quick_gelu else "gelu")
    assert config.vision_config.num_attention_heads == config.text_config.num_attention_heads == 4
    assert settings == dict(
        image_size=32,
        image_mean=pytest.approx((0.48145466, 0.4578275, 0.40821073)),
        image_std=pytest.approx((0.26862954, 0.26130258, 0.27577711)),
        resize_mode="shortest",
        resample="bicubic",
        max_length=12,
        tokenizer="clip",
    )
    _assert_open_clip_parity(source, build_model(config, state_dict))


def test_load_open_clip_by_name_with_local_checkpoint(tmp_path):
    import open_clip

    cfg = dict(
        embed_dim=16,
        quick_gelu=False,
        vision_cfg=dict(layers=2, width=32, head_width=8, image_size=32, patch_size=8),
        text_cfg=dict(context_length=12, vocab_size=VOCAB, width=32, heads=4, layers=2),
    )
    (tmp_path / "flip-test-tiny-clip.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp_path / "flip-test-tiny-clip.json")
    source = _open_clip_model(quick_gelu=False, seed=3)
    checkpoint = tmp_path / "tiny.pt"
    torch.save({"state_dict": source.state_dict()}, checkpoint)

    model, settings = load_open_clip(f"open_clip:flip-test-tiny-clip/{checkpoint}")
    assert settings["image_size"] == 32 and settings["max_length"] == 12
    _assert_open_clip_parity(source, model)


@pytest.mark.parametrize("prefix", ["", "module."])
def test_openai_layout_file_with_state_dict_wrapper_farl(tmp_path, prefix, caplog):
    # OpenAI's rule gives width / 64 heads, so the source uses head width 64; QuickGELU as in OpenAI/FaRL.
    source = _open_clip_model(quick_gelu=True, width=128, head_width=64, seed=4)
    weights = {prefix + k: v for k, v in source.state_dict().items()}
    weights[prefix + "visual.mask_token"] = torch.zeros(128)  # FaRL's masked-image-modelling extras
    weights[prefix + "visual.lm_head.weight"] = torch.zeros(8, 128)
    file = tmp_path / "FaRL-Base-Patch16-tiny.pth"
    torch.save({"state_dict": weights}, file)

    state_dict = read_state_dict(file)
    assert detect_layout(state_dict) == "openai_clip"
    with caplog.at_level(logging.INFO, logger="flip.convert"):
        config, converted, settings = convert_state_dict(state_dict, source=str(file))
    assert "dropped 2 tensors" in caplog.text
    assert config.vision_config.num_attention_heads == 2 and config.vision_config.hidden_act == "quick_gelu"
    assert settings["tokenizer"] == "clip" and settings["resize_mode"] == "shortest"
    _assert_open_clip_parity(source, build_model(config, converted, source=str(file)))


@pytest.mark.parametrize(
    "vision, problem",
    [(dict(pool_type="avg"), "image pool_type 'avg'"), (dict(ls_init_value=0.1), "layer scale")],
)
def test_open_clip_unsupported_features_are_named(vision, problem):
    source = _open_clip_model(quick_gelu=False, **vision)
    with pytest.raises(ValueError, match=problem):
        architecture(source)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("open_clip:ViT-B-16/openai", ("ViT-B-16", "openai")),
        ("open_clip:ViT-B-16", ("ViT-B-16", None)),
        ("open_clip:ViT-B-16//data/farl.pt", ("ViT-B-16", "/data/farl.pt")),
        ("hf-hub:laion/CLIP-ViT-B-16", ("hf-hub:laion/CLIP-ViT-B-16", None)),
        ("open_clip:hf-hub:laion/CLIP-ViT-B-16", ("hf-hub:laion/CLIP-ViT-B-16", None)),
    ],
)
def test_open_clip_names(name, expected):
    assert parse_name(name) == expected


def test_open_clip_unknown_name_is_one_clear_error():
    with pytest.raises(ValueError, match="open_clip:no-such-arch.*could not create"):
        load_open_clip("open_clip:no-such-arch/openai")


# --------------------------------------------------------------------------------------------------
# transformers CLIP and SigLIP

_HF_TEXT = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
_HF_VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=32,
                  patch_size=8)


def _save_hf_clip(path):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    config = CLIPConfig(
        text_config=dict(_HF_TEXT, max_position_embeddings=12, bos_token_id=VOCAB - 2, eos_token_id=VOCAB - 1,
                         hidden_act="gelu"),
        vision_config=dict(_HF_VISION, hidden_act="gelu"),
        projection_dim=16,
    )
    torch.manual_seed(5)
    source = _perturb(CLIPModel(config), 5)
    source.logit_scale.data.fill_(7.5)  # temperature 0.00055: outside FLIP's default [0.001, 0.5]
    source.save_pretrained(path)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(path)
    return source


def _save_hf_siglip(path):
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel

    config = SiglipConfig(text_config=dict(_HF_TEXT, max_position_embeddings=12), vision_config=_HF_VISION)
    torch.manual_seed(6)
    source = _perturb(SiglipModel(config), 6)
    source.save_pretrained(path)
    SiglipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(path)
    return source


@pytest.mark.parametrize("family", ["clip", "siglip"])
def test_transformers_parity(tmp_path, family):
    source = (_save_hf_clip if family == "clip" else _save_hf_siglip)(tmp_path)
    model, settings = convert_hf_pretrained(tmp_path)
    pixels = _pixels()
    ids, mask = _clip_tokens(12)
    if family == "siglip":  # SigLIP pads to full length and pools the last token, with no mask
        mask = torch.ones_like(mask)
    with torch.no_grad():
        expected = source(pixel_values=pixels, input_ids=ids, attention_mask=mask)
        actual = model(pixel_values=pixels, input_ids=ids, attention_mask=mask)
    _close(actual.image_embeds, expected.image_embeds)
    _close(actual.text_embeds, expected.text_embeds)
    _close_logits(actual.logits_per_image, expected.logits_per_image)
    assert settings["image_size"] == 32 and settings["max_length"] == 12
    assert settings["resize_mode"] == ("shortest" if family == "clip" else "squash")
    if family == "siglip":
        assert model.logit_bias is not None and settings["image_mean"] == (0.5, 0.5, 0.5)
        assert settings["padding"] == "max_length" and settings["return_attention_mask"] is False


def test_transformers_state_dict_without_config_asks_for_the_directory(tmp_path):
    _save_hf_clip(tmp_path)
    state_dict = read_state_dict(tmp_path / "model.safetensors")
    assert detect_layout(state_dict) == "hf_clip"
    with pytest.raises(ValueError, match="pass the checkpoint's directory"):
        convert_state_dict(state_dict, source="model.safetensors")


# --------------------------------------------------------------------------------------------------
# The FaceCaption-15M authors' FLIP-base.pth

ENC = VOCAB - 1  # stands for [ENC] in the tiny vocabulary


def _official_modules(seed: int = 7):
    """The authors' model in transformers modules: CLIP ViT (QuickGELU, eps 1e-5), BLIP/med.py BERT with
    cross-attention (GELU, eps 1e-12), linear projections with bias, ITM head. Width 128: 2 heads of 64."""
    from transformers import BlipTextConfig, BlipTextModel, CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(seed)
    vision = CLIPVisionModel(CLIPVisionConfig(hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                                              num_attention_heads=2, image_size=32, patch_size=8,
                                              hidden_act="quick_gelu", layer_norm_eps=1e-5))
    text = BlipTextModel(
        BlipTextConfig(vocab_size=VOCAB, hidden_size=128, encoder_hidden_size=128, intermediate_size=256,
                       num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=40, is_decoder=True,
                       hidden_act="gelu", layer_norm_eps=1e-12, bos_token_id=None, sep_token_id=None),
        add_pooling_layer=False,
    )
    heads = torch.nn.ModuleDict(dict(vision_proj=torch.nn.Linear(128, 16), text_proj=torch.nn.Linear(128, 16),
                                     itm_head=torch.nn.Linear(128, 2)))
    return _perturb(vision, seed), _perturb(text, seed + 1), _perturb(heads, seed + 2)


def _official_state_dict(vision, text, heads, temp: float) -> dict[str, torch.Tensor]:
    """Exactly the key names of the authors' checkpoint['model'], training state included."""
    sd = {}
    for k, v in vision.state_dict().items():
        sd["visual_encoder.vision_model." + k.replace("post_layernorm", "post_layrnorm")] = v
    sd["visual_encoder.vision_model.embeddings.position_ids"] = torch.arange(17).unsqueeze(0)
    sd.update({"text_encoder." + k: v for k, v in text.state_dict().items()})
    sd["text_encoder.embeddings.position_ids"] = torch.arange(40).unsqueeze(0)
    sd.update(heads.state_dict())
    for prefix in ("visual_encoder", "text_encoder", "vision_proj", "text_proj"):
        sd.update({k.replace(prefix, prefix + "_m", 1): v.clone() for k, v in list(sd.items())
                   if k.startswith(prefix + ".")})
    sd["image_queue"] = F.normalize(torch.randn(16, 64), dim=0)
    sd["text_queue"] = F.normalize(torch.randn(16, 64), dim=0)
    sd["idx_queue"] = torch.full((1, 64), -100)
    sd["ptr_queue"] = torch.zeros(1, dtype=torch.long)
    sd["temp"] = torch.tensor(temp)
    return sd


def _official_reference(vision, text, heads, pixels, ids, mask):
    """The authors' forward: post-layernorm over all image tokens; text in mode 'text'; ITM with [ENC]."""
    states = vision.post_layernorm(vision(pixel_values=pixels).last_hidden_state)
    image = F.normalize(heads.vision_proj(states[:, 0]), dim=-1)
    caption = F.normalize(heads.text_proj(text(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0]), dim=-1)
    enc_ids = ids.clone()
    enc_ids[:, 0] = ENC
    crossed = text(input_ids=enc_ids, attention_mask=mask, encoder_hidden_states=states,
                   encoder_attention_mask=torch.ones(states.shape[:2], dtype=torch.long))
    return image, caption, heads.itm_head(crossed.last_hidden_state[:, 0]), states, enc_ids


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    vision, text, heads = _official_modules()
    file = tmp_path_factory.mktemp("official") / "FLIP-base.pth"
    sd = _official_state_dict(vision, text, heads, temp=0.05)
    optimizer = torch.optim.AdamW(heads.parameters(), lr=3e-5, weight_decay=0.05).state_dict()
    torch.save({"model": sd, "optimizer": optimizer, "config": {"image_size": 32, "queue_size": 64}, "epoch": 0}, file)
    ids = torch.randint(1, VOCAB - 2, (3, 10), generator=torch.Generator().manual_seed(8))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 3:] = 0
    pixels = _pixels()
    with torch.no_grad():
        reference = _official_reference(vision, text, heads, pixels, ids, mask)
    return file, pixels, ids, mask, reference


def test_official_flip_parity(official, caplog):
    file, pixels, ids, mask, (image, caption, itm, states, enc_ids) = official
    state_dict = read_state_dict(file)  # weights_only=True; unwraps checkpoint["model"]
    assert detect_layout(state_dict) == "flip_official"
    with caplog.at_level(logging.INFO, logger="flip.convert"):
        config, converted, settings = convert_state_dict(state_dict, source=str(file))
    n_momentum = sum(k.startswith(("visual_encoder_m.", "text_encoder_m.", "vision_proj_m.", "text_proj_m."))
                     for k in state_dict)
    assert f"dropped {n_momentum} momentum-encoder tensors and 4 queue buffers" in caplog.text
    assert config.vision_pooling == "pooler" and config.text_pooling == "cls" and config.use_itm_head
    assert settings == dict(image_size=32, image_mean=pytest.approx((0.48145466, 0.4578275, 0.40821073)),
                            image_std=pytest.approx((0.26862954, 0.26130258, 0.27577711)), resize_mode="squash",
                            resample="bicubic", max_length=65, tokenizer="bert-blip")
    model = build_model(config, converted, source=str(file))
    with torch.no_grad():
        _close(model.encode_image(pixels), image)
        _close(model.encode_text(ids, mask), caption)
        _close_logits(model(pixel_values=pixels, input_ids=ids, attention_mask=mask).logits_per_image,
                      image @ caption.t() / 0.05)
        _close(model.match(enc_ids, mask, image_hidden_states=states), itm)


def test_official_flip_match_from_pixels(official):
    file, pixels, ids, mask, (_, _, itm, _, enc_ids) = official
    model = build_model(*convert_state_dict(read_state_dict(file), source=str(file))[:2])
    with torch.no_grad():
        _close(model.match(enc_ids, mask, pixel_values=pixels), itm)


# --------------------------------------------------------------------------------------------------
# Strict loading, layout detection, safe reading

def test_strict_loading_names_missing_unexpected_and_misshaped_keys():
    from conftest import tiny_config

    from flip.model import FLIPModel

    config = tiny_config()
    good = FLIPModel(config).state_dict()
    missing = {k: v for k, v in good.items() if k != "vision_proj.weight"}
    with pytest.raises(ValueError, match=r"ckpt\.pt: .*missing keys: vision_proj\.weight"):
        build_model(config, missing, source="ckpt.pt")
    with pytest.raises(ValueError, match=r"unexpected keys: text_model\.extra\.weight"):
        build_model(config, {**good, "text_model.extra.weight": torch.zeros(2)}, source="ckpt.pt")
    with pytest.raises(ValueError, match=r"wrong shapes .*logit_scale \(2,\) != \(\)"):
        build_model(config, {**good, "logit_scale": torch.zeros(2)}, source="ckpt.pt")
    model = build_model(config, good)
    torch.testing.assert_close(model.state_dict()["text_proj.weight"], good["text_proj.weight"])


def test_detect_layout_and_errors():
    from conftest import tiny_config

    from flip.model import FLIPModel

    flip_sd = FLIPModel(tiny_config()).state_dict()
    assert detect_layout(flip_sd) == "flip"
    with pytest.raises(ValueError, match="flip.save"):
        convert_state_dict(flip_sd, source="weights.safetensors")
    with pytest.raises(ValueError, match="unrecognised checkpoint layout.*encoder.weight"):
        detect_layout({"encoder.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"x\.pt: .*OpenAI-CLIP state dict: missing .*text_projection"):
        partial = {"visual.conv1.weight": torch.zeros(8, 3, 8, 8), "token_embedding.weight": torch.zeros(4, 8)}
        convert_state_dict(partial, source="x.pt")


class _NotATensor:  # pickled by reference: weights_only loading must refuse it
    pass


def test_read_state_dict_refuses_arbitrary_pickles(tmp_path):
    file = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "extra": _NotATensor()}, file)
    with pytest.raises(ValueError, match=r"evil\.pth: cannot be read as a weights-only torch checkpoint"):
        read_state_dict(file)


# --------------------------------------------------------------------------------------------------
# End to end through flip.load: the converted model and a working processor

def _same_weights(model, expected_state_dict) -> None:
    actual = model.state_dict()
    assert actual.keys() == expected_state_dict.keys()
    for key, value in expected_state_dict.items():
        torch.testing.assert_close(actual[key], value.to(actual[key].dtype), atol=0, rtol=0)


def test_flip_load_converts_each_format(tmp_path, official):
    import flip

    # transformers CLIP directory (no tokenizer files: CLIP's BPE)
    _save_hf_clip(tmp_path / "hf")
    model, processor = flip.load(tmp_path / "hf")
    _same_weights(model, convert_hf_pretrained(tmp_path / "hf")[0].state_dict())
    assert processor.settings.image_size == 32 and processor.settings.resize_mode == "shortest"
    assert processor.images(torch.rand(40, 50, 3).numpy()).shape == (1, 3, 32, 32)

    # FaRL-style OpenAI-layout file
    source = _open_clip_model(quick_gelu=True, width=128, head_width=64, seed=9)
    farl = {**source.state_dict(), "visual.mask_token": torch.zeros(1, 1, 128)}  # FaRL's mark: its MIM head
    torch.save({"state_dict": farl}, tmp_path / "farl.pth")
    model, processor = flip.load(tmp_path / "farl.pth")
    _assert_open_clip_parity(source, model)
    assert processor.settings.max_length == 12

    # the authors' FLIP-base.pth
    file = official[0]
    model, processor = flip.load(file)
    assert model.config.use_itm_head and processor.settings.resize_mode == "squash"
    assert processor.settings.max_length == 65
