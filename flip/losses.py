"""FLIP's training losses as pure functions on embeddings and logits, and the gather across ranks.

Design choices and the papers followed:
- `contrastive_loss` is CLIP's symmetric InfoNCE on a square (N, N) logit matrix whose diagonal
  holds the pairs; the temperature is the model's learned, clamped `scale()`.
- `momentum_contrastive_loss` is FLIP's image-text contrastive loss (ITC), after ALBEF/BLIP as the
  FaceCaption-15M authors train it: the online embeddings are the queries; the keys are the
  momentum encoder's embeddings of the same pairs followed by a queue of older momentum embeddings;
  the targets mix the one-hot pairing with the momentum model's own softmax over the keys (weight
  `alpha`, 0.4 in FLIP, ramped in by the trainer), computed with the online temperature, detached.
  Like the authors, only the pair itself is a positive (no image-id positives in the queue).
  With `alpha=0`, no queue and the online embeddings as keys it is exactly `contrastive_loss`.
- `sigmoid_loss` is SigLIP's pairwise sigmoid loss: every (image, text) cell is an independent
  binary problem, summed over texts and averaged over images; the logits carry a learned bias.
- Image-text matching (ITM): `sample_hard_negatives` draws, for each row, one negative with
  probability softmax(similarity) over the non-positives, as FLIP/BLIP mine them; `itm_loss` is the
  2-way cross-entropy with the positive pairs labelled 1 and the negatives 0.
- `gather_batch` concatenates a tensor over all ranks keeping the autograd graph
  (`torch.distributed.nn.functional.all_gather`, whose backward sums the gradients of every rank
  into the local slice). When every rank computes the loss of the whole gathered batch, DDP's
  gradient averaging then yields exactly the single-process gradient of that batch (open_clip's
  `gather_with_grad` without `local_loss`). On one process it returns its input.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F


def contrastive_loss(logits_per_image: torch.Tensor) -> torch.Tensor:
    """Symmetric cross-entropy over a square (N, N) logit matrix whose diagonal holds the pairs."""
    if logits_per_image.ndim != 2 or logits_per_image.shape[0] != logits_per_image.shape[1]:
        raise ValueError(f"contrastive_loss needs a square (N, N) logit matrix, got {tuple(logits_per_image.shape)}")
    target = torch.arange(logits_per_image.shape[0], device=logits_per_image.device)
    return (F.cross_entropy(logits_per_image, target) + F.cross_entropy(logits_per_image.t(), target)) / 2


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over rows of -sum(targets * log_softmax(logits)); both (N, M), targets rows sum to 1."""
    return -(targets * F.log_softmax(logits, dim=-1)).sum(-1).mean()


def distillation_targets(teacher_logits: torch.Tensor, alpha: float) -> torch.Tensor:
    """FLIP's soft targets, (N, M): alpha * softmax(teacher) + (1 - alpha) * one-hot of the pair.

    Row i's pair is column i (the keys start with the batch's own momentum embeddings).
    """
    hard = torch.eye(*teacher_logits.shape, dtype=teacher_logits.dtype, device=teacher_logits.device)
    if alpha == 0:
        return hard
    return alpha * teacher_logits.softmax(dim=-1) + (1 - alpha) * hard


def momentum_contrastive_loss(
    image_embeds: torch.Tensor,
    text_embeds: torch.Tensor,
    image_keys: torch.Tensor,
    text_keys: torch.Tensor,
    scale: torch.Tensor,
    alpha: float = 0.0,
) -> torch.Tensor:
    """FLIP's ITC with momentum keys, a queue and soft targets.

    image_embeds, text_embeds: (N, D) online, L2-normalised embeddings of N pairs.
    image_keys, text_keys: (N + Q, D) keys: the first N rows are the (momentum) embeddings of the same
        N pairs in the same order, then Q queued embeddings of earlier batches.
    scale: exp(logit_scale), the inverse temperature (a 0-d tensor, learned).
    alpha: weight of the momentum model's soft targets (0: hard one-hot targets).
    """
    n = image_embeds.shape[0]
    if image_keys.shape[0] < n or text_keys.shape[0] < n:
        raise ValueError(
            f"momentum_contrastive_loss: the keys ({image_keys.shape[0]}, {text_keys.shape[0]} rows) must start "
            f"with the {n} pairs of the batch"
        )
    logits_i2t = scale * image_embeds @ text_keys.t()
    logits_t2i = scale * text_embeds @ image_keys.t()
    with torch.no_grad():
        teacher_scale = scale.detach()
        targets_i2t = distillation_targets(teacher_scale * image_keys[:n] @ text_keys.t(), alpha)
        targets_t2i = distillation_targets(teacher_scale * text_keys[:n] @ image_keys.t(), alpha)
    return (soft_cross_entropy(logits_i2t, targets_i2t) + soft_cross_entropy(logits_t2i, targets_t2i)) / 2


