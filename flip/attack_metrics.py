"""Presentation-attack detection (PAD) metrics after ISO/IEC 30107-3, as pure functions on scores.

Conventions
- A score is the probability that the presentation is live (bona fide): higher = more live.
- Labels are strings: `LIVE` ("live") for a bona fide presentation, anything else names the attack
  category ("printed_photo", "screen_replay", ...; an attack of unknown type can be "attack").
- A presentation is accepted as live when `score >= threshold`: a tie at the threshold is live.
  So APCER(t) = share of attacks with score >= t, BPCER(t) = share of live with score < t.

Metrics (ISO/IEC 30107-3 names; HTER, EER and AUC as the anti-spoofing benchmarks report them)
- APCER per attack category, and its maximum over categories (the standard's "worst case");
- BPCER; ACER = (APCER_max + BPCER) / 2;
- HTER = (APCER pooled over all attacks + BPCER) / 2 (Replay-Attack's half total error rate);
- EER: the error where pooled APCER and BPCER meet, with its threshold. On finite data they rarely
  meet exactly: the threshold is the candidate (an observed score, or just above the highest) that
  minimises |APCER - BPCER|, and the EER is their mean there (ties: the lower threshold);
- ROC AUC: the probability that a random live score beats a random attack score, ties counting
  one half (Mann-Whitney), threshold-free.

The threshold is chosen on a development split (`calibrate_threshold`: at the EER, or at the
highest threshold whose BPCER stays within a target) and applied unchanged to the test split
(`pad_report`). Inputs with one class only, empty inputs and non-finite scores raise a
`ValueError` rather than returning NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

#: The label of a bona fide (live) presentation.
LIVE = "live"
#: How a development split picks the threshold.
CRITERIA = ("eer", "bpcer")


def _check(scores: Sequence[float], labels: Sequence[str], need_both: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Scores as float64 (N,) and a live mask (N,), validated."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = list(labels)
    if s.size != len(labels):
        raise ValueError(f"scores and labels differ in length: {s.size} scores, {len(labels)} labels")
    if s.size == 0:
        raise ValueError("no scores to evaluate")
    if not np.isfinite(s).all():
        raise ValueError(f"scores must be finite; got {int((~np.isfinite(s)).sum())} NaN or infinite")
    bad = [x for x in labels if not isinstance(x, str) or not x]
    if bad:
        raise ValueError(f"labels must be non-empty strings ('{LIVE}' or an attack category), got {bad[0]!r}")
    live = np.array([x == LIVE for x in labels])
    if need_both and (live.all() or not live.any()):
        only = "live" if live.all() else "attack"
        raise ValueError(f"the scores hold only {only} presentations: this needs both live and attack examples")
    return s, live


def apcer_per_attack(scores: Sequence[float], labels: Sequence[str], threshold: float) -> dict[str, float]:
    """Share of each attack category's presentations accepted as live (score >= threshold)."""
    s, live = _check(scores, labels, need_both=False)
    labels = np.asarray(list(labels), dtype=object)
    if live.all():
        raise ValueError("APCER needs attack presentations; every label is live")
    return {str(c): float((s[labels == c] >= threshold).mean()) for c in sorted(set(labels[~live]))}


def bpcer(scores: Sequence[float], labels: Sequence[str], threshold: float) -> float:
    """Share of live presentations rejected as attacks (score < threshold)."""
    s, live = _check(scores, labels, need_both=False)
    if not live.any():
        raise ValueError("BPCER needs live presentations; no label is live")
    return float((s[live] < threshold).mean())


def _candidates(s: np.ndarray) -> np.ndarray:
    """Every distinct score, plus one just above the highest (a threshold that accepts nothing)."""
    u = np.unique(s)
    return np.append(u, np.nextafter(u[-1], np.inf))


