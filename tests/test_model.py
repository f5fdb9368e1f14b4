import math

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_RESNET, TINY_VISION, tiny_config
from transformers import AutoConfig, AutoModel

from flip.config import PRESETS, FLIPConfig, preset_config
from flip.losses import contrastive_loss
from flip.model import FLIPModel


@pytest.mark.parametrize("text", ["bert", "clip_text_model", "blip_text_model"])
def test_encoders_are_normalised_and_consistent_with_forward(text):
    torch.manual_seed(0)
    model = FLIPModel(tiny_config(text)).eval()
    pixels = torch.randn(3, 3, 32, 32)
    ids = torch.randint(5, 100, (2, 6))
    img, txt = model.encode_image(pixels), model.encode_text(ids)
    assert img.shape == (3, 16) and txt.shape == (2, 16)
    torch.testing.assert_close(img.norm(dim=-1), torch.ones(3))
    out = model(pixel_values=pixels, input_ids=ids)
    expected = img @ txt.t() / 0.07
    torch.testing.assert_close(out.logits_per_image, expected)
    torch.testing.assert_close(out.logits_per_text, expected.t())
    assert out.loss is None
    with pytest.raises(ValueError, match="square"):  # 3 images, 2 texts: no pairs to contrast
        model(pixel_values=pixels, input_ids=ids, return_loss=True)
    # the unnormalised features are the projections of the pooled tower outputs
    feats = model.get_image_features(pixels)
    torch.testing.assert_close(F.normalize(feats, dim=-1), img)


def test_loss_is_symmetric_infonce():
    torch.manual_seed(0)
    model = FLIPModel(tiny_config()).eval()
    pixels, ids = torch.randn(4, 3, 32, 32), torch.randint(5, 100, (4, 6))
    out = model(pixel_values=pixels, input_ids=ids, return_loss=True)
    logits = out.logits_per_image
    target = torch.arange(4)
    manual = (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
    torch.testing.assert_close(out.loss, manual)
    assert contrastive_loss(torch.eye(3) * 100) < 1e-6
    with pytest.raises(ValueError, match="square"):
        contrastive_loss(torch.zeros(2, 3))


def test_text_pooling_modes_differ_and_mean_ignores_padding():
    torch.manual_seed(0)
    model = FLIPModel(tiny_config(text_pooling="mean")).eval()
    ids = torch.tensor([[101, 2000, 2001, 102, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 0, 0]])
    padded = model.encode_text(ids, mask)
    unpadded = model.encode_text(ids[:, :4], mask[:, :4])
    torch.testing.assert_close(padded, unpadded, atol=1e-5, rtol=1e-5)
    # the processor's whole output can be passed as the first argument
    torch.testing.assert_close(model.encode_text({"input_ids": ids, "attention_mask": mask}), padded)


def test_temperature_is_clamped():
    model = FLIPModel(tiny_config(temperature_min=0.01, temperature_max=0.5))
    with torch.no_grad():
        model.logit_scale.fill_(math.log(1 / 0.001))  # below temperature_min
    assert float(model.temperature) == pytest.approx(0.01)
    with torch.no_grad():
        model.logit_scale.fill_(0.0)  # temperature 1, above max
    assert float(model.temperature) == pytest.approx(0.5)


def test_logit_bias_and_itm_head():
    torch.manual_seed(0)
    model = FLIPModel(tiny_config("blip_text_model", logit_bias_init=-10.0)).eval()
    pixels, ids = torch.randn(2, 3, 32, 32), torch.randint(5, 100, (2, 6))
    out = model(pixel_values=pixels, input_ids=ids)
    torch.testing.assert_close(out.logits_per_image, out.image_embeds @ out.text_embeds.t() / 0.07 - 10.0)
    itm = model.match(ids, pixel_values=pixels)
    assert itm.shape == (2, 2)
    # the ITM path cross-attends: a different image changes the matching logits
    assert not torch.allclose(itm, model.match(ids, pixel_values=torch.randn(2, 3, 32, 32)))
    # ... while the text embedding (mode 'text') does not see the image at all
    torch.testing.assert_close(model.encode_text(ids), out.text_embeds)


def test_match_without_head_is_a_clear_error(tiny_model):
    with pytest.raises(ValueError, match="use_itm_head"):
        tiny_model.match(torch.ones(1, 3, dtype=torch.long), pixel_values=torch.randn(1, 3, 32, 32))


def test_integer_pixels_are_a_clear_error(tiny_model):
    size = tiny_model.config.vision_config.image_size
    with pytest.raises(ValueError, match="pixel_values are torch.uint8.*processor.normalize"):
        tiny_model.encode_image(torch.zeros(1, 3, size, size, dtype=torch.uint8))


def test_save_and_reload_roundtrip_with_auto_classes(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    reloaded = AutoModel.from_pretrained(tmp_path)
    assert isinstance(reloaded, FLIPModel)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), FLIPConfig)
    pixels, ids = torch.randn(2, 3, 32, 32), torch.randint(5, 100, (2, 6))
    torch.testing.assert_close(reloaded.encode_image(pixels), tiny_model.encode_image(pixels))
    torch.testing.assert_close(reloaded.encode_text(ids), tiny_model.encode_text(ids))


