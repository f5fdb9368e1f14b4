"""OpenAI-CLIP state dicts (also open_clip's CLIP models and FaRL) -> FLIPModel.

Layout (OpenAI's `clip/model.py`, kept by open_clip): the image tower under `visual.` (`conv1`,
`class_embedding`, `positional_embedding`, `ln_pre`, `transformer.resblocks.N`, `ln_post`, `proj`),
the text tower at the top level (`token_embedding`, `positional_embedding`, `transformer.resblocks.N`,
`ln_final`, `text_projection`) and `logit_scale`. Each residual block is `ln_1`, an
`nn.MultiheadAttention` (`attn.in_proj_weight` stacks q, k, v), `ln_2` and `mlp.c_fc`/`mlp.c_proj`.

Design choices:
- The towers become transformers' `CLIPVisionModel` and `CLIPTextModel`, whose blocks compute the
  same functions: q/k/v are the three row blocks of `in_proj_weight`; projections are the transposed
  `proj` / `text_projection` as bias-free linears; image pooling is the post-layernormed CLS token
  (`vision_pooling="pooler"`), text pooling the end-of-text token (`text_pooling="pooler"`).
- Shapes give widths, depths, patch size, image size, context length and vocabulary. What shapes
  cannot give (the activation, the head width) comes from the caller (open_clip's model), or for a
  file from OpenAI's own marks (its archives' integer fields, FaRL's extra head): then OpenAI's
  `build_model` rule, heads = width / 64 and QuickGELU. A file without such marks is refused with the
  way to name its architecture (`open_clip:<arch>/<file>`), since a guess would be silently wrong.
- CLIP pools the text at the end-of-text token, the largest id in its vocabulary; the converted
  config names that id (`vocab_size - 1`) as `eos_token_id`, which selects the same position.
- Checkpoint extras that are not part of the dual encoder are dropped with a logged note: the
  integers OpenAI's JIT archives carry (`input_resolution`, `context_length`, `vocab_size`) and FaRL's
  masked-image-modelling head (`visual.lm_transformer`, `visual.ln_lm`, `visual.lm_head`,
  `visual.mask_token`), which FaRL uses only in pre-training. Any other unknown key is kept under its
  own name so strict loading reports it.
"""

from __future__ import annotations

import logging
import math
import re

import torch

from ..config import FLIPConfig
from ._common import OPENAI_MEAN, OPENAI_STD, count_layers, describe_keys, require, scalar, temperature_fields

logger = logging.getLogger(__name__)

LAYOUT = "OpenAI-CLIP"
_REQUIRED = (
    "visual.conv1.weight",
    "visual.class_embedding",
    "visual.positional_embedding",
    "visual.proj",
    "token_embedding.weight",
    "positional_embedding",
    "ln_final.weight",
    "text_projection",
    "logit_scale",
)
_METADATA_KEYS = ("input_resolution", "context_length", "vocab_size")
_FARL_MIM_PREFIXES = ("visual.lm_transformer.", "visual.ln_lm.", "visual.lm_head.", "visual.mask_token")

# Whole-key renames (OpenAI name -> FLIP name).
_RENAMES = {
    "visual.conv1.weight": "vision_model.embeddings.patch_embedding.weight",
    "visual.class_embedding": "vision_model.embeddings.class_embedding",
    "visual.positional_embedding": "vision_model.embeddings.position_embedding.weight",
    "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
    "positional_embedding": "text_model.embeddings.position_embedding.weight",
}
# Prefix renames outside the residual blocks.
_PREFIXES = {
    "visual.ln_pre.": "vision_model.pre_layrnorm.",
    "visual.ln_post.": "vision_model.post_layernorm.",
    "ln_final.": "text_model.final_layer_norm.",
}
# (in, out) projection matrices stored as x @ P, i.e. the transpose of a linear's weight.
_PROJECTIONS = {"visual.proj": "vision_proj.weight", "text_projection": "text_proj.weight"}
# Inside a residual block.
_BLOCK_PARTS = {
    "ln_1.": "layer_norm1.",
    "ln_2.": "layer_norm2.",
    "attn.out_proj.": "self_attn.out_proj.",
    "mlp.c_fc.": "mlp.fc1.",
    "mlp.c_proj.": "mlp.fc2.",
}
_BLOCK = re.compile(r"^(visual\.)?transformer\.resblocks\.(\d+)\.(.+)$")


