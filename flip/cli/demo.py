"""`flip demo`: the main job in one command, on a fresh install with no network.

Renders a few faces of the synthetic world (whose true labels are known), adds any image paths
you give, and classifies them by description on the embedded default model, printing each answer
with the descriptors that decided it and, for the synthetic faces, the true label beside it.

    flip demo                       # 6 synthetic faces, the embedded model
    flip demo my_face.jpg --n 3     # your photo too
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

DEMO_TASKS = ("emotion", "age_group", "hair_color", "eyewear", "facial_hair")


def render_demo_faces(out_dir: Path, n: int, seed: int, size: int = 112) -> list[tuple[Path, dict]]:
    """`n` labelled faces of the synthetic world's test split, saved as PNG; (path, labels) each."""
    from flip.data.synthetic import SynthConfig, generate

    cfg = SynthConfig(kind="captions", n=max(n * 10, 100), size=size, seed=seed)
    faces = []
    for record in generate(cfg, "test"):
        path = out_dir / f"synthetic_{len(faces):02d}.png"
        record.image.save(path)
        faces.append((path, record.attributes()))
        if len(faces) == n:
            break
    return faces


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flip demo", description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="*", help="your own image files, classified beside the synthetic faces")
    parser.add_argument("--n", type=int, default=6, help="synthetic faces to render (default 6)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default=None, help="any model flip.load accepts (default: the embedded model)")
    parser.add_argument("--task", action="append", default=None, help=f"tasks (default: {', '.join(DEMO_TASKS)})")
    args = parser.parse_args(argv)
    if args.n < 0:
        parser.error("--n must be >= 0")

    from flip.cli import classify
    from flip.hub import DEFAULT_MODEL, EMBEDDED, embedded_path

    model = args.model
    if model is None and not (embedded_path(DEFAULT_MODEL) / "config.json").is_file():
        print(f"NOTE: the embedded default {DEFAULT_MODEL!r} is not built in this installation; "
              "using a RANDOMLY INITIALISED flip-tiny, so the answers below are meaningless.\n")
        model = "flip-tiny"
    elif model is None or model in EMBEDDED:
        print(f"Model: {model or DEFAULT_MODEL} (embedded; trained on the synthetic face world only)\n")

    tasks = args.task or list(DEMO_TASKS)
    with tempfile.TemporaryDirectory(prefix="flip-demo-") as tmp:
        faces = render_demo_faces(Path(tmp), args.n, args.seed)
        if faces:
            print("True labels of the synthetic faces:")
            for path, labels in faces:
                print(f"  {path.name}: " + ", ".join(f"{t}={labels.get(t)}" for t in tasks))
            print()
        # the synthetic faces are shown by their short names: run from the temporary folder
        paths = [p.name for p, _ in faces] + [str(Path(p).resolve()) for p in args.images]
        if model is not None and Path(model).exists():
            model = str(Path(model).resolve())
        if not paths:
            parser.error("nothing to classify: give images or --n > 0")
        cmd = [*paths, "--explain", "2"] + [a for t in tasks for a in ("--task", t)]
        if model is not None:
            cmd += ["--model", model]
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            return classify.main(cmd)
        finally:
            os.chdir(cwd)
