"""VQA accuracy as a local `evaluate` module: exact match after normalisation, overall and per attribute.

Loaded by path, never from the Hub:

    import evaluate
    vqa = evaluate.load("eval/metrics/vqa_accuracy")
    vqa.compute(predictions=["Happy.", "gray"], references=["happy", "grey"],
                attributes=["emotion", "hair_color"], synonyms={"grey": ["gray"]})
    # {"exact_match": 1.0, "per_attribute": {"emotion": 1.0, "hair_color": 1.0}, "n": 2,
    #  "counts": {"emotion": 1, "hair_color": 1}}

Answers and references go through `flip.vqa.answers.normalize_answer` (case, punctuation, articles,
the synonyms {canonical: [variants]} passed in), so "Middle-aged." matches "middle-aged" and "gray"
matches "grey" when the synonyms say so. Questions whose attribute is "" count only in the overall
score. Empty input is an error, not 0.
"""

import datasets
import evaluate

from flip.vqa.answers import normalize_answer, synonym_table

_DESCRIPTION = "VQA exact-match accuracy after answer normalisation, overall and per attribute."
_INPUTS = """
Args:
    predictions (list of str): generated answers.
    references (list of str): reference answers, as many as predictions.
    attributes (list of str): the attribute each question asks about ("" for none).
    synonyms (dict of str -> list of str, optional): {canonical answer: [variants]}.
Returns:
    exact_match (float): fraction of normalised predictions equal to their normalised references.
    per_attribute (dict): attribute -> exact match over its questions.
    counts (dict): attribute -> number of questions.
    n (int): number of questions.
"""


class VQAAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_INPUTS,
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Value("string"),
                                        "attributes": datasets.Value("string")}),
        )

    def _compute(self, predictions, references, attributes, synonyms=None):
        if len(predictions) == 0:
            raise ValueError("vqa_accuracy: no predictions to score")
        table = synonym_table(synonyms)
        correct = [normalize_answer(p, table) == normalize_answer(r, table) for p, r in zip(predictions, references)]
        per_attribute, counts = {}, {}
        for attribute, ok in zip(attributes, correct):
            if not attribute:
                continue
            counts[attribute] = counts.get(attribute, 0) + 1
            per_attribute[attribute] = per_attribute.get(attribute, 0) + int(ok)
        return {
            "exact_match": sum(correct) / len(correct),
            "per_attribute": {a: per_attribute[a] / counts[a] for a in counts},
            "counts": counts,
            "n": len(correct),
        }
