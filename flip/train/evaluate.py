"""The trainer's end-of-epoch figures: retrieval recall both ways and zero-shot attribute accuracy.

Design choices:
- `retrieval_recall` and `zero_shot_accuracy` are pure functions on tensors. Recall@k counts a query
  as found when any of its positives (every caption of the same image) is among its k best.
- Zero-shot accuracy here is the small CLIP baseline: each attribute value becomes one sentence
  through a fixed template ("a photo of a person with {} hair."), the class embedding is that
  sentence's, the prediction is the most similar class. Chance is 1 / number of classes. The full
  descriptor-based classifier with prompt files lives in `flip.zeroshot`; this one only tracks
  training progress with no files to load.
- Only attributes with at least two values among the held-out records are scored.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..data.records import ATTRIBUTES, FaceRecord

#: attribute -> template for its value (bool attributes: (sentence if False, sentence if True)).
TEMPLATES: dict[str, str | tuple[str, str]] = {
    "face_shape": "a photo of a person with a {} face.",
    "skin_tone": "a photo of a person with {} skin.",
    "eye_color": "a photo of a person with {} eyes.",
    "hair_color": "a photo of a person with {} hair.",
    "hair_style": "a photo of a person with {} hair.",
    "emotion": "a photo of a {} person.",
    "age_group": "a photo of a {} person.",
    "eyewear": "a photo of a person wearing {}.",
    "facial_hair": "a photo of a person with {}.",
    "eyes_open": ("a photo of a person with closed eyes.", "a photo of a person with open eyes."),
    "hat": ("a photo of a person without a hat.", "a photo of a person wearing a hat."),
    "earrings": ("a photo of a person without earrings.", "a photo of a person wearing earrings."),
    "makeup": ("a photo of a person without makeup.", "a photo of a person wearing makeup."),
}
#: how the value "none" reads in a template
NONE_PHRASES = {"eyewear": "no glasses", "facial_hair": "no facial hair"}


def retrieval_recall(similarity: torch.Tensor, positives: torch.Tensor | None = None,
                     ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Image-to-text and text-to-image recall@k, in [0, 1].

    similarity: (N_images, N_texts) scores. positives: (N_images, N_texts) bool, True where a text
    describes an image; None means the diagonal (a square matrix of pairs).
    Returns {"i2t_r1": ..., "t2i_r1": ..., ...} for each k.
    """
    if similarity.ndim != 2:
        raise ValueError(f"retrieval_recall: similarity must be (N_images, N_texts), got {tuple(similarity.shape)}")
    if positives is None:
        if similarity.shape[0] != similarity.shape[1]:
            raise ValueError("retrieval_recall: a non-square similarity needs an explicit positives matrix")
        positives = torch.eye(similarity.shape[0], dtype=torch.bool, device=similarity.device)
    if positives.shape != similarity.shape:
        raise ValueError(f"retrieval_recall: positives {tuple(positives.shape)} and similarity "
                         f"{tuple(similarity.shape)} differ in shape")
    out = {}
    for name, sim, pos in (("i2t", similarity, positives), ("t2i", similarity.t(), positives.t())):
        for k in ks:
            top = sim.topk(min(k, sim.shape[1]), dim=1).indices
            out[f"{name}_r{k}"] = pos.gather(1, top).any(dim=1).float().mean().item()
    return out


def zero_shot_accuracy(image_embeds: torch.Tensor, class_embeds: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of images (N, D) whose most similar class embedding (C, D) is their label (N,)."""
    if image_embeds.shape[0] != labels.shape[0]:
        raise ValueError(f"zero_shot_accuracy: {image_embeds.shape[0]} images but {labels.shape[0]} labels")
    predictions = (image_embeds @ class_embeds.t()).argmax(dim=1)
    return (predictions == labels).float().mean().item()


def class_sentence(attribute: str, value) -> str:
    """The sentence that stands for one attribute value."""
    template = TEMPLATES.get(attribute)
    if isinstance(template, tuple):
        return template[bool(value)]
    if template is None:
        return f"a photo of a person whose {attribute.replace('_', ' ')} is {value}."
    if value == "none":
        value = NONE_PHRASES.get(attribute, f"no {attribute.replace('_', ' ')}")
    return template.format(value)


def attribute_labels(records: Sequence[FaceRecord]) -> dict[str, tuple[list, list[int], list[int]]]:
    """attribute -> (class values, record indices, class index of each) for every attribute with at
    least two values among the records."""
    out = {}
    for attribute in ATTRIBUTES:
        known = [(i, getattr(r, attribute)) for i, r in enumerate(records) if getattr(r, attribute) is not None]
        values = sorted({v for _, v in known}, key=str)
        if len(values) < 2:
            continue
        index = {v: c for c, v in enumerate(values)}
        out[attribute] = (values, [i for i, _ in known], [index[v] for _, v in known])
    return out


@torch.no_grad()
def encode_pairs(model, loader, device: torch.device, autocast) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalised image and text embeddings (N, D) in float32 and image ids (N,) of a pair loader."""
    images, texts, ids = [], [], []
    for batch in loader:
        with autocast():
            images.append(model.encode_image(batch["pixel_values"].to(device)).float())
            texts.append(model.encode_text(batch["input_ids"].to(device), batch["attention_mask"].to(device)).float())
        ids.append(batch["ids"].to(device))
    return torch.cat(images), torch.cat(texts), torch.cat(ids)


@torch.no_grad()
def evaluate(model, processor, records: Sequence[FaceRecord], loader, device: torch.device, autocast) -> dict:
    """Retrieval recall@1/5/10 both ways and zero-shot accuracy per attribute on held-out pairs."""
    was_training = model.training
    model.eval()
    try:
        image_embeds, text_embeds, ids = encode_pairs(model, loader, device, autocast)
        metrics = {f"eval/{k}": v for k, v in retrieval_recall(image_embeds @ text_embeds.t(),
                                                               ids[:, None] == ids[None, :]).items()}
        accuracies, chances = [], []
        for attribute, (values, rows, labels) in attribute_labels(records).items():
            sentences = [class_sentence(attribute, v) for v in values]
            with autocast():
                class_embeds = model.encode_text(processor.texts(sentences).to(device)).float()
            accuracy = zero_shot_accuracy(image_embeds[rows], class_embeds, torch.tensor(labels, device=device))
            metrics[f"eval/zeroshot_{attribute}"] = accuracy
            metrics[f"eval/chance_{attribute}"] = 1 / len(values)
            accuracies.append(accuracy)
            chances.append(1 / len(values))
        if accuracies:
            metrics["eval/zeroshot_mean"] = sum(accuracies) / len(accuracies)
            metrics["eval/chance_mean"] = sum(chances) / len(chances)
        metrics["eval/pairs"] = len(ids)
        return metrics
    finally:
        model.train(was_training)
