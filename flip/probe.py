"""Linear probe: a linear classifier on frozen image embeddings, against zero-shot by description.

    from flip.probe import probe_attributes
    rows = probe_attributes(model, processor, train_records, test_records, ["emotion", "Smiling"])
    rows[0].probe_accuracy, rows[0].zeroshot_accuracy, rows[0].chance

The FLIP paper (FaceCaption-15M, Dai et al. 2024) evaluates its encoders downstream as CLIP does
(Radford et al. 2021, section 3.2): the encoders stay frozen and only a linear layer is trained on
their image features. Set beside zero-shot classification by description (`flip.zeroshot`) on the
same test images, the probe says how much of an attribute the image embedding holds and how much of
that the text side reaches without labels.

Design choices:
- Features are `model.encode_image`: the L2-normalised embeddings that zero-shot classification
  compares with text, so both columns read the same vectors. They are standardised with the
  training set's mean and standard deviation before fitting.
- The head is multinomial logistic regression with an L2 penalty, fitted full-batch with torch's
  L-BFGS (strong-Wolfe line search), as CLIP's probes use L-BFGS logistic regression. The penalty is
  chosen from `ProbeConfig.weight_decays` by accuracy on a seeded validation part of the training
  set, then the head is refitted on the whole training set (CLIP sweeps its regularisation the
  same way). No scikit-learn: the problem is a few lines of torch.
- Attributes are the label fields of `FaceRecord` (`flip.data.records.ATTRIBUTES`) or keys of
  `record.extra` (CelebA's 40 booleans, FairFace's `race`, ...). Labels are compared as class keys
  (`flip.prompts.label_key`: `True` is "true"), the spelling prompt files use. Synthetic-world
  labels an image does not show (eye colour behind sunglasses) are not scored
  (`flip.data.synthetic.attributes.visible_attributes`), as in the attribute evaluation.
- The probe's classes are the labels seen in training; a test label never seen there counts as an
  error. Chance is 1 / the number of distinct labels in training and test together.
- Zero-shot uses the prompt task named after the attribute (`emotion`, or the one task whose last
  part is the attribute, `celeba/Smiling`), or the one given. Its accuracy is left out, with the
  reason, when there is no such task or the test labels are not all among its classes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from .data.records import ATTRIBUTES, FaceRecord
from .prompts import label_key


@dataclass
class ProbeConfig:
    weight_decays: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1)  # L2 penalties tried (one: no selection)
    val_fraction: float = 0.2  # share of the training set that scores the penalties
    max_iter: int = 300  # L-BFGS iterations per fit
    seed: int = 0  # draws the validation part
    min_select: int = 10  # fewer training examples: no selection, the middle penalty of the list
    balanced: bool = False  # weight classes by inverse frequency and select by balanced accuracy

    def __post_init__(self):
        self.weight_decays = tuple(float(w) for w in self.weight_decays)
        if not self.weight_decays or any(w < 0 for w in self.weight_decays):
            raise ValueError(f"ProbeConfig.weight_decays must be one or more numbers >= 0, got {self.weight_decays}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"ProbeConfig.val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.max_iter < 1:
            raise ValueError(f"ProbeConfig.max_iter must be >= 1, got {self.max_iter}")


# -- labels ---------------------------------------------------------------------------------------
def record_label(record: FaceRecord, attribute: str) -> str | None:
    """The class key of `record`'s label for `attribute` (a record field or an `extra` key), or None
    when the record has none or (synthetic-world attributes) the image does not show it."""
    if attribute in ATTRIBUTES:
        from .data.synthetic.attributes import visible_attributes

        value = visible_attributes(record.attributes()).get(attribute)
    else:
        value = record.extra.get(attribute)
    if value is not None and not isinstance(value, (str, bool, int)):
        raise ValueError(f"attribute {attribute!r}: {value!r} is not a class label (a string, boolean or integer)")
    return label_key(value)


def label_names(records: Sequence[FaceRecord]) -> list[str]:
    """Every attribute some record has a label for: record fields in `ATTRIBUTES` order, then the
    `extra` keys whose values are all booleans (CelebA-style attributes), sorted."""
    fields = [a for a in ATTRIBUTES if any(getattr(r, a) is not None for r in records)]
    extra: dict[str, bool] = {}
    for record in records:
        for key, value in record.extra.items():
            extra[key] = extra.get(key, True) and (value is None or isinstance(value, bool))
    return fields + sorted(k for k, all_bool in extra.items() if all_bool)


def collect_labels(records: Sequence[FaceRecord], attributes: Sequence[str], source: str) -> dict[str, list[str | None]]:
    """attribute -> the label of each record (None where it has none); an attribute that no record
    has is a ValueError naming it, `source` and the labels the records do have."""
    out = {}
    for attribute in attributes:
        labels = [record_label(r, attribute) for r in records]
        if all(label is None for label in labels):
            present = label_names(records)
            raise ValueError(f"{source}: no example has a label for attribute {attribute!r}; "
                             f"labels present: {', '.join(present) or '(none)'}")
        out[attribute] = labels
    return out


# -- features -------------------------------------------------------------------------------------
def extract_features(model, processor, images: Sequence, batch_size: int = 64,
                     num_workers: int | None = None, names: Sequence[str] | None = None) -> torch.Tensor:
    """(N, D) float32 CPU embeddings (`model.encode_image`) of images given as paths or encoded bytes,
    decoded in DataLoader workers. An unreadable image is a ValueError naming it (`names[i]`, else
    its position)."""
    from .zeroshot import image_file_loader

    param = next(model.parameters())
    out = []
    for batch in image_file_loader(images, processor, batch_size, num_workers, pin_memory=param.is_cuda):
        if batch["failed"]:
            index, why = batch["failed"][0]
            raise ValueError(f"{names[index] if names is not None else f'image {index}'}: {why}")
        with torch.inference_mode():
            pixel_values = processor.normalize(batch["pixels"].to(param.device, non_blocking=True), param.dtype)
            out.append(model.encode_image(pixel_values).float().cpu())
    if not out:
        raise ValueError("no images to embed")
    return torch.cat(out)


# -- the linear head ------------------------------------------------------------------------------
@dataclass
class LinearProbe:
    """A fitted head: logits = ((x - mean) / std) @ weight.T + bias over `classes`.

    mean, std: (D,) feature standardisation from the training set; weight (C, D), bias (C,).
    """

    classes: tuple[str, ...]
    mean: torch.Tensor
    std: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor
    weight_decay: float

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """(N, D) features -> (N, C) logits."""
        return ((features - self.mean) / self.std) @ self.weight.t() + self.bias

    def predict(self, features: torch.Tensor) -> list[str]:
        return [self.classes[i] for i in self.logits(features).argmax(dim=1).tolist()]


def fit_logistic_regression(features: torch.Tensor, targets: torch.Tensor, num_classes: int,
                            weight_decay: float, max_iter: int = 300,
                            class_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression: minimises mean cross-entropy (per-class weighted when
    `class_weights` is given, as F.cross_entropy weighs) + weight_decay / 2 * ||W||^2 with full-batch
    L-BFGS. features (N, D) float, targets (N,) long in [0, num_classes). Returns weight (C, D) and bias (C,)."""
    x = features.detach().float()
    weight = torch.zeros(num_classes, x.shape[1], requires_grad=True)
    bias = torch.zeros(num_classes, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, history_size=20,
                                  tolerance_grad=1e-6, tolerance_change=1e-9, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ weight.t() + bias, targets, weight=class_weights) + weight_decay / 2 * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return weight.detach(), bias.detach()


