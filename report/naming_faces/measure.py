"""Where the face-naming loss of the ResNet default comes from: names, or faces at scene size?

    python report/naming_faces/measure.py --out report/naming_faces/results.json

For each model (the embedded ResNet default and the ViT run of the same recipe, `runs/flip-tiny-vit-synth/final`):
- names: the 57 person names of `data/synth-naming`'s train split through the text tower and its projection
  (as `flip.naming.embed.embed_names` does): mean pairwise cosine, mean nearest-other-name cosine, and the
  participation ratio of the centred embeddings (how many directions they spread over);
- scene faces: the face boxes of the first 80 training scenes (`embed_faces`, as the naming task crops them):
  same-person minus other-person cosine, in SDs of the other-person cosines ("identity gap");
- resolution: 240 live faces of 60 people from `data/synth-fresh` (4 each), each downscaled to 112, 32 and
  20 px and scaled back to 112 (bilinear): the identity gap at each size. Scene faces are about 15-25 px wide.
A diagnostic for the README, not a benchmark; deterministic (no sampling).
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import subprocess
from pathlib import Path

import torch
from PIL import Image

import flip
from flip.data.loaders import load_records
from flip.naming.embed import embed_faces, embed_names

MODELS = ("flip-tiny-synth", "runs/flip-tiny-vit-synth/final")


def identity_gap(embeds: torch.Tensor, people: list[str]) -> float:
    e = torch.nn.functional.normalize(embeds.float(), dim=-1)
    sim = e @ e.T
    same = torch.tensor([[a == b for b in people] for a in people])
    eye = torch.eye(len(people), dtype=torch.bool)
    return float((sim[same & ~eye].mean() - sim[~same].mean()) / sim[~same].std())


def spread(embeds: torch.Tensor) -> dict:
    e = torch.nn.functional.normalize(embeds.float(), dim=-1)
    sim = e @ e.T
    eye = torch.eye(len(e), dtype=torch.bool)
    share = torch.linalg.svdvals(e - e.mean(0)) ** 2
    share = share / share.sum()
    return {"mean_cos": float(sim[~eye].mean()), "nearest_cos": float(sim.masked_fill(eye, -2).max(1).values.mean()),
            "participation_ratio": float(1 / (share ** 2).sum())}


def image(record) -> Image.Image:
    raw = record.image
    return (raw if isinstance(raw, Image.Image) else Image.open(io.BytesIO(raw) if isinstance(raw, bytes) else raw)
            ).convert("RGB")


@torch.no_grad()
def measure(name: str, scenes: list[dict], scene_dir: Path, faces: list) -> dict:
    model, processor = flip.load(name)
    model.eval()
    names = sorted({n for s in scenes for n in s["names"]})
    crops, crop_people = [], []
    for s in scenes[:80]:
        boxes = [f["box"] for f in s["faces"]]
        crops.append(embed_faces(model, processor, Image.open(scene_dir / s["file_name"]).convert("RGB"), boxes))
        crop_people += s["extra"]["identities"][:len(boxes)]
    people = [p for p, _ in faces]
    by_size = {}
    for px in (112, 32, 20):
        images = [image(r).resize((px, px), Image.BILINEAR).resize((112, 112), Image.BILINEAR) for _, r in faces]
        by_size[f"{px}px"] = identity_gap(model.encode_image(processor.images(images)), people)
    return {"names": {"count": len(names), **spread(embed_names(model, processor, names))},
            "scene_faces": {"count": len(crop_people), "identity_gap": identity_gap(torch.cat(crops), crop_people)},
            "identity_gap_by_face_size": by_size}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", default="data/synth-naming")
    p.add_argument("--faces", default="data/synth-fresh")
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--out", required=True)
    args = p.parse_args()
    scene_dir = Path(args.scenes) / "train"
    scenes = [json.loads(line) for line in (scene_dir / "metadata.jsonl").read_text().splitlines()]
    by_person = collections.defaultdict(list)
    for r in load_records(args.faces, "auto", "test"):
        if r.live is not False:
            by_person[r.identity].append(r)
    chosen = [p for p in by_person if len(by_person[p]) >= 4][:60]
    faces = [(p, r) for p in chosen for r in by_person[p][:4]]
    commit = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], capture_output=True, text=True).stdout.strip()
    command = "python report/naming_faces/measure.py " + (f"--models {' '.join(args.models)} " if args.models != list(MODELS)
                                                         else "") + f"--out {args.out}"
    result = {"commit": commit, "command": command, "models": {m: measure(m, scenes, scene_dir, faces) for m in args.models}}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
