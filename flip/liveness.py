"""Face liveness from text prompts, after CLIPC8 (papers.md): live person or which presentation attack.

Three ways, one result type (`LivenessResult`: per-category probabilities, the live score, the
attack category):
- zero-shot (`LivenessClassifier`): the image against text descriptions of a live face and of each
  attack category (`prompts/liveness.json`, editable data). Category scores are `flip.zeroshot`'s
  by-description scores (mean cosine similarity with the category's sentences); a softmax over
  categories at the model's own temperature turns them into probabilities. The live score sets live
  against the most probable attack (see "The decision" below), the attack category is that attack.
- fine-tuned: CLIPC8's recipe, contrastive training on (image, its category's description) pairs
  (`liveness_pairs` builds them from spoof records; `flip liveness-train` runs `flip.train` on them,
  full or LoRA). The result is a FLIP checkpoint, used through `LivenessClassifier` like any other.
  In-batch negatives of the same category are false negatives; the paper's recipe accepts that.
  One ships: `DEFAULT_LIVENESS_MODEL`, what `flip liveness` uses unless told `--model`, as a peft
  adapter on the embedded default (`flip.load` merges it in).
- linear probe (`LivenessProbe`): `flip.probe`'s multinomial logistic regression on frozen image
  embeddings, the baseline a user tries first.

The decision. The live score is live against the best attack: p_live / (p_live + p_best_attack),
which for the zero-shot classifier is sigmoid(scale * (s_live - s_best_attack)) on the category
scores. At the default threshold 0.5 an image is live exactly when "live" scores above every attack
category, so an image whose top category is live is never called an attack. (Before world v3 the
live score was the live category's softmax share against 0.5: with eight attack categories sharing
the rest, a face whose top class was live could still be called an attack.) A threshold calibrated
on a development set (`calibrate`) moves the same score.

The shipped operating point. A model can carry the threshold chosen for it at release
(`FLIPConfig.liveness_calibration`, or an adapter's `liveness_calibration.json`, which `flip.load`
puts there; written by `flip liveness-calibrate` from a development split without the unseen
attack categories): the live score of a small model is not calibrated around 0.5
(the embedded default calls most live faces an attack at 0.5). `LivenessClassifier` uses it as its
default threshold when its prompts, method and aggregate are the ones calibrated (the prompt file's
sha256 must match), and 0.5 otherwise; `threshold_source` says which. An explicit threshold wins.

Conventions (shared with `flip.attack_metrics`, whose metrics score these results): the live score is a
probability-like score in [0, 1], higher = more live; an image is live when `live_score >= threshold`
(a tie is live).
Prompt files used here must have a "live" class and at least one attack class; the shipped file's
attack keys equal `flip.data.synthetic.spoof.ATTACKS`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .attack_metrics import LIVE
from .prompts import PromptSet, load_prompts
from .textside import photo_records

#: The shipped prompt file's task name.
LIVENESS_TASK = "liveness"
#: What `flip liveness` (and the app's liveness tab) scores with when no model is named: the
#: embedded default after CLIPC8's fine-tuning (`finetune/configs/liveness_lora.yaml`: LoRA on the
#: image tower, synthetic spoof pairs, 3d_mask held out), with its own calibrated threshold.
#: The embedded default itself answers zero-shot with `--model flip-tiny-synth`.
DEFAULT_LIVENESS_MODEL = "flip-tiny-synth-liveness"
#: The default decision threshold on the live score (a probability) when none is calibrated.
DEFAULT_THRESHOLD = 0.5


def check_liveness_prompts(prompts: PromptSet) -> PromptSet:
    """A prompt set usable for liveness: a `live` class and at least one attack class."""
    where = str(prompts.path) if prompts.path is not None else prompts.task
    if LIVE not in prompts.classes:
        raise ValueError(f"{where}: a liveness prompt file needs a {LIVE!r} class; classes: {list(prompts.classes)}")
    return prompts


def record_category(record, index: int | None = None) -> str:
    """A spoof record's category: "live", its attack type, or "attack" when the type is unknown."""
    if record.live is None:
        name = record.file_name or f"record {index}"
        raise ValueError(f"{name}: no live/attack label (record.live is None)")
    return LIVE if record.live else (record.attack or "attack")


