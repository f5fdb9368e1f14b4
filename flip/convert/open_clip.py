"""open_clip models -> FLIPModel.

    load_open_clip("open_clip:ViT-B-16/openai")           # architecture / pretrained tag
    load_open_clip("open_clip:ViT-B-16//data/my_ckpt.pt")  # architecture / local checkpoint file
    load_open_clip("hf-hub:laion/CLIP-ViT-B-16-laion2B-s34B-b88K")

Design choices:
- open_clip builds the model (its own name resolution, downloads and weights-only loading); flip then
  converts the live model. Its `CLIP` class keeps OpenAI's state-dict layout, so the key mapping is
  `openai_clip`'s; what the weights cannot tell (heads, QuickGELU or GELU, layer-norm eps) is read
  from the modules themselves.
- Only open_clip's plain CLIP (built-in ViT + causal text transformer, CLS-token and end-of-text
  pooling) maps onto transformers' CLIP towers. Other variants (timm or HF towers, attentional
  pooling, layer scale, average pooling, CoCa, SigLIP-style towers) are refused with one error
  naming what is unsupported, never converted approximately.
- Preprocessing comes from open_clip's own per-model settings (image size, mean, std, resize mode).
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from ..config import FLIPConfig
from . import openai_clip
from ._common import build_model

logger = logging.getLogger(__name__)

PREFIX = "open_clip:"
_SCHEMAS = ("hf-hub:", "local-dir:")


def parse_name(name: str) -> tuple[str, str | None]:
    """`open_clip:<arch>[/<tag or file>]` or `hf-hub:<repo>` -> (open_clip model name, pretrained)."""
    if name.startswith(PREFIX):
        rest = name[len(PREFIX):]
        if rest.startswith(_SCHEMAS):
            return rest, None
        arch, _, pretrained = rest.partition("/")
        if not arch:
            raise ValueError(f"{name!r}: expected open_clip:<architecture>/<pretrained tag or checkpoint file>")
        return arch, pretrained or None
    if name.startswith(_SCHEMAS):
        return name, None
    raise ValueError(f"{name!r} is not an open_clip model name (open_clip:<arch>/<tag>, hf-hub:<repo>)")


def _activation(module: nn.Module) -> str:
    from open_clip.transformer import QuickGELU

    if isinstance(module, QuickGELU):
        return "quick_gelu"
    if isinstance(module, nn.GELU):
        return "gelu" if module.approximate == "none" else "gelu_pytorch_tanh"
    raise ValueError(f"activation {type(module).__name__} has no transformers CLIP equivalent")


def architecture(model: nn.Module) -> dict:
    """What `openai_clip.infer_config` cannot read from shapes, read from a live open_clip CLIP.

    Raises one ValueError listing every feature of the model that FLIP's CLIP towers lack.
    """
    from open_clip.model import CLIP
    from open_clip.transformer import ResidualAttentionBlock, VisionTransformer

    if type(model) is not CLIP:
        raise ValueError(
            f"open_clip model class {type(model).__name__} is not supported; flip converts open_clip's CLIP "
            "with its built-in ViT and text transformer"
        )
    visual = model.visual
    if not isinstance(visual, VisionTransformer):
        raise ValueError(f"open_clip image tower {type(visual).__name__} is not supported (ViT only)")
    blocks = list(visual.transformer.resblocks) + list(model.transformer.resblocks)
    problems = []
    if visual.attn_pool is not None:
        problems.append("attentional pooling")
    if visual.pool_type != "tok":
        problems.append(f"image pool_type {visual.pool_type!r}")
    if visual.final_ln_after_pool:
        problems.append("final_ln_after_pool")
    if not isinstance(visual.ln_pre, nn.LayerNorm):
        problems.append("no ln_pre")
    if model.text_pool_type != "argmax":
        problems.append(f"text pool_type {model.text_pool_type!r}")
    if model.attn_mask is None:
        problems.append("text without causal mask")
    if not isinstance(model.text_projection, nn.Parameter):
        problems.append("linear text projection")
    if any(type(b) is not ResidualAttentionBlock or not isinstance(b.ls_1, nn.Identity) for b in blocks):
        problems.append("custom residual blocks or layer scale")
    eps = {visual.ln_pre.eps, model.ln_final.eps} if isinstance(visual.ln_pre, nn.LayerNorm) else set()
    if len(eps) > 1:
        problems.append(f"different layer-norm eps per tower {sorted(eps)}")
    if problems:
        raise ValueError("open_clip model features FLIP's CLIP towers do not have: " + ", ".join(problems))
    return dict(
        vision_heads=visual.transformer.resblocks[0].attn.num_heads,
        text_heads=model.transformer.resblocks[0].attn.num_heads,
        hidden_act=_activation(blocks[0].mlp.gelu),
        layer_norm_eps=eps.pop(),
    )


def processor_settings(model: nn.Module, config: FLIPConfig) -> dict:
    """FLIPProcessor settings from open_clip's preprocessing config of `model`."""
    import open_clip

    cfg = open_clip.get_model_preprocess_cfg(model)
    size = cfg.get("size", config.vision_config.image_size)
    if isinstance(size, (tuple, list)):
        if len(set(size)) != 1:
            raise ValueError(f"non-square open_clip image size {tuple(size)} is not supported")
        size = size[0]
    resize_mode = cfg.get("resize_mode", "shortest")
    if resize_mode not in ("shortest", "squash"):
        raise ValueError(f"open_clip resize_mode {resize_mode!r} is not supported (shortest, squash)")
    settings = openai_clip.processor_settings(config)
    settings.update(image_size=int(size), resize_mode=resize_mode, resample=cfg.get("interpolation", "bicubic"))
    for key in ("mean", "std"):
        if key in cfg:
            settings[f"image_{key}"] = tuple(cfg[key])
    return settings


def convert_model(model: nn.Module) -> tuple[FLIPConfig, dict[str, torch.Tensor], dict]:
    """(FLIPConfig, FLIP state dict, processor settings) of a live open_clip CLIP model."""
    state_dict = {k: v.detach() for k, v in model.state_dict().items()}
    config, state_dict, _ = openai_clip.convert(state_dict, **architecture(model))
    return config, state_dict, processor_settings(model, config)


def load_open_clip(name: str):
    """`(FLIPModel, processor settings)` of an open_clip model name (see the module docstring)."""
    try:
        import open_clip
    except ImportError:
        raise ImportError("loading open_clip models needs open_clip: pip install open_clip_torch") from None

    model_name, pretrained = parse_name(name)
    if pretrained is None and not model_name.startswith(_SCHEMAS):
        logger.warning("%s: no pretrained tag or file given, so the weights are RANDOM", name)
    try:
        model = open_clip.create_model(model_name, pretrained=pretrained, device="cpu")
    except Exception as err:  # unknown name, download failure, bad file: one message naming the model
        raise ValueError(f"{name}: open_clip could not create this model ({type(err).__name__}: {err})") from None
    try:
        config, state_dict, settings = convert_model(model.float().eval())
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from None
    return build_model(config, state_dict, source=name), settings
