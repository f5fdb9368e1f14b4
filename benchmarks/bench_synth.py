"""Speed of the synthetic face world: images per second in one process and in a worker pool.

    python benchmarks/bench_synth.py                              # captions, 112 px, 10,000 faces
    python benchmarks/bench_synth.py --kind spoof --n 2000 --size 112 --workers 2
    python benchmarks/bench_synth.py --encode png                 # include PNG encoding, as writing does

Rendering only (no disk): records are generated exactly as `flip data synth` makes them. Other
load on the machine slows the wall-clock figures, so the script also prints the CPU time per image
(nearly load-independent) and what it projects for idle cores; report both, with the load.
"""

from __future__ import annotations

import argparse
import json
import os
import time


def rate(cfg, workers: int, encode: str | None) -> tuple[float, float, float]:
    """(images per wall second, wall seconds, CPU seconds per image in this process)."""
    from flip.data.synthetic.world import generate, identity_pools

    pools = identity_pools(cfg)
    start, cpu = time.perf_counter(), time.process_time()
    count = sum(1 for _ in generate(cfg, "train", workers=workers, pools=pools, encode=encode))
    seconds = time.perf_counter() - start
    return count / seconds, seconds, (time.process_time() - cpu) / count


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from flip.data.synthetic.world import KINDS, default_workers

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", default="captions", choices=KINDS)
    parser.add_argument("--n", type=int, default=10_000, help="images for the pool run")
    parser.add_argument("--single", type=int, default=1000, help="images for the one-process run")
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--encode", choices=("png", "jpeg"), default=None, help="also encode each image")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file (eval.run's speed suite)")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    """Print both rates and return the figures (what --json writes; eval.run's speed suite reads them)."""
    from flip.data.synthetic.world import SynthConfig

    def config(n):
        return SynthConfig(kind=args.kind, n=n, size=args.size, seed=0, split_fractions={"train": 1.0})

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.kind}, {args.size} px, encode={args.encode}; load average before: {load:.2f}")
    one, _, cpu = rate(config(args.single), 1, args.encode)
    print(f"  1 process:   {one:7.1f} images/s  ({args.single} images; {1000 * cpu:.2f} ms CPU per image, "
          f"so 10,000 images on {args.workers} idle cores: {10_000 * cpu / args.workers:.1f} s)")
    pool, seconds, _ = rate(config(args.n), args.workers, args.encode)
    print(f"  {args.workers} processes: {pool:7.1f} images/s  ({args.n} images in {seconds:.1f} s); "
          f"10,000 images take {10_000 / pool:.1f} s")
    return {"benchmark": "synth", "kind": args.kind, "size": args.size, "encode": args.encode,
            "load_average": load, "one_process_images_per_s": one, "cpu_ms_per_image": 1000 * cpu,
            "workers": args.workers, "pool_images_per_s": pool, "pool_images": args.n,
            "headline": {"name": f"synthetic faces per second ({args.workers} worker processes)", "value": pool,
                         "unit": "images/s"}}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    figures = run(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