def fit_probe(features: torch.Tensor, labels: Sequence[str], config: ProbeConfig | None = None) -> LinearProbe:
    """A `LinearProbe` on (N, D) features and their N class keys, its penalty chosen on a validation
    part of them (see the module docstring). Needs at least two distinct labels."""
    config = config or ProbeConfig()
    classes = tuple(sorted(set(labels)))
    if len(classes) < 2:
        raise ValueError(f"a probe needs at least two classes among its training labels, got {list(classes)}")
    if features.shape[0] != len(labels):
        raise ValueError(f"fit_probe: {features.shape[0]} feature rows but {len(labels)} labels")
    index = {c: i for i, c in enumerate(classes)}
    targets = torch.tensor([index[label] for label in labels])
    mean, std = features.mean(0), features.std(0).nan_to_num(1.0).clamp_min(1e-6)
    x = (features - mean) / std

    # balanced: every class weighs the same in the loss (n / (C * count)), and penalties are chosen by
    # the mean per-class recall, so a rare attribute is not fitted as "always no"
    class_weights = (len(labels) / (len(classes) * torch.bincount(targets, minlength=len(classes)).float())
                     if config.balanced else None)

    def score(predicted: torch.Tensor, truth: torch.Tensor) -> float:
        if not config.balanced:
            return (predicted == truth).float().mean().item()
        recalls = [(predicted[truth == c] == c).float().mean() for c in truth.unique()]
        return torch.stack(recalls).mean().item()

    decays = config.weight_decays
    if len(decays) == 1 or len(labels) < config.min_select:
        chosen = decays[len(decays) // 2]
    else:
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(config.seed))
        n_val = max(1, round(len(labels) * config.val_fraction))
        val, fit = order[:n_val], order[n_val:]
        scores = []
        for decay in decays:
            weight, bias = fit_logistic_regression(x[fit], targets[fit], len(classes), decay, config.max_iter,
                                                   class_weights)
            scores.append(score((x[val] @ weight.t() + bias).argmax(1), targets[val]))
        best = max(scores)  # ties go to the strongest penalty (the simplest head)
        chosen = max(d for d, s in zip(decays, scores) if s == best)
    weight, bias = fit_logistic_regression(x, targets, len(classes), chosen, config.max_iter, class_weights)
    return LinearProbe(classes, mean, std, weight, bias, chosen)


