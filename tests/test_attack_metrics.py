"""ISO/IEC 30107-3 metrics (flip/attack_metrics.py) and their evaluate module, against hand-computed values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flip.attack_metrics import (
    apcer_per_attack,
    bpcer,
    calibrate_threshold,
    eer,
    pad_report,
    roc_auc,
    threshold_at_bpcer,
)

REPO = Path(__file__).resolve().parents[1]

# live 0.9 0.7 0.5 0.3; printed_photo 0.6 0.55; screen_replay 0.5 0.1
SCORES = [0.9, 0.7, 0.5, 0.3, 0.6, 0.55, 0.5, 0.1]
LABELS = ["live"] * 4 + ["printed_photo"] * 2 + ["screen_replay"] * 2


def test_rates_at_a_threshold_count_a_tie_as_live():
    # at 0.5: the replay scored exactly 0.5 is accepted, the live 0.3 rejected
    assert apcer_per_attack(SCORES, LABELS, 0.5) == {"printed_photo": 1.0, "screen_replay": 0.5}
    assert bpcer(SCORES, LABELS, 0.5) == 0.25
    assert bpcer(SCORES, LABELS, 0.50001) == 0.5  # the live 0.5 falls just below


def test_report_acer_uses_the_worst_attack_and_hter_the_pooled_one():
    r = pad_report(SCORES, LABELS, 0.5)
    assert (r.apcer_max, r.worst_attack) == (1.0, "printed_photo")
    assert r.apcer_pooled == 0.75
    assert r.acer == pytest.approx((1.0 + 0.25) / 2)
    assert r.hter == pytest.approx((0.75 + 0.25) / 2)
    assert r.counts == {"live": 4, "printed_photo": 2, "screen_replay": 2}
    assert r.auc == pytest.approx(10.5 / 16)
    assert (r.eer, r.eer_threshold) == (0.5, 0.55)


def test_eer_and_its_threshold():
    # thresholds 0.1 0.3 0.5 0.55: (APCER, BPCER) = (1, 0) (.75, 0) (.75, .25) (.5, .5)
    assert eer(SCORES, LABELS) == (0.5, 0.55)
    # perfectly separated: EER 0 at the lowest live score (the lowest of the tied thresholds)
    assert eer([2, 3, 0, 1], ["live", "live", "print", "print"]) == (0.0, 2.0)


@pytest.mark.parametrize("scores, labels, expected", [
    (SCORES, LABELS, 10.5 / 16),
    ([0.5, 0.5, 0.5], ["live", "print", "print"], 0.5),  # all tied
    ([1, 2], ["print", "live"], 1.0),
    ([1, 2], ["live", "print"], 0.0),
    ([1, 1, 0], ["live", "print", "print"], 0.75),  # one tie of two pairs
])
def test_roc_auc(scores, labels, expected):
    assert roc_auc(scores, labels) == pytest.approx(expected)


# at target 0.5, thresholds 0.55, 0.6 and 0.7 all reject 2 of 4 live: the highest wins
@pytest.mark.parametrize("target, expected", [(0.0, 0.3), (0.25, 0.5), (0.3, 0.5), (0.5, 0.7)])
def test_threshold_at_bpcer_is_the_highest_within_the_budget(target, expected):
    assert threshold_at_bpcer(SCORES, LABELS, target) == expected
    assert bpcer(SCORES, LABELS, expected) <= target


def test_threshold_at_bpcer_one_accepts_nothing():
    t = threshold_at_bpcer(SCORES, LABELS, 1.0)
    assert t > 0.9 and apcer_per_attack(SCORES, LABELS, t) == {"printed_photo": 0.0, "screen_replay": 0.0}


def test_calibrate_threshold_on_dev_applies_unchanged_to_test():
    t = calibrate_threshold(SCORES, LABELS)  # dev EER threshold
    assert t == 0.55
    test = pad_report([0.56, 0.54, 0.6], ["live", "live", "print"], t)
    assert (test.threshold, test.bpcer, test.apcer) == (0.55, 0.5, {"print": 1.0})
    assert calibrate_threshold(SCORES, LABELS, "bpcer", target_bpcer=0.25) == 0.5


@pytest.mark.parametrize("call, message", [
    (lambda: eer([0.1, 0.2], ["live", "live"]), "only live"),
    (lambda: roc_auc([0.1, 0.2], ["print", "replay"]), "only attack"),
    (lambda: calibrate_threshold([0.1, 0.2], ["live", "live"]), "only live"),
    (lambda: pad_report([0.1], ["print"], 0.5), "only attack"),
    (lambda: apcer_per_attack([0.1], ["live"], 0.5), "needs attack"),
    (lambda: bpcer([0.1], ["print"], 0.5), "needs live"),
    (lambda: eer([], []), "no scores"),
    (lambda: eer([0.1, np.nan], ["live", "print"]), "finite"),
    (lambda: eer([0.1], ["live", "print"]), "length"),
    (lambda: eer([0.1, 0.2], ["live", None]), "non-empty strings"),
    (lambda: threshold_at_bpcer(SCORES, LABELS, 1.5), "target BPCER"),
    (lambda: calibrate_threshold(SCORES, LABELS, "bpcer"), "target_bpcer"),
    (lambda: calibrate_threshold(SCORES, LABELS, "far"), "criterion"),
])
def test_bad_input_is_a_clear_error_not_nan(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_evaluate_module_loads_by_path_and_matches_flip_pad():
    import evaluate

    pad = evaluate.load(str(REPO / "eval/metrics/attack_metrics"))
    out = pad.compute(predictions=SCORES, references=LABELS, threshold=0.5)
    assert out["apcer_printed_photo"] == 1.0 and out["apcer_screen_replay"] == 0.5
    assert out["acer"] == pytest.approx(0.625) and out["hter"] == pytest.approx(0.5)
    assert out["auc"] == pytest.approx(10.5 / 16) and out["eer"] == 0.5
    dev = pad.compute(predictions=[0.56, 0.54, 0.6], references=["live", "live", "print"],
                      dev_predictions=SCORES, dev_references=LABELS)
    assert dev["threshold"] == 0.55 and dev["bpcer"] == 0.5
    with pytest.raises(ValueError, match="dev_predictions"):
        pad.compute(predictions=SCORES, references=LABELS)
