"""Tokenizers written from scratch: characters and byte-level byte-pair encoding (BPE).

>>> from sftlearn.tokenizer import BPETokenizer, CharTokenizer
>>> tok = CharTokenizer("helo wrd")
>>> tok.decode(tok.encode("hello world"))
'hello world'

Both share the base class ``Tokenizer`` and the same special tokens with the same ids:

    0 <|pad|>  1 <|bos|>  2 <|eos|>  3 <|unk|>  4 <|user|>  5 <|assistant|>  6 <|end|>

Modules, in reading order: ``base`` (what all tokenizers share), ``char`` (one token per
character), ``pretokenizer`` (cutting text into words before BPE), ``bpe`` (training and using
byte-pair encoding, plus ``bpe_trace`` to watch training step by step).
"""

from .base import (
    NUM_SPECIAL,
    SPECIAL_IDS,
    SPECIAL_TOKENS,
    Tokenizer,
    load_tokenizer,
    split_on_special_tokens,
)
from .bpe import MIN_VOCAB_SIZE, BPETokenizer, bpe_trace, format_bpe_trace
from .char import CharTokenizer
from .pretokenizer import pretokenize

__all__ = [
    "SPECIAL_TOKENS",
    "SPECIAL_IDS",
    "NUM_SPECIAL",
    "MIN_VOCAB_SIZE",
    "Tokenizer",
    "CharTokenizer",
    "BPETokenizer",
    "load_tokenizer",
    "bpe_trace",
    "format_bpe_trace",
    "pretokenize",
    "split_on_special_tokens",
]
