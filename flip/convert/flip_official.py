"""The FaceCaption-15M authors' `FLIP-base.pth` -> FLIPModel.

The file (Hub repo `OpenFace-CQUPT/FLIP`, `ckpt/FLIP-base.pth`) is a torch pickle
`{"model": state_dict, "optimizer", "config", "epoch"}` written by their BLIP-derived pre-training
code (repository `ddw2AIGROUP2CQUPT/FLIP`, `models/fflip_pretrain.py`, `models/fflip.py`,
`models/mm.py`). Its state dict holds:
- `visual_encoder.vision_model.*`: a CLIP ViT in transformers' CLIP-vision names, except that the
  final layer norm is spelled `post_layrnorm`, plus a persistent `embeddings.position_ids` buffer;
- `text_encoder.*`: BERT in BLIP's `med.py` names (no token-type embeddings; a `crossattention`
  block per layer; no pooler), which transformers' `BlipTextModel` reproduces name for name;
- `vision_proj.*`, `text_proj.*` (256-d, with bias), `itm_head.*` (2-way) and `temp`;
- training state: momentum copies (`visual_encoder_m.*`, `text_encoder_m.*`, `vision_proj_m.*`,
  `text_proj_m.*`) and the feature queues (`image_queue`, `text_queue`, `idx_queue`, `ptr_queue`).

What their forward computes, and how FLIPModel reproduces it:
- Their vision transformer applies the post-layernorm to the WHOLE last hidden state and the image
  feature is `vision_proj(post_layernorm(h)[:, 0])`. That is transformers' CLIP `pooler_output`, so
  the converted config uses `vision_pooling="pooler"` (not "cls", which skips the layer norm).
  The image-text-matching head cross-attends to all post-layernormed tokens.
- The text feature is `text_proj(last_hidden_state[:, 0])` of the text encoder run in mode "text",
  i.e. self-attention only, bidirectional: `text_pooling="cls"` with a `blip_text_model` tower.
- ITM: the caption's first token replaced by [ENC], cross-attention to the image tokens, `itm_head`
  on the first output token; FLIPModel.match.
- The temperature is `temp` (clamped to [0.001, 0.5] in training): `logit_scale = log(1 / temp)`.
- Architecture from shapes; what shapes cannot give is the authors' base setting: heads = width/64
  on both towers, QuickGELU and eps 1e-5 in the image tower (their VisionConfig defaults, the OpenAI
  ViT-B/16 they start from), GELU and eps 1e-12 in the text tower (bert-base-uncased).
- Preprocessing as in their `create_dataset`: bicubic resize to a square with no crop ("squash"),
  OpenAI mean/std; text: bert-base-uncased plus [DEC]/[ENC] ("bert-blip"), 65 tokens.
- Training state is dropped with a logged count; position-id buffers are recomputed, so dropped.
  Anything else unknown is kept under its name so strict loading reports it.
"""

from __future__ import annotations

import logging
import math

import torch

from ..config import FLIPConfig
from ._common import OPENAI_MEAN, OPENAI_STD, count_layers, require, temperature_fields

logger = logging.getLogger(__name__)

LAYOUT = "FLIP-base.pth (FaceCaption-15M authors')"
VISION = "visual_encoder.vision_model."
TEXT = "text_encoder."
MOMENTUM_PREFIXES = ("visual_encoder_m.", "text_encoder_m.", "vision_proj_m.", "text_proj_m.")
QUEUE_KEYS = ("image_queue", "text_queue", "idx_queue", "ptr_queue")
_REQUIRED = (
    VISION + "embeddings.class_embedding",
    VISION + "embeddings.patch_embedding.weight",
    VISION + "embeddings.position_embedding.weight",
    TEXT + "embeddings.word_embeddings.weight",
    TEXT + "embeddings.position_embeddings.weight",
    "vision_proj.weight",
    "text_proj.weight",
    "temp",
)


def is_flip_official(state_dict) -> bool:
    """The authors' vision tower, with their temperature or their text encoder (a checkpoint missing one
    of them is still this layout, so the error can name what is missing)."""
    return f"{VISION}embeddings.patch_embedding.weight" in state_dict and (
        "temp" in state_dict or any(k.startswith(TEXT) for k in state_dict))


def _heads(width: int, heads: int | None) -> int:
    heads = heads or width // 64
    if heads < 1 or width % heads:
        raise ValueError(f"cannot split width {width} into {heads} attention heads; pass the head count")
    return int(heads)


