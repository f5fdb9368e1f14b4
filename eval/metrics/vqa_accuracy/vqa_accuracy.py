"""VQA accuracy as a local `evaluate` module: exact match after normalisation, overall and per attribute.

Loaded by path, never from the Hub:

    import evaluate
    vqa = evaluate.load("eval/metrics/vqa_accuracy")
    vqa.compute(predictions=["Happy.", "gray"], references=["happy", "grey"],
                attributes=["emotion", "hair_color"], synonyms={"grey": ["gray"]})
    # {"exact_match": 1.0, "per_attribute": {"emotion": 1.0, "hair_color": 1.0}, "n": 2,
    #  "counts": {"emotion": 1, "hair_color": 1}}

The arithmetic is `flip.vqa.scoring.exact_match`'s: answers and references go through
`flip.vqa.answers.normalize_answer` (case, punctuation, articles,
the synonyms {canonical: [variants]} passed in), so "Middle-aged." matches "middle-aged" and "gray"
matches "grey" when the synonyms say so. Questions whose attribute is "" count only in the overall
score. Empty input is an error, not 0.
"""

import datasets
import evaluate

from flip.vqa.scoring import exact_match

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
        return exact_match(predictions, references, attributes, synonyms)
