"""Speed of classification by description against the bare image encoder (issue 5's goal: >= 0.85).

    python benchmarks/bench_classify.py                   # the embedded default, 2,000 images
    python benchmarks/bench_classify.py --device cuda --n 2000 --batch-sizes 1 8 64

Writes N JPEG files (faces from the synthetic world, 128 px, so decoding includes a resize), then:
- api: `FLIPClassifier.classify_files` on the files, end to end: decoding and preprocessing in
  DataLoader workers, the image encoder, scores and explanations for every task (text side cached,
  embedded before the clock starts, as the issue asks);
- bare: a loop of `model.encode_image` over the same images already decoded into tensors and
  placed on the device: the encoder alone, the upper bound.
Prints images per second of both (the best of --repeats rounds) and the api/bare ratio: the median
over rounds of each round's ratio, api and bare timed back to back, so that a shared machine's load,
which moves over seconds, falls on both sides of a ratio alike. The headline is the ratio at the
largest batch size over all N images.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from flip.runtime import sleep_idle_openmp_threads  # noqa: E402

sleep_idle_openmp_threads()  # before torch loads, as `flip classify` does (both sides run under it)
import torch  # noqa: E402


def write_images(folder: Path, n: int, size: int = 128, distinct: int = 64) -> list[str]:
    """N JPEG files: `distinct` synthetic faces, re-encoded under different names (decoding cost is real)."""
    import numpy as np

    from flip.data.synthetic import make_identities, render_face, sample_face

    rng = np.random.default_rng(0)
    faces = [render_face(sample_face(rng, p), size=size)[0] for p in make_identities(min(distinct, n), seed=0)]
    paths = []
    for i in range(n):
        path = folder / f"face{i:05d}.jpg"
        faces[i % distinct].save(path, quality=90)
        paths.append(str(path))
    return paths


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_api(clf, paths, batch_size: int, workers: int | None, device) -> float:
    for _ in clf.classify_files(paths[: batch_size * 2], batch_size=batch_size, num_workers=0):  # warm-up
        pass
    sync(device)
    start = time.perf_counter()
    done = 0
    for batch in clf.classify_files(paths, batch_size=batch_size, num_workers=workers):
        done += len(batch.paths)
        for res in batch.results.values():
            res.predicted.tolist()  # the answers reach the host, as any caller would need them
    sync(device)
    assert done == len(paths), f"only {done} of {len(paths)} images classified"
    return len(paths) / (time.perf_counter() - start)


def time_bare(model, pixels: torch.Tensor, batch_size: int, device) -> float:
    param = next(model.parameters())
    pixels = pixels.to(device, param.dtype)
    with torch.inference_mode():
        model.encode_image(pixels[:batch_size])  # warm-up
        sync(device)
        start = time.perf_counter()
        for i in range(0, len(pixels), batch_size):
            model.encode_image(pixels[i:i + batch_size])
        sync(device)
    return len(pixels) / (time.perf_counter() - start)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="flip-tiny-synth", help="default: the embedded default (same encoder as flip-tiny)")
    p.add_argument("--n", type=int, default=2000, help="images for the headline run")
    p.add_argument("--small-n", type=int, default=256, help="images for the batch sizes below the largest")
    p.add_argument("--repeats", type=int, default=5, help="rounds of (api, bare) per batch size")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 64])
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: cores - 1, at most 8)")
    p.add_argument("--tasks", nargs="+", default=None, help="default: every attribute of the synthetic world")
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    p.add_argument("--json", default=None, help="also write the figures to this JSON file (eval.run's speed suite)")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    """Print the table and return the figures (what --json writes; eval.run's speed suite reads them)."""
    from flip.data.records import ATTRIBUTES
    from flip.hub import load
    from flip.zeroshot import FLIPClassifier, TextCache

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model, processor = load(args.model, device=device, dtype=getattr(torch, args.dtype))
    clf = FLIPClassifier(model, processor, list(args.tasks or ATTRIBUTES), cache=TextCache())
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "-"
    workers = args.workers if args.workers is not None else min(8, max(1, (os.cpu_count() or 2) - 1))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}), "
          f"device {device} {gpu}, dtype {args.dtype}")
    print(f"model: {args.model}, {len(clf.tasks)} tasks, {sum(len(h.texts) for h in clf.heads.values())} descriptor sentences; "
          f"{workers} DataLoader workers")

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_images(Path(tmp), args.n)
        pixels = processor.images(paths)  # decoded once, outside the clock, for the bare loop
        print(f"\n{'batch':>5}  {'images':>6}  {'api img/s':>10}  {'bare img/s':>10}  {'api/bare':>8}")
        headline, rows = None, []
        for bs in sorted(args.batch_sizes):
            n = args.n if bs == max(args.batch_sizes) else min(args.n, args.small_n)
            rounds = []
            for _ in range(args.repeats):  # api and bare back to back; their ratio per round
                rounds.append((time_api(clf, paths[:n], bs, workers, device), time_bare(model, pixels[:n], bs, device)))
            api, bare = max(a for a, _ in rounds), max(b for _, b in rounds)
            ratio = statistics.median(a / b for a, b in rounds)
            print(f"{bs:>5}  {n:>6}  {api:>10.1f}  {bare:>10.1f}  {ratio:>8.3f}")
            headline = (bs, n, ratio)
            rows.append({"batch_size": bs, "images": n, "api_images_per_s": api, "bare_images_per_s": bare,
                         "ratio": ratio, "round_ratios": [a / b for a, b in rounds]})
    bs, n, ratio = headline
    verdict = "meets" if ratio >= 0.85 else "misses"
    print(f"\nend-to-end / bare encoder at batch {bs} over {n} images: {ratio:.3f} ({verdict} the 0.85 goal; "
          f"rounds: {' '.join(f'{r:.3f}' for r in rows[-1]['round_ratios'])})")
    return {"benchmark": "classify", "model": args.model, "device": str(device), "dtype": args.dtype,
            "workers": workers, "threads": torch.get_num_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "rows": rows,
            "headline": {"name": "classify end-to-end / bare encoder", "ratio": ratio, "goal": 0.85,
                         "batch_size": bs, "images": n}}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    figures = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