@dataclass
class LivenessResult:
    """Answers for N images. probs: (N, C) per-category probabilities (rows sum to 1)."""

    classes: tuple[str, ...]
    probs: torch.Tensor
    method: str = "zeroshot"
    threshold: float = DEFAULT_THRESHOLD  # the decision's default operating point (the scorer's)

    @property
    def live_index(self) -> int:
        return self.classes.index(LIVE)

    @property
    def live_score(self) -> torch.Tensor:
        """(N,) live against the best attack: p_live / (p_live + p_best_attack), 0.5 = a tie."""
        live = self.probs[:, self.live_index]
        return live / (live + self.best_attack_prob).clamp_min(1e-12)

    @property
    def best_attack_prob(self) -> torch.Tensor:
        """(N,) probability of the most probable attack category."""
        masked = self.probs.clone()
        masked[:, self.live_index] = -1.0
        return masked.max(dim=-1).values

    @property
    def attacks(self) -> list[str]:
        """The most probable attack category of each image (whatever its live score)."""
        masked = self.probs.clone()
        masked[:, self.live_index] = -1.0
        return [self.classes[i] for i in masked.argmax(dim=-1).tolist()]

    def is_live(self, threshold: float | None = None) -> list[bool]:
        """Live or not per image, at `threshold` (default: the result's own, `self.threshold`)."""
        return (self.live_score >= (self.threshold if threshold is None else threshold)).tolist()

    def record(self, i: int, threshold: float | None = None) -> dict[str, Any]:
        """Image i as plain data: decision, live score, attack category, probabilities per category."""
        threshold = self.threshold if threshold is None else threshold
        score = float(self.live_score[i])
        return {"decision": LIVE if score >= threshold else "attack", "live_score": score,
                "attack": self.attacks[i], "threshold": float(threshold),
                "scores": dict(zip(self.classes, self.probs[i].float().tolist()))}

    def __len__(self) -> int:
        return self.probs.shape[0]

    @staticmethod
    def cat(results: Sequence["LivenessResult"]) -> "LivenessResult":
        if not results:
            raise ValueError("LivenessResult.cat: no results")
        return LivenessResult(results[0].classes, torch.cat([r.probs for r in results]), results[0].method,
                              results[0].threshold)


@dataclass
class LivenessBatch:
    """What `LivenessClassifier.score_files` yields: readable paths, their result, failures (path, why).
    With a face stage a row is a face (as `flip.zeroshot.FileBatch`): `faces` per row, `no_face`."""

    paths: list[str]
    result: LivenessResult | None
    failed: list[tuple[str, str]] = field(default_factory=list)
    faces: list | None = None
    no_face: list[str] = field(default_factory=list)

    def records(self, threshold: float | None = None) -> list[dict[str, Any]]:
        """One plain-data record per row: {path, face, box, detector_score, whole_image, liveness: {...}}
        (the face fields only with a face stage; `threshold`: default the scorer's)."""
        return [{"path": path, **(self.faces[i].record() if self.faces is not None else {}),
                 "liveness": self.result.record(i, threshold)} for i, path in enumerate(self.paths)]


def model_calibration(model) -> dict | None:
    """The release-time liveness calibration a model carries (`FLIPConfig.liveness_calibration`; an
    ONNX export's copy of it), or None."""
    config = getattr(model, "config", None)
    found = getattr(config, "liveness_calibration", None) if config is not None else None
    return found if found is not None else getattr(model, "liveness_calibration", None)