@pytest.mark.parametrize(
    "overrides, field",
    [
        (dict(text_pooling="max"), "text_pooling"),
        (dict(vision_pooling="mean"), "vision_pooling"),
        (dict(temperature_init=0.9), "temperature"),
        (dict(vision_config=dict(model_type="bert")), "vision_config"),
        (dict(text_config=dict(model_type="gpt2")), "text_config"),
        (dict(use_itm_head=True), "use_itm_head"),
        (dict(projection_dim=None, vision_config=dict(TINY_VISION, hidden_size=48)), "projection_dim"),
        (dict(vision_config={k: v for k, v in TINY_RESNET.items() if k != "image_size"}), "image_size"),
        (dict(vision_config=TINY_RESNET, vision_pooling="cls"), "vision_pooling"),
        (dict(projection_dim=None, vision_config=dict(TINY_RESNET, hidden_sizes=[16, 48])), "projection_dim"),
    ],
)
def test_config_validation_names_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        tiny_config(**overrides)


def test_config_json_roundtrip(tmp_path):
    config = tiny_config("blip_text_model", projection_bias=False, temperature_min=0.01)
    config.save_pretrained(tmp_path)
    again = FLIPConfig.from_pretrained(tmp_path)
    assert again.to_dict() == config.to_dict()
    assert again.text_config.model_type == "blip_text_model"


def test_a_resnet_tower_pools_its_last_map_and_round_trips(tmp_path):
    """The convolutional tower: features from the averaged last map, one token per map cell, any
    input size, and the config (with its extra image_size) survives save and load."""
    torch.manual_seed(0)
    model = FLIPModel(tiny_config(vision_config=TINY_RESNET)).eval()
    assert model.config.vision_width == 32 and model.config.image_size == 32
    pixels = torch.randn(2, 3, 32, 32)
    features, tokens = model.image_features_and_tokens(pixels)
    out = model.vision_model(pixel_values=pixels)
    assert features.shape == (2, 16) and tokens.shape == (2, 16, 32)  # a 4 x 4 map of 32 channels
    torch.testing.assert_close(features, model.vision_proj(out.last_hidden_state.mean((2, 3))))
    torch.testing.assert_close(tokens[:, 5], out.last_hidden_state[:, :, 1, 1])  # row-major cells
    assert model.encode_image(torch.randn(1, 3, 48, 40), interpolate_pos_encoding=True).shape == (1, 16)
    model.save_pretrained(tmp_path)
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    assert reloaded.config.vision_config.image_size == 32
    torch.testing.assert_close(reloaded.encode_image(pixels), model.encode_image(pixels))


def test_presets_build_with_the_documented_sizes():
    assert set(PRESETS) == {"flip-tiny", "flip-tiny-resnet", "flip-small", "flip-base"}
    tiny = FLIPModel(preset_config("flip-tiny"))
    vision_params = sum(p.numel() for p in tiny.vision_model.parameters())
    assert 1e6 < vision_params < 10e6 and tiny.config.image_size == 112
    resnet = FLIPModel(preset_config("flip-tiny-resnet"))
    assert 2e6 < sum(p.numel() for p in resnet.vision_model.parameters()) < 4e6
    assert resnet.config.image_size == 112 and resnet.config.vision_width == 256
    base = preset_config("flip-base")
    assert (base.vision_config.hidden_size, base.vision_config.patch_size, base.image_size) == (768, 16, 224)
    assert base.projection_dim == 256 and base.use_itm_head and base.text_config.model_type == "blip_text_model"
    with pytest.raises(KeyError, match="flip-huge"):
        preset_config("flip-huge")
