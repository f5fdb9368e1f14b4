"""`flip name-faces IMAGE --caption "..."`: label each face of a photo with a name from its caption.

    flip name-faces group.jpg --caption "Ana Silva and Kofi Mensah at the summit in Lima."
    flip name-faces scene.png --caption "..." --boxes "10,40,50,90;70,40,110,90" --json --draw drawn/

Faces come from `--boxes` or flip's face stage (`flip.faces`: MTCNN by default, Haar with
`--detector haar`; `--min-face-size`, `--max-faces`), boxes clipped to the image; names
from the caption by flip's rules (or `--names`, or a token-classification `--ner-model`). Without
`--heads` the names are assigned by the untrained baseline (FLIP face-crop vs name-text cosine);
with a `flip name-faces-train` checkpoint, by the learned SECLA heads and NONAME, faces embedded
the way the heads were trained (FLIP's image tower, or dlib's descriptor for `--faces dlib` heads).
`--json` writes JSON Lines, one object per face: {"path", "face", "box", "detector_score",
"naming": {"name", "score"}, "model"}; `--draw DIR` writes DIR/<name>.faces.png. A missing or
unreadable image is reported as `skipped <file>: <why>` (exit code 1, as in the commands that read many).
"""

from __future__ import annotations

import argparse
import json
import sys

from flip.cli._common import printable, skipped_line
from flip.cli._faces import PhotoNotes, add_face_arguments, draw_image, face_stage, model_name


def parse_boxes(text: str) -> list[list[float]]:
    """'x0,y0,x1,y1;x0,y0,x1,y1' or a JSON list of boxes -> [[x0, y0, x1, y1], ...]."""
    try:
        boxes = json.loads(text) if text.lstrip().startswith("[") else [
            [float(v) for v in part.split(",")] for part in text.split(";") if part.strip()]
    except ValueError:
        raise ValueError(f"--boxes: expected 'x0,y0,x1,y1;...' or a JSON list of boxes, got {text!r}") from None
    if not isinstance(boxes, list) or not all(isinstance(b, list) and len(b) == 4 for b in boxes):
        raise ValueError(f"--boxes: each box is 4 numbers x0,y0,x1,y1, got {text!r}")
    return boxes


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="flip name-faces", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("image", help="the photo (a path)")
    p.add_argument("--caption", required=True, help="its caption; the names are found in it")
    p.add_argument("--names", help="the names, comma-separated, instead of finding them in the caption")
    p.add_argument("--ner-model", help="a transformers token-classification model (path) to find the names")
    p.add_argument("--boxes", help="face boxes 'x0,y0,x1,y1;...' (pixels) instead of detecting them")
    p.add_argument("--detector", default="mtcnn", choices=["mtcnn", "haar"], help="face detector (default: mtcnn)")
    p.add_argument("--model", default=None, help="FLIP model name or path (default: the embedded default)")
    p.add_argument("--heads", help="SECLA heads checkpoint from `flip name-faces-train` (default: untrained baseline)")
    p.add_argument("--threshold", type=float, default=0.0, help="lowest similarity that names a face (default: 0)")
    p.add_argument("--margin", type=float, default=0.0, help="grow each face box by this fraction before embedding")
    p.add_argument("--json", action="store_true", help="JSON Lines, one object per face")
    add_face_arguments(p, modes=False)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from flip.processor import load_image

    try:
        image = load_image(args.image)
    except (ValueError, OSError) as err:  # an unreadable input: exit 1, as in the commands that read many
        print(skipped_line(args.image, err), file=sys.stderr)
        return 1
    try:
        from flip.hub import load
        from flip.naming.names import ModelNameExtractor, RuleNameExtractor
        from flip.naming.pipeline import FaceNamer, load_heads

        boxes = parse_boxes(args.boxes) if args.boxes else None
        names = [n.strip() for n in args.names.split(",") if n.strip()] if args.names else None
        extractor = ModelNameExtractor(args.ner_model) if args.ner_model else RuleNameExtractor()
        heads = load_heads(args.heads) if args.heads else None
        model, processor = load(args.model)
        namer = FaceNamer(model, processor, None if boxes is not None else face_stage(args),
                          extractor, heads=heads, threshold=args.threshold, margin=args.margin)
        faces = namer(image, args.caption, boxes=boxes, names=names)
        if args.draw and faces:
            from flip.faces.stage import Face

            drawn = [Face(i, tuple(f.box)) for i, f in enumerate(faces)]
            where = draw_image(args.draw, args.image, drawn, [f.name or "(no name)" for f in faces])
            print(f"drew {where}", file=sys.stderr)
    except (FileNotFoundError, ValueError, TypeError, ImportError, OSError) as err:
        print(f"flip name-faces: {err}", file=sys.stderr)
        return 2
    name = model_name(args.model)
    if boxes is None:
        from flip.faces.stage import Face

        PhotoNotes("name-faces", name, processor.settings.image_size).faces([Face(i, tuple(f.box)) for i, f in
                                                                            enumerate(faces)])
    if not faces:
        print(f"{printable(args.image)}: no faces found", file=sys.stderr if args.json else sys.stdout)
    for i, face in enumerate(faces):
        if args.json:
            d = face.to_dict()
            print(json.dumps({"path": args.image, "face": i, "box": d["box"], "detector_score": d["detector_score"],
                              "naming": {"name": d["name"], "score": d["score"]}, "model": name}))
        else:
            box = ", ".join(f"{v:.0f}" for v in face.box)
            score = "" if face.score is None else f"  {face.score:.3f}"
            print(f"{i}  [{box}]  {face.name or '(no name)'}{score}")
    return 0
