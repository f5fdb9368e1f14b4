"""Contrastive losses as pure functions on logits.

`contrastive_loss` is CLIP's symmetric InfoNCE (FLIP's ITC without momentum/queue/soft targets).
The trainer's richer losses (momentum distillation, queues, sigmoid, ITM) live beside it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def contrastive_loss(logits_per_image: torch.Tensor) -> torch.Tensor:
    """Symmetric cross-entropy over a square (N, N) logit matrix whose diagonal holds the pairs."""
    if logits_per_image.ndim != 2 or logits_per_image.shape[0] != logits_per_image.shape[1]:
        raise ValueError(f"contrastive_loss needs a square (N, N) logit matrix, got {tuple(logits_per_image.shape)}")
    target = torch.arange(logits_per_image.shape[0], device=logits_per_image.device)
    return (F.cross_entropy(logits_per_image, target) + F.cross_entropy(logits_per_image.t(), target)) / 2
