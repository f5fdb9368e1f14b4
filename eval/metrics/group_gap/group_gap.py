"""The largest accuracy gap between groups, with a bootstrap interval, as a local `evaluate` module.

Loaded by path, never from the Hub:

    import evaluate
    gap = evaluate.load("eval/metrics/group_gap")
    gap.compute(predictions=["beard", "none", "none"], references=["beard", "beard", "none"],
                groups=["dark", "dark", "light"])          # {"gap": 0.5, "low": ..., "high": ..., ...}

After FACET (Gustafson et al., 2023): accuracy is computed per group (perceived skin tone, age
group...), and the figure is the largest gap, best group's accuracy minus worst group's, over the
groups with at least `min_count` examples (smaller ones are left out and listed in `excluded`;
examples whose group is None are not scored). Its interval is a percentile bootstrap, each group
resampled with replacement on its own (stratified: every resample keeps each group's size).
Resampling n examples of which k are right gives a right count distributed Binomial(n, k / n), so
the bootstrap draws that count directly: exact, and cheap enough for 10,000 resamples. The gap is a
maximum over groups, so with many small groups it is biased upwards.
"""

from collections import Counter

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "Largest accuracy gap between groups, with a stratified percentile-bootstrap interval."
_INPUTS = """
Args:
    predictions (list of str): predicted classes.
    references (list of str): true classes, as many as predictions.
    groups (list of str or None): each example's group; None leaves the example out.
    min_count (int): groups with fewer scored examples are left out (default 1).
    n_boot (int): bootstrap resamples (default 1000).
    confidence (float): the interval's coverage, in (0, 1) (default 0.95).
    seed (int): the bootstrap's seed (default 0).
Returns:
    gap (float): best group's accuracy minus worst group's; low, high (floats): its interval;
    se (float): the bootstrap standard error; best, worst (str): the groups at its ends (the first
    in sorted order on ties); groups: {group: {"accuracy", "n"}} kept; excluded: {group: n} left out.
"""


def group_accuracy(correct, groups) -> dict:
    """{group: {"accuracy", "n"}} over the examples whose group is known, sorted by group."""
    if len(correct) != len(groups):
        raise ValueError(f"group_gap: {len(correct)} outcomes for {len(groups)} group labels")
    right, total = Counter(), Counter()
    for c, g in zip(correct, groups):
        if g is not None:
            right[g] += bool(c)
            total[g] += 1
    return {g: {"accuracy": right[g] / total[g], "n": total[g]} for g in sorted(total)}


def bootstrap_gaps(per_group: dict, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot,) largest gaps between the groups' resampled accuracies."""
    rng = np.random.default_rng(seed)
    accs = np.stack([rng.binomial(v["n"], v["accuracy"], size=n_boot) / v["n"] for v in per_group.values()])
    return accs.max(axis=0) - accs.min(axis=0)


def largest_gap(correct, groups, min_count: int = 1, n_boot: int = 1000, confidence: float = 0.95,
                seed: int = 0) -> dict:
    """The figure `compute` returns, from per-example outcomes (bool) and groups."""
    if not 0 < confidence < 1:
        raise ValueError(f"group_gap: confidence={confidence}, expected a value in (0, 1)")
    if n_boot < 1:
        raise ValueError(f"group_gap: n_boot={n_boot}, expected at least 1")
    per_group = group_accuracy(correct, groups)
    kept = {g: v for g, v in per_group.items() if v["n"] >= min_count}
    if len(kept) < 2:
        raise ValueError(f"group_gap: need at least two groups with >= {min_count} examples, got {len(kept)}")
    gaps = bootstrap_gaps(kept, n_boot, seed)
    best = max(kept, key=lambda g: kept[g]["accuracy"])
    worst = min(kept, key=lambda g: kept[g]["accuracy"])
    tail = (1 - confidence) / 2
    low, high = np.quantile(gaps, [tail, 1 - tail])
    return {"gap": kept[best]["accuracy"] - kept[worst]["accuracy"], "low": float(low), "high": float(high),
            "se": float(gaps.std()), "best": best, "worst": worst, "groups": kept,
            "excluded": {g: v["n"] for g, v in per_group.items() if g not in kept}}


class GroupGap(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Gustafson et al., FACET: Fairness in Computer Vision Evaluation Benchmark, ICCV 2023",
            inputs_description=_INPUTS,
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Value("string"),
                                        "groups": datasets.Value("string")}),
        )

    def _compute(self, predictions, references, groups, min_count=1, n_boot=1000, confidence=0.95, seed=0):
        if len(predictions) == 0:
            raise ValueError("group_gap: no predictions to score")
        correct = [p == r for p, r in zip(predictions, references)]
        return largest_gap(correct, groups, min_count, n_boot, confidence, seed)
