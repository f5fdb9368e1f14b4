"""AdamW with decoupled weight decay on the right parameters, and warm-up plus cosine decay.

Design choices:
- Weight decay applies to matrices only: parameters with fewer than two dimensions (norm weights,
  biases, the temperature, the logit bias, CLIP's class embedding) and the weights of embedding
  tables (token, position and type embeddings) are not decayed, as CLIP and BERT train them.
- Frozen parameters (locked towers, LoRA base weights, unused heads) are left out of the optimiser.
- The schedule is transformers' `get_cosine_with_min_lr_schedule_with_warmup` (a `LambdaLR`): linear
  warm-up over `warmup_steps` optimiser steps, then a half cosine to `lr * min_lr_ratio`.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import OptimSection


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: decayed matrices and the rest; each group also lists its parameter names."""
    embedding_weights = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    decay, no_decay = ([], []), ([], [])
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        target = no_decay if param.ndim < 2 or id(param) in embedding_weights else decay
        target[0].append(param)
        target[1].append(name)
    return [
        {"params": decay[0], "names": decay[1], "weight_decay": weight_decay},
        {"params": no_decay[0], "names": no_decay[1], "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, optim: OptimSection) -> torch.optim.AdamW:
    groups = [g for g in parameter_groups(model, optim.weight_decay) if g["params"]]
    if not groups:
        raise ValueError("nothing to train: every parameter is frozen (check towers.vision / towers.text)")
    # torch's fused kernel (CPU and CUDA) updates all tensors in one pass, not one kernel per tensor
    # (benchmarks/bench_train.py times the step it belongs to)
    params = [p for g in groups for p in g["params"]]
    fused = all(p.device.type in ("cpu", "cuda") and p.dtype in (torch.float32, torch.float16, torch.bfloat16)
                for p in params) and len({p.device for p in params}) == 1
    return torch.optim.AdamW(groups, lr=optim.lr, betas=optim.betas, eps=optim.eps, fused=fused or None)


def build_scheduler(optimizer: torch.optim.Optimizer, optim: OptimSection, total_steps: int):
    from transformers import get_cosine_with_min_lr_schedule_with_warmup

    return get_cosine_with_min_lr_schedule_with_warmup(
        optimizer,
        num_warmup_steps=min(optim.warmup_steps, total_steps),
        num_training_steps=total_steps,
        min_lr_rate=optim.min_lr_ratio,
    )
