"""`flip embed`: embed images and texts with any model flip.load accepts.

    flip embed --model flip-tiny --image face.png --text "a smiling man with a beard"
    flip embed --image group.jpg --faces all --json > faces.jsonl

Images go through the face stage (`--faces`, default auto: a face crop the size of the model input
is taken whole, faces are detected in anything else), one embedding per face. Prints the face-text
cosine similarity table (one row per face); `--json` writes JSON Lines, one object per face
{"path", "face", "box", "detector_score", "whole_image", "embedding", "similarities", "model"};
`--out FILE.npz` saves the embeddings ("image" (F, D) with "path", "face" and "box" per row, "text"),
written to a temporary file, then renamed. An unreadable image is reported by path and skipped; the
rest are embedded and the exit code is 1 (`--skip-bad`: 0). `--backend onnx --model FOLDER` embeds with
a folder written by `flip export MODEL FOLDER --onnx`, on onnxruntime.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from flip.cli._common import add_skip_bad, partial_exit, printable, skipped_line

from flip.cli._faces import PhotoNotes, add_face_arguments, face_stage, model_name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flip embed", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--model", default=None, help="model name, Hub id, directory or file (default: the embedded model)")
    parser.add_argument("--image", nargs="*", default=[], help="image files")
    parser.add_argument("--text", nargs="*", default=[], help="texts")
    parser.add_argument("--json", action="store_true", help="write JSON Lines, one object per face")
    parser.add_argument("--out", default=None, help="save embeddings to this .npz file (.npz is added if missing)")
    parser.add_argument("--backend", choices=("torch", "onnx"), default="torch",
                        help="onnx: --model is a folder written by `flip export MODEL FOLDER --onnx`")
    add_face_arguments(parser, draw=False)
    add_skip_bad(parser)
    args = parser.parse_args(argv)
    if not args.image and not args.text:
        parser.error("give at least one --image or --text")

    import numpy as np

    from flip._files import atomic_output, check_writable_file

    out = None
    if args.out:
        out = Path(args.out if args.out.endswith(".npz") else args.out + ".npz")
        check_writable_file(out, "--out")
    try:
        stage = face_stage(args)
        model, processor = _load(args)
    except (FileNotFoundError, ValueError, ImportError) as err:
        print(f"flip embed: {err}", file=sys.stderr)
        return 2
    name = model_name(args.model)
    notes = PhotoNotes("embed", name, processor.settings.image_size)
    rows, pixels, skipped, read = [], [], [], 0
    for path in args.image:
        try:
            faces, px = stage.pixels(path, processor)
        except (FileNotFoundError, ValueError, OSError) as err:
            skipped.append(path)
            print(skipped_line(path, err), file=sys.stderr)
            continue
        read += 1
        notes.faces(faces)
        if not faces or faces[0].index is None:
            notes.no_face(path, whole=bool(faces))
        rows += [{"path": path, **face.record()} for face in faces]
        if px is not None:
            pixels.append(px)
    if args.image and not read and not args.text:
        print(f"embedded no image; skipped {len(skipped)} unreadable", file=sys.stderr)
        return partial_exit(0, len(skipped), args.skip_bad)
    img, txt = _embed(args, model, processor, pixels)
    sims = (img @ txt.T).tolist() if img is not None and txt is not None else None
    if args.json:
        for i, row in enumerate(rows):
            extra = {"similarities": dict(zip(args.text, sims[i]))} if sims is not None else {}
            print(json.dumps({**row, "embedding": img[i].tolist(), **extra, "model": name}))
    elif sims is not None:
        labels = [printable(r["path"] if r["whole_image"] else f"{r['path']}#{r['face']}") for r in rows]
        width = max(len(label) for label in labels)
        for label, row in zip(labels, sims):
            print(f"{label:<{width}}  " + "  ".join(f"{s:+.3f}" for s in row))
        print("columns: " + " | ".join(args.text))
    else:
        emb = img if img is not None else txt
        print(f"{emb.shape[0]} embeddings of dimension {emb.shape[1]}", file=sys.stderr)
    if out is not None:
        arrays = {k: v for k, v in (("image", img), ("text", txt)) if v is not None}
        if rows:
            arrays.update(path=np.array([r["path"] for r in rows]), box=np.array([r["box"] for r in rows]),
                          face=np.array([-1 if r["face"] is None else r["face"] for r in rows]))
        with atomic_output(out) as pending, open(pending.path, "wb") as f:
            np.savez(f, **arrays)
        print(f"wrote {out}", file=sys.stderr if args.json else sys.stdout)
    if skipped:
        print(f"embedded {read} image(s); skipped {len(skipped)} unreadable", file=sys.stderr)
    return partial_exit(read + len(args.text), len(skipped), args.skip_bad)


def _load(args):
    """(model, what cuts its pixels): flip.load's pair, or an ONNX export twice (it has the processor's
    settings and `pixels`, and gives numpy)."""
    if args.backend == "onnx":
        from flip.onnx_backend import OnnxFLIP

        if args.model is None:
            raise ValueError("--backend onnx needs --model FOLDER, a folder written by `flip export MODEL FOLDER --onnx`")
        model = OnnxFLIP(args.model)
        return model, model
    from flip.hub import load

    return load(args.model)


def _embed(args, model, processor, pixels: list):
    """(image embeddings of the face `pixels`, text embeddings of --text) as numpy arrays, None where not asked for."""
    import numpy as np

    if args.backend == "onnx":
        img = model.encode_image(np.concatenate(pixels)) if pixels else None
        txt = model.embed_texts(args.text) if args.text else None
        return img, txt
    import torch

    with torch.inference_mode():
        img = model.encode_image(processor.normalize(torch.cat(pixels))).numpy() if pixels else None
        txt = model.encode_text(processor.texts(args.text)).numpy() if args.text else None
    return img, txt
