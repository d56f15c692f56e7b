"""Pre-tokenization: cutting text into word-like pieces before byte-pair encoding.

BPE merges frequent neighbouring tokens. Left alone on raw text it would happily merge across
word boundaries ("e t" from "the tiger"), wasting vocabulary on accidents of word order. So we
first cut the text into pieces and let merges happen only *inside* a piece.

The rule, one character class at a time (no regular expressions):

1. a run of letters is one piece:                  "tiger"   -> ["tiger"]
2. every digit is its own piece:                    "2024"    -> ["2", "0", "2", "4"]
   (so numbers are always spelled digit by digit, which helps with arithmetic)
3. every CJK ideograph (Chinese character) is its own piece: "小猫" -> ["小", "猫"]
4. a run of any other non-space characters (punctuation, symbols, emoji) is one piece:
                                                    "?!"      -> ["?!"]
5. a run of whitespace is one piece, except that a single space just before a non-space piece
   joins that piece:                                "a  cat"  -> ["a", " ", " cat"]

Rule 5 is why a BPE vocabulary has tokens like " the" (with the space): the word and the space
before it are learned together. Joining the pieces always gives back the original text.

>>> pretokenize("The cat sat, 12 times.")
['The', ' cat', ' sat', ',', ' 1', '2', ' times', '.']
"""

from __future__ import annotations

import unicodedata

SPACE, LETTER, DIGIT, CJK, OTHER = "space", "letter", "digit", "cjk", "other"

# Unicode blocks of CJK ideographs (Chinese characters, also used in Japanese and Korean).
_CJK_RANGES = (
    (0x3400, 0x4DBF),  # extension A
    (0x4E00, 0x9FFF),  # unified ideographs: nearly all everyday Chinese
    (0xF900, 0xFAFF),  # compatibility ideographs
    (0x20000, 0x323AF),  # extensions B..H
)


def _classify(c: str) -> str:
    if c.isspace():
        return SPACE
    code = ord(c)
    if any(lo <= code <= hi for lo, hi in _CJK_RANGES):
        return CJK
    if c.isdigit():
        return DIGIT
    # Combining marks (accents written as a separate code point) stay with their letters.
    if c.isalpha() or unicodedata.category(c).startswith("M"):
        return LETTER
    return OTHER


_kind_cache: dict[str, str] = {}


def char_kind(c: str) -> str:
    """The class of one character: "space", "letter", "digit", "cjk" or "other"."""
    kind = _kind_cache.get(c)
    if kind is None:
        kind = _kind_cache[c] = _classify(c)
    return kind


# Classes whose runs stay together; digits and CJK characters are one piece each.
_RUNS = (LETTER, OTHER, SPACE)


def pretokenize(text: str) -> list[str]:
    """Cut ``text`` into pieces by the rules in the module docstring; ``"".join`` undoes it."""
    kinds = [char_kind(c) for c in text]
    pieces: list[str] = []
    n = len(text)
    i = 0
    while i < n:
        start, kind = i, kinds[i]
        i += 1
        if kind in _RUNS:
            while i < n and kinds[i] == kind:
                i += 1
        if kind == SPACE and i < n and text[i - 1] == " ":
            # Rule 5: the last space belongs to the piece that follows it.
            if i - 1 > start:
                pieces.append(text[start : i - 1])
            start, kind = i - 1, kinds[i]
            i += 1
            if kind in _RUNS:
                while i < n and kinds[i] == kind:
                    i += 1
        pieces.append(text[start:i])
    return pieces
