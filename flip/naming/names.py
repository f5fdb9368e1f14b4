"""Person names in captions: a transparent rule-based extractor, or a token-classification model.

Design choices:
- The default reads like a person would skim a news caption: a name is a run of two or more
  capitalised words ("Ana Silva", "Seo-yeon Van Dijk", "Omar Al-Amin"), lower-case particles
  allowed inside a run ("Ludwig van Beethoven"), punctuation and lower-case words ending it.
  Single capitalised words are not names: sentence starts, cities and days are single words far
  more often than people are (Madonna is missed; say so in results).
- Stop-lists, each documented below, peel words off a run's ends: titles ("President", "Dr"),
  sentence starters ("The", "Earlier"), days, and months when a name is left; a place or
  organisation word anywhere ("University", "Stadium") drops the run; the user adds their own
  (`extra_stopwords`, e.g. their corpus's city names). What is left must still hold two
  capitalised words. Words that are also names (Park, June, Jun) are kept off the lists.
- With a model path, a transformers token-classification pipeline (any NER model with a PER
  label) replaces the rules; transformers is imported only then. Both return names in caption
  order, each once.
"""

from __future__ import annotations

import re
from pathlib import Path
from collections.abc import Iterable

__all__ = ["NameExtractor", "RuleNameExtractor", "ModelNameExtractor", "extract_names"]

#: titles and roles that precede a name and are not part of it
TITLES = frozenset("""Mr Mrs Ms Miss Dr Prof Professor Sir Dame Lord Lady President Vice Prime Minister
Chancellor Senator Governor Mayor King Queen Prince Princess Pope General Colonel Captain Judge Chief
Secretary Ambassador Coach Rev Reverend Saint St""".split())
#: words that start sentences or stand capitalised in news captions without being names
STARTERS = frozenset("""A An The This That These Those Then There Here It Its In On At For From With By
Of To As After Before During Earlier Later Meanwhile Also But And Or Guests Delegates Crowds
Photographers Reporters Officials Police Fans Players Members Supporters Visitors People Residents
Workers Students Leaders Ministers Spokesperson Spokesman Spokeswoman File Photo Picture Caption Left
Right Center Centre Front Back Top Bottom Pictured Shown Seen Former Newly Elected""".split())
#: days: never part of a name
DAYS = frozenset("Monday Tuesday Wednesday Thursday Friday Saturday Sunday Today Yesterday Tomorrow".split())
#: months: trimmed off a run's edge only when two capitalised words are left, since April, May and
#: June are also first names ("April Smith" stays, "Ana Silva in May" loses May by the lower-case "in")
MONTHS = frozenset("""January February March April May June July August September October November
December""".split())
#: words that make a run a place, event or organisation rather than a person. Words that are also
#: common surnames (Park, Hall, Court, House, Church, North, West, Young...) are deliberately left
#: out: "Jomo Park" is a person; add the corpus's own place words with `extra_stopwords`.
PLACES = frozenset("""City Street Road Avenue Square Palace Stadium Airport Station University College
School Hospital Cathedral Museum Centre Center River Lake Mountain Island Republic Kingdom States Union
Nations Council Parliament Congress Senate Ministry Committee Party Club Festival Ceremony Summit
Conference Games Cup League Championship Olympics""".split())
#: lower-case particles that may sit inside a name
PARTICLES = frozenset("van von der den de del della di da dos das du la le bin bint ibn al el ben ter ten".split())

_TOKEN = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*|\S")


def _capitalised(token: str) -> bool:
    return token[:1].isupper() and any(c.islower() for c in token)


class NameExtractor:
    """Anything with `__call__(caption) -> list[str]`: person names in caption order, each once."""

    def __call__(self, caption: str) -> list[str]:  # pragma: no cover - interface
        raise NotImplementedError


class RuleNameExtractor(NameExtractor):
    """Runs of capitalised words, trimmed by the stop-lists (see the module docstring)."""

    def __init__(self, extra_stopwords: Iterable[str] = (), min_words: int = 2):
        if min_words < 1:
            raise ValueError(f"min_words={min_words}: expected at least 1")
        extra = frozenset(extra_stopwords)
        self.edge_stopwords = TITLES | STARTERS | DAYS | extra
        self.breaking = DAYS | PLACES | extra  # a run holding one of these is not a person
        self.min_words = int(min_words)

    def __call__(self, caption: str) -> list[str]:
        if not isinstance(caption, str):
            raise TypeError(f"caption: expected a string, got {type(caption).__name__}")
        names: list[str] = []
        for run in self._runs(_TOKEN.findall(caption)):
            name = self._trim(run)
            if name and name not in names:
                names.append(name)
        return names

    @staticmethod
    def _runs(tokens: list[str]) -> Iterable[list[str]]:
        run: list[str] = []
        for token in tokens + ["."]:
            if _capitalised(token) or (run and token in PARTICLES):
                run.append(token)
                continue
            yield run
            run = []

    def _trim(self, run: list[str]) -> str | None:
        def drop(word: str, rest: list[str]) -> bool:
            if word in PARTICLES or word in self.edge_stopwords:
                return True
            return word in MONTHS and sum(map(_capitalised, rest)) >= self.min_words

        while run and drop(run[-1], run[:-1]):
            run = run[:-1]
        while run and drop(run[0], run[1:]):
            run = run[1:]
        if any(t in self.breaking for t in run):
            return None
        if sum(_capitalised(t) for t in run) < self.min_words:
            return None
        return " ".join(run)


class ModelNameExtractor(NameExtractor):
    """A transformers token-classification model (local path or hub name) that tags persons (PER)."""

    def __init__(self, model: str, label: str = "PER", device: int | str = -1):
        try:
            from transformers import pipeline
        except ImportError as err:  # pragma: no cover - transformers is a dependency
            raise ImportError(f"ModelNameExtractor needs transformers ({err})") from None
        if str(model).startswith(("/", ".", "~")) and not Path(model).expanduser().exists():
            raise FileNotFoundError(f"name model {model!r}: no such folder")
        try:
            self._pipe = pipeline("token-classification", model=model, aggregation_strategy="simple", device=device)
        except (OSError, ValueError) as err:
            raise FileNotFoundError(f"name model {model!r}: cannot load a token-classification model ({err})") from None
        self.label = label

    def __call__(self, caption: str) -> list[str]:
        names: list[str] = []
        for entity in self._pipe(caption):
            group = entity.get("entity_group", entity.get("entity", ""))
            if group.split("-")[-1] == self.label:
                name = caption[entity["start"]:entity["end"]].strip()
                if name and name not in names:
                    names.append(name)
        return names


def extract_names(caption: str, model: str | None = None, extra_stopwords: Iterable[str] = ()) -> list[str]:
    """Person names in `caption`: the rules by default, the token-classification `model` when given."""
    extractor = ModelNameExtractor(model) if model else RuleNameExtractor(extra_stopwords)
    return extractor(caption)