def sigmoid_loss(logits_per_image: torch.Tensor) -> torch.Tensor:
    """SigLIP's loss on a square (N, N) logit matrix (scale * cosine + bias), pairs on the diagonal."""
    if logits_per_image.ndim != 2 or logits_per_image.shape[0] != logits_per_image.shape[1]:
        raise ValueError(f"sigmoid_loss needs a square (N, N) logit matrix, got {tuple(logits_per_image.shape)}")
    n = logits_per_image.shape[0]
    signs = 2 * torch.eye(n, dtype=logits_per_image.dtype, device=logits_per_image.device) - 1
    return -F.logsigmoid(signs * logits_per_image).sum() / n


def sample_hard_negatives(
    similarity: torch.Tensor,
    positive_mask: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One negative column per row, drawn with probability softmax(similarity) among non-positives.

    similarity: (N, M) logits between N queries and M candidates (no gradient needed).
    positive_mask: (N, M) bool, True where a candidate is a positive for the query (the pair itself,
        or another caption of the same image); these are never drawn.
    Returns (N,) long indices into the M candidates. A row whose softmax underflows to zero on every
    negative falls back to a uniform draw among them.
    """
    if similarity.shape != positive_mask.shape:
        raise ValueError(
            f"sample_hard_negatives: similarity {tuple(similarity.shape)} and positive_mask "
            f"{tuple(positive_mask.shape)} differ in shape"
        )
    negatives = ~positive_mask
    if not bool(negatives.any(dim=1).all()):
        raise ValueError(
            "sample_hard_negatives: some rows have no negative candidate (every candidate is a positive); "
            "image-text matching needs at least two different images in the (global) batch"
        )
    weights = similarity.detach().float().softmax(dim=1).masked_fill(positive_mask, 0.0)
    empty = weights.sum(dim=1) <= 0
    if bool(empty.any()):
        weights[empty] = negatives[empty].float()
    return torch.multinomial(weights, 1, generator=generator).squeeze(1)


def itm_loss(positive_logits: torch.Tensor, negative_logits: torch.Tensor) -> torch.Tensor:
    """2-way cross-entropy: positive_logits (N, 2) are matching pairs (label 1), negative_logits (M, 2)
    mined non-matching pairs (label 0); the mean over all N + M pairs, as FLIP averages them."""
    logits = torch.cat([positive_logits, negative_logits])
    labels = torch.cat(
        [
            torch.ones(len(positive_logits), dtype=torch.long, device=logits.device),
            torch.zeros(len(negative_logits), dtype=torch.long, device=logits.device),
        ]
    )
    return F.cross_entropy(logits, labels)


def gather_batch(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate `tensor` (N, ...) from every rank along dim 0, in rank order, keeping the gradient.

    Identity when torch.distributed is not initialised or has one process. Every rank must pass a
    tensor of the same shape.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    from torch.distributed.nn.functional import all_gather

    with warnings.catch_warnings():
        # torch 2.14 points to `torch.distributed._functional_collectives` instead, a private module;
        # this public function works on gloo and nccl alike and on every torch flip supports.
        warnings.filterwarnings("ignore", message=".*all_gather is deprecated.*", category=FutureWarning)
        return torch.cat(all_gather(tensor), dim=0)
