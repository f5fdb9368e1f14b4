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
    parser.add_argument("--backend", choices=("torch", "onnx"), default="torch",
                        help="onnx: --model is a folder written by `flip export MODEL FOLDER --onnx`")
    args = parser.parse_args(argv)
    if not args.image and not args.text:
        parser.error("give at least one --image or --text")

    import numpy as np

    try:
        img, txt = _embed(args)
    except (FileNotFoundError, ValueError, ImportError) as err:
        print(f"flip embed: {err}", file=sys.stderr)
        return 2
    if img is not None and txt is not None:
        sims = (img @ txt.T).tolist()
        width = max(len(p) for p in args.image)
        for path, row in zip(args.image, sims):
            print(f"{path:<{width}}  " + "  ".join(f"{s:+.3f}" for s in row))
        print("columns: " + " | ".join(args.text))
    else:
        emb = img if img is not None else txt
        print(f"{emb.shape[0]} embeddings of dimension {emb.shape[1]}", file=sys.stderr)
    if args.out:
        arrays = {k: v for k, v in (("image", img), ("text", txt)) if v is not None}
        np.savez(args.out, **arrays)
        print(f"wrote {args.out}")
    return 0


def _embed(args):
    """(image embeddings, text embeddings) as numpy arrays, or None where not asked for."""
    if args.backend == "onnx":
        from flip.onnx_backend import OnnxFLIP

        if args.model is None:
            raise ValueError("--backend onnx needs --model FOLDER, a folder written by `flip export MODEL FOLDER --onnx`")
        model = OnnxFLIP(args.model)
        img = model.encode_image(model.images(args.image)) if args.image else None
        txt = model.embed_texts(args.text) if args.text else None
        return img, txt
    import torch

    from flip.hub import load

    model, processor = load(args.model)
    with torch.inference_mode():
        img = model.encode_image(processor.images(args.image)).numpy() if args.image else None
        txt = model.encode_text(processor.texts(args.text)).numpy() if args.text else None
    return img, txt
