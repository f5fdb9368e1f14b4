"""`flip export`: a model's image and text towers as ONNX files for onnxruntime (see flip.export).

    flip export flip-tiny-synth flip-onnx/ --onnx
    flip export open_clip:ViT-B-32/openai clip-int8/ --onnx --int8 --calibration faces/
    flip classify faces/ --backend onnx --model flip-onnx/

Writes image.onnx and text.onnx (each ending at its normalised embedding) and flip_onnx.json (the
processor settings, temperature and the model's fingerprints) into the folder, atomically. An existing
folder is refused unless --overwrite (which replaces an earlier export's files and keeps the others).
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="flip export", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:]))
    p.add_argument("model", help="model name, Hub id, directory or file (anything flip.load takes)")
    p.add_argument("out", help="the folder to write")
    p.add_argument("--onnx", action="store_true", help="export to ONNX (the one format for now)")
    p.add_argument("--int8", action="store_true", help="quantise the image tower to int8 (onnxruntime; dynamic "
                   "unless --calibration is given)")
    p.add_argument("--calibration", nargs="+", default=None, metavar="IMAGES_OR_DIR",
                   help="images for static int8 quantisation (a few dozen representative faces)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: 17)")
    p.add_argument("--overwrite", action="store_true",
                   help="write into an existing OUT (an earlier export's files are replaced, others kept)")
    args = p.parse_args(argv)
    if not args.onnx:
        p.error("choose a format: --onnx")
    if args.calibration and not args.int8:
        p.error("--calibration is for static int8 quantisation: add --int8")
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise ImportError('--onnx needs onnx and onnxruntime: pip install "flip-face[onnx]"') from None

    from flip.export import DEFAULT_OPSET, check_export_destination, export_onnx
    from flip.hub import load

    check_export_destination(args.out, args.overwrite, flag="--overwrite")  # before the (slow) load
    calibration = None
    if args.calibration:
        from flip.cli.classify import collect_images

        calibration, problems = collect_images(args.calibration)
        if problems or not calibration:
            raise ValueError(f"--calibration: {'; '.join(problems) or 'no images'}")

    model, processor = load(args.model)
    out = export_onnx(model, processor, args.out, int8=args.int8, opset=args.opset or DEFAULT_OPSET,
                      calibration_images=calibration, overwrite=args.overwrite)
    print(f"wrote {out} ({'int8 image tower' if args.int8 else 'float32'})", file=sys.stderr)
    return 0