def shipped_threshold(model, prompts: PromptSet, method: str = "descriptors",
                      aggregate: str = "mean") -> tuple[float, str]:
    """The default threshold for scoring with `prompts`: the model's calibrated one when it was chosen
    for these prompts (same sha256), method and aggregate; DEFAULT_THRESHOLD otherwise. Returns
    (threshold, where it comes from, in words)."""
    calibration = model_calibration(model)
    if calibration is None:
        return DEFAULT_THRESHOLD, "the default 0.5 (the model carries no liveness calibration)"
    wanted = {"prompts_sha256": prompts.sha256, "method": method, "aggregate": aggregate}
    differing = [k for k, v in wanted.items() if calibration.get(k, v) != v]
    if differing:
        return DEFAULT_THRESHOLD, (f"the default 0.5 (the model's calibration was chosen for other "
                                   f"{' and '.join(k.replace('_sha256', '') for k in differing)})")
    where = f"{calibration.get('data', 'a development set')} {calibration.get('split') or ''}".strip()
    return float(calibration["threshold"]), f"the model's, chosen on {where} at {calibration.get('criterion', '?')}"


def category_probabilities(scores: torch.Tensor, scale: float) -> torch.Tensor:
    """Softmax over categories of (N, C) similarity scores multiplied by the model's logit scale."""
    return torch.softmax(scores.float() * scale, dim=-1)


class LivenessClassifier:
    """Zero-shot (or fine-tuned-checkpoint) liveness by description.

        model, processor = flip.load()
        clf = LivenessClassifier(model, processor)
        result = clf.score(["face.jpg"])
        result.live_score, result.attacks, result.is_live(), result.record(0)

    prompts: a task name, a prompt-file path or a `PromptSet` (default: the shipped `liveness`).
    The text side is embedded once through `flip.zeroshot.FLIPClassifier` (and its `TextCache`).
    threshold: the default decision threshold of its results; None takes the model's calibrated one
    for these prompts (`shipped_threshold`), else 0.5. `threshold_source` says which, in words.
    """

    def __init__(self, model, processor, prompts: str | os.PathLike | PromptSet = LIVENESS_TASK, *,
                 method: str = "descriptors", aggregate: str = "mean", prompt_root: str | os.PathLike | None = None,
                 cache=None, cache_dir: str | os.PathLike | None = None, threshold: float | None = None):
        from .zeroshot import FLIPClassifier

        if not isinstance(prompts, PromptSet):
            prompts = load_prompts(prompts, prompt_root)
        self.prompts = check_liveness_prompts(prompts)
        self.classifier = FLIPClassifier(model, processor, [self.prompts], method=method, aggregate=aggregate,
                                         cache=cache, cache_dir=cache_dir)
        self.model, self.processor = model, processor
        self.method, self.aggregate = method, aggregate
        self.scale = float(model.scale().detach()) if hasattr(model, "scale") else 100.0
        if threshold is None:
            self.threshold, self.threshold_source = shipped_threshold(model, self.prompts, method, aggregate)
        else:
            self.threshold, self.threshold_source = float(threshold), "given"

    @property
    def classes(self) -> tuple[str, ...]:
        return self.prompts.classes

    def _result(self, results) -> LivenessResult:
        """The liveness result of `FLIPClassifier`'s per-task results (on the CPU)."""
        scores = results[self.prompts.task].scores.cpu()
        return LivenessResult(self.classes, category_probabilities(scores, self.scale), "zeroshot", self.threshold)

    def score_embeddings(self, image_embeds: torch.Tensor) -> LivenessResult:
        """Results for L2-normalised image embeddings (N, D)."""
        return self._result(self.classifier.classify_embeddings(image_embeds, to_cpu=True))

    def score(self, images) -> LivenessResult:
        """Score paths, PIL images, a list of them, or pixels (N, 3, H, W): float pixel values, or uint8
        from `processor.pixels` (through `FLIPClassifier.classify`)."""
        return self._result(self.classifier.classify(images))

    def score_files(self, paths: Sequence[str | os.PathLike], batch_size: int = 64,
                    num_workers: int | None = None, faces=None) -> Iterator[LivenessBatch]:
        """Score image files in batches (`FLIPClassifier.classify_files`: decoding in DataLoader workers);
        unreadable ones are reported in `failed`, by path, and skipped. `faces`: a `flip.faces.FaceStage`
        (or its mode) for one row per face of each photo."""
        for batch in self.classifier.classify_files(paths, batch_size, num_workers, faces=faces):
            yield LivenessBatch(batch.paths, self._result(batch.results) if batch.paths else None, batch.failed,
                                batch.faces, batch.no_face)


    def score_photos(self, images: Sequence[str | os.PathLike] | str | os.PathLike, faces="auto",
                     threshold: float | None = None, batch_size: int = 16,
                     num_workers: int | None = 0) -> list[dict[str, Any]]:
        """One record per face of each photo (`LivenessBatch.records`), as `flip liveness --json`
        writes them; unreadable files raise. `faces`: a `flip.faces.FaceStage` or its mode."""
        if isinstance(images, (str, os.PathLike)):
            images = [images]
        return photo_records(self.score_files(list(images), batch_size, num_workers, faces=faces),
                             lambda batch: batch.records(threshold))


