"""CelebA-40 with supervision: how visible each cue is in the synthetic world, and to which model.

The CelebA-40 table (`eval.tasks.celeba40`) asks whether FLIP's image embedding carries each cue.
When it does not, two causes look alike: the world draws the cue too faintly to be seen at its
resolution, or the contrastively trained model did not learn it. This reference separates them by
training, on the same labelled faces, models that are told the 40 labels:

- probe: the class-balanced linear probe on the frozen FLIP image embedding (the CelebA-40 table's
  `probe_balanced`), here trained on as many faces as the supervised models see;
- vit: flip-tiny's own image tower (the same CLIP-vision architecture and size), from random
  initialisation, trained on the labels (one logit per attribute);
- cnn: a small convolutional network (four stride-2 stages) trained the same way.

All three score balanced accuracy on the same test faces as the CelebA-40 table. A cue the
supervised models see and FLIP's probe does not is a cue the contrastive model failed to learn;
a cue no model sees is drawn too faintly (or is too rare) to be learned from these faces.
Each supervised loss weighs positives by negatives/positives per attribute, so the decision at
logit 0 targets balanced accuracy.

    python -m eval.tasks.celeba40_supervised --data data/synth-fresh --train-data data/synth-captions \
        --train-n 20000 --epochs 4 --out report
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

MODELS = ("probe", "vit", "cnn")


def decode(images, size: int) -> torch.Tensor:
    """uint8 (N, 3, size, size) pixels of encoded images (resized when they differ), through
    `flip.data.formats.decode_image`, the decoder every model input goes through."""
    from PIL import Image

    from flip.data.formats import decode_image

    out = torch.empty(len(images), 3, size, size, dtype=torch.uint8)
    for i, data in enumerate(images):
        image = decode_image(data)
        if image.size != (size, size):
            image = image.resize((size, size), Image.BICUBIC)
        out[i] = torch.from_numpy(np.array(image)).permute(2, 0, 1)
    return out


def label_matrix(labels: list[dict], attributes: list[str]) -> torch.Tensor:
    """(N, A) float targets, NaN where a face has no label for the attribute."""
    table = {"true": 1.0, "false": 0.0}
    return torch.tensor([[table.get(row.get(a), math.nan) for a in attributes] for row in labels])


def small_cnn(num_outputs: int) -> nn.Module:
    def stage(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                             nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

    return nn.Sequential(stage(3, 32), stage(32, 64), stage(64, 128), stage(128, 256),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(256, num_outputs))


class TinyViT(nn.Module):
    """flip-tiny's image tower (its preset's CLIP-vision config), random init, one logit per attribute."""

    def __init__(self, num_outputs: int):
        super().__init__()
        from transformers import CLIPVisionConfig, CLIPVisionModel

        from flip.config import PRESETS

        vision = dict(PRESETS["flip-tiny"]["config"]["vision_config"])
        vision.pop("model_type")
        self.tower = CLIPVisionModel(CLIPVisionConfig(**vision))
        self.head = nn.Linear(vision["hidden_size"], num_outputs)

    def forward(self, pixels):
        return self.head(self.tower(pixel_values=pixels).pooler_output)


def balanced_bce(logits: torch.Tensor, targets: torch.Tensor, pos_weight: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy per (face, attribute), positives weighted, unlabelled entries left out."""
    known = ~torch.isnan(targets)
    loss = nn.functional.binary_cross_entropy_with_logits(logits, targets.nan_to_num(0.0),
                                                          pos_weight=pos_weight, reduction="none")
    return (loss * known).sum() / known.sum().clamp_min(1)


def train_supervised(model: nn.Module, pixels: torch.Tensor, targets: torch.Tensor, epochs: int,
                     batch_size: int, lr: float, seed: int) -> float:
    """AdamW with a cosine schedule, horizontal flips; returns the wall time in seconds."""
    torch.manual_seed(seed)
    known = ~torch.isnan(targets)
    positives = (targets.nan_to_num(0.0) * known).sum(0)
    pos_weight = ((known.sum(0) - positives) / positives.clamp_min(1)).clamp(max=100.0)
    steps = epochs * math.ceil(len(pixels) / batch_size)
    optim = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optim, max_lr=lr, total_steps=steps, pct_start=0.05)
    model.train()
    start, step = time.perf_counter(), 0
    for epoch in range(epochs):
        order = torch.randperm(len(pixels))
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            x = normalise(pixels[idx])
            flip_mask = torch.rand(len(idx)) < 0.5
            x[flip_mask] = x[flip_mask].flip(-1)
            loss = balanced_bce(model(x), targets[idx], pos_weight)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            schedule.step()
            step += 1
            if step % 50 == 0:
                print(f"  step {step}/{steps} loss {loss.item():.4f} ({time.perf_counter() - start:.0f} s)",
                      file=sys.stderr)
    return time.perf_counter() - start


def normalise(pixels: torch.Tensor) -> torch.Tensor:
    return (pixels.float() / 255.0 - 0.5) / 0.5


