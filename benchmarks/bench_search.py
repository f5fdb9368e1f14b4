"""Filtered face search at scale: exact against IVF-Flat, as `flip.tasks.search.VectorIndex` runs them.

    python benchmarks/bench_search.py                        # 1,000,000 vectors of 256 dims (~4 GB RAM)
    python benchmarks/bench_search.py --n 100000 --queries 50 # a quick look

The vectors are synthetic embeddings: `--centers` directions on the unit sphere, each point one of
them plus Gaussian noise (`--noise`, per-dimension std noise / sqrt(D)), L2-normalised; queries
are drawn the same way and are not in the set. Filters keep a random `--filters` fraction of the
rows, independent of the vectors (an attribute that does not follow the embedding; filters that
do are easier for IVF). Prints, for the exact index (`IndexFlatIP` with the filter as an ID
selector: the ground truth) and for IVF-Flat with the selectivity rule of `VectorIndex.search`:
build time and resident memory; per filter, single-query latency p50/p99 (one OpenMP thread, as
`search` runs) side by side with their ratio; and IVF's recall@10 against exact. Then the exact
index's p50 at growing sizes (where `SearchConfig.approx_min_rows` comes from) and one exact query
on one thread against two.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from flip.tasks.search import SearchConfig, VectorIndex, recall_at_k  # noqa: E402


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def synthetic_embeddings(n: int, dim: int, centers: int, noise: float, seed: int) -> np.ndarray:
    """(n, dim) float32, L2-normalised: cluster directions plus Gaussian noise (built in chunks)."""
    rng = np.random.default_rng(seed)
    dirs = rng.standard_normal((centers, dim), dtype=np.float32)
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        x = dirs[rng.integers(0, centers, stop - start)]
        x += rng.standard_normal(x.shape, dtype=np.float32) * (noise / math.sqrt(dim))
        out[start:stop] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def random_mask(n: int, fraction: float, seed: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng(seed).choice(n, max(1, round(fraction * n)), replace=False)] = True
    return mask


def time_queries(index: VectorIndex, queries: np.ndarray, k: int, mask) -> tuple[np.ndarray, np.ndarray, list, list]:
    """Search one query at a time (a user's search): scores and ids (Q, k), and per query the wall
    seconds and the CPU seconds of this thread (what the query costs on a core of its own; with one
    OpenMP thread FAISS runs in the calling thread)."""
    scores, ids, wall, cpu = [], [], [], []
    index.search(queries[:1], k, mask)  # warm-up
    for q in queries:
        start, start_cpu = time.perf_counter(), time.thread_time()
        s, i = index.search(q[None], k, mask)
        cpu.append(time.thread_time() - start_cpu)
        wall.append(time.perf_counter() - start)
        scores.append(s[0])
        ids.append(i[0])
    return np.stack(scores), np.stack(ids), wall, cpu


def route(index: VectorIndex, allowed: int) -> str:
    """How `VectorIndex.search` runs a query with this many allowed rows (its selectivity rule)."""
    if index.kind == "exact":
        return "flat+selector" if allowed < index.ntotal else "flat"
    return f"ivf nprobe={index.nprobe_for(allowed)}"


def ms(seconds: list[float], q: float) -> float:
    return 1000 * float(np.percentile(seconds, q))


def measure(n: int, dim: int, queries: int, k: int, filters: list[float], centers: int, noise: float,
            config: SearchConfig, sizes: list[int], seed: int = 0) -> dict:
    """Build both indexes over synthetic embeddings and time them; the figures as a dict."""
    base = rss_mb()
    start = time.perf_counter()
    everything = synthetic_embeddings(n + queries, dim, centers, noise, seed)  # queries: the same clusters
    vectors, qs = everything[:n], everything[n:].copy()
    del everything
    print(f"{n:,} vectors of {dim} dims ({centers} clusters, noise {noise}) in {time.perf_counter() - start:.1f} s, "
          f"{rss_mb() - base:,.0f} MB", flush=True)

    result: dict = {"n": n, "dim": dim, "queries": queries, "k": k, "centers": centers, "noise": noise,
                    "nlist": config.lists_for(n), "nprobe": config.nprobe,
                    "threads_per_query": config.search_threads,
                    "load_average_at_start": os.getloadavg()[0]}
    built = {}
    for kind in ("exact", "ivf"):
        before, start = rss_mb(), time.perf_counter()
        built[kind] = VectorIndex.build(vectors, config, kind=kind)
        result[f"{kind}_build_s"] = time.perf_counter() - start
        result[f"{kind}_memory_mb"] = rss_mb() - before
        print(f"build {kind:5s}: {result[f'{kind}_build_s']:7.1f} s, +{result[f'{kind}_memory_mb']:,.0f} MB resident",
              flush=True)
    del vectors

    print(f"\nper query, one at a time (wall: under whatever else runs here; cpu: this thread's own time)")
    print(f"{'filter':>7}  {'exact wall p50/p99':>18}  {'ivf wall p50/p99':>16}  {'ivf cpu p50/p99':>15}  "
          f"{'exact/ivf':>9}  {'recall@' + str(k):>9}  ivf route")
    rows = []
    for fraction in filters:
        mask = None if fraction >= 1 else random_mask(n, fraction, seed + 2)
        allowed = n if mask is None else int(mask.sum())
        truth_scores, truth, t_exact, c_exact = time_queries(built["exact"], qs, k, mask)
        _, found, t_ivf, c_ivf = time_queries(built["ivf"], qs, k, mask)
        row = {"filter": fraction, "allowed": allowed,
               "exact_p50_ms": ms(t_exact, 50), "exact_p99_ms": ms(t_exact, 99),
               "exact_cpu_p50_ms": ms(c_exact, 50), "exact_cpu_p99_ms": ms(c_exact, 99),
               "ivf_p50_ms": ms(t_ivf, 50), "ivf_p99_ms": ms(t_ivf, 99),
               "ivf_cpu_p50_ms": ms(c_ivf, 50), "ivf_cpu_p99_ms": ms(c_ivf, 99),
               "route": route(built["ivf"], allowed), f"recall@{k}": recall_at_k(found, truth),
               "cosine_1st_10th": [float(truth_scores[:, 0].mean()), float(truth_scores[:, k - 1].mean())]}
        rows.append(row)
        print(f"{fraction:>7.0%}  {row['exact_p50_ms']:8.1f}/{row['exact_p99_ms']:6.1f} ms  "
              f"{row['ivf_p50_ms']:6.1f}/{row['ivf_p99_ms']:6.1f} ms  {row['ivf_cpu_p50_ms']:5.1f}/{row['ivf_cpu_p99_ms']:5.1f} ms  "
              f"{row['exact_p50_ms'] / row['ivf_p50_ms']:8.1f}x  {row[f'recall@{k}']:9.4f}  {row['route']}", flush=True)
    first, tenth = rows[0]["cosine_1st_10th"]
    print(f"(difficulty: a query's 1st / {k}th exact neighbour at cosine {first:.3f} / {tenth:.3f} unfiltered; "
          f"a random pair ~0)")
    result["filters"] = rows
    exact = built["exact"]
    del built

    # where the exact index stops being fast enough: its p50 at growing sizes, one thread
    print("\nexact index, one query, one thread: p50 by size")
    result["exact_by_size"] = {}
    for size in [s for s in sizes if s <= n]:
        small = VectorIndex.build(exact.index.reconstruct_n(0, size), config, kind="exact")
        _, _, t, c = time_queries(small, qs[:min(queries, 100)], k, None)
        result["exact_by_size"][size] = {"wall_p50_ms": ms(t, 50), "cpu_p50_ms": ms(c, 50)}
        print(f"{size:>9,}  wall {ms(t, 50):7.2f} ms  cpu {ms(c, 50):7.2f} ms")
    if 100_000 in result["exact_by_size"]:
        small = VectorIndex.build(exact.index.reconstruct_n(0, 100_000), config, kind="exact")
        two = VectorIndex(small.index, SearchConfig(search_threads=2))
        _, _, t1, _ = time_queries(small, qs[:100], k, None)
        _, _, t2, _ = time_queries(two, qs[:100], k, None)
        result["threads_100k_p50_ms"] = {"1": ms(t1, 50), "2": ms(t2, 50)}
        print(f"100,000 vectors, one exact query: 1 thread {ms(t1, 50):.2f} ms, 2 threads {ms(t2, 50):.2f} ms "
              f"({ms(t2, 50) / ms(t1, 50):.1f}x)")
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--filters", type=float, nargs="+", default=[1.0, 0.5, 0.1, 0.01])
    parser.add_argument("--centers", type=int, default=1000, help="cluster directions of the synthetic embeddings")
    parser.add_argument("--noise", type=float, default=2.0, help="Gaussian noise per point (see the docstring); "
                        "2.0 makes clusters overlap so that IVF misses some neighbours (1.0: it misses none)")
    parser.add_argument("--nlist", type=int, default=None, help="IVF lists (default: SearchConfig's, sqrt(n))")
    parser.add_argument("--nprobe", type=int, default=SearchConfig.nprobe)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 30_000, 100_000, 300_000, 1_000_000])
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the figures here")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    print(f"cpu: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} (other work on the machine "
          "slows the wall times; the cpu times are this thread's own)")
    config = SearchConfig(nlist=args.nlist, nprobe=args.nprobe)
    result = measure(args.n, args.dim, args.queries, args.k, args.filters, args.centers, args.noise, config,
                     args.sizes)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    return result


def main(argv: list[str] | None = None) -> int:
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
