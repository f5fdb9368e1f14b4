"""`flip classify`: zero-shot facial attribute classification by description.

    flip classify faces/ --task emotion --task age_group --explain
    flip classify a.jpg b.png --task hat --baseline --json > answers.jsonl
    flip classify --list-tasks

Every photo goes through the face stage (`--faces`, default auto: a face crop the size of the
model input is taken whole, faces are detected in anything else) and gets one answer per face.
Prints a table by default (faces grouped by image; one row per face and task: prediction, its
score, its probability, the runner-up); `--json` writes JSON Lines, one object per face:
{"path", "face", "box": [x0, y0, x1, y1], "detector_score", "whole_image", "<task>":
{"prediction", "scores", "probabilities", "descriptors"}, "model"}; `--csv` one row per face.
Scores are mean cosine similarities between the face and the class's descriptor sentences (they
may be negative; only their order matters); probabilities are the softmax of the scores times the
model's learned logit scale, as CLIP reads its logits. Unreadable files are reported by path and
skipped; the summary on stderr counts them, and the exit code is then 1 (`--skip-bad`: 0).
`--out` is written to a temporary file and renamed at the end: if no image could be read, an
existing file there is left as it was. The text side is cached on disk (`$FLIP_CACHE`,
default ~/.cache/flip/text) so a second run embeds no text. `--backend onnx --model FOLDER` runs a
folder written by `flip export MODEL FOLDER --onnx` on onnxruntime with the same records; on a warm
text cache (shared with the torch model it came from) it never imports torch.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import sys
from pathlib import Path

from flip.cli._common import add_device_arguments, add_skip_bad, nonnegative_int, partial_exit, printable, skipped_line
from flip.cli._faces import (PhotoNotes, add_face_arguments, draw_image, face_cell, face_stage, model_name,
                             per_image)

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
    p.add_argument("--explain", nargs="?", type=nonnegative_int, const=3, default=None, metavar="K",
                   help="show the K descriptors that decided each answer (default K: 3)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="write JSON Lines, one object per image")
    out.add_argument("--csv", action="store_true", help="write CSV, one row per image")
    p.add_argument("--out", default=None, metavar="FILE", help="write the table / JSON Lines / CSV here, not stdout")
    p.add_argument("--plot", default=None, metavar="FILE", help="save a figure of the descriptor contributions "
                   "(first 8 images; needs matplotlib)")
    p.add_argument("--prompts", default=None, metavar="DIR", help="prompt folder (default: $FLIP_PROMPTS or flip's own)")
    p.add_argument("--list-tasks", action="store_true", help="list the tasks and their classes, then exit")
    add_device_arguments(p)
    p.add_argument("--backend", choices=("torch", "onnx"), default="torch",
                   help="onnx: run a folder written by `flip export MODEL FOLDER --onnx` (--model FOLDER) on "
                        "onnxruntime; with a warm text cache it never imports torch")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the on-disk text cache")
    add_face_arguments(p)
    add_skip_bad(p)
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
    if not names:
        return _fail(f"--task {args.task!r} names no task (`flip classify --list-tasks` lists them)")
    try:
        prompt_sets = [load_prompts(t, args.prompts) for t in names]
    except KeyError as err:
        return _fail(f"{err.args[0]}\n(`flip classify --list-tasks` lists them with their classes)")
    except (ValueError, FileNotFoundError) as err:
        return _fail(str(err))
    if len({p.task for p in prompt_sets}) != len(prompt_sets):
        return _fail(f"--task names a task twice: {names}")

    try:
        stage = face_stage(args)
    except ValueError as err:
        return _fail(str(err))
    paths, problems = collect_images(args.inputs)
    for path, why in problems:
        print(skipped_line(path, why), file=sys.stderr)
    if not paths:  # every input missing: exit 1 like any run with skipped inputs, without loading the model
        print(f"classified no image; skipped {len(problems)} missing", file=sys.stderr)
        return partial_exit(0, len(problems), args.skip_bad)

    from tqdm import tqdm

    from flip._files import atomic_output, check_writable_file

    if args.out:
        check_writable_file(args.out, "--out")
    if args.backend == "onnx":
        if args.plot:
            return _fail("--plot draws with torch: use --backend torch")
        try:
            clf = _onnx_classifier(args, prompt_sets)
        except (FileNotFoundError, ValueError, ImportError) as err:
            return _fail(str(err))
        settings = clf.model.settings
    else:
        import torch

        from flip.hub import load
        from flip.zeroshot import FLIPClassifier, TextCache, default_cache_dir, default_text_cache

        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        model, processor = load(args.model, device=device)
        cache = default_text_cache() if args.no_cache else TextCache(default_cache_dir())
        clf = FLIPClassifier(model, processor, prompt_sets, method="baseline" if args.baseline else "descriptors",
                             aggregate=args.aggregate, cache=cache)
        settings = processor.settings

    k = args.explain if args.explain is not None else 3
    name = model_name(args.model)
    notes = PhotoNotes("classify", name, settings.image_size)
    done, faces_done, skipped, kept = 0, 0, [], []
    with contextlib.ExitStack() as files:
        stream = sys.stdout
        if args.out:  # a temporary file, renamed over --out only if some image was classified
            pending = files.enter_context(atomic_output(args.out))
            stream = files.enter_context(open(pending.path, "w", newline="", encoding="utf-8"))
        writer = _make_writer(args, stream, clf, paths, k)
        bar = files.enter_context(tqdm(total=len(paths), unit="img", desc="classify", disable=None, file=sys.stderr))
        for batch in clf.classify_files(paths, batch_size=args.batch_size, num_workers=args.workers, faces=stage):
            for path, why in batch.failed:
                skipped.append(path)
                bar.write(skipped_line(path, why), file=sys.stderr)
            records = batch.records(k)
            for path, rows in per_image(notes, batch.paths, batch.faces, batch.no_face):
                for i in rows:
                    writer({**records[i], "model": name}, first=i == rows[0])
                if args.draw:
                    draw_image(args.draw, path, [batch.faces[i] for i in rows],
                               [_label(records[i], clf.tasks) for i in rows])
            if args.plot and sum(len(b[0]) for b in kept) < 8 and batch.paths:
                kept.append(([_row_name(r) for r in records], batch.results))
            done += len(set(batch.paths))
            faces_done += len(batch.paths)
            bar.update(len(set(batch.paths)) + len(batch.failed) + len(batch.no_face))
        if args.out and not done:
            pending.keep = False

    if args.plot and kept:
        from flip.zeroshot import TaskResult, plot_contributions

        labels = [p for ps, _ in kept for p in ps]
        merged = {t: TaskResult.cat([r[t] for _, r in kept]) for t in clf.tasks}
        print(f"wrote {plot_contributions(merged, labels, args.plot, k=max(k, 1))}", file=sys.stderr)
    method = "baseline (class names in templates)" if args.baseline else f"by description ({args.aggregate})"
    print(f"classified {faces_done} face(s) in {done} image(s) {method} for {', '.join(clf.tasks)}; "
          f"skipped {len(skipped) + len(problems)} unreadable or missing", file=sys.stderr)
    if args.draw and done:
        print(f"drew {done} image(s) into {args.draw}", file=sys.stderr)
    return partial_exit(done, len(skipped) + len(problems), args.skip_bad)


def _row_name(record: dict) -> str:
    """A row's name in figures: the path, and its face when detected."""
    return record["path"] if record["face"] is None or record["whole_image"] else f"{record['path']}#{record['face']}"