def is_openai_clip(state_dict) -> bool:
    return "visual.conv1.weight" in state_dict and "token_embedding.weight" in state_dict


def _check_vit(state_dict) -> None:
    if "visual.layer1.0.conv1.weight" in state_dict or "visual.attnpool.c_proj.weight" in state_dict:
        raise ValueError("CLIP ResNet image towers (RN50, ...) are not supported; use a ViT CLIP")
    require(state_dict, *_REQUIRED, layout=LAYOUT)


def infer_config(
    state_dict: dict[str, torch.Tensor],
    *,
    vision_heads: int | None = None,
    text_heads: int | None = None,
    hidden_act: str = "quick_gelu",
    layer_norm_eps: float = 1e-5,
) -> FLIPConfig:
    """The FLIPConfig of an OpenAI-CLIP-layout state dict, read from its tensor shapes.

    `vision_heads`/`text_heads` default to width / 64 (OpenAI's rule); `hidden_act` is "quick_gelu"
    for OpenAI and FaRL weights, "gelu" for most open_clip LAION models.
    """
    _check_vit(state_dict)
    vision_width, _, patch_size, _ = state_dict["visual.conv1.weight"].shape
    positions = state_dict["visual.positional_embedding"].shape[0]
    grid = math.isqrt(positions - 1)
    if grid * grid + 1 != positions:
        raise ValueError(f"visual.positional_embedding has {positions} rows, not 1 + a square number of patches")
    vocab_size, text_width = state_dict["token_embedding.weight"].shape
    embed_dim = state_dict["visual.proj"].shape[1]
    if state_dict["text_projection"].shape != (text_width, embed_dim):
        raise ValueError(
            f"text_projection has shape {tuple(state_dict['text_projection'].shape)}, expected "
            f"({text_width}, {embed_dim}) from token_embedding and visual.proj"
        )

    def tower(prefix: str, width: int, heads: int | None) -> dict:
        heads = heads or width // 64
        if heads < 1 or width % heads:
            raise ValueError(f"cannot split width {width} into {heads} attention heads; pass the head count")
        return dict(
            hidden_size=int(width),
            num_hidden_layers=count_layers(state_dict, f"{prefix}transformer.resblocks."),
            num_attention_heads=int(heads),
            intermediate_size=int(state_dict[f"{prefix}transformer.resblocks.0.mlp.c_fc.weight"].shape[0]),
            hidden_act=hidden_act,
            layer_norm_eps=layer_norm_eps,
        )

    vision = dict(
        model_type="clip_vision_model",
        image_size=int(grid * patch_size),
        patch_size=int(patch_size),
        **tower("visual.", vision_width, vision_heads),
    )
    text = dict(
        model_type="clip_text_model",
        vocab_size=int(vocab_size),
        max_position_embeddings=int(state_dict["positional_embedding"].shape[0]),
        pad_token_id=0,
        bos_token_id=int(vocab_size) - 2,
        eos_token_id=int(vocab_size) - 1,
        **tower("", text_width, text_heads),
    )
    return FLIPConfig(
        vision_config=vision,
        text_config=text,
        projection_dim=int(embed_dim),
        projection_bias=False,
        vision_pooling="pooler",
        text_pooling="pooler",
        **temperature_fields(state_dict["logit_scale"].item()),
    )


