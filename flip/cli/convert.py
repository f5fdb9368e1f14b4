"""`flip convert SRC DST`: load any checkpoint flip.load accepts and save it in flip's format.

    flip convert open_clip:ViT-B-16/openai flip-vitb16
    flip convert FLIP-base.pth flip-base-official --dtype float16
"""

from __future__ import annotations

import argparse

import torch

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flip convert", description=__doc__.splitlines()[0])
    parser.add_argument("src", help="model name, Hub id, directory or weights file")
    parser.add_argument("dst", help="output directory (written atomically)")
    parser.add_argument("--dtype", choices=sorted(_DTYPES), default="float32", help="dtype of the saved weights")
    args = parser.parse_args(argv)

    from flip.hub import load, save

    model, processor = load(args.src, dtype=_DTYPES[args.dtype])
    out = save(model, processor, args.dst)
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {out} ({n / 1e6:.1f}M parameters, {args.dtype})")
    return 0
