"""Loading a (LoRA-adapted) vision-language model and asking it questions about faces.

Design choices:
- Any `AutoModelForImageTextToText` checkpoint of a supported family (`flip.vqa.prompting.FAMILIES`)
  loads the same way; a folder holding a peft adapter (`adapter_config.json`) loads its base model
  first (the adapter's `base_model_name_or_path`, or `base=`) and then the adapter on top.
- The recipe saves a `vqa_config.json` beside its adapter (family, prompt template, answer
  length), so asking uses exactly the prompt format the adapter was trained with.
- Answers are decoded greedily and stop at the family's end-of-turn token: short attribute answers
  do not need sampling, and greedy decoding makes outputs reproducible (the save/reload test
  compares them token for token).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from flip.vqa.prompting import PromptFormat, QAExample, model_family

VQA_CONFIG = "vqa_config.json"
#: The embedded toy VQA model's name (flip/assets/vqa-toy-synth: the toy base with its LoRA merged in).
EMBEDDED_VQA = "vqa-toy-synth"


def embedded_vqa_path() -> Path | None:
    """The folder of the embedded toy VQA model, or None when this install has none."""
    path = Path(__file__).resolve().parent.parent / "assets" / EMBEDDED_VQA
    return path if (path / "config.json").is_file() else None


@dataclass
class VQAModel:
    """A vision-language model, its processor and its prompt format: `vqa.ask(image, question)`."""

    model: torch.nn.Module
    processor: object
    format: PromptFormat
    max_new_tokens: int = 12

    @torch.no_grad()
    def answer(self, examples: Sequence[QAExample], batch_size: int = 16) -> list[str]:
        """The decoded answer to each example's question, greedy, special tokens removed."""
        self.model.eval()
        device = next(self.model.parameters()).device
        answers: list[str] = []
        for start in range(0, len(examples), batch_size):
            batch = self.format.generation_batch(examples[start : start + batch_size])
            batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
            width = batch["input_ids"].shape[1]
            out = self.model.generate(**batch, max_new_tokens=self.max_new_tokens, do_sample=False,
                                      eos_token_id=self.format.end_token_id,
                                      pad_token_id=self.format.tokenizer.pad_token_id)
            answers += [a.strip() for a in self.format.tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)]
        return answers

    def ask(self, image, question: str) -> str:
        """One answer: `vqa.ask("face.png", "What emotion does this face show?")`."""
        if not isinstance(question, str) or not question.strip():
            raise ValueError(f"question must be a non-empty string, got {question!r}")
        return self.answer([QAExample(image, question)])[0]


def load_vqa(path: str | os.PathLike, *, base: str | None = None, template: str | None = None,
             device: str | torch.device | None = None, max_new_tokens: int | None = None) -> VQAModel:
    """A `VQAModel` from a model folder or Hub id, or from a LoRA adapter folder on top of its base.

    template: overrides the saved prompt template (default: the one in vqa_config.json, else the
    processor's chat template / PaliGemma's prefix).
    """
    from transformers import AutoModelForImageTextToText, AutoProcessor

    if str(path) == EMBEDDED_VQA and not Path(path).exists():
        path = embedded_vqa_path() or path
    path = Path(path)
    settings = json.loads((path / VQA_CONFIG).read_text()) if (path / VQA_CONFIG).is_file() else {}
    adapter = (path / "adapter_config.json").is_file()
    if adapter:
        base = base or json.loads((path / "adapter_config.json").read_text()).get("base_model_name_or_path")
        if not base:
            raise ValueError(f"{path}: the adapter does not name its base model; pass base=")
    source = str(base) if adapter else str(path)
    if path.is_dir() and not adapter and not (path / "config.json").is_file():
        raise FileNotFoundError(f"no model in {path} (neither config.json nor adapter_config.json)")
    check_supported(source)
    model = AutoModelForImageTextToText.from_pretrained(source, dtype=torch.float32)
    processor = AutoProcessor.from_pretrained(path if (path / "processor_config.json").is_file()
                                              or (path / "tokenizer_config.json").is_file() else source)
    if adapter:
        from peft import PeftModel

        from flip.runtime import peft_quiet

        with peft_quiet():
            model = PeftModel.from_pretrained(model, str(path))
    if device is not None:
        model = model.to(device)
    fmt = PromptFormat(processor, model_family(model.config if not adapter else model.get_base_model().config),
                       template if template is not None else settings.get("template"))
    return VQAModel(model.eval(), processor, fmt, max_new_tokens or settings.get("max_new_tokens", 12))


def check_supported(name_or_path: str) -> str:
    """The family of a checkpoint, read from its config alone (no weights); a clear error otherwise."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(name_or_path)
    except (OSError, ValueError) as err:
        raise FileNotFoundError(f"cannot read a model config from {name_or_path!r}: {err}") from None
    return model_family(config)
