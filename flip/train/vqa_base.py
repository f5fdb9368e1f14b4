"""Build and pretrain the offline toy vision-language model: the "base" that `flip.train.vqa_lora` adapts.

Made the way large VLMs are made, at toy scale (`flip.vqa.toy`): the FLIP image tower as it is
(the embedded `flip-tiny-synth` by default), a small Llama language model with a sentencepiece
tokenizer trained on the data's own text, and LLaVA's MLP projector; then captioning pretraining
on image-caption pairs with the image tower frozen (LLaVA's stages 1 and 2 in one: projector and
language model learn together, since the language model starts from scratch).

    flip data synth --kind qa --n 4000 --size 112 --out data/synth-qa
    flip vqa-base-train --config finetune/configs/vqa_toy_base.yaml
    flip vqa-base-train --config finetune/configs/vqa_toy_base.yaml --train.steps 20   # a smoke run

Writes `run.output_dir/model/` (a transformers `LlavaForConditionalGeneration` and its
`LlavaProcessor`, loadable with `AutoModelForImageTextToText` / `AutoProcessor`), the resolved
`config.yaml` and `metrics.json` (loss curve ends, parameter counts).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from flip.train.config import save_config
from flip.train.vqa_lora import TrainSection as LoRATrainSection
from flip.train.vqa_lora import default_device
from flip.vqa.toy import ToyVLMConfig


@dataclass
class VisionSection:
    model: str | None = None  # a ViT-towered FLIP model, any flip.load name (None: the embedded flip-tiny-synth)
    train: bool = False  # False: the image tower stays frozen (LLaVA)


@dataclass
class DataSection:
    source: str = "data/synth-qa"  # image-caption records (any load_records source with captions)
    dataset: str = "auto"
    split: str | None = "train"
    images: int | None = None  # use at most this many images
    check_images: bool = False

    def __post_init__(self):
        if not self.source:
            raise ValueError("data.source: name the image-caption records to pretrain on")
        if self.images is not None and self.images < 1:
            raise ValueError(f"data.images={self.images}: expected a positive integer or null")


@dataclass
class TrainSection(LoRATrainSection):
    """The LoRA recipe's training fields and checks, with captioning pretraining's defaults."""

    steps: int = 500
    batch_size: int = 32
    lr: float = 2.0e-3
    weight_decay: float = 0.01
    warmup: int = 30
    log_every: int = 20


@dataclass
class RunSection:
    output_dir: str = "runs/vqa-toy-base"
    device: str | None = None

    def __post_init__(self):
        if not self.output_dir:
            raise ValueError("run.output_dir: name the folder for the model, config.yaml and metrics.json")


@dataclass
class VQABaseConfig:
    vision: VisionSection = field(default_factory=VisionSection)
    language: ToyVLMConfig = field(default_factory=ToyVLMConfig)
    data: DataSection = field(default_factory=DataSection)
    train: TrainSection = field(default_factory=TrainSection)
    run: RunSection = field(default_factory=RunSection)


def run(config: VQABaseConfig) -> dict:
    """Build, pretrain and save the toy VLM; returns the metrics (also written to output_dir/metrics.json)."""
    import torch

    from flip.hub import load
    from flip.vqa.examples import caption_examples, corpus, read_records
    from flip.vqa.prompting import PromptFormat
    from flip.vqa.tokenizer import train_sentencepiece_tokenizer
    from flip.vqa.toy import CHAT_TEMPLATE_WORDS, IMAGE_TOKEN, build_toy_vlm
    from flip.train.vqa_loop import fit, parameter_counts

    flip_model, flip_processor = load(config.vision.model)
    if flip_model.config.vision_config.model_type != "clip_vision_model":  # before anything is written
        raise ValueError(f"vision.model: {config.vision.model or 'flip-tiny-synth'} has a "
                         f"{flip_model.config.vision_config.model_type} image tower; the toy VLM (LLaVA) reads a "
                         "CLIP-vision ViT's token sequence (flip train --config finetune/configs/flip_tiny_synth.yaml "
                         "--model.name flip-tiny trains one)")
    out = Path(config.run.output_dir)
    save_config(config, out / "config.yaml")
    device = default_device(config.run.device)
    d = config.data
    records = read_records(d.source, d.dataset, d.split, d.check_images, d.images)
    examples = caption_examples(records, seed=config.train.seed)
    tokenizer = train_sentencepiece_tokenizer(corpus(records) + list(CHAT_TEMPLATE_WORDS),
                                              config.language.vocab_size, [IMAGE_TOKEN])
    torch.manual_seed(config.train.seed)
    model, processor = build_toy_vlm(flip_model.vision_model, flip_processor, tokenizer, config.language)
    model.model.vision_tower.requires_grad_(config.vision.train)
    model.to(device)
    trainable, total = parameter_counts(model)
    print(f"{len(examples)} captions; tokenizer of {len(tokenizer)} tokens; training {trainable:,} of {total:,} "
          "parameters", file=sys.stderr)
    t = config.train
    start = time.time()

    def log(step: int, loss: float, lr: float) -> None:
        if step % t.log_every == 0 or step == t.steps - 1:
            print(f"step {step:5d}  loss {loss:.4f}  lr {lr:.2e}  {time.time() - start:.0f}s", file=sys.stderr)

    losses = fit(model, PromptFormat(processor, "llava"), examples, steps=t.steps, batch_size=t.batch_size,
                 lr=t.lr, weight_decay=t.weight_decay, warmup=t.warmup, seed=t.seed, device=device, log=log)
    model_dir = out / "model"
    model.save_pretrained(model_dir)
    processor.save_pretrained(model_dir)
    metrics = {"captions": len(examples), "vocab": len(tokenizer), "steps": t.steps, "first_loss": losses[0],
               "final_loss": losses[-1], "trainable_parameters": trainable, "parameters": total,
               "seconds": time.time() - start}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"wrote {model_dir}", file=sys.stderr)
    return metrics
