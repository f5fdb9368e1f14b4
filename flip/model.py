"""FLIPModel: the FLIP dual encoder as a transformers `PreTrainedModel`.

Design choices:
- Towers are transformers' own modules, picked by the sub-configs' `model_type`: `CLIPVisionModel`
  or `SiglipVisionModel` for images; `BertModel`, `BlipTextModel` (BERT with cross-attention, FLIP's
  text encoder), `CLIPTextModel` or `SiglipTextModel` for text. The attribute names are those of
  transformers' `CLIPModel` (`vision_model.embeddings...`, `text_model.encoder...`), so CLIP and
  SigLIP checkpoints map onto flip's keys almost one to one.
- Both pooled features go through linear projections (`vision_proj`, `text_proj`, FLIP's names) into
  one space; `encode_*` return L2-normalised embeddings, shape (N, D).
- The temperature is learned as `logit_scale = log(1/T)` and clamped to the config's range whenever
  it is read, so no optimiser step can leave it out of range.
- `forward` always returns one `FLIPOutput`. The image-text matching head (FLIP's ITM) is a separate
  method, `match`, because it needs the cross-attending text tower and a different input.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    BertModel,
    BlipTextModel,
    CLIPTextModel,
    CLIPVisionModel,
    PreTrainedModel,
    ResNetModel,
    SiglipTextModel,
    SiglipVisionModel,
)
from transformers.utils import ModelOutput

from .config import FLIPConfig

_VISION_TOWERS = {
    "clip_vision_model": CLIPVisionModel,
    "siglip_vision_model": SiglipVisionModel,
    "resnet": ResNetModel,
}
_TEXT_TOWERS = {
    "bert": BertModel,
    "blip_text_model": BlipTextModel,
    "clip_text_model": CLIPTextModel,
    "siglip_text_model": SiglipTextModel,
}


def _build_vision_tower(config) -> nn.Module:
    return _VISION_TOWERS[config.model_type]._from_config(config)


def _build_text_tower(config, keep_pooler: bool) -> nn.Module:
    cls = _TEXT_TOWERS[config.model_type]
    if cls in (BertModel, BlipTextModel):
        return cls._from_config(config, add_pooling_layer=keep_pooler)
    return cls._from_config(config)


@dataclass
class FLIPOutput(ModelOutput):
    """What `FLIPModel.forward` returns.

    loss: the symmetric contrastive loss, when `return_loss=True`.
    logits_per_image: (N_images, N_texts) scaled cosine similarities (plus the logit bias if any).
    logits_per_text: its transpose.
    image_embeds / text_embeds: L2-normalised embeddings, (N, D).
    """

    loss: torch.Tensor | None = None
    logits_per_image: torch.Tensor | None = None
    logits_per_text: torch.Tensor | None = None
    image_embeds: torch.Tensor | None = None
    text_embeds: torch.Tensor | None = None


class FLIPPreTrainedModel(PreTrainedModel):
    config_class = FLIPConfig
    base_model_prefix = "flip"
    main_input_name = "pixel_values"
    input_modalities = ("image", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = ["CLIPEncoderLayer", "SiglipEncoderLayer", "BertLayer", "BlipTextLayer"]

    @torch.no_grad()
    def _init_weights(self, module):
        """BERT-style initialisation (normal(0, initializer_range), unit norms) for every module.

        The towers are already initialised by their own classes when built; this covers flip's heads
        and anything transformers asks to (re)initialise, such as weights absent from a checkpoint.
        """
        std = self.config.initializer_range
        if isinstance(module, FLIPModel):
            module.logit_scale.fill_(math.log(1.0 / self.config.temperature_init))
            if module.logit_bias is not None:
                module.logit_bias.fill_(self.config.logit_bias_init)
        elif isinstance(module, nn.Linear):
            module.weight.normal_(0.0, std)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.normal_(0.0, std)
        elif isinstance(module, nn.LayerNorm):
            module.weight.fill_(1.0)
            module.bias.zero_()
        elif hasattr(module, "class_embedding") and isinstance(module.class_embedding, nn.Parameter):
            module.class_embedding.normal_(0.0, std)


class FLIPModel(FLIPPreTrainedModel):
    """The FLIP dual encoder. See the module docstring for the design."""

    def __init__(self, config: FLIPConfig):
        super().__init__(config)
        self.vision_model = _build_vision_tower(config.vision_config)
        self.text_model = _build_text_tower(config.text_config, keep_pooler=config.text_pooling == "pooler")
        vision_width, text_width = config.vision_width, config.text_config.hidden_size
        if config.projection_dim is None:
            self.vision_proj, self.text_proj = nn.Identity(), nn.Identity()
        else:
            self.vision_proj = nn.Linear(vision_width, config.projection_dim, bias=config.projection_bias)
            self.text_proj = nn.Linear(text_width, config.projection_dim, bias=config.projection_bias)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / config.temperature_init)))
        self.logit_bias = (
            nn.Parameter(torch.tensor(float(config.logit_bias_init))) if config.logit_bias_init is not None else None
        )
        self.itm_head = nn.Linear(text_width, 2) if config.use_itm_head else None
        self.post_init()

    # -- temperature -------------------------------------------------------------------------------
    @property
    def temperature(self) -> torch.Tensor:
        """The clamped softmax temperature, 1 / exp(logit_scale), for reading (no gradient)."""
        return 1.0 / self.scale().detach()

    def scale(self) -> torch.Tensor:
        """exp(logit_scale), clamped to [1/temperature_max, 1/temperature_min]."""
        lo, hi = -math.log(self.config.temperature_max), -math.log(self.config.temperature_min)
        return self.logit_scale.clamp(lo, hi).exp()

    # -- encoders ----------------------------------------------------------------------------------
    def image_hidden_states(self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool = False):
        """The image tower's raw output (`last_hidden_state` (N, L, W) and `pooler_output` (N, W))."""
        if not pixel_values.is_floating_point():  # the tower would cast 0-255 values and answer garbage
            raise ValueError(
                f"pixel_values are {pixel_values.dtype}, not normalised floats: use processor.images(...), or "
                "processor.normalize(pixels) for the uint8 output of processor.pixels"
            )
        # a convolutional tower takes any size as it is; a ViT interpolates its position embeddings
        convolutional = self.config.vision_config.model_type == "resnet"
        kwargs = {"interpolate_pos_encoding": True} if interpolate_pos_encoding and not convolutional else {}
        return self.vision_model(pixel_values=pixel_values, **kwargs)

    def image_features_and_tokens(self, pixel_values: torch.Tensor, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        """Projected, unnormalised image features (N, D) and the image tokens (N, L, W) that the ITM
        text tower cross-attends to.

        The tokens are layer-normed as FLIP's authors feed them: CLIP's `last_hidden_state` lacks
        the post-layernorm (transformers applies it to the pooled CLS only), so it is applied here;
        SigLIP's `last_hidden_state` already has it. A ResNet's tokens are the cells of its last
        feature map, (N, H*W, C), and its pooled output their average.
        """
        out = self.image_hidden_states(pixel_values, **kwargs)
        if out.last_hidden_state.ndim == 4:  # a convolutional tower: (N, C, H, W) and (N, C, 1, 1)
            return self.vision_proj(out.pooler_output.flatten(1)), out.last_hidden_state.flatten(2).transpose(1, 2)
        pooled = out.pooler_output if self.config.vision_pooling == "pooler" else out.last_hidden_state[:, 0]
        tokens = out.last_hidden_state
        if self.config.vision_config.model_type == "clip_vision_model":
            tokens = self.vision_model.post_layernorm(tokens)
        return self.vision_proj(pooled), tokens

    def get_image_features(self, pixel_values: torch.Tensor, **kwargs) -> torch.Tensor:
        """Projected, unnormalised image features, (N, D)."""
        return self.image_features_and_tokens(pixel_values, **kwargs)[0]

    def get_text_features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Projected, unnormalised text features, (N, D)."""
        return self.text_proj(self.pool_text(input_ids, attention_mask, position_ids))

    def pool_text(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The text tower's pooled output before the projection, (N, W): what a trainer can compute
        once and reuse when the tower is locked."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        out = self.text_model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)
        pooling = self.config.text_pooling
        if pooling == "pooler":
            return out.pooler_output
        if pooling == "cls":
            return out.last_hidden_state[:, 0]
        mask = attention_mask.unsqueeze(-1).to(out.last_hidden_state.dtype)  # masked mean
        return (out.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    def encode_image(self, pixel_values: torch.Tensor, normalize: bool = True, **kwargs) -> torch.Tensor:
        """Image embeddings, (N, D), L2-normalised unless `normalize=False`."""
        feats = self.get_image_features(pixel_values, **kwargs)
        return F.normalize(feats, dim=-1) if normalize else feats

    def encode_text(
        self,
        input_ids: torch.Tensor | Mapping,
        attention_mask: torch.Tensor | None = None,
        normalize: bool = True,
        **kwargs,
    ) -> torch.Tensor:
        """Text embeddings, (N, D), L2-normalised unless `normalize=False`.

        `input_ids` may also be the processor's whole output (a mapping with `input_ids` and
        `attention_mask`), so `model.encode_text(processor.texts([...]))` works.
        """
        if isinstance(input_ids, Mapping):
            input_ids, attention_mask = input_ids["input_ids"], input_ids.get("attention_mask", attention_mask)
        feats = self.get_text_features(input_ids, attention_mask, **kwargs)
        return F.normalize(feats, dim=-1) if normalize else feats

    def logits(self, image_embeds: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
        """(N_images, N_texts) logits from normalised embeddings: scale * cosine (+ bias)."""
        logits = self.scale() * image_embeds @ text_embeds.t()
        return logits + self.logit_bias if self.logit_bias is not None else logits

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        return_loss: bool = False,
        **kwargs,
    ) -> FLIPOutput:
        """Embeddings of whichever inputs are given; logits (and the contrastive loss) when both are."""
        image_embeds = self.encode_image(pixel_values) if pixel_values is not None else None
        text_embeds = self.encode_text(input_ids, attention_mask) if input_ids is not None else None
        if image_embeds is None or text_embeds is None:
            if return_loss:
                raise ValueError("FLIPModel.forward(return_loss=True) needs both pixel_values and input_ids")
            return FLIPOutput(image_embeds=image_embeds, text_embeds=text_embeds)
        logits_per_image = self.logits(image_embeds, text_embeds)
        loss = None
        if return_loss:
            from .losses import contrastive_loss

            loss = contrastive_loss(logits_per_image)
        return FLIPOutput(
            loss=loss,
            logits_per_image=logits_per_image,
            logits_per_text=logits_per_image.t(),
            image_embeds=image_embeds,
            text_embeds=text_embeds,
        )

    def match(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_hidden_states: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """FLIP's image-text matching logits, (N, 2) with column 1 = "matches".

        The text (whose first token the processor's `itm_texts` sets to the [ENC] token, as BLIP does)
        cross-attends to the image tokens (N, L, W) of `image_features_and_tokens`; pass them as
        `image_hidden_states` to reuse them.
        """
        if self.itm_head is None:
            raise ValueError("this FLIPModel has no image-text matching head (config.use_itm_head=False)")
        if image_hidden_states is None:
            if pixel_values is None:
                raise ValueError("FLIPModel.match needs pixel_values or image_hidden_states")
            image_hidden_states = self.image_features_and_tokens(pixel_values)[1]
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        image_mask = torch.ones(image_hidden_states.shape[:-1], dtype=torch.long, device=image_hidden_states.device)
        out = self.text_model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            encoder_hidden_states=image_hidden_states,
            encoder_attention_mask=image_mask,
        )
        return self.itm_head(out.last_hidden_state[:, 0])


def _register_auto_classes() -> None:
    """Make `AutoConfig` / `AutoModel` know `model_type="flip"` (idempotent)."""
    from transformers import AutoConfig, AutoModel

    try:
        AutoConfig.register(FLIPConfig.model_type, FLIPConfig)
        AutoModel.register(FLIPConfig, FLIPModel)
    except ValueError:  # already registered
        pass


_register_auto_classes()
