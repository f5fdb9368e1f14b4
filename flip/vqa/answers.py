"""Answer normalisation for exact-match scoring: case, punctuation, articles and synonyms.

After the VQA benchmark's answer processing (Antol et al., 2015), reduced to what short attribute
answers need: lower case; every punctuation mark becomes a space (so "middle-aged", "Middle aged"
and "middle aged." agree); articles dropped; whitespace collapsed; then a synonym table maps each
variant to its canonical answer ({"grey": ["gray"], "eyeglasses": ["glasses"]}). References go
through the same function, so a label and a prediction compare as equals exactly when a reader
would call them the same answer.
"""

from __future__ import annotations

import re
import string
from typing import Mapping, Sequence

_PUNCTUATION = re.compile(f"[{re.escape(string.punctuation)}]")
_ARTICLES = {"a", "an", "the"}


def _clean(text: str) -> str:
    words = _PUNCTUATION.sub(" ", str(text).lower()).split()
    return " ".join(w for w in words if w not in _ARTICLES)


def synonym_table(synonyms: Mapping[str, Sequence[str]] | None) -> dict[str, str]:
    """{canonical: [variants]} -> {cleaned variant: cleaned canonical}; a variant listed twice is an error."""
    table: dict[str, str] = {}
    for canonical, variants in (synonyms or {}).items():
        if isinstance(variants, str):
            raise ValueError(f"synonyms[{canonical!r}] must be a list of variants, got the string {variants!r}")
        target = _clean(canonical)
        for variant in variants:
            key = _clean(variant)
            if table.get(key, target) != target:
                raise ValueError(f"synonyms: {variant!r} is listed for both {table[key]!r} and {target!r}")
            table[key] = target
    return table


def normalize_answer(text: str, synonyms: Mapping[str, Sequence[str]] | Mapping[str, str] | None = None) -> str:
    """The comparable form of an answer. `synonyms` is {canonical: [variants]} or a `synonym_table`."""
    if synonyms and all(isinstance(v, str) for v in synonyms.values()):
        table = dict(synonyms)
    else:
        table = synonym_table(synonyms)
    cleaned = _clean(text)
    return table.get(cleaned, cleaned)
