"""`flip embed`: embed images and texts with any model flip.load accepts.

    flip embed --model flip-tiny --image face.png --text "a smiling man with a beard"

Prints the image-text cosine similarity table; `--out FILE.npz` saves the embeddings.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flip embed", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model name, Hub id, directory or file (default: the embedded model)")
    parser.add_argument("--image", nargs="*", default=[], help="image files")
    parser.add_argument("--text", nargs="*", default=[], help="texts")
    parser.add_argument("--out", default=None, help="save embeddings to this .npz file")
    args = parser.parse_args(argv)
    if not args.image and not args.text:
        parser.error("give at least one --image or --text")

    import numpy as np
    import torch

    from flip.hub import load

    model, processor = load(args.model)
    with torch.inference_mode():
        img = model.encode_image(processor.images(args.image)) if args.image else None
        txt = model.encode_text(processor.texts(args.text)) if args.text else None
    if img is not None and txt is not None:
        sims = (img @ txt.t()).tolist()
        width = max(len(p) for p in args.image)
        for path, row in zip(args.image, sims):
            print(f"{path:<{width}}  " + "  ".join(f"{s:+.3f}" for s in row))
        print("columns: " + " | ".join(args.text))
    else:
        emb = img if img is not None else txt
        print(f"{emb.shape[0]} embeddings of dimension {emb.shape[1]}", file=sys.stderr)
    if args.out:
        arrays = {k: v.numpy() for k, v in (("image", img), ("text", txt)) if v is not None}
        np.savez(args.out, **arrays)
        print(f"wrote {args.out}")
    return 0
