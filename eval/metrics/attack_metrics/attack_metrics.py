"""Presentation-attack detection metrics (ISO/IEC 30107-3) as a local `evaluate` module.

Loaded by path, never from the Hub:

    import evaluate
    attack = evaluate.load("eval/metrics/attack_metrics")
    attack.compute(predictions=[0.9, 0.2, 0.4], references=["live", "printed_photo", "live"],
                   dev_predictions=[...], dev_references=[...])         # threshold at the dev EER

Predictions are live scores (higher = more live); references are "live" or an attack category.
The threshold is `threshold` when given, else chosen on the development split (`dev_predictions`,
`dev_references`) by `criterion` ("eer", or "bpcer" with `target_bpcer`) and applied unchanged to
the scored split. A score equal to the threshold counts as live. The arithmetic is `flip.attack_metrics`'s.
"""

import datasets
import evaluate

from flip.attack_metrics import calibrate_threshold, pad_report

_DESCRIPTION = "ISO/IEC 30107-3 PAD metrics: APCER per attack and max, BPCER, ACER, HTER, EER, ROC AUC."
_INPUTS = """
Args:
    predictions (list of float): live scores, higher = more live.
    references (list of str): "live", or the attack category of each presentation.
    threshold (float, optional): the decision threshold; a score >= threshold is live.
    dev_predictions, dev_references (lists, optional): the development split the threshold is chosen on.
    criterion (str): "eer" (default) or "bpcer" (the highest threshold with dev BPCER <= target_bpcer).
    target_bpcer (float, optional): with criterion="bpcer".
Returns:
    threshold, apcer_<category> per attack category, apcer_max, worst_attack, apcer_pooled, bpcer,
    acer, hter, eer, eer_threshold, auc (floats; worst_attack a string).
"""


class PAD(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="ISO/IEC 30107-3:2017, Biometric presentation attack detection, Part 3: testing and reporting",
            inputs_description=_INPUTS,
            features=datasets.Features({"predictions": datasets.Value("float64"),
                                        "references": datasets.Value("string")}),
        )

    def _compute(self, predictions, references, threshold=None, dev_predictions=None, dev_references=None,
                 criterion="eer", target_bpcer=None):
        if threshold is None:
            if dev_predictions is None or dev_references is None:
                raise ValueError("pad: give a threshold, or dev_predictions and dev_references to choose it on "
                                 "(choosing it on the test split itself would flatter the result)")
            threshold = calibrate_threshold(dev_predictions, dev_references, criterion, target_bpcer)
        report = pad_report(predictions, references, threshold)
        out = {k: v for k, v in report.to_dict().items() if k not in ("apcer", "counts")}
        out.update({f"apcer_{c}": v for c, v in report.apcer.items()})
        return out
