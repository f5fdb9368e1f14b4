"""Foreign checkpoints -> FLIPModel, by explicit key mappings (one module per format).

    config, state_dict, settings = convert_state_dict(torch.load(path, weights_only=True), source=path)
    model = build_model(config, state_dict, source=path)
    processor = FLIPProcessor.from_settings(**settings)

Formats (module, what it reads):
- `openai_clip`: OpenAI-CLIP-layout state dicts: OpenAI's own, open_clip's CLIP models, FaRL
  (`{"state_dict": ...}`).
- `open_clip`: open_clip models by name (`open_clip:<arch>/<tag>`, `hf-hub:<repo>`), via open_clip.
- `hf_clip`: transformers `CLIPModel` / `SiglipModel` directories (this covers FLIP-80M).
- `flip_official`: the FaceCaption-15M authors' `FLIP-base.pth`.

Design choices:
- Every converter is a pure function from a state dict to `(FLIPConfig, FLIP state dict, processor
  settings)`; the config is read from tensor shapes (and a config file where the format has one).
- The layout is detected from key patterns, never from file names.
- Loading is strict: a converted state dict must fill FLIPModel exactly, or one error lists the
  missing, unexpected and mis-shaped keys. Conversions are proven by parity tests against the source
  implementations (tests/test_convert.py), not assumed.
- Weights are read with safetensors or `torch.load(weights_only=True)` only.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..config import FLIPConfig
from . import flip_official, openai_clip
from ._common import build_model, describe_keys, read_state_dict, unwrap
from .hf_clip import convert_hf_pretrained
from .open_clip import load_open_clip

__all__ = [
    "LAYOUTS",
    "build_model",
    "convert_hf_pretrained",
    "convert_state_dict",
    "detect_layout",
    "load_open_clip",
    "read_state_dict",
]

#: What `detect_layout` can answer.
LAYOUTS = ("flip", "flip_official", "openai_clip", "hf_clip", "hf_siglip")


def detect_layout(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Which format a (flat, unwrapped) state dict is in, from its key names."""
    keys = state_dict.keys()
    if flip_official.is_flip_official(state_dict):
        return "flip_official"
    if openai_clip.is_openai_clip(state_dict):
        return "openai_clip"
    if "visual_projection.weight" in keys and "vision_model.embeddings.class_embedding" in keys:
        return "hf_clip"
    has_towers = any(k.startswith("vision_model.") for k in keys) and any(k.startswith("text_model.") for k in keys)
    if has_towers and ("vision_proj.weight" in keys or "logit_scale" in keys):
        # SiglipModel stores logit_scale with shape (1,), FLIPModel as a 0-d tensor.
        if "vision_model.head.probe" in keys and state_dict["logit_scale"].dim() == 1:
            return "hf_siglip"
        return "flip"
    raise ValueError(
        "unrecognised checkpoint layout (known: FLIP's own, the FaceCaption-15M authors' FLIP-base.pth, "
        f"OpenAI-CLIP/open_clip/FaRL, transformers CLIP/SigLIP); its keys start with: {describe_keys(keys)}"
    )


def convert_state_dict(
    state_dict: Mapping, source: str = "state dict"
) -> tuple[FLIPConfig, dict[str, torch.Tensor], dict]:
    """(FLIPConfig, FLIP state dict, processor settings) of a checkpoint's state dict.

    `state_dict` may still be wrapped (`{"model": ...}`, `{"state_dict": ...}`, `module.` prefixes);
    `source` names it in errors. The settings are keyword arguments of `FLIPProcessor.from_settings`.
    """
    state_dict = unwrap(state_dict, source)
    layout = "checkpoint"
    try:
        layout = detect_layout(state_dict)
        if layout == "flip_official":
            return flip_official.convert(state_dict)
        if layout == "openai_clip":
            return openai_clip.convert(state_dict)
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from None
    except KeyError as err:  # a tensor the layout always has (e.g. layer 0's) is absent
        raise ValueError(f"{source}: a {layout} state dict without {err.args[0]!r}; truncated or edited?") from None
    if layout in ("hf_clip", "hf_siglip"):
        raise ValueError(
            f"{source}: a transformers {'CLIP' if layout == 'hf_clip' else 'SigLIP'} state dict needs its config: "
            "pass the checkpoint's directory (config.json next to the weights) instead of the weights file"
        )
    raise ValueError(
        f"{source}: flip's own weights without their config; load the directory written by flip.save "
        "(config.json next to model.safetensors)"
    )
