"""The harness's report: one self-contained HTML page from `results.json` and the per-example files
the tasks write beside it.

    python -m eval.report report/          # rebuild report/index.html from report/results.json

One file, no external assets: figures are matplotlib PNGs embedded as base64, tables are plain HTML,
so the page can be mailed or attached to a CI run. Sections follow the suites: retrieval (recall@k
curves against the ambiguity ceiling), attributes (accuracy bars per attribute and variant, confusion
matrices of classification by description), fairness (per-group accuracy, the largest gap with its
interval), liveness (ROC and DET curves per method on the test split), naming and VQA (their
figures, as their modules report them), speed (the benchmarks and the machine). A suite that was
skipped or failed shows why. Matplotlib is imported where the figures are drawn (the `[eval]` extra).
"""

from __future__ import annotations

import base64
import html
import io
import json
import sys
from collections import Counter
from pathlib import Path
from statistics import NormalDist
from typing import Any, Sequence

import numpy as np


# -- small pieces -----------------------------------------------------------------------------------
def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError("the report's figures need matplotlib: pip install 'flip-face[eval]'") from err
    return plt


def figure_html(fig, alt: str) -> str:
    """An <img> with the figure as an embedded base64 PNG (the figure is closed)."""
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def table_html(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain HTML table; floats in [0, 1] are not rescaled here (callers format them)."""
    cells = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


# -- curves (pure) ----------------------------------------------------------------------------------
def error_rates(scores: Sequence[float], labels: Sequence[str], live: str = "live") -> tuple[np.ndarray, np.ndarray]:
    """(APCER, BPCER) at every threshold, attacks pooled; a score >= threshold is accepted as live.

    Thresholds run from below the lowest score (everything accepted: APCER 1, BPCER 0) to above the
    highest (nothing accepted: APCER 0, BPCER 1); the arrays have one entry per distinct score plus one.
    """
    s = np.asarray(scores, dtype=float)
    is_live = np.asarray([label == live for label in labels])
    if is_live.all() or not is_live.any():
        raise ValueError("error_rates: need both live and attack examples")
    thresholds = np.append(np.unique(s), np.inf)
    attacks, bona_fide = np.sort(s[~is_live]), np.sort(s[is_live])
    apcer = 1.0 - np.searchsorted(attacks, thresholds, side="left") / attacks.size
    bpcer = np.searchsorted(bona_fide, thresholds, side="left") / bona_fide.size
    return apcer, bpcer


def confusion_matrix(references: Sequence[str], predictions: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """(C, C) counts, rows = true class, columns = predicted class, in `classes` order."""
    index = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=int)
    for r, p in zip(references, predictions):
        matrix[index[r], index[p]] += 1
    return matrix


# -- sections ---------------------------------------------------------------------------------------
def _status_section(results: dict) -> str:
    rows = []
    for name, suite in results["suites"].items():
        source = "synthetic" if suite.get("synthetic") else ("real" if suite.get("synthetic") is False else "-")
        rows.append([name, suite["status"], suite.get("dataset"), suite.get("split"), source,
                     suite.get("reason") or "", f"{suite.get('seconds', 0):.1f}"])
    return table_html(["suite", "status", "dataset", "split", "data", "reason", "seconds"], rows)


def retrieval_section(result: dict) -> str:
    plt = _pyplot()
    recall, ceiling = result["recall"], result["t2i_ceiling"]
    rows = [[d, *(_pct(recall[f"{d}_r{k}"]) for k in (1, 5, 10))] for d in ("i2t", "t2i")]
    rows.append(["t2i ceiling", *(_pct(ceiling[f"t2i_r{k}"]) for k in (1, 5, 10))])
    parts = [f"<p>{result['pairs']} held-out pairs; a caption fits {ceiling['mean_images_per_caption']:.1f} images "
             f"on average; text-to-image R@5 is {result['t2i_r5_of_ceiling']:.2f} of its ceiling.</p>",
             table_html(["recall (%)", "R@1", "R@5", "R@10"], rows)]
    curve = result.get("curve")
    if curve:
        fig, ax = plt.subplots(figsize=(5, 3.4))
        for key, style in (("i2t", "-o"), ("t2i", "-s"), ("t2i_ceiling", "--")):
            ax.plot(curve["k"], curve[key], style, label=key.replace("_", " "), markersize=3)
        ax.set(xscale="log", xlabel="k", ylabel="recall@k", ylim=(0, 1.02), title="retrieval: recall@k")
        ax.legend()
        ax.grid(alpha=0.3)
        parts.append(figure_html(fig, "recall@k curves"))
    return "\n".join(parts)


def attributes_section(result: dict, predictions: list[dict] | None) -> str:
    plt = _pyplot()
    rows, variants = result["rows"], [v for v in ("baseline", "descriptors", "rephrased", "random")
                                      if v in result["rows"][0]]
    head = ["attribute", "n", "classes", "chance", "majority", *variants]
    table = [[r["attribute"], r["n"], r["classes"], *(_pct(r[k]) for k in head[3:])] for r in rows]
    table.append(["mean", "", "", *(_pct(result["mean"][k]) for k in head[3:])])
    parts = [table_html(head, table)]

    fig, ax = plt.subplots(figsize=(max(6, 0.75 * len(rows)), 3.6))
    x = np.arange(len(rows))
    width = 0.8 / max(1, len(variants))
    for i, v in enumerate(variants):
        ax.bar(x + (i - (len(variants) - 1) / 2) * width, [r[v] for r in rows], width, label=v)
    ax.scatter(x, [r["chance"] for r in rows], marker="_", s=300, color="black", label="chance", zorder=3)
    ax.set_xticks(x, [r["attribute"] for r in rows], rotation=40, ha="right")
    ax.set(ylabel="accuracy", ylim=(0, 1), title="zero-shot accuracy per attribute")
    ax.legend(fontsize=7, ncol=len(variants) + 1)
    parts.append(figure_html(fig, "per-attribute accuracy"))

    if predictions and "descriptors" in predictions[0]:
        parts.append(_confusion_figures(rows, predictions))
    return "\n".join(parts)


def _confusion_figures(rows: list[dict], predictions: list[dict]) -> str:
    plt = _pyplot()
    attributes = [r["attribute"] for r in rows]
    cols = min(4, len(attributes))
    grid_rows = -(-len(attributes) // cols)
    fig, axes = plt.subplots(grid_rows, cols, figsize=(3.2 * cols, 3.0 * grid_rows), squeeze=False)
    for ax in axes.flat[len(attributes):]:
        ax.axis("off")
    for ax, a in zip(axes.flat, attributes):
        pairs = [(p["labels"][a], p["descriptors"][a]) for p in predictions if a in p["labels"]]
        classes = sorted({c for pair in pairs for c in pair}, key=lambda c: -Counter(r for r, _ in pairs)[c])
        matrix = confusion_matrix([r for r, _ in pairs], [q for _, q in pairs], classes)
        shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        ax.imshow(shares, vmin=0, vmax=1, cmap="Blues")
        ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=6)
        ax.set_yticks(range(len(classes)), classes, fontsize=6)
        ax.set_title(a, fontsize=8)
        ax.set_xlabel("predicted", fontsize=6)
    fig.suptitle("confusion matrices, classification by description (rows: true class, share of the row)",
                 fontsize=9)
    fig.tight_layout()
    return figure_html(fig, "confusion matrices")


def fairness_section(result: dict) -> str:
    plt = _pyplot()
    parts = []
    runs = result["runs"]
    for run in runs:
        entries = run["audit"]
        if not entries:
            parts.append(f"<p>prompts {html.escape(run['prompts'])}: no attribute has two groups large enough.</p>")
            continue
        table = [[e["attribute"], e["group_field"], e["n"], _pct(e["accuracy"]),
                  f"{e['worst']} {_pct(e['groups'][e['worst']]['accuracy'])}",
                  f"{e['best']} {_pct(e['groups'][e['best']]['accuracy'])}", _pct(e["gap"]),
                  f"[{_pct(e['low'])}, {_pct(e['high'])}]"] for e in entries]
        confidence = int(round(100 * entries[0]["confidence"]))
        parts.append(f"<h3>prompts: {html.escape(run['prompts'])}</h3>")
        parts.append(table_html(["attribute", "groups", "n", "accuracy", "worst group", "best group", "gap",
                                 f"{confidence}% bootstrap interval"], table))
        fields = list(dict.fromkeys(e["group_field"] for e in entries))
        fig, axes = plt.subplots(1, len(fields), figsize=(4.2 * len(fields), 0.35 * len(entries) + 2.2),
                                 squeeze=False)
        for ax, field in zip(axes[0], fields):
            mine = [e for e in entries if e["group_field"] == field]
            groups = sorted({g for e in mine for g in e["groups"]})
            values = np.array([[e["groups"].get(g, {}).get("accuracy", np.nan) for g in groups] for e in mine])
            ax.imshow(values, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
            for (i, j), v in np.ndenumerate(values):
                if not np.isnan(v):
                    ax.text(j, i, f"{100 * v:.0f}", ha="center", va="center", fontsize=7)
            ax.set_xticks(range(len(groups)), groups, rotation=40, ha="right", fontsize=7)
            ax.set_yticks(range(len(mine)), [e["attribute"] for e in mine], fontsize=7)
            ax.set_title(f"accuracy (%) by {field}", fontsize=9)
        fig.tight_layout()
        parts.append(figure_html(fig, "accuracy by group"))
    if len(runs) > 1:
        from eval.tasks.fairness import format_comparison

        parts.append(f"<pre>{html.escape(format_comparison(runs))}</pre>")
    return "\n".join(parts)


def liveness_section(result: dict, scores: dict | None) -> str:
    plt = _pyplot()
    summary = result["summary"]
    methods = list(summary)
    keys = ("hter", "acer", "apcer_max", "bpcer", "eer", "auc", "auc_unseen")
    rows = [[k, *(("-" if summary[m].get(k) is None else f"{summary[m][k]:.3f}" if k.startswith("auc")
                   else _pct(summary[m][k])) for m in methods)] for k in keys]
    per_category = [[r["category"], r["n"], r["metric"], *(_pct(r[m]) for m in methods)] for r in result["rows"]]
    parts = [table_html(["figure (error rates in %)", *methods], rows),
             table_html(["category", "n", "metric", *methods], per_category)]
    if scores:
        normal = NormalDist()
        clip = 1e-3
        fig, (roc, det) = plt.subplots(1, 2, figsize=(9, 3.8))
        for m, per_split in scores.items():
            test = per_split.get("test")
            if not test:
                continue
            apcer, bpcer = error_rates(test["live_score"], test["label"])
            roc.plot(apcer, 1 - bpcer, label=m)
            det.plot([normal.inv_cdf(min(max(v, clip), 1 - clip)) for v in apcer],
                     [normal.inv_cdf(min(max(v, clip), 1 - clip)) for v in bpcer], label=m)
        roc.plot([0, 1], [0, 1], ":", color="grey")
        roc.set(xlabel="APCER (attacks accepted)", ylabel="1 - BPCER (live accepted)", title="ROC, test split")
        ticks = [0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95, 0.99]
        positions = [normal.inv_cdf(t) for t in ticks]
        det.set_xticks(positions, [f"{100 * t:g}" for t in ticks], fontsize=7)
        det.set_yticks(positions, [f"{100 * t:g}" for t in ticks], fontsize=7)
        bounds = (normal.inv_cdf(clip) - 0.1, normal.inv_cdf(1 - clip) + 0.1)
        det.set(xlabel="APCER (%)", ylabel="BPCER (%)", title="DET, test split (normal deviate scale)",
                xlim=bounds, ylim=bounds)
        for ax in (roc, det):
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3)
        fig.tight_layout()
        parts.append(figure_html(fig, "liveness ROC and DET"))
    return "\n".join(parts)


def figures_section(figures: list[dict]) -> str:
    """A table of a suite's flattened figures (for suites whose JSON shape the report does not know)."""
    return table_html(["figure", "value"], [[f["name"], f["value"]] for f in figures])


def speed_section(result: dict) -> str:
    machine = result.get("machine", {})
    parts = [f"<p>machine: {html.escape(str(machine.get('cpu')))}, {machine.get('cores')} cores, torch "
             f"{html.escape(str(machine.get('torch')))} ({machine.get('threads')} threads), GPU "
             f"{html.escape(str(machine.get('gpu') or 'none'))}; sizes: "
             f"{'reduced (--quick)' if result.get('quick') else 'full'}.</p>"]
    rows = []
    for name, bench in result.get("benchmarks", {}).items():
        if bench.get("status") != "ok":
            rows.append([name, bench.get("status"), "", "", bench.get("reason", "")])
            continue
        h = bench["headline"]
        value = h.get("ratio", h.get("value"))
        goal = h.get("goal")
        rows.append([name, h["name"], f"{value:.3f}" + (f" {h['unit']}" if h.get("unit") else ""),
                     "-" if goal is None else f"{goal}", "meets" if goal is not None and value >= goal else
                     ("misses" if goal is not None else "")])
    parts.append(table_html(["benchmark", "figure", "value", "goal", ""], rows))
    return "\n".join(parts)


# -- the page ---------------------------------------------------------------------------------------
STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:0.8em 0;font-size:0.85em}td,th{border:1px solid #ccc;padding:3px 7px;
text-align:right}td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}img{max-width:100%}
.note{background:#fff7e0;padding:0.6em;border-left:4px solid #e0a800}"""


def _read_jsonl(path: Path) -> list[dict] | None:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else None


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def build_report(results: dict, folder: str | Path) -> str:
    """The HTML page of a results dict; per-example files are read from `folder` when present."""
    folder = Path(folder)
    synthetic = [n for n, s in results["suites"].items() if s.get("synthetic")]
    parts = [f"<h1>flip evaluation report</h1>",
             f"<p>model <b>{html.escape(str(results['model']))}</b>, flip {html.escape(results['package_version'])}, "
             f"seed {results['seed']}, written {html.escape(results['created'])}.</p>"]
    if synthetic:
        parts.append(f'<p class="note">Figures of {", ".join(synthetic)} come from the synthetic face world '
                     "(procedural faces rendered by flip), not from real photographs.</p>")
    parts += ["<h2>suites</h2>", _status_section(results)]
    by_suite: dict[str, list[dict]] = {}
    for f in results["figures"]:
        by_suite.setdefault(f["suite"], []).append(f)
    for name, suite in results["suites"].items():
        if suite["status"] != "ok":
            continue
        result = suite.get("result")
        parts.append(f"<h2>{html.escape(name)}</h2>")
        if name == "retrieval":
            parts.append(retrieval_section(result))
        elif name == "attributes":
            parts.append(attributes_section(result, _read_jsonl(folder / "attributes_predictions.jsonl")))
        elif name == "fairness":
            parts.append(fairness_section(result))
        elif name == "liveness":
            parts.append(liveness_section(result, _read_json(folder / "liveness_scores.json")))
        elif name == "speed":
            parts.append(speed_section(result))
        else:
            parts.append(figures_section(by_suite.get(name, [])))
    body = "\n".join(parts)
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>flip evaluation report</title>"
            f"<style>{STYLE}</style></head><body>\n{body}\n</body></html>\n")


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m eval.report", description="Rebuild index.html from results.json.")
    p.add_argument("folder", help="a report folder written by python -m eval.run")
    args = p.parse_args(argv)
    folder = Path(args.folder)
    results_file = folder / "results.json"
    if not results_file.is_file():
        print(f"eval.report: no results.json in {folder} (write it with python -m eval.run)", file=sys.stderr)
        return 2
    (folder / "index.html").write_text(build_report(json.loads(results_file.read_text()), folder))
    print(f"wrote {folder / 'index.html'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
