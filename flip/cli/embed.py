"""`flip embed`: embed images and texts with any model flip.load accepts.

    flip embed --model flip-tiny --image face.png --text "a smiling man with a beard"

Prints the image-text cosine similarity table; `--out FILE.npz` saves the embeddings (written to a
temporary file, then renamed). An unreadable image is reported by path and skipped; the rest are
embedded and the exit code is 1 (`--skip-bad`: 0).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flip.cli._common import add_skip_bad, partial_exit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flip embed", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model name, Hub id, directory or file (default: the embedded model)")
    parser.add_argument("--image", nargs="*", default=[], help="image files")
    parser.add_argument("--text", nargs="*", default=[], help="texts")
    parser.add_argument("--out", default=None, help="save embeddings to this .npz file (.npz is added if missing)")
    add_skip_bad(parser)
    args = parser.parse_args(argv)
    if not args.image and not args.text:
        parser.error("give at least one --image or --text")

    import numpy as np
    import torch

    from flip._files import atomic_output, check_writable_file
    from flip.hub import load

    out = None
    if args.out:
        out = Path(args.out if args.out.endswith(".npz") else args.out + ".npz")
        check_writable_file(out, "--out")
    model, processor = load(args.model)
    images, skipped = [], []
    for path in args.image:
        try:
            images.append((path, processor.images([path])))
        except (ValueError, OSError) as err:
            skipped.append(path)
            print(f"skipped {path}: {err}", file=sys.stderr)
    if args.image and not images and not args.text:
        print(f"flip embed: none of the {len(args.image)} image(s) could be read", file=sys.stderr)
        return 1
    paths = [p for p, _ in images]
    with torch.inference_mode():
        img = model.encode_image(torch.cat([px for _, px in images])) if images else None
        txt = model.encode_text(processor.texts(args.text)) if args.text else None
    if img is not None and txt is not None:
        sims = (img @ txt.t()).tolist()
        width = max(len(p) for p in paths)
        for path, row in zip(paths, sims):
            print(f"{path:<{width}}  " + "  ".join(f"{s:+.3f}" for s in row))
        print("columns: " + " | ".join(args.text))
    else:
        emb = img if img is not None else txt
        print(f"{emb.shape[0]} embeddings of dimension {emb.shape[1]}", file=sys.stderr)
    if out is not None:
        arrays = {k: v.numpy() for k, v in (("image", img), ("text", txt)) if v is not None}
        if images:
            arrays["image_paths"] = np.array(paths)
        with atomic_output(out) as pending, open(pending.path, "wb") as f:
            np.savez(f, **arrays)
        print(f"wrote {out}")
    if skipped:
        print(f"embedded {len(images)} image(s); skipped {len(skipped)} unreadable", file=sys.stderr)
    return partial_exit(len(images) + len(args.text), len(skipped), args.skip_bad)
