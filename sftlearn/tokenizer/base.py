"""What every tokenizer in the course has in common.

A tokenizer turns text into a list of integers (token ids) and back. The two tokenizers in
this package (characters and byte-pair encoding) differ only in how they cut ordinary text
into pieces; everything else lives here, once:

- the special tokens, which get the ids 0..6 in *every* tokenizer, so a model, a dataset and a
  chat template never have to ask which tokenizer they are talking to;
- finding special-token strings such as ``"<|end|>"`` inside text and encoding each as its id;
- checking the ids given to ``decode`` (a clear error instead of an ``IndexError``);
- saving to and loading from a human-readable JSON file.

A subclass fills in four things: ``_encode_ordinary`` (text without special tokens -> ids),
``_decode_ordinary`` (ids that are not special -> text), ``_ordinary_vocab_size`` and the
pair ``to_dict`` / ``_from_dict`` used by save and load.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar, Iterable, Sequence

from ..files import atomic_write

# The special tokens, in id order. Their ids are their positions: <|pad|> is 0, <|bos|> is 1 ...
SPECIAL_TOKENS: list[str] = [
    "<|pad|>",  # fills the unused end of a shorter sequence in a batch
    "<|bos|>",  # beginning of a sequence
    "<|eos|>",  # end of a sequence (a whole document or conversation)
    "<|unk|>",  # stands for a character the tokenizer cannot represent
    "<|user|>",  # starts a user turn in the chat template
    "<|assistant|>",  # starts an assistant turn
    "<|end|>",  # closes a turn
]
NUM_SPECIAL = len(SPECIAL_TOKENS)
PAD_ID, BOS_ID, EOS_ID, UNK_ID, USER_ID, ASSISTANT_ID, END_ID = range(NUM_SPECIAL)
SPECIAL_IDS: dict[str, int] = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}

# Every saved file says which format version wrote it, so a future change can still read old files.
FORMAT_VERSION = 1

# type name in the JSON file ("char", "bpe") -> tokenizer class; filled in by __init_subclass__.
_REGISTRY: dict[str, type["Tokenizer"]] = {}


def split_on_special_tokens(text: str) -> list[tuple[str, int | None]]:
    """Cut ``text`` into ordinary pieces and special tokens, in order.

    Returns ``(piece, None)`` for ordinary text and ``(token_string, id)`` for a special token.
    Only the exact strings in ``SPECIAL_TOKENS`` count: ``"<|hello|>"`` is ordinary text.

    >>> split_on_special_tokens("hi<|end|>")
    [('hi', None), ('<|end|>', 6)]
    """
    parts: list[tuple[str, int | None]] = []
    start = 0  # beginning of the ordinary text not yet emitted
    search_from = 0
    while True:
        # Every special token starts with "<|", so only those places need a closer look.
        i = text.find("<|", search_from)
        if i == -1:
            break
        for token, token_id in SPECIAL_IDS.items():
            if text.startswith(token, i):
                if i > start:
                    parts.append((text[start:i], None))
                parts.append((token, token_id))
                start = search_from = i + len(token)
                break
        else:  # "<|" that does not begin a special token: keep looking after it
            search_from = i + 1
    if start < len(text):
        parts.append((text[start:], None))
    return parts


def check_no_surrogates(text: str, what: str = "The text") -> None:
    """Raise a ValueError if ``text`` holds a lone surrogate.

    A lone surrogate is half of a UTF-16 pair (e.g. a string cut in the middle of an emoji):
    Python lets a str hold one, but it is not a character and has no UTF-8 bytes, so it can be
    neither encoded to bytes nor saved to a JSON file.
    """
    try:
        text.encode("utf-8")  # fails only on a lone surrogate (C speed: cheap for a corpus)
    except UnicodeEncodeError as error:
        raise ValueError(
            f"{what} has a lone surrogate {text[error.start]!r} at position {error.start}, "
            f"which is not a character (half of an emoji cut in two?). Clean the text first, "
            f"e.g. text.encode('utf-8', 'replace').decode('utf-8')."
        ) from None


class Tokenizer:
    """Base class: special tokens, encode/decode plumbing, save/load.

    Ids ``0..6`` are the special tokens (see ``SPECIAL_TOKENS``); ordinary tokens follow from 7.
    """

    type_name: ClassVar[str] = ""  # the "type" field of the saved JSON; set by each subclass

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.type_name:
            _REGISTRY[cls.type_name] = cls

    # ----- what a subclass provides -------------------------------------------------------

    def _encode_ordinary(self, text: str) -> list[int]:
        """Ids for ``text``, which contains no special-token strings."""
        raise NotImplementedError

    def _decode_ordinary(self, ids: list[int]) -> str:
        """Text for ``ids``, none of which is a special id."""
        raise NotImplementedError

    def _ordinary_token(self, token_id: int) -> str:
        """A printable string for one ordinary id (used by ``id_to_token``)."""
        raise NotImplementedError

    def _ordinary_id(self, token: str) -> int | None:
        """The id of one ordinary token string, or None if it is not in the vocabulary."""
        raise NotImplementedError

    @property
    def _ordinary_vocab_size(self) -> int:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """Everything needed to rebuild this tokenizer, as JSON-ready data."""
        raise NotImplementedError

    @classmethod
    def _from_dict(cls, data: dict[str, Any]) -> "Tokenizer":
        raise NotImplementedError

    # ----- vocabulary ---------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """Number of distinct ids: the special tokens plus the ordinary ones."""
        return NUM_SPECIAL + self._ordinary_vocab_size

    def __len__(self) -> int:
        return self.vocab_size

    @property
    def special_tokens(self) -> list[str]:
        return list(SPECIAL_TOKENS)

    pad_id = property(lambda self: PAD_ID, doc="id of <|pad|> (always 0)")
    bos_id = property(lambda self: BOS_ID, doc="id of <|bos|> (always 1)")
    eos_id = property(lambda self: EOS_ID, doc="id of <|eos|> (always 2)")
    unk_id = property(lambda self: UNK_ID, doc="id of <|unk|> (always 3)")
    user_id = property(lambda self: USER_ID, doc="id of <|user|> (always 4)")
    assistant_id = property(lambda self: ASSISTANT_ID, doc="id of <|assistant|> (always 5)")
    end_id = property(lambda self: END_ID, doc="id of <|end|> (always 6)")

    def id_to_token(self, token_id: int) -> str:
        """The string of one token, e.g. ``"<|end|>"``, ``"a"`` or ``" the"``."""
        (token_id,) = self._check_ids([token_id])
        if token_id < NUM_SPECIAL:
            return SPECIAL_TOKENS[token_id]
        return self._ordinary_token(token_id)

    def token_to_id(self, token: str | bytes) -> int:
        """The id of one token string; ValueError if the string is not a single token.

        (A BPE token that is only part of a character, shown as e.g. ``"\\xe7"``, is looked
        up by its bytes instead: ``token_to_id(b"\\xe7")``. When two BPE merges spell the same
        bytes, the id learned first is returned.)
        """
        if not isinstance(token, (str, bytes)):
            raise TypeError(f"token_to_id expects a token string, got {type(token).__name__}")
        if isinstance(token, str) and token in SPECIAL_IDS:
            return SPECIAL_IDS[token]
        if isinstance(token, str):
            check_no_surrogates(token, "The token")
        token_id = self._ordinary_id(token)  # type: ignore[arg-type]
        if token_id is None:
            raise ValueError(
                f"{token!r} is not a single token of this {type(self).__name__}: "
                f"use encode({token!r}) to see the ids it is split into"
            )
        return token_id

    def tokenize(self, text: str) -> list[str]:
        """The token strings ``text`` is cut into (handy for looking at a tokenization)."""
        return [self.id_to_token(i) for i in self.encode(text)]

    # ----- encode / decode ----------------------------------------------------------------

    def encode(self, text: str, *, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Text -> list of token ids.

        Special-token strings in ``text`` (exactly ``"<|end|>"`` etc.) become their special id.
        ``encode("")`` returns ``[]`` (plus <|bos|>/<|eos|> if asked for).
        """
        if not isinstance(text, str):
            raise TypeError(
                f"encode expects a str, got {type(text).__name__}; "
                "for a list of texts use encode_batch"
            )
        check_no_surrogates(text)
        ids = [BOS_ID] if add_bos else []
        for piece, special_id in split_on_special_tokens(text):
            if special_id is None:
                ids.extend(self._encode_ordinary(piece))
            else:
                ids.append(special_id)
        if add_eos:
            ids.append(EOS_ID)
        return ids

    def encode_batch(
        self, texts: Iterable[str], *, add_bos: bool = False, add_eos: bool = False
    ) -> list[list[int]]:
        """``encode`` each text of a list; returns one id list per text (lengths differ)."""
        if isinstance(texts, str):
            raise TypeError(
                "encode_batch expects a list of strings, got a single str "
                "(it would be encoded character by character); use encode(text) instead"
            )
        return [self.encode(t, add_bos=add_bos, add_eos=add_eos) for t in texts]

    def decode(self, ids: Sequence[int], *, skip_special: bool = False) -> str:
        """List of ids -> text.

        Special ids become their strings (``"<|end|>"``), or are left out with
        ``skip_special=True``. Accepts a list, tuple or 1-D tensor/array of ints.
        """
        ids = self._check_ids(ids)
        out: list[str] = []
        run: list[int] = []  # ordinary ids waiting to be decoded together
        for i in ids:
            if i >= NUM_SPECIAL:
                run.append(i)
                continue
            if run:
                out.append(self._decode_ordinary(run))
                run = []
            if not skip_special:
                out.append(SPECIAL_TOKENS[i])
        if run:
            out.append(self._decode_ordinary(run))
        return "".join(out)

    def decode_batch(
        self, batch: Iterable[Sequence[int]], *, skip_special: bool = False
    ) -> list[str]:
        """``decode`` each id list of a batch (a list of lists or a 2-D tensor)."""
        if hasattr(batch, "tolist"):
            batch = batch.tolist()
        return [self.decode(ids, skip_special=skip_special) for ids in batch]

    def _check_ids(self, ids: Any) -> list[int]:
        """Turn ``ids`` into a list of ints and check every one is a valid id."""
        if hasattr(ids, "tolist"):  # torch tensors and numpy arrays
            ids = ids.tolist()
            if isinstance(ids, int):  # a 0-d tensor
                ids = [ids]
        if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
            raise TypeError(f"expected a sequence of token ids, got {type(ids).__name__}")
        checked = []
        for i in ids:
            if isinstance(i, bool) or not isinstance(i, int):
                hint = " (for a batch of sequences use decode_batch)" if isinstance(i, list) else ""
                raise TypeError(f"token ids must be ints, got {type(i).__name__} {i!r}{hint}")
            if not 0 <= i < self.vocab_size:
                raise ValueError(
                    f"token id {i} is out of range for this tokenizer "
                    f"(vocab_size={self.vocab_size}, valid ids 0..{self.vocab_size - 1}); "
                    "were these ids made by a different tokenizer?"
                )
            checked.append(i)
        return checked

    # ----- save / load --------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write the tokenizer to a human-readable JSON file; returns the path.

        The file is written to a temporary name and then renamed, so an interrupted save never
        leaves a half-written file behind.
        """
        data = {"type": self.type_name, "version": FORMAT_VERSION,
                "special_tokens": SPECIAL_TOKENS, **self.to_dict()}
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Tokenizer":
        """Read a tokenizer written by ``save``.

        ``Tokenizer.load`` accepts any kind; ``BPETokenizer.load`` insists on a BPE file.
        """
        data = _read_json(path)
        kind = _REGISTRY[data["type"]]
        if cls is not Tokenizer and kind is not cls:
            raise ValueError(
                f"{path} holds a {kind.__name__} (type {data['type']!r}), not a {cls.__name__}: "
                f"use {kind.__name__}.load or load_tokenizer(path)"
            )
        return kind._from_dict(data)

    def __eq__(self, other: object) -> bool:
        if type(self) is not type(other):
            return False
        return self.to_dict() == other.to_dict()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]  # equal tokenizers compare by content

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


def _read_json(path: str | os.PathLike) -> dict[str, Any]:
    """Load and sanity-check a saved tokenizer file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"no tokenizer file at {path}: save one first with tokenizer.save({str(path)!r})"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path} is not valid JSON ({e}); was it written by Tokenizer.save?"
        ) from None
    if not isinstance(data, dict) or data.get("type") not in _REGISTRY:
        found = data.get("type") if isinstance(data, dict) else None
        raise ValueError(
            f"{path} has tokenizer type {found!r}; expected one of {sorted(_REGISTRY)}. "
            "Was it written by Tokenizer.save?"
        )
    if data.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"{path} was written in format version {data.get('version')!r}, but this sftlearn "
            f"reads version {FORMAT_VERSION}: re-create the tokenizer and save it again"
        )
    if data.get("special_tokens") != SPECIAL_TOKENS:
        raise ValueError(
            f"{path} lists special tokens {data.get('special_tokens')!r}, but sftlearn uses "
            f"{SPECIAL_TOKENS!r}: re-create the tokenizer and save it again"
        )
    return data


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """Load any tokenizer saved with ``save``; the file's "type" field picks the class."""
    return Tokenizer.load(path)
