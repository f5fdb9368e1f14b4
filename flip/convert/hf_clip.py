"""transformers `CLIPModel` and `SiglipModel` checkpoints -> FLIPModel (this covers FLIP-80M).

Design choices:
- FLIPModel's towers *are* transformers' `CLIPVisionModel`/`CLIPTextModel` and `SiglipVisionModel`/
  `SiglipTextModel` under the same attribute names, so the mapping is the identity except for the
  heads: CLIP's `visual_projection`/`text_projection` become `vision_proj`/`text_proj` (bias-free),
  and SigLIP's scalars `logit_scale`/`logit_bias` (shape (1,)) become 0-d tensors.
- CLIP pools with its pooler outputs (post-layernormed CLS; end-of-text token) and projects;
  SigLIP's towers end in their own heads (attention pooling; a linear on the last token), so FLIP's
  projections are identities (`projection_dim=None`) and the sigmoid loss's logit bias is kept.
- The tower configs are the checkpoint's own (read by transformers from config.json), so activation,
  heads and eps are never guessed. The temperature range is widened to hold the checkpoint's
  `logit_scale`, so converted logits equal the source's.
- Processor settings come from the directory's preprocessor_config.json (CLIP: shortest-side resize
  + centre crop; SigLIP: squash to a square), the tokenizer is the directory's own (CLIP's BPE when
  the directory has none), and the text length is the tower's position count (77 for CLIP; 64 for
  SigLIP, which pads every text to full length and attends to the padding).
- Old checkpoints carry `*.embeddings.position_ids` buffers; they are recomputed, so dropped.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..config import FLIPConfig
from ._common import OPENAI_MEAN, OPENAI_STD, build_model, describe_keys, read_state_dict, scalar, temperature_fields

MODEL_TYPES = ("clip", "siglip")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "spiece.model")
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
#: PIL's resampling filter numbers, as image processors save them.
_PIL_RESAMPLE = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}
_SHARD_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def flip_config(hf_config, state_dict: dict[str, torch.Tensor]) -> FLIPConfig:
    """The FLIPConfig holding a transformers `CLIPConfig` or `SiglipConfig` (plus its logit scale)."""
    model_type = hf_config.model_type
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type {model_type!r} is not a transformers CLIP or SigLIP model ({MODEL_TYPES})")
    towers = dict(vision_config=hf_config.vision_config.to_dict(), text_config=hf_config.text_config.to_dict())
    temperature = temperature_fields(state_dict["logit_scale"].item())
    if model_type == "clip":
        return FLIPConfig(
            **towers,
            projection_dim=hf_config.projection_dim,
            projection_bias=False,
            vision_pooling="pooler",
            text_pooling="pooler",
            **temperature,
        )
    text_out = hf_config.text_config.projection_size
    if text_out != hf_config.vision_config.hidden_size:
        raise ValueError(
            f"SigLIP text head size {text_out} differs from the image width {hf_config.vision_config.hidden_size}"
        )
    return FLIPConfig(
        **towers,
        projection_dim=None,
        vision_pooling="pooler",
        text_pooling="pooler",
        logit_bias_init=state_dict["logit_bias"].item(),
        **temperature,
    )


def convert_weights(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CLIPModel / SiglipModel names -> FLIPModel names (near-identity; unknown keys pass through)."""
    renames = {"visual_projection.weight": "vision_proj.weight", "text_projection.weight": "text_proj.weight"}
    out = {}
    for key, value in state_dict.items():
        if key.endswith("embeddings.position_ids"):
            continue
        if key in ("logit_scale", "logit_bias"):
            value = scalar(value)
        out[renames.get(key, key)] = value
    return out


