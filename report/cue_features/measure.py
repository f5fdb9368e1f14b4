"""Does the image tower hold the CelebA cues before its global pool, and lose them there?

    python report/cue_features/measure.py --out report/cue_features/results.json

The harness's CelebA-40 probe (`eval.tasks.celeba40`, class-balanced, 3,000 training faces of
`data/synth-captions`, 2,000 test faces of `data/synth-fresh`) reads the projected, normalised image
embedding. Here the same probe (`flip.probe.fit_probe`, `ProbeConfig(balanced=True)`, the harness's
penalties) reads four features of the embedded default's ResNet, all from one forward pass:
- embedding: the projected, normalised embedding (what the harness reads);
- pooled: the tower's pooled stage-4 output before the projection (256);
- map_2x2: the 4x4 stage-4 map average-pooled to 2x2 (1,024): where on the face, coarsely;
- map_4x4: the whole 4x4 stage-4 map (4,096).
Features are standardised by the probe. If the map probes far above the pooled one, the cues are in
the tower and the global average pool loses them. A diagnostic for the README, not a benchmark.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import torch

import flip
from eval.tasks.celeba40 import PROBE_PENALTIES, load_examples, metric
from flip.probe import ProbeConfig, fit_probe
from flip.zeroshot import image_file_loader

FEATURES = ("embedding", "pooled", "map_2x2", "map_4x4")


@torch.inference_mode()
def features(model, processor, images) -> dict[str, torch.Tensor]:
    out = {name: [] for name in FEATURES}
    for batch in image_file_loader(images, processor, 128, None, pin_memory=False):
        pixels = processor.normalize(batch["pixels"], torch.float32)
        hidden = model.image_hidden_states(pixels)
        fmap, pooled = hidden.last_hidden_state, hidden.pooler_output.flatten(1)
        out["embedding"].append(torch.nn.functional.normalize(model.vision_proj(pooled), dim=-1))
        out["pooled"].append(pooled)
        out["map_2x2"].append(torch.nn.functional.adaptive_avg_pool2d(fmap, 2).flatten(1))
        out["map_4x4"].append(fmap.flatten(1))
    return {name: torch.cat(parts).float() for name, parts in out.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="flip-tiny-synth")
    p.add_argument("--data", default="data/synth-fresh")
    p.add_argument("--probe-data", default="data/synth-captions")
    p.add_argument("--probe-n", type=int, default=3000)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    torch.manual_seed(0)
    model, processor = flip.load(args.model)
    model.eval()
    images, labels = load_examples(args.data, "test")
    probe_images, probe_labels = load_examples(args.probe_data, "train", args.probe_n)
    test, train = features(model, processor, images), features(model, processor, probe_images)
    config = ProbeConfig(weight_decays=PROBE_PENALTIES, max_iter=200, balanced=True)
    rows = []
    for a in sorted({a for row in labels for a in row}):
        keep = [i for i, row in enumerate(labels) if a in row]
        fit = [i for i, row in enumerate(probe_labels) if a in row]
        refs, fit_labels = [labels[i][a] for i in keep], [probe_labels[i][a] for i in fit]
        if len(set(refs)) < 2 or len(set(fit_labels)) < 2:
            continue
        row = {"attribute": a}
        for name in FEATURES:
            row[name] = metric(fit_probe(train[name][fit], fit_labels, config).predict(test[name][keep]), refs)
        rows.append(row)
        print(json.dumps(row), flush=True)
    means = {name: sum(r[name] for r in rows) / len(rows) for name in FEATURES}
    commit = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], capture_output=True, text=True).stdout.strip()
    result = {"commit": commit, "command": f"python report/cue_features/measure.py --out {args.out}",
              "model": args.model, "probe_faces": len(probe_images), "test_faces": len(images),
              "dims": {name: train[name].shape[1] for name in FEATURES}, "means": means, "rows": rows}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"means": means, "dims": result["dims"]}, indent=2))


if __name__ == "__main__":
    main()
