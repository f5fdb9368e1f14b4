"""`flip convert SRC DST`: load any checkpoint flip.load accepts and save it in flip's format.

    flip convert open_clip:ViT-B-16/openai flip-vitb16
    flip convert FLIP-base.pth flip-base-official --dtype float16
    flip convert runs/flip-tiny-synth/final flip/assets/flip-tiny-synth --embedded
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
    parser.add_argument("--embedded", action="store_true",
                        help="the embedded-default format: fp16, and a text tower still equal to all-MiniLM-L6-v2 "
                             "stored by reference to the installed package")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a non-empty folder that is not a flip checkpoint (its other files are kept)")
    args = parser.parse_args(argv)

    from flip.hub import MODEL_CARD, check_destination, load, save, save_embedded

    dst = check_destination(args.dst, args.overwrite, flag="--overwrite")  # before the (slow) load
    card = dst / MODEL_CARD
    kept_card = card.is_file()

    if args.embedded:
        model, processor = load(args.src)
        out = save_embedded(model, processor, args.dst, overwrite=args.overwrite)
        args.dtype = "float16"
    else:
        model, processor = load(args.src, dtype=_DTYPES[args.dtype])
        out = save(model, processor, args.dst, overwrite=args.overwrite)
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {out} ({n / 1e6:.1f}M parameters, {args.dtype})")
    if kept_card:
        print(f"kept {card} (the model card that was there): check that it still describes this model")
    return 0