# -- linear probe -----------------------------------------------------------------------------------
class LivenessProbe:
    """The linear-probe baseline: `flip.probe`'s logistic regression on frozen image embeddings over
    the liveness categories, answering as a `LivenessResult` (softmax of its logits)."""

    def __init__(self, probe):
        if LIVE not in probe.classes:
            raise ValueError(f"a liveness probe needs a {LIVE!r} class, got {list(probe.classes)}")
        self.probe = probe

    @property
    def classes(self) -> tuple[str, ...]:
        return self.probe.classes

    @torch.no_grad()
    def predict(self, features: torch.Tensor) -> LivenessResult:
        """(N, D) embeddings -> result; categories are those seen in training."""
        return LivenessResult(self.classes, torch.softmax(self.probe.logits(features.float().cpu()), dim=-1), "probe")

    @classmethod
    def fit(cls, features: torch.Tensor, labels: Sequence[str], config=None) -> "LivenessProbe":
        """Fit on (N, D) embeddings and N categories ("live" or an attack); `config`: a
        `flip.probe.ProbeConfig` (penalty chosen on a validation part, as `flip probe` does)."""
        from .probe import fit_probe

        present = set(labels)
        if LIVE not in present or present == {LIVE}:
            raise ValueError("a liveness probe needs live and attack examples to train on")
        return cls(fit_probe(features.float().cpu(), list(labels), config))


# -- fine-tuning pairs ------------------------------------------------------------------------------
def category_descriptions(prompts: PromptSet) -> dict[str, list[str]]:
    """Each category's texts: its descriptor sentences and its template sentences (the training captions)."""
    from .zeroshot import build_descriptor_prompts, build_template_prompts

    out: dict[str, list[str]] = {c: [] for c in prompts.classes}
    sentences, _, index = build_descriptor_prompts(prompts)
    templates, tindex = build_template_prompts(prompts)
    for s, i in zip([*sentences, *templates], [*index.tolist(), *tindex.tolist()]):
        out[prompts.classes[i]].append(s)
    return out


def liveness_pairs(records, prompts: PromptSet, exclude: Sequence[str] = (), seed: int = 0) -> list:
    """Spoof records -> training records whose caption is a description of their category.

    The sentence is drawn per record with `seed` (the same records give the same pairs).
    `exclude`: categories left out of training (the "unseen attack" protocol). A record whose
    category the prompt file lacks is an error naming it.
    """
    from dataclasses import replace

    check_liveness_prompts(prompts)
    unknown_excluded = sorted(set(exclude) - set(prompts.classes))
    if unknown_excluded:
        raise ValueError(f"exclude: {unknown_excluded} are not categories of the prompts {list(prompts.classes)}")
    texts = category_descriptions(prompts)
    rng = np.random.default_rng(seed)
    pairs = []
    for index, record in enumerate(records):
        category = record_category(record, index)
        if category not in texts:
            name = record.file_name or f"record {index}"
            raise ValueError(f"{name}: category {category!r} has no description in the prompts "
                             f"({list(prompts.classes)})")
        choice = int(rng.integers(len(texts[category])))
        if category in exclude:
            continue
        pairs.append(replace(record, caption=texts[category][choice]))
    if not pairs:
        raise ValueError("no training pairs left (every record's category is excluded, or no records)")
    return pairs