def infer_config(
    state_dict: dict[str, torch.Tensor], *, vision_heads: int | None = None, text_heads: int | None = None
) -> FLIPConfig:
    """The FLIPConfig of an authors' state dict, from its shapes (see the module docstring)."""
    require(state_dict, *_REQUIRED, layout=LAYOUT)
    width, _, patch_size, _ = state_dict[VISION + "embeddings.patch_embedding.weight"].shape
    positions = state_dict[VISION + "embeddings.position_embedding.weight"].shape[0]
    grid = math.isqrt(positions - 1)
    if grid * grid + 1 != positions:
        raise ValueError(f"{VISION}embeddings.position_embedding has {positions} rows, not 1 + a square")
    vision = dict(
        model_type="clip_vision_model",
        hidden_size=int(width),
        intermediate_size=int(state_dict[VISION + "encoder.layers.0.mlp.fc1.weight"].shape[0]),
        num_hidden_layers=count_layers(state_dict, VISION + "encoder.layers."),
        num_attention_heads=_heads(width, vision_heads),
        image_size=int(grid * patch_size),
        patch_size=int(patch_size),
        hidden_act="quick_gelu",
        layer_norm_eps=1e-5,
    )
    vocab_size, text_width = state_dict[TEXT + "embeddings.word_embeddings.weight"].shape
    cross_key = TEXT + "encoder.layer.0.crossattention.self.key.weight"
    has_cross = cross_key in state_dict
    text = dict(
        model_type="blip_text_model",
        vocab_size=int(vocab_size),
        hidden_size=int(text_width),
        intermediate_size=int(state_dict[TEXT + "encoder.layer.0.intermediate.dense.weight"].shape[0]),
        num_hidden_layers=count_layers(state_dict, TEXT + "encoder.layer."),
        num_attention_heads=_heads(text_width, text_heads),
        max_position_embeddings=int(state_dict[TEXT + "embeddings.position_embeddings.weight"].shape[0]),
        encoder_hidden_size=int(state_dict[cross_key].shape[1]) if has_cross else int(width),
        is_decoder=has_cross,  # BlipTextModel builds its cross-attention layers only when is_decoder
        hidden_act="gelu",
        layer_norm_eps=1e-12,
        pad_token_id=0,
        # bert-base-uncased + [DEC] (30522) + [ENC] (30523); only meaningful at the full vocabulary.
        bos_token_id=30522 if vocab_size > 30522 else None,
        sep_token_id=102 if vocab_size > 102 else None,
    )
    if "itm_head.weight" in state_dict and not has_cross:
        raise ValueError("the state dict has an itm_head but its text encoder has no cross-attention layers")
    return FLIPConfig(
        vision_config=vision,
        text_config=text,
        projection_dim=int(state_dict["vision_proj.weight"].shape[0]),
        projection_bias="vision_proj.bias" in state_dict,
        vision_pooling="pooler",
        text_pooling="cls",
        use_itm_head="itm_head.weight" in state_dict,
        **temperature_fields(-math.log(state_dict["temp"].item())),
    )


def convert_weights(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The authors' names -> FLIPModel names; momentum encoders, queues and position ids dropped."""
    out: dict[str, torch.Tensor] = {}
    momentum = queues = 0
    for key, value in state_dict.items():
        if key.startswith(MOMENTUM_PREFIXES):
            momentum += 1
        elif key in QUEUE_KEYS:
            queues += 1
        elif key.endswith("embeddings.position_ids"):
            continue
        elif key == "temp":
            out["logit_scale"] = -torch.log(value.reshape(()).float())
        elif key.startswith(VISION):
            rest = key[len(VISION):]
            if rest.startswith("post_layrnorm."):
                rest = "post_layernorm." + rest[len("post_layrnorm."):]
            out["vision_model." + rest] = value
        elif key.startswith(TEXT):
            out["text_model." + key[len(TEXT):]] = value
        else:
            out[key] = value
    logger.info(
        "FLIP-base.pth conversion: dropped %d momentum-encoder tensors and %d queue buffers (training state only)",
        momentum,
        queues,
    )
    return out


def processor_settings(config: FLIPConfig) -> dict:
    return dict(
        image_size=config.vision_config.image_size,
        image_mean=OPENAI_MEAN,
        image_std=OPENAI_STD,
        resize_mode="squash",
        resample="bicubic",
        max_length=65,
        tokenizer="bert-blip",
    )


def convert(state_dict: dict[str, torch.Tensor], **heads) -> tuple[FLIPConfig, dict[str, torch.Tensor], dict]:
    """(FLIPConfig, FLIP state dict, processor settings) of the authors' state dict (`checkpoint["model"]`).

    `heads`: `vision_heads` / `text_heads` when not width / 64.
    """
    config = infer_config(state_dict, **heads)
    return config, convert_weights(state_dict), processor_settings(config)
