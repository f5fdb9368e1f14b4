"""Are the cues at chance for the supervised CNN hidden by the drawing, or by where the face lands?

    python report/cue_alignment/measure.py --out report/cue_alignment/results.json

`eval.tasks.celeba40_supervised`'s small CNN, its training (balanced BCE, AdamW, one-cycle, flips)
and scoring (balanced accuracy per attribute), on the same freshly drawn faces in two views:
- full: the 112 px portrait as the world renders it (pose, framing, scale and lighting vary);
- aligned: the same pixels mapped by one similarity transform so that the renderer's own eye and
  mouth centres land on the ArcFace template's (`flip.faces.align`, margin 0.2): the crop a perfect
  five-point detector gives the face stage.
If the aligned view reads the brows, noses and cheeks that the full view leaves at chance, the
information is drawn and the learner loses it to framing; if not, the drawing is the limit.
Faces: people and photos drawn with the world's own samplers (`make_identities`, `sample_face`,
`sample_nuisance`), train and test from different seeds, so no person is in both. A diagnostic.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from eval.tasks.celeba40_supervised import label_matrix, predict, score_columns, small_cnn, train_supervised
from flip.data.synthetic.cues import CELEBA_40, UNDRAWN, celeba_labels
from flip.data.synthetic.faces import make_identities, sample_face
from flip.data.synthetic.render import render_face, sample_nuisance
from flip.faces.align import face_template, similarity_transform

SIZE = 112
MARGIN = 0.2


def aligned(image: Image.Image, layout) -> Image.Image:
    """`image` with the layout's eyes and mouth centre on the template's (the mouth: its corners' mean)."""
    template = face_template(SIZE, MARGIN)
    src = np.stack([template[0], template[1], template[3:5].mean(axis=0)])
    dst = np.stack([layout.eyes[0], layout.eyes[1], layout.mouth])
    inverse = similarity_transform(src, dst)
    return image.transform((SIZE, SIZE), Image.Transform.AFFINE, tuple(inverse.ravel()),
                           resample=Image.Resampling.BICUBIC)


def draw(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, list[dict]]:
    """`n` faces of `n // 4` people: (full, aligned) uint8 pixels and CelebA label rows."""
    people = make_identities(max(1, n // 4), seed)
    full, align, labels = [], [], []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        face = sample_face(rng, people[i % len(people)])
        nuisance = sample_nuisance(rng)
        image, layout = render_face(face, SIZE, nuisance)
        full.append(np.asarray(image.convert("RGB")))
        align.append(np.asarray(aligned(image.convert("RGB"), layout)))
        labels.append({a: ("true" if v else "false") for a, v in celeba_labels(face, nuisance).items() if v is not None})

    def pixels(arrays):
        return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()

    return pixels(full), pixels(align), labels


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train-n", type=int, default=10000)
    p.add_argument("--test-n", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--examples", default=None, help="also save a grid of full and aligned views (PNG)")
    args = p.parse_args(argv)
    attributes = [a for a in CELEBA_40 if a not in UNDRAWN]
    start = time.perf_counter()
    train = draw(args.train_n, 20261214)
    test = draw(args.test_n, 20261215)
    print(f"drew {args.train_n} + {args.test_n} faces in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    if args.examples:
        rows = [np.concatenate([test[v][i].permute(1, 2, 0).numpy() for i in range(8)], axis=1) for v in (0, 1)]
        Image.fromarray(np.concatenate(rows, axis=0)).save(args.examples)
    targets = label_matrix(train[2], attributes)
    columns, seconds = {}, {}
    for view, index in (("full", 0), ("aligned", 1)):
        torch.manual_seed(args.seed)
        net = small_cnn(len(attributes))
        seconds[view] = train_supervised(net, train[index], targets, args.epochs, 128, 2e-3, args.seed)
        columns[view] = score_columns(predict(net, test[index]), test[2], attributes)
        print(f"{view}: mean {np.mean(list(columns[view].values())):.3f}", file=sys.stderr)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    result = {"command": "python report/cue_alignment/measure.py " + " ".join(argv or sys.argv[1:]), "commit": commit,
              "train_faces": args.train_n, "test_faces": args.test_n, "epochs": args.epochs, "seconds": seconds,
              "mean": {v: float(np.mean(list(c.values()))) for v, c in columns.items()}, "columns": columns}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    for a in attributes:
        print(f"{a:<22} " + "  ".join(f"{columns[v].get(a, float('nan')):.3f}" for v in columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