def _rates(s: np.ndarray, live: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pooled APCER and BPCER (T,) at each threshold."""
    att = np.sort(s[~live])
    bon = np.sort(s[live])
    apcer = 1.0 - np.searchsorted(att, thresholds, side="left") / att.size  # share >= t
    bpcer_ = np.searchsorted(bon, thresholds, side="left") / bon.size  # share < t
    return apcer, bpcer_


def eer(scores: Sequence[float], labels: Sequence[str]) -> tuple[float, float]:
    """(EER, its threshold), attacks pooled; see the module docstring for the discrete rule."""
    s, live = _check(scores, labels)
    t = _candidates(s)
    apcer, bpcer_ = _rates(s, live, t)
    i = int(np.argmin(np.abs(apcer - bpcer_)))  # argmin takes the first: the lowest threshold
    return float((apcer[i] + bpcer_[i]) / 2), float(t[i])


def threshold_at_bpcer(scores: Sequence[float], labels: Sequence[str], target: float) -> float:
    """The highest threshold whose BPCER is at most `target` (the most secure within that budget)."""
    if not 0 <= target <= 1:
        raise ValueError(f"target BPCER must be in [0, 1], got {target}")
    s, live = _check(scores, labels)
    t = _candidates(s)
    _, bpcer_ = _rates(s, live, t)
    return float(t[np.nonzero(bpcer_ <= target)[0][-1]])  # t[0] (lowest score) always has BPCER 0


def roc_auc(scores: Sequence[float], labels: Sequence[str]) -> float:
    """P(live score > attack score) + P(equal) / 2, from average ranks (Mann-Whitney U)."""
    s, live = _check(scores, labels)
    order = np.argsort(s, kind="stable")
    ranks = np.empty(s.size)
    sorted_s = s[order]
    # average rank within each run of equal scores
    starts = np.r_[0, np.nonzero(np.diff(sorted_s))[0] + 1]
    ends = np.r_[starts[1:], s.size]
    for a, b in zip(starts, ends):
        ranks[order[a:b]] = (a + b + 1) / 2  # ranks are 1-based: mean of a+1 .. b
    n_live, n_att = int(live.sum()), int((~live).sum())
    u = ranks[live].sum() - n_live * (n_live + 1) / 2
    return float(u / (n_live * n_att))


def calibrate_threshold(scores: Sequence[float], labels: Sequence[str], criterion: str = "eer",
                        target_bpcer: float | None = None) -> float:
    """The decision threshold from a development split: at the EER, or at a target BPCER."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion={criterion!r}; choose one of {list(CRITERIA)}")
    if criterion == "bpcer":
        if target_bpcer is None:
            raise ValueError("criterion='bpcer' needs target_bpcer (e.g. 0.05)")
        return threshold_at_bpcer(scores, labels, target_bpcer)
    return eer(scores, labels)[1]


@dataclass
class PADReport:
    """ISO/IEC 30107-3 figures at one threshold, plus the threshold-free EER and AUC."""

    threshold: float
    apcer: dict[str, float]
    apcer_max: float
    worst_attack: str
    apcer_pooled: float
    bpcer: float
    acer: float
    hter: float
    eer: float
    eer_threshold: float
    auc: float
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def pad_report(scores: Sequence[float], labels: Sequence[str], threshold: float) -> PADReport:
    """Every metric on one split at a given threshold (take it from `calibrate_threshold` on dev)."""
    s, live = _check(scores, labels)
    per = apcer_per_attack(s, labels, threshold)
    worst = max(per, key=lambda c: (per[c], c))
    pooled = float((s[~live] >= threshold).mean())
    b = bpcer(s, labels, threshold)
    e, et = eer(s, labels)
    counts = {c: int(sum(x == c for x in labels)) for c in [LIVE, *per]}
    return PADReport(threshold=float(threshold), apcer=per, apcer_max=per[worst], worst_attack=worst,
                     apcer_pooled=pooled, bpcer=b, acer=(per[worst] + b) / 2, hter=(pooled + b) / 2,
                     eer=e, eer_threshold=et, auc=roc_auc(s, labels), counts=counts)