def _label(record: dict, tasks: list[str]) -> str:
    """A face's label in --draw pictures: one line per task, its prediction and probability."""
    lines = []
    for t in tasks:
        a = record[t]
        p = a.get("probabilities", a["scores"])[a["prediction"]]
        lines.append(f"{a['prediction']} {p:.2f}" if len(tasks) == 1 else f"{t}: {a['prediction']} {p:.2f}")
    return "\n".join(lines)


def _onnx_classifier(args, prompt_sets):
    """The torch-free classifier on an export folder (flip.onnx_backend)."""
    from flip.onnx_backend import OnnxClassifier, OnnxFLIP
    from flip.textside import default_cache_dir

    if args.model is None:
        raise ValueError("--backend onnx needs --model FOLDER, a folder written by `flip export MODEL FOLDER --onnx`")
    return OnnxClassifier(OnnxFLIP(args.model), prompt_sets, method="baseline" if args.baseline else "descriptors",
                          aggregate=args.aggregate, cache_dir=None if args.no_cache else default_cache_dir())


# -- inputs -----------------------------------------------------------------------------------------
def collect_images(inputs: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Image paths from files and folders (sorted within a folder), and what could not be used:
    (path, why) pairs."""
    from flip.processor import missing_file_reason

    paths, problems = [], []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
            if not found:
                problems.append((str(path), f"a folder with no images (looked for {', '.join(IMAGE_EXTENSIONS)})"))
            paths += found
        elif path.exists():
            paths.append(str(path))
        else:
            problems.append((str(path), missing_file_reason(path)))
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
    """A function writing one face's record (`first`: the first face of its image)."""
    tasks = clf.tasks
    if args.json:
        def write_json(record, first):
            stream.write(json.dumps(record, ensure_ascii=False) + "\n")
            stream.flush()
        return write_json
    if args.csv:
        out = csv.writer(stream)
        header = ["path", "face", "box", "detector_score", "whole_image"]
        for t in tasks:
            header += [t, f"{t}.score", f"{t}.probability"] + ([f"{t}.descriptors"] if args.explain is not None else [])
        out.writerow(header + ["model"])

        def write_csv(record, first):
            row = [record["path"], "" if record["face"] is None else record["face"],
                   " ".join(f"{v:.1f}" for v in record["box"]),
                   "" if record["detector_score"] is None else record["detector_score"], record["whole_image"]]
            for t in tasks:
                a = record[t]
                probs = a.get("probabilities")
                row += [a["prediction"], f"{a['scores'][a['prediction']]:.4f}",
                        "" if probs is None else f"{probs[a['prediction']]:.4f}"]
                if args.explain is not None:
                    row.append("; ".join(d["text"] for d in a["descriptors"]))
            out.writerow(row + [record["model"]])
        return write_csv

    name_width = min(48, max(len("image"), *(len(printable(p)) for p in paths)))
    task_width = max(len("task"), *(len(t) for t in tasks))
    class_width = max(len("prediction"), *(len(c) for t in tasks for c in clf.heads[t].classes))
    face_width = 22  # "12 1234,1234,1234,1234"
    stream.write(f"{'image':<{name_width}}  {'face':<{face_width}}  {'task':<{task_width}}  "
                 f"{'prediction':<{class_width}}  score   prob   runner-up\n")

    def write_table(record, first):
        path = printable(record["path"])
        shown = path if len(path) <= name_width else "…" + path[-(name_width - 1):]
        face = face_cell(record)
        for j, t in enumerate(tasks):
            a = record[t]
            ranked = sorted(a["scores"].items(), key=lambda kv: -kv[1])
            runner = f"{ranked[1][0]} ({ranked[1][1]:.3f})" if len(ranked) > 1 else ""
            probs = a.get("probabilities")
            prob = f"{probs[a['prediction']]:.3f}" if probs is not None else "  -  "
            label = shown if j == 0 and first else ""
            face_label = face if j == 0 else ""
            stream.write(f"{label:<{name_width}}  {face_label:<{face_width}}  {t:<{task_width}}  "
                         f"{a['prediction']:<{class_width}}  {ranked[0][1]:.3f}  {prob}  {runner}\n")
            if args.explain is not None:
                for d in a["descriptors"]:
                    stream.write(f"{'':<{name_width + face_width + task_width + 6}}  + {d['text']} "
                                 f"({d['similarity']:.3f})\n")
        stream.flush()
    return write_table