def _block_key(prefix: str, index: str, rest: str) -> str:
    tower = "vision_model" if prefix else "text_model"
    for old, new in _BLOCK_PARTS.items():
        if rest.startswith(old):
            rest = new + rest[len(old):]
            break
    return f"{tower}.encoder.layers.{index}.{rest}"


def convert_weights(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """OpenAI-CLIP names -> FLIPModel names (q/k/v split out of `in_proj`, projections transposed).

    Unknown keys pass through unchanged, so strict loading names them.
    """
    dropped = [k for k in state_dict if k in _METADATA_KEYS or k.startswith(_FARL_MIM_PREFIXES)]
    if dropped:
        logger.info("OpenAI-CLIP conversion: dropped %d tensors outside the dual encoder (%s)",
                    len(dropped), describe_keys(dropped, shown=3))
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key in dropped:
            continue
        if key in _RENAMES:
            out[_RENAMES[key]] = value
        elif key in _PROJECTIONS:
            out[_PROJECTIONS[key]] = value.t().contiguous()
        elif key == "logit_scale":
            out[key] = scalar(value)
        elif match := _BLOCK.match(key):
            prefix, index, rest = match.groups()
            if rest in ("attn.in_proj_weight", "attn.in_proj_bias"):
                kind = rest.rsplit("_", 1)[1]  # weight | bias
                for name, part in zip(("q", "k", "v"), value.chunk(3, dim=0)):
                    out[_block_key(prefix, index, f"self_attn.{name}_proj.{kind}")] = part.contiguous()
            else:
                out[_block_key(prefix, index, rest)] = value
        else:
            for old, new in _PREFIXES.items():
                if key.startswith(old):
                    out[new + key[len(old):]] = value
                    break
            else:
                out[key] = value
    return out


def processor_settings(config: FLIPConfig) -> dict:
    """CLIP's preprocessing: shortest-side resize + centre crop, OpenAI mean/std, CLIP BPE, 77 tokens."""
    return dict(
        image_size=config.vision_config.image_size,
        image_mean=OPENAI_MEAN,
        image_std=OPENAI_STD,
        resize_mode="shortest",
        resample="bicubic",
        max_length=config.text_config.max_position_embeddings,
        tokenizer="clip",
    )


def convert(state_dict: dict[str, torch.Tensor], **architecture) -> tuple[FLIPConfig, dict[str, torch.Tensor], dict]:
    """(FLIPConfig, FLIP state dict, processor settings) of an OpenAI-CLIP-layout state dict.

    `architecture`: the keyword arguments of `infer_config` (heads, activation, layer-norm eps).
    """
    if "hidden_act" not in architecture:
        architecture = {**architecture, **_openai_architecture(state_dict)}
    config = infer_config(state_dict, **architecture)
    return config, convert_weights(state_dict), processor_settings(config)


def _openai_architecture(state_dict: dict[str, torch.Tensor]) -> dict:
    """The activation of a state dict read from a file, where only OpenAI's own marks tell it.

    GELU and QuickGELU towers have the same tensors, and so do heads of any width: a wrong guess gives
    embeddings that are silently off. OpenAI's archives (their integer fields) and FaRL (its
    masked-image-modelling head) were built by OpenAI's code: QuickGELU, heads of width 64. Anything
    else is refused with the way to name the architecture."""
    _check_vit(state_dict)
    if any(k in state_dict for k in _METADATA_KEYS) or any(k.startswith(_FARL_MIM_PREFIXES) for k in state_dict):
        return {"hidden_act": "quick_gelu"}
    raise ValueError(
        "an OpenAI-CLIP/open_clip state dict does not record its activation (GELU in most LAION and DataComp "
        "models, QuickGELU in OpenAI's) or its attention head width, and a wrong guess gives wrong embeddings "
        "silently; name its open_clip architecture: open_clip:<architecture>/<this file>, e.g. "
        "open_clip:ViT-B-32/model.pt (GELU) or open_clip:ViT-B-32-quickgelu/model.pt (QuickGELU)"
    )
