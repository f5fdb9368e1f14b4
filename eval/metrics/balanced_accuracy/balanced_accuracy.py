"""Balanced accuracy as a local `evaluate` module: the mean over classes of each class's recall.

The measure of FLIP's CelebA attribute table: most CelebA attributes are rare (Bald, Goatee), so
plain accuracy rewards always answering "no". Loaded by path, never from the Hub:

    import evaluate
    bacc = evaluate.load("eval/metrics/balanced_accuracy")
    bacc.compute(predictions=[0, 0, 0, 1], references=[0, 0, 1, 1])   # {"balanced_accuracy": 0.75}

Inputs are integer class ids. Only classes present in the references count (a class never seen has
no recall). Empty input is an error, not 0.
"""

import datasets
import evaluate

_DESCRIPTION = "Balanced accuracy: the unweighted mean of per-class recall over the classes in the references."
_INPUTS = """
Args:
    predictions (list of int): predicted class ids.
    references (list of int): true class ids, as many as predictions.
Returns:
    balanced_accuracy (float): in [0, 1].
"""


class BalancedAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_INPUTS,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references):
        if len(predictions) == 0:
            raise ValueError("balanced_accuracy: no predictions to score")
        recalls = []
        for c in sorted(set(references)):
            rows = [p for p, r in zip(predictions, references) if r == c]
            recalls.append(sum(p == c for p in rows) / len(rows))
        return {"balanced_accuracy": sum(recalls) / len(recalls)}
