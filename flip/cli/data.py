"""`flip data synth`: write the synthetic face world to disk, split by identity, with a dataset card.

    flip data synth --kind captions --n 10000 --size 112 --seed 0 --out data/synth-captions
    flip data synth --kind spoof --n 2000 --out data/synth-spoof --format parquet
    flip data synth --kind scenes --n 500 --size 224 --out data/synth-scenes --format webdataset
    flip data synth --config synth.yaml --n 100 --out /tmp/qa      # a config file plus overrides

The config file (JSON or YAML) holds any field of `flip.data.synthetic.world.SynthConfig`
(e.g. ``distributions: {eyewear: {none: 2, eyeglasses: 1, sunglasses: 1}}``); flags override it.
The resolved config is saved as ``synth_config.json`` beside the data.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

#: flag -> SynthConfig field, for the fields that have a flag
_FLAGS = {"kind": "kind", "n": "n", "size": "size", "seed": "seed", "images_per_identity": "images_per_identity",
          "live_fraction": "live_fraction", "nuisance": "nuisance", "p_mention": "p_mention",
          "p_cue": "p_cue", "p_cues_only": "p_cues_only", "attack_fraction": "attack_fraction", "phrasing": "phrasing"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flip data", description="Datasets: generate the synthetic face world.")
    sub = parser.add_subparsers(dest="action", required=True)
    synth = sub.add_parser("synth", help="write a synthetic dataset (captions, spoof, scenes or qa)",
                           description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    synth.add_argument("--config", type=Path, help="JSON or YAML file with SynthConfig fields")
    synth.add_argument("--kind", choices=("captions", "spoof", "scenes", "qa"),
                       help="what to generate (default captions)")
    synth.add_argument("--n", type=int, help="records over all splits (default 1000)")
    synth.add_argument("--size", type=int, help="image side in pixels (default 112)")
    synth.add_argument("--seed", type=int, help="random seed (default 0); the people come from it alone, so "
                       "datasets of any kind with the same seed show the same people")
    synth.add_argument("--images-per-identity", dest="images_per_identity", type=float,
                       help="average records per person (default 8)")
    synth.add_argument("--live-fraction", dest="live_fraction", type=float, help="spoof: share of live images (0.5)")
    synth.add_argument("--nuisance", type=float, help="0 = clean studio shots .. 1 = full nuisances (default 1)")
    synth.add_argument("--p-mention", dest="p_mention", type=float, help="captions: chance an attribute is mentioned")
    synth.add_argument("--p-cue", dest="p_cue", type=float, help="captions: chance a rendered cue is named (0.4)")
    synth.add_argument("--p-cues-only", dest="p_cues_only", type=float,
                       help="captions: chance a caption names cues and no class word (0.3)")
    synth.add_argument("--attack-fraction", dest="attack_fraction", type=float,
                       help="captions: share of presentation attacks in the corpus (0.15)")
    synth.add_argument("--phrasing", choices=("train", "heldout"),
                       help="captions: 'heldout' = cues only, in the held-out phrasing family (default train)")
    synth.add_argument("--out", type=Path, required=True, help="output folder")
    synth.add_argument("--format", default="imagefolder", choices=("imagefolder", "parquet", "webdataset"))
    synth.add_argument("--image-format", dest="image_format", default="png", choices=("png", "jpeg"))
    synth.add_argument("--workers", type=int, default=None, help="rendering processes (default: all CPUs)")
    synth.add_argument("--overwrite", action="store_true", help="replace splits that already exist in --out")
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _load_config_file(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"--config {path}: no such file")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text) or {}
    else:
        import json

        data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"--config {path}: expected a mapping of SynthConfig fields, got {type(data).__name__}")
    return data


def _synth(args: argparse.Namespace, argv: list[str]) -> int:
    from dataclasses import fields

    from flip.data.synthetic.world import SynthConfig, write_synthetic

    values = _load_config_file(args.config) if args.config else {}
    known = {f.name for f in fields(SynthConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"--config {args.config}: unknown field(s) {unknown}; known: {sorted(known)}")
    values.update({field: getattr(args, flag) for flag, field in _FLAGS.items() if getattr(args, flag) is not None})
    cfg = SynthConfig(**values)
    summary = write_synthetic(cfg, args.out, format=args.format, image_format=args.image_format,
                              workers=args.workers, progress=not args.quiet, overwrite=args.overwrite,
                              command="flip data " + shlex.join(argv))
    counts = ", ".join(f"{split} {s['records']} ({s['identities']} people)" for split, s in summary["splits"].items())
    print(f"wrote {cfg.kind} to {args.out}: {counts}; card: {args.out / 'README.md'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        return _synth(args, argv)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        from flip.cli import error_line

        print(error_line(f"data {args.action}", err), file=sys.stderr)
        return 2
