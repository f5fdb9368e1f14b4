"""A sentencepiece tokenizer trained on a corpus, served as a transformers fast tokenizer.

Design choices:
- Trained with sentencepiece's unigram model (Kudo, 2018), as Llama's and Gemma's tokenizers were,
  with byte fallback so that no text is ever `<unk>`, and the identity normaliser so that the text
  the model sees is the text it was given.
- Converted to a `tokenizers` Unigram model straight from the trained pieces and scores
  (`SentencePieceProcessor.id_to_piece` / `get_score`): transformers' own converter reads the
  model's protobuf and needs `protobuf`, which flip does not depend on.
- The result is a `PreTrainedTokenizerFast` that adds BOS in front (Llama's convention), knows its
  pad/BOS/EOS/UNK and any extra special tokens (e.g. ``<image>``), and saves as `tokenizer.json`,
  so `AutoTokenizer.from_pretrained` and every VLM processor read it back unchanged.
"""

from __future__ import annotations

import io
from typing import Iterable, Sequence

#: The control pieces, at ids 0-3 (sentencepiece's pad/unk/bos/eos ids are set to match).
PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"


def train_sentencepiece_tokenizer(texts: Iterable[str], vocab_size: int = 1024,
                                  special_tokens: Sequence[str] = ()):
    """Train a unigram sentencepiece model on `texts` and return it as a `PreTrainedTokenizerFast`.

    vocab_size: pieces including the 256 byte-fallback pieces and the 4 control pieces (a floor of
    300 is enforced by sentencepiece's needs; a small corpus may end with fewer pieces, which is fine).
    special_tokens: extra tokens that are never split (e.g. "<image>"), appended after the vocabulary.
    """
    try:
        import sentencepiece as spm
    except ImportError as e:  # a core dependency, but say what to do if it is missing
        raise ImportError("training a tokenizer needs sentencepiece: pip install sentencepiece") from e

    texts = [t for t in texts if t and t.strip()]
    if not texts:
        raise ValueError("train_sentencepiece_tokenizer: no text to train on")
    if vocab_size < 300:
        raise ValueError(f"vocab_size={vocab_size}: expected at least 300 (256 byte pieces + control + words)")
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_writer=model, vocab_size=vocab_size, model_type="unigram",
        byte_fallback=True, normalization_rule_name="identity", pad_id=0, unk_id=1, bos_id=2, eos_id=3,
        pad_piece=PAD, unk_piece=UNK, bos_piece=BOS, eos_piece=EOS, hard_vocab_limit=False,
        num_threads=1, minloglevel=2,
    )
    processor = spm.SentencePieceProcessor(model_proto=model.getvalue())
    pieces = [(processor.id_to_piece(i), processor.get_score(i)) for i in range(processor.get_piece_size())]
    return tokenizer_from_pieces(pieces, special_tokens)


def tokenizer_from_pieces(pieces: Sequence[tuple[str, float]], special_tokens: Sequence[str] = ()):
    """A Llama-style fast tokenizer from sentencepiece (piece, score) pairs; ids 0-3 are pad/unk/bos/eos."""
    from tokenizers import Tokenizer, decoders, normalizers, processors
    from tokenizers.models import Unigram
    from transformers import PreTrainedTokenizerFast

    if [p for p, _ in pieces[:4]] != [PAD, UNK, BOS, EOS]:
        raise ValueError(f"tokenizer_from_pieces: the first pieces must be {[PAD, UNK, BOS, EOS]}, "
                         f"got {[p for p, _ in pieces[:4]]}")
    backend = Tokenizer(Unigram([(p, float(s)) for p, s in pieces], unk_id=1, byte_fallback=True))
    backend.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    backend.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                         decoders.Strip(" ", 1, 0)])
    backend.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B",
                                                           special_tokens=[(BOS, 2)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token=PAD, unk_token=UNK, bos_token=BOS,
                                        eos_token=EOS, clean_up_tokenization_spaces=False)
    if special_tokens:
        tokenizer.add_special_tokens({"additional_special_tokens": list(special_tokens)})
    return tokenizer
