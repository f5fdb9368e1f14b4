"""flip.tokenization: the offline CLIP tokenizer matches open_clip id for id; MiniLM and BERT-BLIP
have the vocabularies FLIP's checkpoints expect; empty tokenizers are refused."""

from __future__ import annotations

import pytest
import torch
from transformers import CLIPTokenizer

from flip.processor import FLIPProcessor
from flip.tokenization import check_tokenizer, clean_clip_text, load_saved_tokenizer, load_tokenizer

# Strings on which open_clip's cleaning (ftfy, HTML unescape, whitespace, lower) and transformers'
# normaliser (NFC, whitespace, lower) might disagree, plus ordinary captions.
CLIP_TABLE = [
    "a face",
    "",
    "café déjà vu",
    "A Smiling MAN with a Beard!!",
    "emoji 😀👍🏽 face 🧔‍♂️",
    "  extra   whitespace\t\n here  ",
    "a\u00a0non-breaking\u2003space",
    "don't it's we're they'll I'd",
    "&amp; &lt;b&gt; html entities",
    "“curly quotes” and ‘single’ ’",
    "ﬁne ligature",
    "ＦＵＬＬＷＩＤＴＨ letters",
    "mojibake cafÃ©",
    "İstanbul ΟΔΟΣ Straße",
    "中文字符 テスト 한국어",
    "e\u0301 decomposed accent",
    "123 4567.89 3rd",
    "x<|endoftext|>y",
    "photo of a person, aged 30-40; smiling (slightly) -- glasses?",
    "a woman " * 60,  # far past 77 tokens
]
# Of these, transformers' normaliser alone gives other ids than open_clip: what clean_clip_text fixes.
NEEDS_CLEANING = ["&amp; &lt;b&gt; html entities", "“curly quotes” and ‘single’ ’", "ﬁne ligature",
                  "ＦＵＬＬＷＩＤＴＨ letters", "mojibake cafÃ©", "İstanbul ΟΔΟΣ Straße"]


@pytest.fixture(scope="module")
def open_clip_tokenizer():
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer()


@pytest.fixture(scope="module")
def clip():
    return load_tokenizer("clip")


def test_clip_vocabulary(clip):
    assert len(clip) == 49408
    assert (clip.bos_token_id, clip.eos_token_id) == (49406, 49407)
    assert clip.model_max_length == 77


def test_clip_ids_equal_open_clip_on_the_table(clip, open_clip_tokenizer):
    processor = FLIPProcessor(clip, max_length=77)
    ours = processor.texts(CLIP_TABLE, padding="max_length")["input_ids"]
    theirs = open_clip_tokenizer(CLIP_TABLE, context_length=77)
    mismatched = [s for s, a, b in zip(CLIP_TABLE, ours, theirs) if not torch.equal(a, b)]
    assert not mismatched
    assert ours.dtype == theirs.dtype == torch.long


@pytest.mark.parametrize("text", NEEDS_CLEANING)
def test_cleaning_is_what_makes_clip_agree(clip, open_clip_tokenizer, text):
    expected = open_clip_tokenizer.encode(text)
    assert clip(text, add_special_tokens=False)["input_ids"] != expected
    assert clip(clean_clip_text(text), add_special_tokens=False)["input_ids"] == expected


def test_clip_truncation_keeps_end_of_text_at_76(clip, open_clip_tokenizer):
    text = "a woman " * 60
    ids = FLIPProcessor(clip).texts([text])["input_ids"][0]
    assert ids.shape == (77,)
    assert ids[0] == 49406 and ids[76] == 49407
    assert torch.equal(ids, open_clip_tokenizer([text])[0])


def test_minilm_is_uncased_bert_wordpiece():
    tokenizer = load_tokenizer("minilm")
    assert len(tokenizer) == 30522
    assert tokenizer("A Face")["input_ids"] == [101, 1037, 2227, 102]  # [CLS] a face [SEP]


def test_bert_blip_adds_dec_and_enc_as_flip_does():
    tokenizer = load_tokenizer("bert-blip")
    assert len(tokenizer) == 30524
    assert tokenizer.bos_token == "[DEC]" and tokenizer.bos_token_id == 30522
    assert tokenizer.convert_tokens_to_ids("[ENC]") == 30523
    # The base vocabulary is untouched: the same ids as MiniLM's for ordinary words.
    assert tokenizer("a smiling face")["input_ids"] == load_tokenizer("minilm")("a smiling face")["input_ids"]


@pytest.mark.parametrize("spec", ["clip", "bert-blip"])
def test_saved_tokenizer_reloads_identically(tmp_path, spec):
    tokenizer = load_tokenizer(spec)
    tokenizer.save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "flip"}')  # a model saved beside it is ignored
    reloaded = load_saved_tokenizer(tmp_path)
    assert type(reloaded) is type(tokenizer) and len(reloaded) == len(tokenizer)
    text = ["a smiling woman with glasses", "café [ENC] x"]
    assert reloaded(text)["input_ids"] == tokenizer(text)["input_ids"]


def test_empty_clip_tokenizer_is_refused():
    empty = CLIPTokenizer()  # what vocab_file= or an offline Hub id silently gives
    with pytest.raises(ValueError, match="my-source.*empty"):
        check_tokenizer(empty, "my-source")


def test_offline_hub_clip_tokenizer_is_refused():
    # With HF_HUB_OFFLINE=1 (set in conftest) from_pretrained returns an empty tokenizer, no error.
    empty = CLIPTokenizer.from_pretrained("openai/clip-vit-base-patch32")
    with pytest.raises(ValueError, match="openai/clip-vit-base-patch32"):
        check_tokenizer(empty, "openai/clip-vit-base-patch32")


@pytest.mark.parametrize("spec", ["", None, "no-such-org/no-such-tokenizer", "/no/such/dir"])
def test_bad_specs_raise_naming_the_spec(spec):
    with pytest.raises(ValueError, match="tokenizer"):
        load_tokenizer(spec)
