"""The simplest tokenizer: one token per character.

Every distinct character gets an id: the seven special tokens take 0..6 and the characters
follow in sorted order, so the same set of characters always gives the same ids.

A character tokenizer can only encode the characters it was built from. Anything else is an
error by default (naming the character, so you can fix it), or, with ``unknown="replace"``,
becomes ``<|unk|>`` -- which loses information: the decoded text will not match the original.
"""

from __future__ import annotations

from typing import Any

from .base import NUM_SPECIAL, UNK_ID, Tokenizer, check_no_surrogates

UNKNOWN_POLICIES = ("error", "replace")


class CharTokenizer(Tokenizer):
    """One id per character.

    >>> tok = CharTokenizer("abc")
    >>> tok.encode("cab")
    [9, 7, 8]
    >>> tok.decode([9, 7, 8])
    'cab'
    """

    type_name = "char"

    def __init__(self, chars: str, unknown: str = "error") -> None:
        """Build a tokenizer whose vocabulary is the distinct characters of ``chars``.

        ``chars`` can be any text (duplicates are ignored), e.g. a whole training corpus.
        ``unknown`` says what ``encode`` does with a character outside the vocabulary:
        ``"error"`` (the default) raises ValueError, ``"replace"`` encodes it as ``<|unk|>``.
        """
        if not isinstance(chars, str):
            raise TypeError(
                f"CharTokenizer expects a str of characters, got {type(chars).__name__}"
            )
        if not chars:
            raise ValueError(
                "CharTokenizer needs at least one character: pass the text you want to "
                "tokenize (or CharTokenizer.from_world() for the course's data)"
            )
        if unknown not in UNKNOWN_POLICIES:
            raise ValueError(f"unknown must be one of {UNKNOWN_POLICIES}, got {unknown!r}")
        # A vocabulary entry must be a real character: a lone surrogate could never be
        # encoded to bytes, so the tokenizer could not be saved.
        check_no_surrogates(chars, "The text for CharTokenizer")
        self.chars = "".join(sorted(set(chars)))
        self.unknown = unknown
        # The lookup tables, both ways. Ordinary ids start after the special tokens.
        self._char_to_id = {c: NUM_SPECIAL + i for i, c in enumerate(self.chars)}
        self._id_to_char = {i: c for c, i in self._char_to_id.items()}

    @classmethod
    def from_world(cls, unknown: str = "error") -> "CharTokenizer":
        """The tokenizer for the course's synthetic world: every character it can ever emit
        (English, Chinese, digits, punctuation) plus printable ASCII."""
        from sftlearn.data import alphabet  # imported here: the data package is larger

        return cls(alphabet(), unknown=unknown)

    # ----- the four pieces the base class asks for ----------------------------------------

    @property
    def _ordinary_vocab_size(self) -> int:
        return len(self.chars)

    def _encode_ordinary(self, text: str) -> list[int]:
        lookup = self._char_to_id
        try:
            return [lookup[c] for c in text]  # the fast path: every character is known
        except KeyError:
            pass
        if self.unknown == "replace":
            return [lookup.get(c, UNK_ID) for c in text]
        raise ValueError(self._unknown_message(text))

    def _decode_ordinary(self, ids: list[int]) -> str:
        return "".join(self._id_to_char[i] for i in ids)

    def _ordinary_token(self, token_id: int) -> str:
        return self._id_to_char[token_id]

    def _ordinary_id(self, token: str) -> int | None:
        return self._char_to_id.get(token) if isinstance(token, str) else None

    def _unknown_message(self, text: str) -> str:
        """Explain which characters are missing and how to fix it."""
        missing: list[str] = []
        for c in text:
            if c not in self._char_to_id and c not in missing:
                missing.append(c)
        shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        return (
            f"CharTokenizer cannot encode {shown}{more}: not in its vocabulary of "
            f"{len(self.chars)} characters. Fix: build the tokenizer from text that contains "
            "it, or pass unknown='replace' to map it to <|unk|>."
        )

    # ----- save / load --------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {"unknown": self.unknown, "chars": self.chars}

    @classmethod
    def _from_dict(cls, data: dict[str, Any]) -> "CharTokenizer":
        return cls(data["chars"], unknown=data["unknown"])

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size}, unknown={self.unknown!r})"

