"""`flip name-faces-train`: learn SECLA / SECLA-B heads that name faces, from image-caption pairs alone.

    flip name-faces-train --config finetune/configs/naming_secla.yaml --data runs/scenes --model runs/flip
    flip name-faces scene.png --caption "..." --model runs/flip --heads runs/name-faces/heads.pt

The config is one flat YAML mapping (flip.train.naming.NameFacesTrainConfig); `--key value`
overrides any field. Writes `heads.pt` and the resolved `config.yaml` to `output_dir`, and
`checkpoint-last.pt` every `save_every` steps (`--resume auto` continues from it), and when the
records carry their faces' names, `metrics.json`: face-label precision, recall and F1 on the
training corpus itself (the paper's transductive setting), for the heads and the untrained baseline.
`--faces dlib` trains on dlib's face descriptors instead of the FLIP image tower's (the heads
remember it, and `flip name-faces --heads` embeds faces the same way).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flip name-faces-train", allow_abbrev=False,
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="YAML file with NameFacesTrainConfig fields")
    args, overrides = parser.parse_known_args(argv)

    import yaml

    from flip.train.naming import NameFacesTrainConfig
    from flip.train.config import load_config

    try:
        config = load_config(args.config, overrides, cls=NameFacesTrainConfig)
        if not config.data:
            raise ValueError("data: give the scenes dataset (--data PATH)")
    except (ValueError, FileNotFoundError, TypeError) as err:
        print(f"flip name-faces-train: {err}", file=sys.stderr)
        return 2

    from itertools import islice

    from flip.data.formats import read_dataset
    from flip.hub import load
    from flip.naming.embed import build_face_embedder
    from flip.train.naming import evaluate_pairs, featurize, save_heads, train_heads

    try:
        model, processor = load(config.model)
        embedder = build_face_embedder(config.faces, model, processor, config.margin)
        records = islice(read_dataset(config.data, split=config.split), config.max_records)
        pairs = featurize(records, model, processor, face_embedder=embedder)
        print(f"flip name-faces-train: {len(pairs)} pairs with faces and names", file=sys.stderr)
        out = Path(config.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
        heads = train_heads(config, pairs, checkpoint_dir=out,
                            log=lambda step, loss: print(f"step {step}  loss {loss:.4f}", file=sys.stderr))
    except (ValueError, FileNotFoundError, ImportError) as err:
        print(f"flip name-faces-train: {err}", file=sys.stderr)
        return 2
    path = save_heads(heads, out / "heads.pt", {"train_config": config.to_dict()})
    print(f"flip name-faces-train: heads in {path}", file=sys.stderr)
    if all(p.face_names for p in pairs):  # the corpus knows its faces' names: the transductive figures
        metrics = {config.method: evaluate_pairs(heads, pairs)}
        if config.faces == "flip":  # the baseline compares faces with name text: one space needed
            metrics = {"baseline": evaluate_pairs(None, pairs, threshold=0.0), **metrics}
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        for method, scores in metrics.items():
            print(f"{method:>9}: " + "  ".join(f"{k} {v:.3f}" for k, v in scores.items()), file=sys.stderr)
    return 0
