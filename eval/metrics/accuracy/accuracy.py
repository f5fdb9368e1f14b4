"""Accuracy as a local `evaluate` module: the fraction of predictions equal to their references.

Loaded by path, never from the Hub (which these machines cannot reach):

    import evaluate
    accuracy = evaluate.load("eval/metrics/accuracy")   # the folder, or the .py file
    accuracy.compute(predictions=[0, 1, 1], references=[0, 1, 0])   # {"accuracy": 0.666...}

Inputs are integer class ids. `sample_weight` weighs examples; `normalize=False` returns the
(weighted) count of correct predictions instead of the fraction. Empty input is an error, not 0.
"""

import datasets
import evaluate

_DESCRIPTION = "Accuracy: the (weighted) fraction of predictions that equal their references."
_INPUTS = """
Args:
    predictions (list of int): predicted class ids.
    references (list of int): true class ids, as many as predictions.
    normalize (bool): True (default) for the fraction correct, False for the count correct.
    sample_weight (list of float, optional): one non-negative weight per example.
Returns:
    accuracy (float): in [0, 1] when normalize, else the weighted count of correct predictions.
"""


class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_INPUTS,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references, normalize=True, sample_weight=None):
        if len(predictions) == 0:
            raise ValueError("accuracy: no predictions to score")
        if sample_weight is None:
            sample_weight = [1.0] * len(predictions)
        if len(sample_weight) != len(predictions):
            raise ValueError(f"accuracy: {len(sample_weight)} sample weights for {len(predictions)} predictions")
        if any(w < 0 for w in sample_weight):
            raise ValueError("accuracy: sample weights must be non-negative")
        correct = sum(float(w) for p, r, w in zip(predictions, references, sample_weight) if p == r)
        if not normalize:
            return {"accuracy": correct}
        total = sum(float(w) for w in sample_weight)
        if total == 0:
            raise ValueError("accuracy: the sample weights sum to zero")
        return {"accuracy": correct / total}
