"""Deployment speed (issue 19): the onnxruntime backend, int8, and start-up, each against its reference,
measured side by side in one run. Ratios only; nothing here is asserted by the tests.

    python benchmarks/bench_onnx.py                      # every section, 400 images
    python benchmarks/bench_onnx.py --only encoder int8 --n 200

Sections (`--only`):
- encoder: images/s of the bare image encoder, torch `model.encode_image` against `image.onnx` (float32
  and int8) on the same decoded pixels, batch 64, the embedded default model.
- e2e: `flip classify --backend onnx` end to end (a fresh process, warm text cache) against a plain
  open_clip user's script (`benchmarks/open_clip_user.py`: create_model_and_transforms, a DataLoader with
  one worker, the mean of descriptor embeddings) on the same ViT-S-32 weights (random, written to a
  local checkpoint: nothing is downloaded) and images; median wall over --repeats alternating rounds.
  Also `flip classify` on torch, and the largest score difference between flip's onnx answers and the
  script's (same preprocessing: PIL's resize).
- int8: mean accuracy over the synthetic world's attributes (by description, shipped prompt files) of the
  embedded default's float32 and int8 exports, on freshly rendered labelled faces.
- startup: `flip.load()` of the embedded default after torch is imported (fresh process); one image
  through `flip classify` with the onnx backend and a warm text cache, and with torch (wall).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
SECTIONS = ("encoder", "e2e", "int8", "startup")
TASKS = ("emotion", "age_group")


def run_flip(*args: str, env: dict | None = None) -> float:
    """Wall seconds of `python -m flip ARGS` in a fresh process (fails loudly)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "flip", *args], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def write_faces(folder: Path, n: int, size: int = 128, seed: int = 0) -> tuple[list[str], list[dict]]:
    """N JPEG files of the synthetic world and their visible labels as class keys."""
    import numpy as np

    from flip.data.records import ATTRIBUTES
    from flip.data.synthetic import make_identities, render_face, sample_face
    from flip.data.synthetic.attributes import visible_attributes
    from flip.prompts import label_key

    rng = np.random.default_rng(seed)
    people = make_identities(max(1, n // 4), seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths, labels = [], []
    for i in range(n):
        face = sample_face(rng, people[i % len(people)])
        path = folder / f"face{i:05d}.jpg"
        render_face(face, size=size)[0].save(path, quality=90)
        shown = visible_attributes(face.labels())
        paths.append(str(path))
        labels.append({a: label_key(shown[a]) for a in ATTRIBUTES if shown.get(a) is not None})
    return paths, labels


def export_default(folder: Path, int8: bool) -> Path:
    import flip
    from flip.export import export_onnx

    model, processor = flip.load()
    return export_onnx(model, processor, folder, int8=int8, overwrite=True)


# -- sections ----------------------------------------------------------------------------------------
def bench_encoder(paths: list[str], fp32: Path, int8: Path, batch_size: int = 64, repeats: int = 3) -> dict:
    """Images/s of the bare image encoder: torch against onnxruntime float32 and int8, same pixels."""
    import torch

    import flip
    from flip.onnx_backend import OnnxFLIP

    model, processor = flip.load()
    pixels = processor.normalize(processor.pixels(paths))
    backends = {"torch": model.encode_image, "onnx": OnnxFLIP(fp32).encode_image,
                "onnx_int8": OnnxFLIP(int8).encode_image}
    inputs = {"torch": pixels, "onnx": pixels.numpy(), "onnx_int8": pixels.numpy()}
    best = {name: 0.0 for name in backends}
    with torch.inference_mode():
        for _ in range(repeats):  # alternating rounds: a shared machine's load falls on every side alike
            for name, encode in backends.items():
                encode(inputs[name][:batch_size])  # warm-up
                start = time.perf_counter()
                for i in range(0, len(paths), batch_size):
                    encode(inputs[name][i:i + batch_size])
                best[name] = max(best[name], len(paths) / (time.perf_counter() - start))
    return {"images_per_s": best, "onnx/torch": best["onnx"] / best["torch"],
            "onnx_int8/torch": best["onnx_int8"] / best["torch"]}


def bench_int8_accuracy(paths: list[str], labels: list[dict], fp32: Path, int8: Path) -> dict:
    """Mean attribute accuracy (by description) of the float32 and int8 exports on labelled faces."""
    import numpy as np

    from flip.data.records import ATTRIBUTES
    from flip.onnx_backend import OnnxClassifier, OnnxFLIP
    from flip.prompts import available_tasks

    tasks = [a for a in ATTRIBUTES if a in available_tasks() and any(a in row for row in labels)]
    out = {}
    for name, folder in (("fp32", fp32), ("int8", int8)):
        model = OnnxFLIP(folder)
        clf = OnnxClassifier(model, tasks)
        embeds = np.concatenate([model.encode_image(model.pixels(paths[i:i + 64])) for i in range(0, len(paths), 64)])
        results = clf.classify_embeddings(embeds)
        accuracy = {}
        for task in tasks:
            keep = [i for i, row in enumerate(labels) if task in row]
            predictions = results[task].predictions
            accuracy[task] = float(np.mean([predictions[i] == labels[i][task] for i in keep]))
        out[name] = {"mean": float(np.mean(list(accuracy.values()))), "per_task": accuracy}
    out["drop_points"] = 100 * (out["fp32"]["mean"] - out["int8"]["mean"])
    return out


def bench_e2e(folder: Path, work: Path, repeats: int = 3, arch: str = "ViT-S-32") -> dict:
    """Wall of `flip classify --backend onnx` (fp32, int8) and on torch, against the open_clip script."""
    import open_clip
    import torch

    import flip
    from flip.export import export_onnx
    from flip.prompts import load_prompts
    from flip.textside import descriptor_prompts

    torch.manual_seed(0)
    weights = work / f"{arch}.pt"
    torch.save(open_clip.create_model(arch).state_dict(), weights)
    model, processor = flip.load(f"open_clip:{arch}/{weights}")
    ckpt = flip.save(model, processor, work / "flip-ckpt")
    onnx_dirs = {name: export_onnx(model, processor, work / f"onnx-{name}", int8=name == "int8", overwrite=True)
                 for name in ("fp32", "int8")}
    descriptors = {}
    for task in TASKS:
        sentences, _, index = descriptor_prompts(load_prompts(task))
        classes = load_prompts(task).classes
        descriptors[task] = {c: [s for s, i in zip(sentences, index) if i == k] for k, c in enumerate(classes)}
    (work / "descriptors.json").write_text(json.dumps(descriptors))
    env = {**os.environ, "FLIP_CACHE": str(work / "cache"), "HF_HUB_OFFLINE": "1"}
    common = [str(folder), "--task", ",".join(TASKS), "--json"]
    runs = {
        "open_clip script": lambda: _wall([sys.executable, str(ROOT / "benchmarks" / "open_clip_user.py"), arch,
                                           str(weights), str(work / "descriptors.json"), str(folder),
                                           str(work / "open_clip.jsonl")], env),
        "flip onnx": lambda: run_flip("classify", *common, "--backend", "onnx", "--model", str(onnx_dirs["fp32"]),
                                      "--out", str(work / "onnx.jsonl"), env=env),
        "flip onnx int8": lambda: run_flip("classify", *common, "--backend", "onnx", "--model",
                                           str(onnx_dirs["int8"]), "--out", str(work / "int8.jsonl"), env=env),
        "flip torch": lambda: run_flip("classify", *common, "--model", str(ckpt), "--out", str(work / "torch.jsonl"),
                                       env=env),
    }
    run_flip("classify", *common, "--model", str(ckpt), "--out", os.devnull, env=env)  # warm the text cache
    walls = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            walls[name].append(run())
    median = {name: statistics.median(w) for name, w in walls.items()}
    base = median["open_clip script"]
    script = [json.loads(line) for line in (work / "open_clip.jsonl").read_text().splitlines()]
    onnx = [json.loads(line) for line in (work / "onnx.jsonl").read_text().splitlines()]
    diff = max(abs(o[t]["scores"][c] - s[t][c]) for o, s in zip(onnx, script) for t in TASKS for c in s[t])
    agree = sum(o[t]["prediction"] == max(s[t], key=s[t].get) for o, s in zip(onnx, script) for t in TASKS)
    return {"wall_s": median, "speedup_vs_open_clip": {n: base / m for n, m in median.items()},
            "max_score_diff_onnx_vs_open_clip": diff,
            "same_predictions": f"{agree}/{len(onnx) * len(TASKS)}"}


def bench_startup(image: str, fp32: Path, work: Path, repeats: int = 3) -> dict:
    """flip.load() after torch is imported, and one image through `flip classify` (onnx, torch), warm cache."""
    code = ("import time, torch; start = time.perf_counter(); import flip; flip.load(); "
            "print(time.perf_counter() - start)")
    env = {**os.environ, "FLIP_CACHE": str(work / "cache"), "HF_HUB_OFFLINE": "1"}
    loads = [float(subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True,
                                  text=True).stdout.split()[-1]) for _ in range(repeats)]
    run_flip("classify", image, "--json", env=env)  # warm the text cache for both backends
    onnx = [run_flip("classify", image, "--backend", "onnx", "--model", str(fp32), "--json", env=env)
            for _ in range(repeats)]
    torch_ = [run_flip("classify", image, "--json", env=env) for _ in range(repeats)]
    return {"flip.load_s": statistics.median(loads), "one_image_onnx_s": statistics.median(onnx),
            "one_image_torch_s": statistics.median(torch_),
            "torch/onnx": statistics.median(torch_) / statistics.median(onnx)}


def _wall(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--n", type=int, default=400, help="images (default 400)")
    parser.add_argument("--repeats", type=int, default=3)
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    """Every section asked for, side by side; the headline (for the harness's speed suite) is the end-to-end
    ratio of `flip classify --backend onnx` to the open_clip script, else the first ratio measured."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    report = {}
    with tempfile.TemporaryDirectory(prefix="bench_onnx.") as tmp:
        work = Path(tmp)
        paths, labels = write_faces(work / "faces", args.n)
        fp32, int8 = export_default(work / "default-fp32", False), export_default(work / "default-int8", True)
        if "encoder" in args.only:
            report["encoder"] = bench_encoder(paths, fp32, int8, repeats=args.repeats)
        if "int8" in args.only:
            report["int8"] = bench_int8_accuracy(paths, labels, fp32, int8)
        if "e2e" in args.only:
            report["e2e"] = bench_e2e(work / "faces", work, args.repeats)
        if "startup" in args.only:
            report["startup"] = bench_startup(paths[0], fp32, work, args.repeats)
    if "e2e" in report:
        headline = {"name": "flip classify --backend onnx / open_clip script, end to end",
                    "ratio": report["e2e"]["speedup_vs_open_clip"]["flip onnx"], "goal": 1.5}
    elif "encoder" in report:
        headline = {"name": "image encoder, onnxruntime / torch", "ratio": report["encoder"]["onnx/torch"]}
    elif "int8" in report:
        headline = {"name": "int8 mean attribute accuracy drop", "value": report["int8"]["drop_points"],
                    "unit": "points", "goal": 1.0}
    else:
        headline = {"name": "flip.load() after import torch", "value": report["startup"]["flip.load_s"],
                    "unit": "s", "goal": 1.0}
    return {"headline": headline, **report}


def main(argv: list[str] | None = None) -> int:
    print(json.dumps(run(parse_args(argv)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
