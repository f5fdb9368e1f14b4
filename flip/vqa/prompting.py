"""How each family of vision-language model wants a question, and batches with the prompt masked.

Design choices:
- A model's family comes from its config's `model_type` (`FAMILIES`); anything else is refused with
  the list of what is supported, before any weights move.
- The prompt is rendered by the model's own processor: its chat template (LLaVA, Idefics3/SmolVLM),
  or PaliGemma's prefix format (the processor puts the image tokens, BOS, the prefix and "\\n"; the
  default prefix is "answer en {question}", PaliGemma's VQA task prefix). A `template` such as
  "USER: <image>\\n{question} ASSISTANT:" overrides both, for processors without a chat template.
- The processor expands the image tokens of the prompt only; the answer is appended as token ids
  (answer tokens + the family's end-of-turn token). So the loss mask is exact: labels are -100 on
  every prompt (and image and padding) token and the answer ids on the rest, with no guessing at
  where a re-tokenised answer starts.
- PaliGemma attends bidirectionally over its prefix: `token_type_ids` are 0 on the prompt and 1 on
  the answer, as its processor makes them for `suffix=`.
- Training batches are right-padded; generation batches left-padded, so every prompt ends at the
  last column and generated tokens line up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

#: config.model_type -> family. One line per supported model type.
FAMILIES: dict[str, str] = {
    "llava": "llava",
    "paligemma": "paligemma",
    "idefics3": "idefics3",
    "smolvlm": "idefics3",
}
PALIGEMMA_TEMPLATE = "answer en {question}"
IGNORE_INDEX = -100
#: processor outputs that are per-token and rebuilt here; everything else (pixels, masks) passes through
_SEQUENCE_KEYS = ("input_ids", "attention_mask", "token_type_ids", "mm_token_type_ids", "labels")


def model_family(config) -> str:
    """The family of a model config (or model), e.g. "llava"; a clear error for unsupported ones."""
    config = getattr(config, "config", config)
    model_type = getattr(config, "model_type", None)
    if model_type not in FAMILIES:
        raise ValueError(f"unsupported base model: model_type {model_type!r}; flip.vqa supports "
                         f"{sorted(FAMILIES)} (AutoModelForImageTextToText models of those families)")
    return FAMILIES[model_type]


@dataclass
class QAExample:
    """One image and one question about it. `answer` is None when only asking."""

    image: object  # a PIL image, path or bytes (anything `flip.processor.load_image` opens)
    question: str
    answer: str | None = None
    attribute: str | None = None  # which label the question asks about, for per-attribute scores


class PromptFormat:
    """Renders questions for one processor, and builds training and generation batches."""

    def __init__(self, processor, family: str, template: str | None = None, max_length: int | None = None):
        if family not in set(FAMILIES.values()):
            raise ValueError(f"family={family!r}: expected one of {sorted(set(FAMILIES.values()))}")
        if template is not None and "{question}" not in template:
            raise ValueError(f"prompt template {template!r} must contain '{{question}}'")
        if template is None and family != "paligemma" and getattr(processor, "chat_template", None) is None:
            raise ValueError(f"the {family} processor has no chat template; set a prompt template such as "
                             "'USER: <image>\\n{question} ASSISTANT:'")
        self.processor, self.family, self.template, self.max_length = processor, family, template, max_length
        self.tokenizer = processor.tokenizer
        self.end_token_id = answer_end_token_id(processor)

    # -- text ---------------------------------------------------------------------------------------
    def prompt(self, question: str) -> str:
        """The text given to the processor for one question (image placeholders included where needed)."""
        if self.template is not None or self.family == "paligemma":
            text = (self.template or PALIGEMMA_TEMPLATE).format(question=question)
            image_token = getattr(self.processor, "image_token", None)
            if self.family == "paligemma" and image_token and image_token not in text:
                text = image_token + text  # where PaliGemma's processor would put it, without its warning
            return text
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
        return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def answer_ids(self, answer: str) -> list[int]:
        return self.tokenizer(answer, add_special_tokens=False)["input_ids"] + [self.end_token_id]

    # -- batches ------------------------------------------------------------------------------------
    def _encode_prompts(self, examples: Sequence[QAExample]) -> tuple[list[torch.Tensor], dict]:
        from flip.processor import load_image

        images = [load_image(e.image, i) for i, e in enumerate(examples)]
        if self.family != "llava":
            images = [[image] for image in images]
        batch = self.processor(images=images, text=[self.prompt(e.question) for e in examples],
                               padding=True, return_tensors="pt")
        mask = batch["attention_mask"].bool()
        prompts = [row[keep] for row, keep in zip(batch["input_ids"], mask)]
        extras = {k: v for k, v in batch.items() if k not in _SEQUENCE_KEYS}
        return prompts, extras

    def training_batch(self, examples: Sequence[QAExample]) -> dict[str, torch.Tensor]:
        """input_ids / attention_mask / labels (B, L), right-padded, plus the processor's image tensors.

        labels are -100 except on the answer tokens and the end-of-turn token.
        """
        missing = [i for i, e in enumerate(examples) if e.answer is None]
        if missing:
            raise ValueError(f"training_batch: examples {missing[:5]} have no answer")
        prompts, extras = self._encode_prompts(examples)
        answers = [torch.tensor(self.answer_ids(e.answer), dtype=torch.long) for e in examples]
        sequences = [torch.cat([p, a]) for p, a in zip(prompts, answers)]
        longest = max(len(s) for s in sequences)
        if self.max_length is not None and longest > self.max_length:
            raise ValueError(f"a prompt and its answer take {longest} tokens, more than max_length={self.max_length}")
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.end_token_id
        input_ids = torch.full((len(sequences), longest), pad, dtype=torch.long)
        attention_mask = torch.zeros_like(input_ids)
        labels = torch.full_like(input_ids, IGNORE_INDEX)
        token_type_ids = torch.zeros_like(input_ids)
        for i, (p, a) in enumerate(zip(prompts, answers)):
            n, m = len(p), len(a)
            input_ids[i, : n + m] = torch.cat([p, a])
            attention_mask[i, : n + m] = 1
            labels[i, n : n + m] = a
            token_type_ids[i, n : n + m] = 1
        out = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels, **extras}
        if self.family == "paligemma":
            out["token_type_ids"] = token_type_ids
        return out

    def generation_batch(self, examples: Sequence[QAExample]) -> dict[str, torch.Tensor]:
        """Prompts only, left-padded: input_ids / attention_mask (B, L) plus the image tensors."""
        prompts, extras = self._encode_prompts(examples)
        longest = max(len(p) for p in prompts)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.end_token_id
        input_ids = torch.full((len(prompts), longest), pad, dtype=torch.long)
        attention_mask = torch.zeros_like(input_ids)
        for i, p in enumerate(prompts):
            input_ids[i, longest - len(p):] = p
            attention_mask[i, longest - len(p):] = 1
        out = {"input_ids": input_ids, "attention_mask": attention_mask, **extras}
        if self.family == "paligemma":
            out["token_type_ids"] = torch.zeros_like(input_ids)
        return out


def answer_end_token_id(processor) -> int:
    """The token that ends an answer: Idefics3's <end_of_utterance>, otherwise the tokenizer's EOS."""
    tokenizer = processor.tokenizer
    end = getattr(processor, "end_of_utterance_token", None)
    token_id = tokenizer.convert_tokens_to_ids(end) if end else tokenizer.eos_token_id
    if token_id is None:
        raise ValueError("the tokenizer has no end-of-sequence token to end answers with; set its eos_token")
    return int(token_id)
