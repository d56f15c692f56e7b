"""The alphabet: every character the synthetic world can ever write.

A character-level tokenizer needs its vocabulary before it sees any text. The
world's English side is plain printable ASCII; its Chinese side uses only the
characters of the lexicon and of the sentence templates. So the alphabet is
computed from those word lists, not by generating text and collecting what
came out (tests do that to check this function).
"""

from __future__ import annotations

import string

from . import lexicon, sentences

# Chinese punctuation that Chinese output uses (English output uses ASCII . , ?).
CHINESE_PUNCTUATION = "。，"


def alphabet() -> str:
    """Every character the world can emit, plus printable ASCII, sorted and deduplicated.

    Printable ASCII is string.printable without the rarely useful \\x0b, \\x0c and \\r.
    """
    chars = set(string.printable) - set("\x0b\x0c\r")
    chars.update(CHINESE_PUNCTUATION)
    for fragment in lexicon.chinese_fragments() + sentences.chinese_fragments():
        chars.update(fragment)
    return "".join(sorted(chars))