def processor_settings(path: Path | None, config: FLIPConfig, model_type: str) -> dict:
    """FLIPProcessor settings from the checkpoint directory's preprocessor_config.json.

    Without one, the family's published defaults: CLIP (OpenAI mean/std, crop) or SigLIP (0.5/0.5,
    squash).
    """
    image = _read_image_processor(path) if path is not None else {}
    clip = model_type == "clip"
    crop = image.get("do_center_crop", clip)
    size = _side(image.get("crop_size") if crop else image.get("size"))
    resize = _side(image.get("size")) if crop else None  # CLIP: shortest_edge, then a crop_size crop
    has_tokenizer = path is not None and any((path / name).is_file() for name in _TOKENIZER_FILES)
    settings = dict(
        image_size=int(size or config.vision_config.image_size),
        image_mean=tuple(image.get("image_mean", OPENAI_MEAN if clip else (0.5, 0.5, 0.5))),
        image_std=tuple(image.get("image_std", OPENAI_STD if clip else (0.5, 0.5, 0.5))),
        resize_mode="shortest" if crop else "squash",
        resample=_PIL_RESAMPLE.get(image.get("resample"), "bicubic"),
        max_length=config.text_config.max_position_embeddings,
        tokenizer="clip" if clip and not has_tokenizer else (str(path) if path is not None else None),
    )
    if resize is not None and size is not None and resize != size:
        if resize < size:
            raise ValueError(f"{path}: size.shortest_edge {resize} is smaller than crop_size {size}, which flip "
                             "cannot reproduce (the crop would be padded)")
        settings["resize_size"] = int(resize)
    if not clip:  # SigLIP was trained on texts padded to full length, attending to the padding
        settings.update(padding="max_length", return_attention_mask=False)
    return settings


def _side(size) -> int | None:
    """A transformers image processor's size entry ({"shortest_edge": S}, {"height": H, ...} or S) as one side."""
    if isinstance(size, dict):
        size = size.get("height") or size.get("shortest_edge")
    return int(size) if isinstance(size, (int, float)) and not isinstance(size, bool) else None


def _read_image_processor(path: Path) -> dict:
    for name in ("preprocessor_config.json", "processor_config.json"):
        file = path / name
        if file.is_file():
            try:
                data = json.loads(file.read_text())
            except json.JSONDecodeError as err:
                raise ValueError(f"{file}: not valid JSON ({err})") from None
            return data.get("image_processor", data)
    return {}


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The state dict of a transformers checkpoint directory (single file or shards), read safely."""
    for name in _WEIGHT_FILES:
        if (path / name).is_file():
            return read_state_dict(path / name)
    for name in _SHARD_INDEXES:
        index = path / name
        if index.is_file():
            try:
                shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            except (json.JSONDecodeError, KeyError) as err:
                raise ValueError(f"{index}: not a valid shard index ({err})") from None
            state_dict = {}
            for shard in shards:
                state_dict.update(read_state_dict(path / shard))
            return state_dict
    raise FileNotFoundError(f"{path}: no weights ({', '.join(_WEIGHT_FILES + _SHARD_INDEXES)})")


def convert(
    hf_config, state_dict: dict[str, torch.Tensor], path: Path | None = None
) -> tuple[FLIPConfig, dict[str, torch.Tensor], dict]:
    """(FLIPConfig, FLIP state dict, processor settings) of a CLIPModel / SiglipModel state dict."""
    needed = ["logit_scale"] + (["logit_bias"] if hf_config.model_type == "siglip" else [])
    if missing := [k for k in needed if k not in state_dict]:
        raise ValueError(f"not a complete {hf_config.model_type} state dict: missing {describe_keys(missing)}")
    config = flip_config(hf_config, state_dict)
    return config, convert_weights(state_dict), processor_settings(path, config, hf_config.model_type)


def convert_hf_pretrained(path: str | Path):
    """`(FLIPModel, processor settings)` of a transformers CLIPModel or SiglipModel directory."""
    from transformers import AutoConfig

    path = Path(path)
    config_file = path / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{path}: no config.json (not a transformers checkpoint directory)")
    try:
        model_type = json.loads(config_file.read_text()).get("model_type")
    except json.JSONDecodeError as err:
        raise ValueError(f"{config_file}: not valid JSON ({err})") from None
    if model_type not in MODEL_TYPES:
        raise ValueError(f"{config_file}: model_type {model_type!r} is not a CLIP or SigLIP model {MODEL_TYPES}")
    hf_config = AutoConfig.from_pretrained(path)
    try:
        config, state_dict, settings = convert(hf_config, read_weights(path), path)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    return build_model(config, state_dict, source=str(path)), settings