# -- scoring a labelled dataset, calibration ---------------------------------------------------------
def score_records(scorer, records, batch_size: int = 64,
                  num_workers: int | None = None) -> tuple[LivenessResult, list[str], list[tuple[str, str]]]:
    """Score labelled records (spoof records or an anti-spoofing layout) with a `LivenessClassifier`.

    Returns the result for the readable images, their labels ("live" or the attack category) and
    the unreadable ones as (name, reason), skipped.
    """
    records = list(records)
    labels = [record_category(r, i) for i, r in enumerate(records)]
    items = [r.image if r.image is not None else r.file_name for r in records]
    names = [str(r.image) if isinstance(r.image, (str, os.PathLike)) else r.file_name or f"record {i}"
             for i, r in enumerate(records)]
    from .zeroshot import image_file_loader

    results, kept, failed = [], [], []
    for batch in image_file_loader(items, scorer.processor, batch_size, num_workers):
        failed += [(names[i], why) for i, why in batch["failed"]]
        if batch["index"]:
            results.append(scorer.score_embeddings(scorer.classifier.encode_images(batch["pixels"])))
            kept += [labels[i] for i in batch["index"]]
    if not results:
        raise ValueError("no readable images to score")
    return LivenessResult.cat(results), kept, failed


def calibrate(scorer, records, criterion: str = "eer", target_bpcer: float | None = None,
              batch_size: int = 64, num_workers: int | None = None) -> tuple[float, list[tuple[str, str]]]:
    """The decision threshold chosen on a development set (see `flip.attack_metrics.calibrate_threshold`), and
    the unreadable images skipped. A dev set with one class only is a `ValueError`."""
    result, labels, failed = score_records(scorer, records, batch_size, num_workers)
    return _dev_threshold(result.live_score.tolist(), labels, criterion, target_bpcer), failed


def _dev_threshold(scores: list[float], labels: list[str], criterion: str, target_bpcer: float | None) -> float:
    """`flip.attack_metrics.calibrate_threshold` on a development set; its errors say so."""
    from .attack_metrics import calibrate_threshold

    try:
        return calibrate_threshold(scores, labels, criterion, target_bpcer)
    except ValueError as err:
        raise ValueError(f"development set: {err}") from None


def release_calibration(scorer: LivenessClassifier, records, *, data: str, split: str | None,
                        exclude: Sequence[str] = (), target_bpcer: float | None = None, batch_size: int = 64,
                        num_workers: int | None = None) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The `FLIPConfig.liveness_calibration` of `scorer`'s model and prompts: the threshold chosen on a
    labelled development split (at its EER, or at `target_bpcer`) without the `exclude` categories
    (the unseen attacks, which must stay unseen), with the dev figures at that threshold. Returns it
    and the unreadable images skipped. `data`/`split` are recorded as where it was chosen."""
    from .attack_metrics import pad_report

    kept = [r for i, r in enumerate(records) if record_category(r, i) not in set(exclude)]
    result, labels, failed = score_records(scorer, kept, batch_size, num_workers)
    scores = result.live_score.tolist()
    threshold = _dev_threshold(scores, labels, "eer" if target_bpcer is None else "bpcer", target_bpcer)
    dev = pad_report(scores, labels, threshold)
    return {"threshold": float(threshold),
            "criterion": "the EER" if target_bpcer is None else f"BPCER <= {target_bpcer}",
            "prompts": scorer.prompts.task, "prompts_sha256": scorer.prompts.sha256,
            "method": scorer.method, "aggregate": scorer.aggregate,
            "data": str(data), "split": split, "excluded": sorted(exclude),
            "counts": {"live": labels.count(LIVE), "attack": len(labels) - labels.count(LIVE)},
            "dev": {"bpcer": dev.bpcer, "apcer_max": dev.apcer_max, "acer": dev.acer, "eer": dev.eer,
                    "auc": dev.auc}}, failed
