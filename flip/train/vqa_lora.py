"""Fine-tune a vision-language model with LoRA to answer questions about facial attributes.

The FaceScanPaliGemma recipe (PaliGemma fine-tuned on FairFace/AffectNet questions), for any
`AutoModelForImageTextToText` model of a supported family (PaliGemma, LLaVA, Idefics3/SmolVLM):

    flip data synth --kind qa --n 4000 --size 112 --out data/synth-qa
    flip vqa-base-train --config finetune/configs/vqa_toy_base.yaml     # the offline toy base
    flip vqa-train --config finetune/configs/vqa_lora_toy.yaml
    flip ask face.png "What emotion does this face show?" --model runs/vqa-lora/adapter

Steps: questions and answers are made from the labels of any source `flip.data.loaders.load_records`
reads (`flip.vqa.examples.qa_examples`, the synthetic world's phrasings plus the config's); each is
rendered in the model's own prompt format with the prompt masked out of the loss
(`flip.vqa.prompting`); peft LoRA adapters (rank, alpha, dropout, target modules from the config) are
trained (`flip.train.vqa_loop`); held-out questions are answered greedily and scored by exact match
per attribute after normalisation (`flip.vqa.scoring`), with a confusion matrix per
attribute; the adapter is saved (`adapter/adapter_model.safetensors`, the processor and
`vqa_config.json`) and, with `run.merge: true`, merged into the base (`merged/`).

Every run writes its resolved config (`config.yaml`) and its scores (`metrics.json`) to
`run.output_dir`. Overrides: `--section.key value`, e.g. `--train.steps 20 --lora.rank 4`.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from flip.train.config import save_config

#: LoRA on the language model's attention and MLP projections, not the image tower's.
LANGUAGE_MODEL_LINEARS = r".*(language_model|text_model)\..*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


@dataclass
class ModelSection:
    base: str = "runs/vqa-toy-base/model"  # AutoModelForImageTextToText folder or Hub id
    template: str | None = None  # prompt with {question}; None: the processor's chat template (PaliGemma: "answer en {question}")
    max_length: int | None = None  # refuse prompt + answer longer than this many tokens (None: no check)

    def __post_init__(self):
        if not self.base:
            raise ValueError("model.base: name the base model (a folder or a Hub id)")


@dataclass
class DataSection:
    source: str = "data/synth-qa"  # anything flip.data.loaders.load_records reads
    dataset: str = "auto"  # a loader name (flip, fairface, utkface, celeba, ...) or auto
    train_split: str | None = "train"
    eval_split: str | None = "test"
    attributes: list[str] | None = None  # attributes to ask about (None: every labelled one)
    questions: dict = field(default_factory=dict)  # {attribute: [phrasing, ...]}, added to the synthetic world's
    per_image: int | None = None  # training questions per image (None: one per labelled attribute)
    train_images: int | None = None  # use at most this many training images
    eval_images: int | None = 200  # score at most this many held-out images (every labelled attribute of each)
    check_images: bool = False  # open and verify every image while loading

    def __post_init__(self):
        if not self.source:
            raise ValueError("data.source: name the labelled records to make questions from")
        for name in ("per_image", "train_images", "eval_images"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"data.{name}={value}: expected a positive integer or null")
        for attribute, phrasings in self.questions.items():
            if not isinstance(phrasings, list) or not phrasings or not all(isinstance(q, str) for q in phrasings):
                raise ValueError(f"data.questions.{attribute}: expected a non-empty list of questions")


@dataclass
class LoRASection:
    rank: int = 8  # r: the rank of each update
    alpha: float = 16.0  # scaling: updates are multiplied by alpha / rank
    dropout: float = 0.05  # dropout on the adapter's input
    target_modules: list[str] | str = LANGUAGE_MODEL_LINEARS  # name suffixes, or one regex on full names
    modules_to_save: list[str] | None = None  # whole modules trained and saved too (e.g. multi_modal_projector)

    def __post_init__(self):
        if self.rank < 1:
            raise ValueError(f"lora.rank={self.rank}: expected >= 1")
        if self.alpha <= 0:
            raise ValueError(f"lora.alpha={self.alpha}: expected > 0")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"lora.dropout={self.dropout}: expected a value in [0, 1)")
        if not self.target_modules:
            raise ValueError("lora.target_modules: name at least one module (e.g. [q_proj, v_proj])")


@dataclass
class TrainSection:
    steps: int = 300  # optimiser steps
    batch_size: int = 16
    lr: float = 1.0e-3  # peak learning rate (linear warm-up, cosine decay)
    weight_decay: float = 0.0
    warmup: int = 20  # warm-up steps
    seed: int = 0
    log_every: int = 10

    def __post_init__(self):
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"train.steps={self.steps}, train.batch_size={self.batch_size}: expected >= 1")
        if self.lr <= 0:
            raise ValueError(f"train.lr={self.lr}: expected > 0")


@dataclass
class EvalSection:
    batch_size: int = 32
    max_new_tokens: int = 8  # answers are a few words
    synonyms: dict = field(default_factory=dict)  # {canonical answer: [variants]} for normalisation
    confusion: bool = True  # a confusion-matrix figure per attribute under output_dir/confusion/

    def __post_init__(self):
        for name in ("batch_size", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"eval.{name}={getattr(self, name)}: expected >= 1")
        for answer, variants in self.synonyms.items():
            if not isinstance(variants, list) or not all(isinstance(v, str) for v in variants):
                raise ValueError(f"eval.synonyms.{answer}: expected a list of variant answers")


@dataclass
class RunSection:
    output_dir: str = "runs/vqa-lora"
    merge: bool = False  # also save the base with the adapter merged in (output_dir/merged)
    merge_dtype: str = "float32"  # the merged model's stored dtype ("float16" halves an embedded model's size)
    device: str | None = None  # default: cuda when available

    def __post_init__(self):
        if not self.output_dir:
            raise ValueError("run.output_dir: name the folder for the adapter, config.yaml and metrics.json")
        if self.merge_dtype not in ("float32", "float16", "bfloat16"):
            raise ValueError(f"run.merge_dtype={self.merge_dtype!r}: expected float32, float16 or bfloat16")


@dataclass
class VQALoRAConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    lora: LoRASection = field(default_factory=LoRASection)
    train: TrainSection = field(default_factory=TrainSection)
    eval: EvalSection = field(default_factory=EvalSection)
    run: RunSection = field(default_factory=RunSection)


def default_device(name: str | None) -> str:
    """`name`, or cuda when available, else cpu."""
    import torch

    return name or ("cuda" if torch.cuda.is_available() else "cpu")


def run(config: VQALoRAConfig) -> dict:
    """Train, evaluate and save; returns the metrics (also written to output_dir/metrics.json)."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from flip.vqa import scoring
    from flip.vqa.examples import qa_examples, read_records
    from flip.vqa.prompting import PromptFormat, model_family
    from flip.vqa.model import VQA_CONFIG, VQAModel, check_supported
    from flip.hub import portable_name
    from flip.train.vqa_loop import adapter_parameter_counts, apply_lora, fit

    out = Path(config.run.output_dir)
    save_config(config, out / "config.yaml")
    check_supported(config.model.base)  # an unsupported base fails before any data is read
    device = default_device(config.run.device)
    d = config.data
    train_records = read_records(d.source, d.dataset, d.train_split, d.check_images, d.train_images)
    train = qa_examples(train_records, d.attributes, d.questions, d.per_image, seed=config.train.seed)
    held_out = qa_examples(read_records(d.source, d.dataset, d.eval_split, d.check_images, d.eval_images),
                           d.attributes, d.questions, None, seed=config.train.seed + 1) if d.eval_split else []
    print(f"{len(train)} training questions on {len(train_records)} images; {len(held_out)} held out", file=sys.stderr)

    torch.manual_seed(config.train.seed)
    base = AutoModelForImageTextToText.from_pretrained(config.model.base, dtype=torch.float32).to(device)
    processor = AutoProcessor.from_pretrained(config.model.base)
    fmt = PromptFormat(processor, model_family(base.config), config.model.template, config.model.max_length)
    lora = config.lora
    model = apply_lora(base, rank=lora.rank, alpha=lora.alpha, dropout=lora.dropout,
                       target_modules=lora.target_modules, modules_to_save=lora.modules_to_save,
                       seed=config.train.seed)
    adapter, total = adapter_parameter_counts(model)
    print(f"training {adapter:,} of {total:,} parameters ({100 * adapter / total:.2f}%)", file=sys.stderr)

    t = config.train
    start = time.time()

    def log(step: int, loss: float, lr: float) -> None:
        if step % t.log_every == 0 or step == t.steps - 1:
            print(f"step {step:5d}  loss {loss:.4f}  lr {lr:.2e}  {time.time() - start:.0f}s", file=sys.stderr)

    losses = fit(model, fmt, train, steps=t.steps, batch_size=t.batch_size, lr=t.lr, weight_decay=t.weight_decay,
                 warmup=t.warmup, seed=t.seed, device=device, log=log)

    adapter_dir = out / "adapter"
    model.peft_config["default"].base_model_name_or_path = portable_name(config.model.base)
    model.save_pretrained(adapter_dir)
    processor.save_pretrained(adapter_dir)
    settings = {"family": fmt.family, "template": config.model.template, "max_new_tokens": config.eval.max_new_tokens}
    (adapter_dir / VQA_CONFIG).write_text(json.dumps(settings, indent=2) + "\n")

    metrics: dict = {"train_questions": len(train), "steps": t.steps, "final_loss": losses[-1],
                     "trained_parameters": adapter, "base_parameters": total, "trained_fraction": adapter / total,
                     "seconds": time.time() - start}
    if held_out:
        vqa = VQAModel(model, processor, fmt, config.eval.max_new_tokens)
        predictions = vqa.answer(held_out, config.eval.batch_size)
        scores = scoring.exact_match(predictions, [e.answer for e in held_out], [e.attribute for e in held_out],
                                 config.eval.synonyms)
        metrics["eval"] = scores
        scoring.write_predictions(out / "predictions.jsonl", held_out, predictions)
        if config.eval.confusion:
            metrics["confusion"] = [str(p) for p in scoring.confusion_figures(
                held_out, predictions, out / "confusion", config.eval.synonyms)]
        print(scoring.format_scores(scores), file=sys.stderr)
    if config.run.merge:
        merged_dir = out / "merged"
        merged = model.merge_and_unload()
        merged.to(getattr(torch, config.run.merge_dtype)).save_pretrained(merged_dir)
        processor.save_pretrained(merged_dir)
        (merged_dir / VQA_CONFIG).write_text(json.dumps(settings, indent=2) + "\n")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"wrote {adapter_dir}{' and ' + str(out / 'merged') if config.run.merge else ''}; "
          f"metrics in {out / 'metrics.json'}", file=sys.stderr)
    return metrics

