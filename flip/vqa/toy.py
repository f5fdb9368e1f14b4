"""A toy vision-language model made the way the large ones are, from flip's own parts.

LLaVA's recipe (Liu et al., 2023), at toy scale and fully offline:
- Vision encoder: a FLIP image tower, taken as it is. `FLIPModel.vision_model` *is* a transformers
  `CLIPVisionModel`, so it drops into `LlavaForConditionalGeneration` as its `vision_tower` with
  the same weight names. Features come from the second-to-last layer, every token kept
  (``vision_feature_select_strategy="full"``: CLS plus patches), as LLaVA reads CLIP.
- Language model: a small `LlamaForCausalLM`, random, with a sentencepiece tokenizer trained on the
  synthetic world's captions, questions and answers (`flip.vqa.tokenizer`).
- Projector: LLaVA-1.5's two-layer GELU MLP from the image width to the language width.
- The processor is transformers' `LlavaProcessor`: a `CLIPImageProcessor` set to the FLIP
  processor's size, crop and normalisation, the tokenizer, and a USER/ASSISTANT chat template.

Pretraining the result on captions makes the "base" model; `flip.train.vqa_lora` then adapts it
to questions with LoRA, exactly as it does a PaliGemma or SmolVLM from the Hub.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

#: LLaVA-1.5's single-turn format; the image token comes first in the user's turn.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}USER: "
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<image>\n"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %} "
    "{% else %}ASSISTANT: {% for item in message['content'] %}{% if item['type'] == 'text' %}{{ item['text'] }}"
    "{% endif %}{% endfor %}</s>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
IMAGE_TOKEN = "<image>"
#: The template's own words, for the tokenizer's corpus (so they are whole pieces, not bytes).
CHAT_TEMPLATE_WORDS = ("USER:", "ASSISTANT:", "USER: ASSISTANT:")


@dataclass
class ToyVLMConfig:
    """The language model and how it reads the image tower. Round-trips through `asdict`."""

    hidden_size: int = 256  # width of the language model
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 768  # SwiGLU inner width
    max_position_embeddings: int = 256  # image tokens + prompt + answer must fit
    vocab_size: int = 1024  # sentencepiece pieces to train (256 of them are byte fallbacks)
    vision_feature_layer: int = -2  # which hidden state of the image tower feeds the projector
    vision_feature_select_strategy: str = "full"  # "full": CLS + patches; "default": patches only

    def __post_init__(self):
        for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                     "max_position_embeddings", "vocab_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"ToyVLMConfig.{name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"ToyVLMConfig.hidden_size={self.hidden_size} must be divisible by "
                             f"num_attention_heads={self.num_attention_heads}")
        if self.vision_feature_select_strategy not in ("full", "default"):
            raise ValueError("ToyVLMConfig.vision_feature_select_strategy must be 'full' or 'default', "
                             f"got {self.vision_feature_select_strategy!r}")

    def to_dict(self) -> dict:
        return asdict(self)


def image_processor_for(flip_processor):
    """A `CLIPImageProcessor` that turns an image into the same pixels as `flip_processor.images`."""
    from transformers import CLIPImageProcessor

    s = flip_processor.settings
    size = s.image_size
    crop = s.resize_mode == "shortest"
    return CLIPImageProcessor(
        size={"shortest_edge": size} if crop else {"height": size, "width": size},
        crop_size={"height": size, "width": size}, do_center_crop=crop, resample=_PIL_RESAMPLE[s.resample],
        image_mean=list(s.image_mean), image_std=list(s.image_std), do_convert_rgb=True,
    )


_PIL_RESAMPLE = {"nearest": 0, "lanczos": 1, "bilinear": 2, "bicubic": 3, "box": 4, "hamming": 5}


def build_toy_vlm(vision_model, flip_processor, tokenizer, config: ToyVLMConfig | None = None):
    """`(LlavaForConditionalGeneration, LlavaProcessor)`: `vision_model`'s weights unchanged, the rest random.

    vision_model: a transformers `CLIPVisionModel` (e.g. `flip.load("flip-tiny-synth")[0].vision_model`).
    flip_processor: the FLIP processor of that model (image size and normalisation).
    tokenizer: has the ``<image>`` special token (see `flip.vqa.tokenizer.train_sentencepiece_tokenizer`).
    """
    from transformers import CLIPVisionModel, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    config = config or ToyVLMConfig()
    if not isinstance(vision_model, CLIPVisionModel):
        raise TypeError(f"build_toy_vlm: the vision tower must be a transformers CLIPVisionModel, got "
                        f"{type(vision_model).__name__} (SigLIP- and ResNet-towered FLIP models are not wired up)")
    image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    if image_token_id is None or image_token_id == tokenizer.unk_token_id:
        raise ValueError(f"build_toy_vlm: the tokenizer has no {IMAGE_TOKEN!r} token; train it with "
                         f"special_tokens=[{IMAGE_TOKEN!r}]")
    vision = vision_model.config
    full = config.vision_feature_select_strategy == "full"
    image_seq_length = (vision.image_size // vision.patch_size) ** 2 + int(full)
    text_config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=config.hidden_size, intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers, num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_attention_heads, max_position_embeddings=config.max_position_embeddings,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False,
    )
    llava_config = LlavaConfig(
        vision_config=vision.to_dict(), text_config=text_config.to_dict(), image_token_index=image_token_id,
        image_seq_length=image_seq_length, vision_feature_layer=config.vision_feature_layer,
        vision_feature_select_strategy=config.vision_feature_select_strategy, projector_hidden_act="gelu",
    )
    model = LlavaForConditionalGeneration(llava_config)
    missing, unexpected = model.model.vision_tower.load_state_dict(vision_model.state_dict(), strict=False)
    if missing or unexpected:
        raise ValueError(f"build_toy_vlm: the image tower's weights do not fit LLaVA's vision tower "
                         f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    processor = LlavaProcessor(
        image_processor=image_processor_for(flip_processor), tokenizer=tokenizer, patch_size=vision.patch_size,
        vision_feature_select_strategy=config.vision_feature_select_strategy, chat_template=CHAT_TEMPLATE,
        num_additional_image_tokens=int(full), image_token=IMAGE_TOKEN,
    )
    return model.eval(), processor
