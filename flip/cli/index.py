"""`flip index`: build or extend a searchable index of the faces in images.

    flip index photos/ --out faces.index             # a new index, or more faces for an existing one
    flip search faces.index "a smiling woman with glasses" --where hair_color=grey
    flip index --out faces.index --export faces.parquet   # every face as a Parquet row (for a vector DB)

Each face (one per image for now) is stored with its embedding, box, source path and the
prediction of every attribute task by description, which `flip search --where` filters on. Adding
is incremental and an interrupted run resumes: the same command again skips what is indexed.
Unreadable images are reported by path and skipped (exit code 1; `--skip-bad`: 0).
"""

from __future__ import annotations

import argparse
import sys

from flip.cli._common import add_device_arguments, add_skip_bad, partial_exit, skipped_line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flip index", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("inputs", nargs="*", metavar="IMAGES_OR_DIR", help="image files and/or folders (recursive)")
    parser.add_argument("--out", required=True, metavar="INDEX", help="the index folder (created, or added to)")
    parser.add_argument("--model", default=None,
                        help="model name, Hub id, directory or file (default: the index's model, else the embedded one)")
    parser.add_argument("--task", action="append", default=None, metavar="TASK",
                        help="attribute tasks to predict and store, for a new index (default: the synthetic world's 13)")
    parser.add_argument("--export", default=None, metavar="FILE.parquet",
                        help="after adding (if any), write every face of the index to this Parquet file")
    parser.add_argument("--overwrite", action="store_true", help="let --export replace an existing file")
    add_device_arguments(parser)
    add_skip_bad(parser)
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be >= 1, got {args.batch_size}")

    if not args.inputs and not args.export:
        parser.error("give images to index, or --export FILE")
    from flip.cli.classify import collect_images
    from flip.tasks.search import FaceIndex

    if not args.inputs:
        try:
            with FaceIndex.open(args.out) as index:
                written = index.export_parquet(args.export, overwrite=args.overwrite)
                print(f"wrote {written}: {len(index)} face(s)", file=sys.stderr)
        except (FileNotFoundError, FileExistsError, ValueError) as err:
            return _fail(err)
        return 0
    paths, problems = collect_images(args.inputs)
    for path, why in problems:
        print(skipped_line(path, why), file=sys.stderr)
    if not paths:  # every input missing: exit 1 like any run with skipped inputs, without touching the index
        print(f"{args.out}: added nothing; skipped {len(problems)} missing", file=sys.stderr)
        return partial_exit(0, len(problems), args.skip_bad)

    import torch
    from tqdm import tqdm

    from flip.hub import DEFAULT_MODEL, load
    from flip.zeroshot import TextCache, default_cache_dir

    existing = FaceIndex.is_index(args.out)
    try:
        index = FaceIndex.open(args.out) if existing else None
        model_name = args.model or (index.meta.get("model") if index else None) or DEFAULT_MODEL
        model, processor = load(model_name, device=args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if index is None:
            tasks = [t.strip() for item in args.task for t in item.split(",") if t.strip()] if args.task else None
            index = FaceIndex.create(args.out, model, processor, tasks=tasks, model_name=model_name)
        elif args.task:
            print("note: --task is ignored when adding to an existing index (its columns are fixed)", file=sys.stderr)
        bar = tqdm(total=len(paths), unit="img", desc="index", disable=None, file=sys.stderr)
        try:
            report = index.add_files(model, processor, paths, batch_size=args.batch_size, num_workers=args.workers,
                                     cache=TextCache(default_cache_dir()), progress=bar.update)
        finally:
            bar.close()
    except (FileNotFoundError, FileExistsError, ValueError, KeyError, ImportError) as err:
        return _fail(err.args[0] if isinstance(err, KeyError) else str(err))
    if args.export:
        try:
            print(f"wrote {index.export_parquet(args.export, overwrite=args.overwrite)}", file=sys.stderr)
        except FileExistsError as err:
            return _fail(err)
    for path, why in report.failed:
        print(skipped_line(path, why), file=sys.stderr)
    print(f"{args.out}: added {report.added} face(s), {report.already} image(s) already indexed, "
          f"{len(report.failed) + len(problems)} skipped; {len(index)} face(s) in all "
          f"({index.vectors().kind} search)", file=sys.stderr)
    index.close()
    return partial_exit(report.added + report.already, len(report.failed) + len(problems), args.skip_bad)


def _fail(message) -> int:
    from flip.cli import error_line

    print(error_line("index", message if isinstance(message, BaseException) else ValueError(message)),
          file=sys.stderr)
    return 2