def accuracy(predictions: Sequence[str], references: Sequence[str]) -> float:
    if len(predictions) != len(references) or not references:
        raise ValueError(f"accuracy: {len(predictions)} predictions for {len(references)} references")
    return sum(p == r for p, r in zip(predictions, references)) / len(references)


# -- zero-shot ------------------------------------------------------------------------------------
def zeroshot_task_for(attribute: str, prompt_root: str | None = None) -> str | None:
    """The prompt task named after `attribute`: the task itself, else the one task whose last part it
    is (`Smiling` -> `celeba/Smiling`; the `rephrased/` variants are not candidates). None if none or
    several."""
    from .prompts import available_tasks

    tasks = available_tasks(prompt_root)
    if attribute in tasks:
        return attribute
    matches = [t for t in tasks if t.rsplit("/", 1)[-1] == attribute and not t.startswith("rephrased/")]
    return matches[0] if len(matches) == 1 else None


# -- the whole protocol ---------------------------------------------------------------------------
@dataclass
class AttributeProbe:
    """One attribute's figures. Accuracies are fractions in [0, 1]; `zeroshot_accuracy` is None
    (with `note` saying why) when zero-shot could not be scored."""

    attribute: str
    classes: tuple[str, ...]  # the probe's classes: the labels seen in training
    n_train: int
    n_test: int
    probe_accuracy: float
    zeroshot_accuracy: float | None
    chance: float  # 1 / distinct labels in training and test
    weight_decay: float  # the penalty the validation part chose
    zeroshot_task: str | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["classes"] = list(self.classes)
        return out


@dataclass
class _Side:
    records: list[FaceRecord]
    labels: dict[str, list[str | None]] = field(default_factory=dict)
    features: torch.Tensor | None = None


