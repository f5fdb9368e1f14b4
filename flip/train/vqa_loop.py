"""LoRA adapters on a vision-language model, and the small loop that trains it.

Design choices:
- LoRA (Hu et al., 2022) through peft: rank, alpha, dropout and target modules come from the
  recipe; `target_modules` is a list of module-name suffixes or one regular expression matched
  against full names (peft's rule), so ``".*language_model.*\\.(q_proj|v_proj)"`` adapts the
  language model's attention and leaves the image tower alone. Target modules that match nothing
  are one error naming them and the linear layers the model does have.
- `modules_to_save` trains whole modules beside the adapters (e.g. LLaVA's projector) and saves
  them with the adapter.
- The loop is plain: AdamW on the trainable parameters, linear warm-up then cosine decay, the loss
  the model computes from `labels` (prompt tokens are -100, `flip.vqa.prompting`). It works for full
  training too (the toy base model's captioning pretraining) and for any model `PromptFormat` feeds.
"""

from __future__ import annotations

import math
import re
from typing import Callable, Sequence

import numpy as np
import torch

from flip.vqa.prompting import PromptFormat, QAExample


def linear_layer_names(model: torch.nn.Module) -> list[str]:
    """The distinct last name parts of the model's nn.Linear layers (what `target_modules` can name)."""
    return sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)})


def _matches(target_modules: str | Sequence[str], name: str) -> bool:
    if isinstance(target_modules, str):
        return re.fullmatch(target_modules, name) is not None
    return any(name == t or name.endswith("." + t) for t in target_modules)


def apply_lora(model: torch.nn.Module, *, rank: int = 8, alpha: float = 16, dropout: float = 0.05,
               target_modules: str | Sequence[str] = ("q_proj", "v_proj"),
               modules_to_save: Sequence[str] | None = None, seed: int = 0):
    """`model` wrapped in a peft LoRA model; only the adapters (and `modules_to_save`) train."""
    from peft import LoraConfig, get_peft_model

    from flip.runtime import peft_quiet

    if not target_modules:
        raise ValueError("target_modules is empty: name the layers to adapt (e.g. ['q_proj', 'v_proj'])")
    matched = [n for n, m in model.named_modules() if _matches(target_modules, n) and isinstance(m, torch.nn.Linear)]
    if not matched:
        raise ValueError(f"target_modules={target_modules!r} matches no linear layer of this "
                         f"{type(model).__name__}; its linear layers are named {linear_layer_names(model)}")
    if modules_to_save:
        names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
        unknown = [m for m in modules_to_save if m not in names]
        if unknown:
            raise ValueError(f"modules_to_save={list(modules_to_save)}: no module named {unknown} in "
                             f"this {type(model).__name__}")
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout,
                        target_modules=target_modules if isinstance(target_modules, str) else list(target_modules),
                        modules_to_save=list(modules_to_save) if modules_to_save else None, bias="none")
    torch.manual_seed(seed)
    with peft_quiet():
        return get_peft_model(model, config)


def parameter_counts(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts; shared tensors counted once."""
    seen, trainable, total = set(), 0, 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return trainable, total


def lr_at(step: int, steps: int, lr: float, warmup: int, min_ratio: float = 0.1) -> float:
    """Linear warm-up to `lr` over `warmup` steps, then cosine decay to `min_ratio * lr` at `steps`."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def fit(model: torch.nn.Module, fmt: PromptFormat, examples: Sequence[QAExample], *, steps: int,
        batch_size: int = 16, lr: float = 1e-3, weight_decay: float = 0.0, warmup: int = 0,
        grad_clip: float = 1.0, seed: int = 0, device: str | torch.device | None = None,
        log: Callable[[int, float, float], None] | None = None) -> list[float]:
    """Train the parameters that require grad for `steps` batches drawn by epochs; returns the losses."""
    if steps < 1:
        raise ValueError(f"steps={steps}: expected at least 1")
    if not examples:
        raise ValueError("fit: no training examples")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("fit: the model has no trainable parameters")
    device = device or next(model.parameters()).device
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    rng = np.random.default_rng(seed)
    order: list[int] = []
    losses = []
    model.train()
    for step in range(steps):
        if len(order) < batch_size:
            order += list(rng.permutation(len(examples)))
        chosen, order = order[:batch_size], order[batch_size:]
        batch = fmt.training_batch([examples[i] for i in chosen])
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, steps, lr, warmup)
        loss = model(**batch).loss
        if not torch.isfinite(loss):
            raise FloatingPointError(f"step {step}: the loss is {loss.item()}; lower the learning rate")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        losses.append(loss.item())
        if log is not None:
            log(step, losses[-1], optimizer.param_groups[0]["lr"])
    model.eval()
    return losses


def adapter_parameter_counts(model: torch.nn.Module) -> tuple[int, int]:
    """(adapter, base) parameter counts of a peft model, whether or not its parameters require grad.

    adapter: LoRA matrices plus the trained copies of `modules_to_save`; base: every other parameter
    (the frozen originals those copies replace count once, in base).
    """
    adapter = base = 0
    for name, p in model.named_parameters():
        if "lora_" in name or ".modules_to_save." in name:
            adapter += p.numel()
        else:
            base += p.numel()
    return adapter, base