@torch.no_grad()
def predict(model: nn.Module, pixels: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    model.eval()
    return torch.cat([model(normalise(pixels[i:i + batch_size])) for i in range(0, len(pixels), batch_size)])


def score_columns(logits: torch.Tensor, test_labels: list[dict], attributes: list[str]) -> dict[str, float]:
    """Balanced accuracy per attribute of logit > 0, over the faces labelled for it."""
    from eval.tasks.celeba40 import metric

    out = {}
    for j, a in enumerate(attributes):
        keep = [i for i, row in enumerate(test_labels) if a in row]
        refs = [test_labels[i][a] for i in keep]
        if len(set(refs)) == 2:
            out[a] = metric(["true" if logits[i, j] > 0 else "false" for i in keep], refs)
    return out


def flip_probe(model_name, train_images, train_labels, test_images, test_labels, attributes) -> dict[str, float]:
    """The class-balanced probe of the CelebA-40 table on FLIP's frozen image embedding."""
    import flip
    from eval.tasks.attributes import embed_images
    from eval.tasks.celeba40 import PROBE_PENALTIES, metric
    from flip.probe import ProbeConfig, fit_probe

    model, processor = flip.load(model_name)
    with torch.no_grad():
        train = embed_images(model, processor, train_images)
        test = embed_images(model, processor, test_images)
    config = ProbeConfig(weight_decays=PROBE_PENALTIES, max_iter=200, balanced=True)
    out = {}
    for a in attributes:
        keep = [i for i, row in enumerate(test_labels) if a in row]
        fit = [i for i, row in enumerate(train_labels) if a in row]
        refs, fit_labels = [test_labels[i][a] for i in keep], [train_labels[i][a] for i in fit]
        if len(set(refs)) == 2 and len(set(fit_labels)) == 2:
            out[a] = metric(fit_probe(train[fit], fit_labels, config).predict(test[keep]), refs)
    return out


def format_table(columns: dict[str, dict[str, float]], attributes: list[str]) -> str:
    names = list(columns)
    lines = ["| attribute | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for a in attributes:
        lines.append(f"| {a} | " + " | ".join(f"{100 * columns[n][a]:.1f}" if a in columns[n] else "-"
                                              for n in names) + " |")
    lines.append("| **mean** | " + " | ".join(f"**{100 * np.mean(list(columns[n].values())):.1f}**" for n in names)
                 + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from eval.tasks.celeba40 import load_examples
    from flip.data.synthetic.cues import CELEBA_40, UNDRAWN

    p = argparse.ArgumentParser(prog="python -m eval.tasks.celeba40_supervised", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="FLIP model whose embedding the probe reads (default: embedded)")
    p.add_argument("--data", required=True, help="world-v3 faces to score (the CelebA-40 table's)")
    p.add_argument("--split", default="test")
    p.add_argument("--train-data", required=True, help="world-v3 faces to train on")
    p.add_argument("--train-split", default="train")
    p.add_argument("--train-n", type=int, default=20000, help="faces to train on (default 20000)")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="report")
    args = p.parse_args(argv)
    if args.train_n < 1 or args.epochs < 1 or args.batch_size < 1:
        p.error("--train-n, --epochs and --batch-size must be positive")

    try:
        test_images, test_labels = load_examples(args.data, args.split)
        train_images, train_labels = load_examples(args.train_data, args.train_split, args.train_n)
    except (FileNotFoundError, ValueError) as err:
        print(f"eval.tasks.celeba40_supervised: {err}", file=sys.stderr)
        return 2
    attributes = [a for a in CELEBA_40 if a not in UNDRAWN]
    columns, seconds = {}, {}
    if "probe" in args.models:
        start = time.perf_counter()
        columns["probe"] = flip_probe(args.model, train_images, train_labels, test_images, test_labels, attributes)
        seconds["probe"] = time.perf_counter() - start
    supervised = [m for m in args.models if m != "probe"]
    if supervised:
        size = 112
        if "vit" in supervised:
            from flip.config import PRESETS

            size = PRESETS["flip-tiny"]["config"]["vision_config"]["image_size"]
        train_pixels, test_pixels = decode(train_images, size), decode(test_images, size)
        targets = label_matrix(train_labels, attributes)
        for name in supervised:
            torch.manual_seed(args.seed)
            net, lr = (TinyViT(len(attributes)), 5e-4) if name == "vit" else (small_cnn(len(attributes)), 2e-3)
            print(f"{name}: {sum(p.numel() for p in net.parameters()) / 1e6:.2f}M parameters", file=sys.stderr)
            seconds[name] = train_supervised(net, train_pixels, targets, args.epochs, args.batch_size, lr, args.seed)
            columns[name] = score_columns(predict(net, test_pixels), test_labels, attributes)
    table = format_table(columns, attributes)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from eval.run import source_revision

    result = {"config": {**vars(args), "model": args.model or "flip-tiny-synth (embedded default)"},
              **source_revision(), "command": "python -m eval.tasks.celeba40_supervised " + " ".join(argv or sys.argv[1:]),
              "faces": len(test_images), "train_faces": len(train_images), "seconds": seconds,
              "columns": columns, "mean": {n: float(np.mean(list(c.values()))) for n, c in columns.items()}}
    (out / "celeba40_supervised.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "celeba40_supervised.md").write_text(table + "\n")
    print(f"\nwrote {out / 'celeba40_supervised.json'} and celeba40_supervised.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
