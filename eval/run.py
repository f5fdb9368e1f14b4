"""One command that runs every benchmark of flip on one model and writes one report.

    python -m eval.run --suite all --data data/ --out report/                  # every suite
    python -m eval.run --suite attributes --model runs/flip-tiny-synth/final --data data/ --out report/
    python -m eval.run --suite speed --quick --out report/                     # reduced benchmark sizes

Writes `report/results.json` (each suite's status and full result, and every figure flattened with
its dataset, split, model, seed, package version and whether its data are synthetic) and
`report/index.html` (one self-contained page, `eval/report.py`), beside the files each task writes.

Suites, each one module of `eval/tasks/` called through its `main(argv)` (the same command a user
runs alone, so the harness adds no second code path):
- retrieval, attributes (then the fairness audit on its per-example predictions), liveness: on the
  datasets found under --data (see below);
- naming, vqa: `eval/tasks/naming.py` and `eval/tasks/vqa.py` when they exist (a missing module,
  missing data, or for vqa no `--vqa-base` model, is recorded as skipped, with the reason);
- speed: `benchmarks.bench_classify`, `bench_train` and `bench_synth`, each called through its
  `run(parse_args(argv))`, with the machine's description (`--quick` for reduced sizes).

Data: --data DIR holds one dataset per kind, named `<kind>` or `synth-<kind>` (what `flip data synth
--kind <kind> --out data/synth-<kind>` writes): captions (retrieval, attributes), spoof (liveness),
naming or scenes (naming), qa or captions (vqa: any attribute-labelled faces). The README's test sets of
new people (`synth-fresh`, `synth-spoof-fresh`, `synth-qa-fresh`, from `eval/configs/`) come before the
seed-0 sets that the shipped models trained on; `--captions`,
`--spoof`, `--scenes`, `--qa` name one directly. A dataset is marked synthetic when it carries the
synthetic world's `synth_config.json`. A suite that fails is recorded with its error and the others
still run; the exit status is 1 if any suite failed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

SUITES = ("retrieval", "attributes", "celeba40", "liveness", "naming", "vqa", "speed")
#: The data kind each suite reads: (its --flag, the folder names looked for under --data, in order).
DATA = {
    "captions": ("captions", ("captions", "synth-fresh", "synth-captions")),
    "spoof": ("spoof", ("spoof", "synth-spoof-fresh", "synth-spoof")),
    "naming": ("scenes", ("naming", "synth-naming", "scenes", "synth-scenes")),
    "qa": ("qa", ("qa", "synth-qa-fresh", "synth-qa", "captions", "synth-captions")),  # any attribute-labelled faces
    "heldout": ("heldout", ("heldout", "synth-heldout")),  # captions in the held-out phrasing (world v3)
    "probe": ("probe_data", ("captions", "synth-captions")),  # faces the CelebA-40 linear probe trains on
}
#: Per benchmark (a module of benchmarks/): (full-size arguments, reduced arguments for --quick).
BENCH_ARGS = {
    "classify": ([], ["--n", "32", "--small-n", "8", "--repeats", "1", "--batch-sizes", "8", "--workers", "0"]),
    "train": ([], ["--quick", "--no-memory"]),
    "synth": ([], ["--n", "32", "--single", "16", "--size", "32", "--workers", "1"]),
    "onnx": ([], ["--n", "16", "--repeats", "1"]),
}


def source_revision(repo: Path = Path(__file__).resolve().parents[1]) -> dict:
    """The git commit the figures come from, and whether tracked files differed from it ("dirty");
    None for both outside a git checkout (an installed package)."""
    import subprocess

    def git(*cmd: str) -> str | None:
        try:
            return subprocess.run(["git", "-C", str(repo), *cmd], capture_output=True, text=True, check=True,
                                  timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def run_revision(start: dict, end: dict) -> dict:
    """The revision of a whole run from `source_revision` at its start and at its end: the start's
    commit, dirty when the tree was dirty at either end or the commit moved while the suites ran
    (tasks import their modules as they go, so a change mid-run is in some figures and not others)."""
    if start["commit"] is None:
        return start
    return {"commit": start["commit"], "dirty": bool(start["dirty"] or end["dirty"] or end["commit"] != start["commit"])}


class SuiteSkipped(Exception):
    """A suite that cannot run here (module or data missing): recorded with its reason, not a failure."""


# -- finding data -----------------------------------------------------------------------------------
def find_data(kind: str, args) -> Path:
    """The dataset of one kind (a key of DATA): its --flag, else the first of its folder names under
    --data, else --data itself when it is a synthetic dataset of that kind; SuiteSkipped otherwise."""
    flag, names = DATA[kind]
    explicit = getattr(args, flag)
    if explicit:
        path = Path(explicit)
        if not path.exists():
            raise FileNotFoundError(f"--{flag}: no such dataset: {path}")
        return path
    looked = " or ".join(f"{n}/" for n in names)
    if args.data is None:
        raise SuiteSkipped(f"no {kind} data: pass --data DIR (holding {looked}) or --{flag} DIR")
    base = Path(args.data)
    for name in names:
        if (base / name).is_dir():
            return base / name
    config = base / "synth_config.json"
    if config.is_file() and json.loads(config.read_text()).get("kind") == flag:
        return base
    raise SuiteSkipped(f"no {kind} data under {base} (looked for {looked}; or pass --{flag} DIR)")


def is_synthetic(path: Path) -> bool:
    """True for a dataset written by `flip data synth` (it carries `synth_config.json`)."""
    return (Path(path) / "synth_config.json").is_file()


# -- running one task -------------------------------------------------------------------------------
class _Tee(io.TextIOBase):
    """Writes to a stream and keeps a copy (to quote a failing task's error message)."""

    def __init__(self, stream):
        self.stream, self.copy = stream, io.StringIO()

    def write(self, text):
        self.copy.write(text)
        return self.stream.write(text)

    def flush(self):
        self.stream.flush()


def call_main(main: Callable[[list[str]], int], argv: list[str], what: str) -> None:
    """Run a task's `main(argv)`; a non-zero status or SystemExit becomes a RuntimeError quoting its stderr."""
    tee = _Tee(sys.stderr)
    try:
        with contextlib.redirect_stderr(tee):
            status = main(argv)
    except SystemExit as err:
        status = err.code if isinstance(err.code, int) else 1
        if not isinstance(err.code, int) and err.code is not None:
            tee.copy.write(str(err.code))
    if status:
        lines = [line for line in tee.copy.getvalue().splitlines() if line.strip()]
        raise RuntimeError(f"{what} exited with {status}: {lines[-1] if lines else 'no message'}")


def task_module(name: str):
    """`eval.tasks.<name>`, or SuiteSkipped when the module is not there (yet)."""
    try:
        return importlib.import_module(f"eval.tasks.{name}")
    except ModuleNotFoundError as err:
        if err.name in (f"eval.tasks.{name}", "eval.tasks"):
            raise SuiteSkipped(f"eval/tasks/{name}.py does not exist in this checkout") from None
        raise


def _common(args) -> list[str]:
    return ["--model", args.model] if args.model else []


def _limit(flag: str, args) -> list[str]:
    return [flag, str(args.limit)] if args.limit else []


def _optional_data(kind: str, args) -> Path | None:
    try:
        return find_data(kind, args)
    except SuiteSkipped:
        return None


def run_retrieval(args, out: Path) -> dict:
    data = find_data("captions", args)
    heldout = _optional_data("heldout", args)
    argv = [*_common(args), "--data", str(data), "--split", args.split, "--out", str(out), *_limit("--n", args),
            *(["--heldout-data", str(heldout)] if heldout else [])]
    call_main(task_module("retrieval").main, argv, "eval.tasks.retrieval")
    return {"dataset": str(data), "split": args.split, "result": json.loads((out / "retrieval.json").read_text())}


def run_attributes(args, out: Path) -> dict:
    data = find_data("captions", args)
    argv = [*_common(args), "--data", str(data), "--split", args.split, "--out", str(out), "--seed", str(args.seed),
            *_limit("--limit", args), *(["--prompts", args.prompts] if args.prompts else []),
            *(["--workers", str(args.workers)] if args.workers is not None else [])]
    call_main(task_module("attributes").main, argv, "eval.tasks.attributes")
    return {"dataset": str(data), "split": args.split, "result": json.loads((out / "attributes.json").read_text())}


def run_celeba40(args, out: Path) -> dict:
    data = find_data("captions", args)
    probe = find_data("probe", args)
    argv = [*_common(args), "--data", str(data), "--split", args.split, "--probe-data", str(probe),
            "--probe-split", "train", "--out", str(out), *_limit("--limit", args),
            *(["--workers", str(args.workers)] if args.workers is not None else [])]
    call_main(task_module("celeba40").main, argv, "eval.tasks.celeba40")
    return {"dataset": str(data), "split": args.split, "result": json.loads((out / "celeba40.json").read_text())}


def run_fairness(args, out: Path) -> dict:
    predictions = out / "attributes_predictions.jsonl"
    if not predictions.is_file():
        raise SuiteSkipped("the attributes suite wrote no predictions")
    argv = ["--predictions", str(predictions), "--out", str(out), "--seed", str(args.seed),
            "--min-count", str(args.min_group)]
    call_main(task_module("fairness").main, argv, "eval.tasks.fairness")
    data = find_data("captions", args)
    return {"dataset": str(data), "split": args.split, "result": json.loads((out / "fairness.json").read_text())}


def run_liveness(args, out: Path) -> dict:
    data = find_data("spoof", args)
    # "shipped": what `flip liveness` answers with out of the box, when the run measures the embedded default
    methods = (["zeroshot", "zeroshot_no_unseen_text", "probe"] + (["finetuned"] if args.liveness_finetune_config else [])
               + (["shipped", "shipped_no_unseen_text"] if args.model is None else []))
    argv = [*_common(args), "--data", str(data), "--test-split", args.split, "--out", str(out),
            "--methods", *methods, *_limit("--limit", args),
            *(["--finetune-config", args.liveness_finetune_config] if args.liveness_finetune_config else []),
            *(["--workers", str(args.workers)] if args.workers is not None else [])]
    call_main(task_module("liveness").main, argv, "eval.tasks.liveness")
    return {"dataset": str(data), "split": args.split, "result": json.loads((out / "liveness.json").read_text())}


def _naming_argv(args, data: Path, out: Path) -> list[str]:
    return [*_common(args), "--data", str(data), "--out", str(out), "--seed", str(args.seed), *_limit("--limit", args)]


def _vqa_argv(args, data: Path, out: Path) -> list[str]:
    if not args.vqa_base:
        raise SuiteSkipped("no VQA model: pass --vqa-base DIR (the base VLM of flip vqa-train) "
                           "and --vqa-adapter DIR")
    return ["--base", args.vqa_base, *(["--adapter", args.vqa_adapter] if args.vqa_adapter else []),
            *(["--config", args.vqa_config] if args.vqa_config else []),
            *(["--flip-model", args.model] if args.model else []),
            "--data", str(data), "--split", args.split, "--out", str(out), *_limit("--limit", args)]


#: The contributed suites: (data kind, argv builder for their own `main`, as their parsers define it).
CONTRIBUTED = {"naming": ("naming", _naming_argv), "vqa": ("qa", _vqa_argv)}


def _run_contributed(name: str, args, out: Path) -> dict:
    """naming / vqa: modules written in the same shape (`main(argv)` writing `<name>.json` under --out)."""
    module = task_module(name)
    kind, build_argv = CONTRIBUTED[name]
    data = find_data(kind, args)
    call_main(module.main, build_argv(args, data, out), f"eval.tasks.{name}")
    written = out / f"{name}.json"
    if not written.is_file():
        raise RuntimeError(f"eval.tasks.{name} wrote no {written.name} under {out}")
    split = args.split if name == "vqa" else None  # naming scores its own train / held-out splits
    return {"dataset": str(data), "split": split, "result": json.loads(written.read_text())}


def run_benchmark(name: str, argv: list[str]) -> dict:
    """`benchmarks.bench_<name>`'s figures for these arguments (a bad argument is a ValueError)."""
    from benchmarks import bench_classify, bench_onnx, bench_synth, bench_train

    module = {"classify": bench_classify, "synth": bench_synth, "train": bench_train, "onnx": bench_onnx}[name]
    try:
        args = module.parse_args(argv)
    except SystemExit:
        raise ValueError(f"benchmarks.bench_{name}: bad arguments {argv}") from None
    return module.run(args)


def run_speed(args, out: Path) -> dict:
    from flip.runtime import describe_machine

    benchmarks = {}
    for name in args.benchmarks:
        full, quick = BENCH_ARGS[name]
        argv = list(quick if args.quick else full)
        if name == "classify" and args.model:
            argv += ["--model", args.model]
        print(f"\n== benchmarks.bench_{name} {' '.join(argv)}", flush=True)
        started = time.perf_counter()
        try:
            figures = run_benchmark(name, argv)
            (out / f"speed_{name}.json").write_text(json.dumps(figures, indent=2) + "\n")
            benchmarks[name] = {"status": "ok", **figures}
        except Exception as err:  # one benchmark failing leaves the others' figures
            benchmarks[name] = {"status": "failed", "reason": f"{type(err).__name__}: {err}"}
        benchmarks[name]["seconds"] = time.perf_counter() - started
    failed = [n for n, b in benchmarks.items() if b["status"] != "ok"]
    if len(failed) == len(benchmarks):
        raise RuntimeError("every benchmark failed: " + "; ".join(benchmarks[n]["reason"] for n in failed))
    return {"dataset": None, "split": None,
            "result": {"machine": describe_machine(), "quick": args.quick, "benchmarks": benchmarks}}


RUNNERS: dict[str, Callable[[Any, Path], dict]] = {
    "retrieval": run_retrieval,
    "attributes": run_attributes,
    "fairness": run_fairness,
    "celeba40": run_celeba40,
    "liveness": run_liveness,
    "naming": lambda args, out: _run_contributed("naming", args, out),
    "vqa": lambda args, out: _run_contributed("vqa", args, out),
    "speed": run_speed,
}


# -- figures ----------------------------------------------------------------------------------------
SKIP_KEYS = {"config", "curve", "seconds"}


def flatten(obj: Any, prefix: str = "") -> list[tuple[str, float]]:
    """Every number of a task's JSON as (path, value); list items of dicts are keyed by their first
    string field (rows by "attribute", "category", ...), and configs and curves are left out."""
    out: list[tuple[str, float]] = []
    if isinstance(obj, bool) or obj is None:
        return out
    if isinstance(obj, (int, float)):
        return [(prefix, float(obj))]
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key not in SKIP_KEYS:
                out += flatten(value, f"{prefix}/{key}" if prefix else str(key))
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            label = next((v for v in item.values() if isinstance(v, str)), None) if isinstance(item, dict) else None
            out += flatten(item, f"{prefix}/{label if label is not None else i}")
    return out


def figures_of(name: str, suite: dict, common: dict) -> list[dict]:
    """The flattened figures of one suite, each with its provenance."""
    result = suite["result"]
    if name == "fairness":  # the audit of the first (only) run: keyed by attribute and group field
        result = {f"{e['attribute']}/{e['group_field']}": {k: e[k] for k in ("accuracy", "gap", "low", "high", "n")}
                  for e in result["runs"][0]["audit"]}
    elif name == "speed":
        result = {n: b for n, b in result["benchmarks"].items() if b.get("status") == "ok"}
    extra = {"machine": suite["result"]["machine"]} if name == "speed" else {}
    return [{"suite": name, "name": path, "value": value, "dataset": suite.get("dataset"), "split": suite.get("split"),
             "synthetic": suite.get("synthetic"), **common, **extra} for path, value in flatten(result)]


# -- command ----------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None):
    p = argparse.ArgumentParser(prog="python -m eval.run", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    p.add_argument("--suite", nargs="+", default=["all"], choices=("all", *SUITES), help="suites to run")
    p.add_argument("--model", default=None, help="any model flip.load accepts (default: the embedded one)")
    p.add_argument("--data", default=None, help="folder holding captions/, spoof/, scenes/, qa/ (or synth-<kind>/)")
    for kind in ("captions", "spoof", "scenes", "qa"):
        p.add_argument(f"--{kind}", default=None, help=f"the {kind} dataset (overrides --data)")
    p.add_argument("--heldout", default=None, help="captions in the held-out phrasing (retrieval; default: "
                   "heldout/ or synth-heldout/ under --data when present)")
    p.add_argument("--probe-data", dest="probe_data", default=None,
                   help="faces the CelebA-40 probe trains on, train split (default: captions/ under --data)")
    p.add_argument("--split", default="test", help="held-out split every task scores (default: test)")
    p.add_argument("--limit", type=int, default=None, help="at most this many examples per task and split")
    p.add_argument("--seed", type=int, default=0, help="seed passed to the tasks and the bootstrap")
    p.add_argument("--prompts", default=None, help="prompt folder for the attribute classifiers (default: flip's)")
    p.add_argument("--min-group", type=int, default=5, help="fairness: leave out groups with fewer examples")
    p.add_argument("--liveness-finetune-config", default=None, help="also fine-tune for liveness with this YAML")
    p.add_argument("--vqa-base", default=None, help="vqa: the base VLM folder (without it the suite is skipped)")
    p.add_argument("--vqa-adapter", default=None, help="vqa: its LoRA adapter folder")
    p.add_argument("--vqa-config", default=None, help="vqa: the recipe YAML (answer synonyms)")
    p.add_argument("--benchmarks", nargs="+", default=list(BENCH_ARGS), choices=list(BENCH_ARGS))
    p.add_argument("--quick", action="store_true", help="speed: reduced benchmark sizes (a smoke run, no figure)")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers for the tasks")
    p.add_argument("--out", default="report", help="folder for results.json, index.html and the tasks' files")
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    from flip.runtime import package_version
    from eval.report import build_report

    args = parse_args(argv)
    suites = list(SUITES) if "all" in args.suite else [s for s in SUITES if s in args.suite]
    if "speed" in suites:
        from flip.runtime import sleep_idle_openmp_threads

        sleep_idle_openmp_threads()  # bench_classify runs in this process: the policy `flip classify` uses
    if "attributes" in suites:
        suites.insert(suites.index("attributes") + 1, "fairness")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    common = {"model": args.model or "flip-tiny-synth", "seed": args.seed, "package_version": package_version()}

    started_at = source_revision()
    records: dict[str, dict] = {}
    for name in suites:
        print(f"\n===== {name}", flush=True)
        started = time.perf_counter()
        try:
            record = {"status": "ok", **RUNNERS[name](args, out)}
            if record.get("dataset"):
                record["synthetic"] = is_synthetic(Path(record["dataset"]))
        except SuiteSkipped as why:
            record = {"status": "skipped", "reason": str(why)}
        except Exception as err:  # noqa: BLE001 - one suite's failure is recorded; the others still run
            record = {"status": "failed", "reason": f"{type(err).__name__}: {err}"}
        record["seconds"] = time.perf_counter() - started
        records[name] = record
        print(f"===== {name}: {record['status']}" + (f" ({record['reason']})" if record.get("reason") else ""),
              flush=True)

    figures = [f for name, r in records.items() if r["status"] == "ok" for f in figures_of(name, r, common)]
    results = {**common, **run_revision(started_at, source_revision()), "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "command": ["python", "-m", "eval.run", *(argv if argv is not None else sys.argv[1:])],
               "suites": records, "figures": figures}
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "index.html").write_text(build_report(results, out))
    print(f"\nwrote {out / 'results.json'} ({len(figures)} figures) and {out / 'index.html'}", file=sys.stderr)
    for name, r in records.items():
        print(f"  {name:<11} {r['status']:<8} {r.get('reason', '')}", file=sys.stderr)
    return 1 if any(r["status"] == "failed" for r in records.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