def probe_attributes(model, processor, train: Sequence[FaceRecord], test: Sequence[FaceRecord],
                     attributes: Sequence[str] | None = None, *, config: ProbeConfig | None = None,
                     zeroshot_tasks: Mapping[str, str] | None = None, prompt_root: str | None = None,
                     batch_size: int = 64, num_workers: int | None = None,
                     sources: tuple[str, str] = ("train", "test")) -> list[AttributeProbe]:
    """Fit a probe per attribute on `train`, score it and zero-shot by description on `test`.

    attributes: record fields or `extra` keys; None: every attribute (`label_names`) with two or more
    distinct labels in `train` and some in `test`. An attribute asked for but missing from either side
    is a ValueError naming it and the side (`sources` names the two sides in messages). zeroshot_tasks: attribute -> prompt task,
    where the default lookup (`zeroshot_task_for`) is not the one wanted.
    """
    from .prompts import load_prompts
    from .zeroshot import FLIPClassifier, TextCache

    sides = [_Side(list(train)), _Side(list(test))]
    for side, source in zip(sides, sources):
        if not side.records:
            raise ValueError(f"{source}: no examples")
    if attributes is None:  # what a probe can learn and the test can score
        train_names, test_names = label_names(sides[0].records), set(label_names(sides[1].records))
        attributes = [a for a in train_names if a in test_names
                      and len({record_label(r, a) for r in sides[0].records} - {None}) >= 2]
        if not attributes:
            raise ValueError(f"no attribute has two or more distinct labels in {sources[0]} and labels in "
                             f"{sources[1]} (labels present: {', '.join(train_names) or '(none)'} in {sources[0]}; "
                             f"{', '.join(sorted(test_names)) or '(none)'} in {sources[1]})")
    for side, source in zip(sides, sources):
        side.labels = collect_labels(side.records, attributes, source)

    for side, source in zip(sides, sources):  # embed only the images some attribute labels
        used = [i for i, r in enumerate(side.records) if any(side.labels[a][i] is not None for a in attributes)]
        missing = [i for i in used if side.records[i].image is None]
        if missing:
            name = side.records[missing[0]].file_name or f"example {missing[0]}"
            raise ValueError(f"{source}: {name} has no image ({len(missing)} example(s) without one)")
        names = [side.records[i].file_name or f"example {i}" for i in used]
        try:
            embedded = extract_features(model, processor, [side.records[i].image for i in used], batch_size,
                                        num_workers, names)
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from None
        features = torch.zeros(len(side.records), embedded.shape[1])
        features[used] = embedded
        side.features = features

    # zero-shot: one classifier for every attribute that has a usable prompt task
    tasks = dict(zeroshot_tasks or {})
    prompt_sets, notes = {}, {}
    for attribute in attributes:
        task = tasks.get(attribute) or zeroshot_task_for(attribute, prompt_root)
        if task is None:
            notes[attribute] = f"no prompt task for {attribute!r}"
            continue
        try:
            prompts = load_prompts(task, prompt_root)
        except KeyError as err:
            raise ValueError(f"attribute {attribute!r}: {err.args[0]}") from None
        unknown = sorted({x for x in sides[1].labels[attribute] if x is not None} - set(prompts.classes))
        if unknown:
            notes[attribute] = f"labels {unknown} are not classes of prompt task {task!r} {list(prompts.classes)}"
        else:
            prompt_sets[attribute] = prompts
    predictions = {}
    if prompt_sets:
        unique = list({p.task: p for p in prompt_sets.values()}.values())
        classifier = FLIPClassifier(model, processor, unique, cache=TextCache())
        param = next(model.parameters())
        results = classifier.classify_embeddings(sides[1].features.to(param.device), to_cpu=True)
        predictions = {a: results[p.task].predictions for a, p in prompt_sets.items()}

    rows = []
    for attribute in attributes:
        (train_rows, train_labels), (test_rows, test_labels) = (
            ([i for i, x in enumerate(s.labels[attribute]) if x is not None],
             [x for x in s.labels[attribute] if x is not None]) for s in sides)
        try:
            probe = fit_probe(sides[0].features[train_rows], train_labels, config)
        except ValueError as err:
            raise ValueError(f"{sources[0]}: attribute {attribute!r}: {err}") from None
        zeroshot = None
        if attribute in predictions:
            zeroshot = accuracy([predictions[attribute][i] for i in test_rows], test_labels)
        rows.append(AttributeProbe(
            attribute=attribute, classes=probe.classes, n_train=len(train_rows), n_test=len(test_rows),
            probe_accuracy=accuracy(probe.predict(sides[1].features[test_rows]), test_labels),
            zeroshot_accuracy=zeroshot, chance=1 / len(set(train_labels) | set(test_labels)),
            weight_decay=probe.weight_decay,
            zeroshot_task=prompt_sets[attribute].task if attribute in prompt_sets else None,
            note=notes.get(attribute),
        ))
    return rows
