"""`PretrainObjective`: one training forward of FLIP, from a batch to its losses.

Design choices:
- A `nn.Module` that owns the model being trained, the momentum copy and the feature queue, so that
  DistributedDataParallel wraps exactly what computes the loss, and one `state_dict` holds all three
  for checkpoints.
- The momentum encoders are torch's own exponential moving average
  (`torch.optim.swa_utils.AveragedModel` with `get_ema_multi_avg_fn`), updated at the start of every
  forward as FLIP does (the first update copies the online weights). The copy is frozen and kept in
  the online model's train/eval mode, as in the authors' code.
- The queue is two (Q, D) buffers of past momentum embeddings and a pointer, written with wrap-around
  after the loss (so Q need not be a multiple of the batch). Like FLIP it starts as random unit
  vectors; every rank holds the same queue because it enqueues the gathered global batch.
- Embeddings are gathered across ranks (`flip.losses.gather_batch`) and every rank computes the loss
  of the global batch; DDP's averaging then gives the single-process gradient exactly.
- Image-text matching (optional) follows FLIP: each local image gets a hard-negative text and each
  local text a hard-negative image, drawn from the global batch by contrastive similarity; the text
  tower cross-attends to the image tokens of `FLIPModel.image_features_and_tokens` (gathered with
  their gradient), computed in the same vision forward as the contrastive features.
- Parameters the chosen losses never use (the logit bias without the sigmoid loss, the ITM head and
  cross-attention without ITM, the vision post-norm/head under CLS pooling when nothing else reads
  them) are frozen by
  `freeze_unused`, so DDP needs no unused-parameter search and AdamW does not decay them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import contrastive_loss, gather_batch, itm_loss, momentum_contrastive_loss, sample_hard_negatives, sigmoid_loss
from .config import LossSection


@dataclass
class LossOutput:
    """What one training forward returns: the weighted total and its parts (detached), for logging."""

    loss: torch.Tensor
    parts: dict[str, torch.Tensor]


def freeze_unused(model: nn.Module, loss: LossSection) -> list[str]:
    """Freeze the parameters the configured losses never reach; returns their names."""
    config = model.config
    frozen = []

    def freeze(prefix_test):
        for name, param in model.named_parameters():
            if prefix_test(name) and param.requires_grad:
                param.requires_grad_(False)
                frozen.append(name)

    if loss.kind != "sigmoid":
        freeze(lambda n: n == "logit_bias")
    if loss.itm_weight == 0:
        freeze(lambda n: n.startswith("itm_head.") or ".crossattention." in n)
    if config.vision_pooling == "cls":  # the post-layernorm still norms CLIP's tokens for ITM
        freeze(lambda n: n.startswith("vision_model.head.")
               or (loss.itm_weight == 0 and n.startswith("vision_model.post_layernorm.")))
    return frozen


class PretrainObjective(nn.Module):
    """Computes FLIP's losses for a batch; see the module docstring.

    model: the FLIPModel being trained (LoRA layers, if any, already injected).
    loss: the loss section of the config.
    enc_token_id: the [ENC] token put first in ITM texts (None: texts keep their first token).
    locked: names of towers ("vision_model", "text_model") kept in eval mode whatever `train()` says.
    """

    def __init__(self, model: nn.Module, loss: LossSection, enc_token_id: int | None = None,
                 locked: tuple[str, ...] = ()):
        super().__init__()
        self.model = model
        self.loss_config = loss
        self.enc_token_id = enc_token_id
        self.locked = tuple(locked)
        if loss.kind == "sigmoid" and model.logit_bias is None:
            raise ValueError(
                "loss.kind 'sigmoid' needs a model with a logit bias: set model.overrides.logit_bias_init "
                "(SigLIP starts at -10, with temperature_init 0.1)"
            )
        if loss.itm_weight > 0 and model.itm_head is None:
            raise ValueError(
                "loss.itm_weight > 0 needs an image-text matching head: a text tower of model_type "
                "'blip_text_model' and model.overrides.use_itm_head: true"
            )
        self.momentum = None
        if loss.momentum is not None:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.momentum = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(loss.momentum), use_buffers=False)
            self.momentum.requires_grad_(False)
        if loss.queue_size > 0:
            dim = model.config.embed_dim
            generator = torch.Generator().manual_seed(0)
            self.register_buffer("image_queue", F.normalize(torch.randn(loss.queue_size, dim, generator=generator), dim=-1))
            self.register_buffer("text_queue", F.normalize(torch.randn(loss.queue_size, dim, generator=generator), dim=-1))
            self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        else:
            self.image_queue = self.text_queue = self.queue_ptr = None

    def train(self, mode: bool = True):
        super().train(mode)
        for name in self.locked:  # LiT: a locked tower runs as at inference (no dropout)
            getattr(self.model, name).eval()
            if self.momentum is not None:
                getattr(self.momentum.module, name).eval()
        return self

    # -- encoders ------------------------------------------------------------------------------------
    def _encode(self, model, pixel_values, input_ids, attention_mask, keep_image_tokens: bool, text_pooled=None):
        """Normalised image and text embeddings (N, D), plus the image tokens (N, L, W) for ITM when asked.
        `text_pooled` (N, W): the locked text tower's output computed beforehand; only its projection runs."""
        image_features, image_tokens = model.image_features_and_tokens(pixel_values)
        if text_pooled is not None:
            text_embeds = F.normalize(model.text_proj(text_pooled), dim=-1)
        else:
            text_embeds = model.encode_text(input_ids, attention_mask)
        return F.normalize(image_features, dim=-1), text_embeds, (image_tokens if keep_image_tokens else None)

    # -- forward -------------------------------------------------------------------------------------
    def forward(self, pixel_values: torch.Tensor, input_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, ids: torch.Tensor | None = None, alpha: float = 0.0,
                text_pooled: torch.Tensor | None = None) -> LossOutput:
        """pixel_values (N, 3, S, S), input_ids / attention_mask (N, L), ids (N,) image ids (pairs with
        equal ids are positives for ITM mining); alpha: the soft-target weight at this step.
        text_pooled (N, W) replaces input_ids for a locked text tower whose output was computed once."""
        cfg = self.loss_config
        model = self.model
        use_itm = cfg.itm_weight > 0
        if (text_pooled is None) == (input_ids is None):
            raise ValueError("PretrainObjective needs either input_ids or text_pooled, not both")
        if use_itm and text_pooled is not None:
            raise ValueError("image-text matching needs the caption tokens (input_ids), not text_pooled")
        image_embeds, text_embeds, image_tokens = self._encode(model, pixel_values, input_ids, attention_mask, use_itm,
                                                               text_pooled)
        # the loss is computed in float32 whatever the autocast precision of the towers
        image_embeds, text_embeds = image_embeds.float(), text_embeds.float()
        all_image, all_text = gather_batch(image_embeds), gather_batch(text_embeds)
        scale = model.scale()
        parts = {}

        if cfg.kind == "sigmoid":
            logits = scale * all_image @ all_text.t() + model.logit_bias
            contrastive = sigmoid_loss(logits)
        elif self.momentum is None:
            contrastive = contrastive_loss(scale * all_image @ all_text.t())
        else:
            with torch.no_grad():
                self.momentum.update_parameters(model)
                image_m, text_m, _ = self._encode(self.momentum.module, pixel_values, input_ids, attention_mask, False,
                                                  text_pooled)
                image_m, text_m = gather_batch(image_m.float()), gather_batch(text_m.float())
                image_keys, text_keys = image_m, text_m
                if self.image_queue is not None:  # cat copies: enqueueing below cannot touch the keys
                    image_keys = torch.cat([image_m, self.image_queue])
                    text_keys = torch.cat([text_m, self.text_queue])
            contrastive = momentum_contrastive_loss(all_image, all_text, image_keys, text_keys, scale, alpha=alpha)
            if self.image_queue is not None:
                self._enqueue(image_m, text_m)
        parts[cfg.kind] = contrastive.detach()
        total = contrastive

        if use_itm:
            matching = self._itm_loss(image_embeds, text_embeds, all_image, all_text, image_tokens,
                                      input_ids, attention_mask, ids, scale.detach())
            parts["itm"] = matching.detach()
            total = total + cfg.itm_weight * matching
        return LossOutput(loss=total, parts=parts)

    @torch.no_grad()
    def _enqueue(self, image_m: torch.Tensor, text_m: torch.Tensor) -> None:
        size = self.image_queue.shape[0]
        if image_m.shape[0] > size:
            raise ValueError(f"loss.queue_size ({size}) must be at least the global batch ({image_m.shape[0]})")
        slots = (self.queue_ptr + torch.arange(image_m.shape[0], device=image_m.device)) % size
        self.image_queue[slots] = image_m.to(self.image_queue.dtype)
        self.text_queue[slots] = text_m.to(self.text_queue.dtype)
        self.queue_ptr.copy_((self.queue_ptr + image_m.shape[0]) % size)

    def _itm_loss(self, image_embeds, text_embeds, all_image, all_text, image_tokens, input_ids, attention_mask,
                  ids, scale) -> torch.Tensor:
        """FLIP's ITM: positives, plus one mined negative text per image and negative image per text."""
        model = self.model
        itm_ids = input_ids.clone()
        if self.enc_token_id is not None:
            itm_ids[:, 0] = self.enc_token_id
        all_ids = gather_batch(ids)
        all_tokens = gather_batch(image_tokens)
        all_itm_ids, all_mask = gather_batch(itm_ids), gather_batch(attention_mask)
        with torch.no_grad():
            positives = ids[:, None] == all_ids[None, :]
            neg_text = sample_hard_negatives(scale * image_embeds @ all_text.t(), positives)  # (N,) per image
            neg_image = sample_hard_negatives(scale * text_embeds @ all_image.t(), positives)  # (N,) per text
        positive_logits = model.match(itm_ids, attention_mask, image_hidden_states=image_tokens)
        negative_logits = model.match(
            torch.cat([itm_ids, all_itm_ids[neg_text]]),
            torch.cat([attention_mask, all_mask[neg_text]]),
            image_hidden_states=torch.cat([all_tokens[neg_image], image_tokens]),
        )
        return itm_loss(positive_logits.float(), negative_logits.float())
