"""`flip classify`: zero-shot facial attribute classification by description.

    flip classify faces/ --task emotion --task age_group --explain
    flip classify a.jpg b.png --task hat --baseline --json > answers.jsonl
    flip classify --list-tasks

Prints a table by default (one row per image and task: prediction, its score, the runner-up);
`--json` writes JSON Lines, one object per image: {"path": ..., "<task>": {"prediction",
"scores", "descriptors"}}; `--csv` writes one row per image. Unreadable files are reported by
path and skipped; the summary on stderr counts them. The text side is cached on disk
(`$FLIP_CACHE`, default ~/.cache/flip/text) so a second run embeds no text.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

#: File extensions collected from a directory (explicit file arguments are always tried).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
#: Tasks when no --task is given (`--task all`: every attribute of the synthetic world's records).
DEFAULT_TASKS = ("emotion", "age_group")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="flip classify", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:]))
    p.add_argument("inputs", nargs="*", metavar="IMAGES_OR_DIR", help="image files and/or folders (searched recursively)")
    p.add_argument("--task", action="append", default=None, metavar="TASK",
                   help=f"task name or prompt-file path; repeat or comma-separate; 'all' = every top-level task "
                        f"(default: {', '.join(DEFAULT_TASKS)})")
    p.add_argument("--model", default=None, help="model name, Hub id, directory or file (default: the embedded model)")
    p.add_argument("--baseline", action="store_true", help="class names in templates instead of descriptors")
    p.add_argument("--aggregate", choices=("mean", "max", "sum"), default="mean",
                   help="how descriptor similarities make a class score (default: mean, the paper's)")
    p.add_argument("--explain", nargs="?", type=int, const=3, default=None, metavar="K",
                   help="show the K descriptors that decided each answer (default K: 3)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="write JSON Lines, one object per image")
    out.add_argument("--csv", action="store_true", help="write CSV, one row per image")
    p.add_argument("--out", default=None, metavar="FILE", help="write the table / JSON Lines / CSV here, not stdout")
    p.add_argument("--plot", default=None, metavar="FILE", help="save a figure of the descriptor contributions "
                   "(first 8 images; needs matplotlib)")
    p.add_argument("--prompts", default=None, metavar="DIR", help="prompt folder (default: $FLIP_PROMPTS or flip's own)")
    p.add_argument("--list-tasks", action="store_true", help="list the tasks and their classes, then exit")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers decoding images (default: cores - 1)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    p.add_argument("--backend", choices=("torch", "onnx"), default="torch",
                   help="onnx: run a folder written by `flip export MODEL FOLDER --onnx` (--model FOLDER) on "
                        "onnxruntime; with a warm text cache it never imports torch")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the on-disk text cache")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be >= 1, got {args.batch_size}")

    from flip.prompts import load_prompts

    if args.list_tasks:
        return _list_tasks(args.prompts)
    if not args.inputs:
        parser.error("give image files or folders (or --list-tasks)")
    names = _task_names(args.task, args.prompts)
    try:
        prompt_sets = [load_prompts(t, args.prompts) for t in names]
    except KeyError as err:
        return _fail(f"{err.args[0]}\n(`flip classify --list-tasks` lists them with their classes)")
    except (ValueError, FileNotFoundError) as err:
        return _fail(str(err))
    if len({p.task for p in prompt_sets}) != len(prompt_sets):
        return _fail(f"--task names a task twice: {names}")

    paths, problems = collect_images(args.inputs)
    if not paths:
        return _fail("; ".join(problems) if problems else "no images given")

    from tqdm import tqdm

    if args.backend == "onnx":
        if args.plot:
            return _fail("--plot draws with torch: use --backend torch")
        try:
            clf = _onnx_classifier(args, prompt_sets)
        except (FileNotFoundError, ValueError, ImportError) as err:
            return _fail(str(err))
    else:
        import torch

        from flip.hub import load
        from flip.zeroshot import FLIPClassifier, TextCache, default_cache_dir, default_text_cache

        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            model, processor = load(args.model, device=device)
        except (FileNotFoundError, ValueError, KeyError) as err:
            return _fail(err.args[0] if isinstance(err, KeyError) else str(err))
        cache = default_text_cache() if args.no_cache else TextCache(default_cache_dir())
        clf = FLIPClassifier(model, processor, prompt_sets, method="baseline" if args.baseline else "descriptors",
                             aggregate=args.aggregate, cache=cache)

    k = args.explain if args.explain is not None else 3
    stream = open(args.out, "w", newline="", encoding="utf-8") if args.out else sys.stdout
    writer = _make_writer(args, stream, clf, paths, k)
    done, skipped, kept = 0, [], []
    bar = tqdm(total=len(paths), unit="img", desc="classify", disable=None, file=sys.stderr)
    try:
        for batch in clf.classify_files(paths, batch_size=args.batch_size, num_workers=args.workers):
            for path, why in batch.failed:
                skipped.append(path)
                bar.write(f"skipped {path}: {why}", file=sys.stderr)
            for i, path in enumerate(batch.paths):
                writer(path, {task: res.record(i, k) for task, res in batch.results.items()})
            if args.plot and sum(len(b[0]) for b in kept) < 8 and batch.paths:
                kept.append((batch.paths, batch.results))
            done += len(batch.paths)
            bar.update(len(batch.paths) + len(batch.failed))
    finally:
        bar.close()
        if stream is not sys.stdout:
            stream.close()

    if args.plot and kept:
        from flip.zeroshot import TaskResult, plot_contributions

        labels = [p for ps, _ in kept for p in ps]
        merged = {t: TaskResult.cat([r[t] for _, r in kept]) for t in clf.tasks}
        print(f"wrote {plot_contributions(merged, labels, args.plot, k=max(k, 1))}", file=sys.stderr)
    missing = [f"skipped {p}" for p in problems]
    for line in missing:
        print(line, file=sys.stderr)
    method = "baseline (class names in templates)" if args.baseline else f"by description ({args.aggregate})"
    print(f"classified {done} image(s) {method} for {', '.join(clf.tasks)}; "
          f"skipped {len(skipped) + len(problems)} unreadable or missing", file=sys.stderr)
    return 0 if done else 1


def _onnx_classifier(args, prompt_sets):
    """The torch-free classifier on an export folder (flip.onnx_backend)."""
    from flip.onnx_backend import OnnxClassifier, OnnxFLIP
    from flip.textside import default_cache_dir

    if args.model is None:
        raise ValueError("--backend onnx needs --model FOLDER, a folder written by `flip export MODEL FOLDER --onnx`")
    return OnnxClassifier(OnnxFLIP(args.model), prompt_sets, method="baseline" if args.baseline else "descriptors",
                          aggregate=args.aggregate, cache_dir=None if args.no_cache else default_cache_dir())


# -- inputs -----------------------------------------------------------------------------------------
def collect_images(inputs: list[str]) -> tuple[list[str], list[str]]:
    """Image paths from files and folders (sorted within a folder), and what could not be used."""
    paths, problems = [], []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
            if not found:
                problems.append(f"{path}: a folder with no images (looked for {', '.join(IMAGE_EXTENSIONS)})")
            paths += found
        elif path.exists():
            paths.append(str(path))
        else:
            problems.append(f"{path}: no such file or folder")
    return paths, problems


def _task_names(given: list[str] | None, root: str | None) -> list[str]:
    from flip.data.records import ATTRIBUTES
    from flip.prompts import available_tasks

    names = [t.strip() for item in (given or DEFAULT_TASKS) for t in item.split(",") if t.strip()]
    if "all" in names:
        top = [t for t in available_tasks(root) if "/" not in t]
        names = [t for t in ATTRIBUTES if t in top] + [t for t in top if t not in ATTRIBUTES]
    return names


def _list_tasks(root: str | None) -> int:
    from flip.prompts import available_tasks, load_prompts, prompt_root

    tasks = available_tasks(root)
    if not tasks:
        return _fail(f"no prompt files in {prompt_root(root)}")
    width = max(map(len, tasks))
    for task in tasks:
        p = load_prompts(task, root)
        print(f"{task:<{width}}  {', '.join(p.classes)}")
    print(f"({len(tasks)} tasks in {prompt_root(root)})", file=sys.stderr)
    return 0


def _fail(message: str) -> int:
    print(f"flip classify: {message}", file=sys.stderr)
    return 2


# -- output -----------------------------------------------------------------------------------------
def _make_writer(args, stream, clf, paths: list[str], k: int):
    tasks = clf.tasks
    if args.json:
        def write_json(path, answers):
            stream.write(json.dumps({"path": path, **answers}, ensure_ascii=False) + "\n")
            stream.flush()
        return write_json
    if args.csv:
        out = csv.writer(stream)
        header = ["path"]
        for t in tasks:
            header += [t, f"{t}.score"] + ([f"{t}.descriptors"] if args.explain is not None else [])
        out.writerow(header)

        def write_csv(path, answers):
            row = [path]
            for t in tasks:
                a = answers[t]
                row += [a["prediction"], f"{a['scores'][a['prediction']]:.4f}"]
                if args.explain is not None:
                    row.append("; ".join(d["text"] for d in a["descriptors"]))
            out.writerow(row)
        return write_csv

    name_width = min(48, max(len("image"), *(len(p) for p in paths)))
    task_width = max(len("task"), *(len(t) for t in tasks))
    class_width = max(len("prediction"), *(len(c) for t in tasks for c in clf.heads[t].classes))
    stream.write(f"{'image':<{name_width}}  {'task':<{task_width}}  {'prediction':<{class_width}}  score   runner-up\n")

    def write_table(path, answers):
        shown = path if len(path) <= name_width else "…" + path[-(name_width - 1):]
        for j, t in enumerate(tasks):
            a = answers[t]
            ranked = sorted(a["scores"].items(), key=lambda kv: -kv[1])
            runner = f"{ranked[1][0]} ({ranked[1][1]:.3f})" if len(ranked) > 1 else ""
            label = shown if j == 0 else ""
            stream.write(f"{label:<{name_width}}  {t:<{task_width}}  {a['prediction']:<{class_width}}  "
                         f"{ranked[0][1]:.3f}  {runner}\n")
            if args.explain is not None:
                for d in a["descriptors"]:
                    stream.write(f"{'':<{name_width + task_width + 4}}  + {d['text']} ({d['similarity']:.3f})\n")
        stream.flush()
    return write_table
