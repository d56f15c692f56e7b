"""Byte-level byte-pair encoding (BPE), trained from scratch.

The idea
--------
Start from the smallest possible alphabet that can spell *anything*: the 256 byte values.
Any string becomes a list of byte tokens through its UTF-8 encoding ("a" is one byte, "猫" is
three, an emoji four), so nothing is ever unknown. Then, repeatedly:

1. count every pair of neighbouring tokens in the training text,
2. take the most frequent pair (ties: the pair whose byte strings sort first, so training is
   deterministic) and make it a new token,
3. replace that pair everywhere by the new token.

Each repetition is one *merge*; the ordered list of merges is the whole learned tokenizer.
After a few thousand merges, common words and word pieces (" the", "ing", "猫") are single
tokens and text takes far fewer tokens than bytes.

Encoding new text replays the merges: inside each piece, repeatedly merge the neighbouring
pair that was learned *earliest* (lowest rank) until no learned pair is left.

Two practical points
--------------------
- Merges never cross piece boundaries: text is first cut into word-like pieces
  (``pretokenize``), and training counts each distinct piece once, weighted by how often it
  occurs. That is also what makes training fast.
- After a merge, only the pieces that contained the merged pair change, so only their pair
  counts are updated (an index from pair to pieces finds them) instead of recounting all text.

Ids: 0..6 special tokens, 7..262 the bytes 0..255, 263.. the merges in the order learned.

Decoding joins the bytes and decodes UTF-8 with ``errors="replace"``: every *complete* id
sequence decodes back to its text, but a prefix of one (say, during generation) may end in the
middle of a multi-byte character, which then shows as "\ufffd".
"""

from __future__ import annotations

import heapq
from collections import Counter
from typing import Any, Callable, Sequence

from .base import NUM_SPECIAL, Tokenizer, check_no_surrogates, split_on_special_tokens
from .pretokenizer import pretokenize
from ..validation import check_int

BYTE_OFFSET = NUM_SPECIAL  # id of byte value 0
FIRST_MERGE_ID = NUM_SPECIAL + 256  # 263: id of the first learned token
MIN_VOCAB_SIZE = FIRST_MERGE_ID  # specials + 256 bytes: the vocabulary with no merges

Pair = tuple[int, int]


def byte_ids(text: str) -> list[int]:
    """The byte tokens of ``text``: its UTF-8 bytes, shifted past the special ids."""
    return [BYTE_OFFSET + b for b in text.encode("utf-8")]


def show_bytes(b: bytes) -> str:
    """A printable form of a token's bytes: the text when it is valid UTF-8, else with
    ``\\x..`` escapes for the stray bytes (e.g. the first byte of a Chinese character)."""
    return b.decode("utf-8", errors="backslashreplace")


def merge_pair(tokens: list[int], pair: Pair, new_id: int) -> list[int]:
    """Replace every occurrence of ``pair`` in ``tokens`` by ``new_id``, left to right.

    >>> merge_pair([1, 1, 1, 2], (1, 1), 9)   # overlapping: the left occurrence wins
    [9, 1, 2]
    """
    a, b = pair
    out: list[int] = []
    i, n = 0, len(tokens)
    while i < n:
        if i + 1 < n and tokens[i] == a and tokens[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(tokens[i])
            i += 1
    return out


class PairCounts:
    """The training state: the distinct pieces as token lists, and counts of neighbouring pairs.

    ``counts[pair]`` is how often ``pair`` occurs in the training text (each piece's pairs
    times the piece's frequency). A heap finds the most frequent pair fast; when a count
    changes a fresh entry is pushed and the old one is skipped when it surfaces ("lazy
    deletion").
    """

    def __init__(self, words: list[list[int]], freqs: list[int], token_bytes: list[bytes]) -> None:
        self.words = words  # distinct pieces, each a list of token ids
        self.freqs = freqs  # how often each piece occurs
        self.token_bytes = token_bytes  # id -> bytes; grows with each merge (for tie-breaks)
        self.counts: dict[Pair, int] = Counter()
        self.where: dict[Pair, set[int]] = {}  # pair -> indices of pieces that (may) hold it
        for w, (word, freq) in enumerate(zip(words, freqs)):
            for pair in zip(word, word[1:]):
                self.counts[pair] += freq
                self.where.setdefault(pair, set()).add(w)
        self.heap = [self._entry(p, c) for p, c in self.counts.items()]
        heapq.heapify(self.heap)

    def _entry(self, pair: Pair, count: int) -> tuple:
        # heapq pops the smallest entry: highest count first, then the pair whose byte strings
        # sort first, then the smaller ids (two tokens can spell the same bytes).
        a, b = pair
        return (-count, self.token_bytes[a], self.token_bytes[b], a, b)

    def best(self) -> tuple[Pair, int] | None:
        """The pair to merge next and its count, or None when no pair is left."""
        while self.heap:
            neg_count, _, _, a, b = self.heap[0]
            if self.counts.get((a, b)) == -neg_count:
                return (a, b), -neg_count
            heapq.heappop(self.heap)  # stale: that pair's count changed since it was pushed
        return None

    def top(self, k: int) -> list[tuple[Pair, int]]:
        """The ``k`` most frequent pairs in merge order (for teaching; sorts every pair)."""
        ranked = sorted(self.counts.items(), key=lambda pc: self._entry(*pc))
        return ranked[:k]

    def merge(self, pair: Pair, new_id: int) -> None:
        """Merge ``pair`` into ``new_id`` in every piece that holds it and update the counts."""
        a, b = pair
        self.token_bytes.append(self.token_bytes[a] + self.token_bytes[b])
        # Only pairs that touch a merge site can change: those are pairs holding ``a`` or
        # ``b`` before the merge, and pairs holding ``new_id`` after it. Every other pair is
        # the same in the old and the new piece, so we skip it (this is most of the speed).
        before = {a, b}
        after = {a, b, new_id}
        delta: Counter[Pair] = Counter()  # change of each pair's count
        for w in self.where.pop(pair, ()):
            old = self.words[w]
            new = merge_pair(old, pair, new_id)
            if len(new) == len(old):
                continue  # this piece no longer holds the pair (stale index entry)
            freq = self.freqs[w]
            for p in zip(old, old[1:]):
                if p[0] in before or p[1] in before:
                    delta[p] -= freq
            for p in zip(new, new[1:]):
                if p[0] in after or p[1] in after:
                    delta[p] += freq
                    if new_id in p:  # a pair that did not exist before: index where it is
                        self.where.setdefault(p, set()).add(w)
            self.words[w] = new
        for p, d in delta.items():
            if d == 0:
                continue
            c = self.counts[p] + d
            if c > 0:
                self.counts[p] = c
                heapq.heappush(self.heap, self._entry(p, c))
            else:
                del self.counts[p]
                self.where.pop(p, None)
        self.counts.pop(pair, None)


def _count_pieces(text: str) -> Counter[str]:
    """How often each pre-tokenized piece occurs; special-token strings are left out."""
    pieces: Counter[str] = Counter()
    for part, special_id in split_on_special_tokens(text):
        if special_id is None:
            pieces.update(pretokenize(part))
    return pieces


class BPETokenizer(Tokenizer):
    """Byte-level BPE. Make one with ``BPETokenizer.train(text, vocab_size)``.

    ``merges`` is the ordered list of learned pairs: merge ``k`` made token id ``263 + k``.
    """

    type_name = "bpe"

    def __init__(self, merges: Sequence[Sequence[int]] = ()) -> None:
        """Rebuild a tokenizer from its merges (``train`` is the usual way to get one)."""
        self.merges: list[Pair] = []
        self._token_bytes = [bytes([b]) for b in range(256)]  # index: id - BYTE_OFFSET
        for k, pair in enumerate(merges):
            new_id = FIRST_MERGE_ID + k
            if len(pair) != 2 or not all(
                isinstance(t, int) and BYTE_OFFSET <= t < new_id for t in pair
            ):
                raise ValueError(
                    f"merge {k} is {pair!r}: each merge must be a pair of ordinary token ids "
                    f"between {BYTE_OFFSET} and {new_id - 1} (ids made by earlier merges)"
                )
            a, b = int(pair[0]), int(pair[1])
            self.merges.append((a, b))
            self._token_bytes.append(self.token_bytes(a) + self.token_bytes(b))
        self._ranks = {pair: k for k, pair in enumerate(self.merges)}  # pair -> merge order
        # Two merges can spell the same bytes ("ab"+"c" and "a"+"bc"; the world's tokenizer
        # has no such pair). The lookup then gives the id learned first, on every load.
        self._bytes_to_id: dict[bytes, int] = {}
        for i, b in enumerate(self._token_bytes):
            self._bytes_to_id.setdefault(b, BYTE_OFFSET + i)
        self._cache: dict[str, list[int]] = {}  # piece -> ids: text repeats the same words

    # ----- training -----------------------------------------------------------------------

    @classmethod
    def train(cls, text: str, vocab_size: int, *, verbose: bool = False) -> "BPETokenizer":
        """Learn ``vocab_size - 263`` merges from ``text``.

        ``vocab_size`` is an upper bound: on a small text the pairs can run out first, and the
        tokenizer is then smaller (``verbose=True`` says so). Special-token strings in the
        text are not learned from.
        """
        if not isinstance(text, str):
            raise TypeError(f"train expects the training text as a str, got {type(text).__name__}")
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
            raise TypeError(f"vocab_size must be an int, got {type(vocab_size).__name__}")
        if vocab_size < MIN_VOCAB_SIZE:
            raise ValueError(
                f"vocab_size={vocab_size} is too small: a byte-level BPE needs at least "
                f"{MIN_VOCAB_SIZE} ids ({NUM_SPECIAL} special tokens + 256 bytes) before any "
                f"merge; use vocab_size >= {MIN_VOCAB_SIZE}"
            )
        check_no_surrogates(text, "The training text")
        piece_counts = _count_pieces(text)
        if not piece_counts:
            raise ValueError(
                "cannot train a BPE tokenizer on empty text (or text that is only special "
                "tokens): pass the training corpus"
            )

        # Work on the distinct pieces, each weighted by its frequency.
        words = [byte_ids(piece) for piece in piece_counts]
        freqs = list(piece_counts.values())
        token_bytes = [b""] * NUM_SPECIAL + [bytes([b]) for b in range(256)]
        stats = PairCounts(words, freqs, token_bytes)

        num_merges = vocab_size - MIN_VOCAB_SIZE
        merges: list[Pair] = []
        while len(merges) < num_merges:
            found = stats.best()
            if found is None:
                if verbose:
                    print(f"no pairs left after {len(merges)} merges: "
                          f"vocab_size is {MIN_VOCAB_SIZE + len(merges)}, not {vocab_size}")
                break
            pair, count = found
            new_id = FIRST_MERGE_ID + len(merges)
            stats.merge(pair, new_id)
            merges.append(pair)
            if verbose and (len(merges) % 100 == 0 or len(merges) <= 10):
                a, b = (show_bytes(token_bytes[t]) for t in pair)
                # Quoted by hand: repr() would double the backslash of a "\\xe7" escape.
                print(f"merge {len(merges)}/{num_merges}: '{a}' + '{b}' -> "
                      f"'{show_bytes(token_bytes[new_id])}' (count {count})")
        return cls(merges)

    @classmethod
    def from_world(cls, vocab_size: int = 2048) -> "BPETokenizer":
        """The tokenizer of the course's base models: BPE trained on the synthetic world's
        stories and instructions (train splits only). The world is small, so with 2,048 ids
        almost every word, name and Chinese character is one token; a made-up string such as
        "kzpo" still falls apart into letters. Deterministic: same ids on every machine."""
        from sftlearn.data.tokenizer_text import tokenizer_training_text  # the data package is larger

        return cls.train(tokenizer_training_text(), vocab_size)

    # ----- encoding -----------------------------------------------------------------------

    def _encode_piece(self, piece: str) -> list[int]:
        """Apply the merges to one piece, always the earliest-learned pair first."""
        tokens = byte_ids(piece)
        ranks = self._ranks
        while len(tokens) >= 2:
            # The neighbouring pair learned earliest; pairs never learned rank as infinity.
            pair = min(zip(tokens, tokens[1:]), key=lambda p: ranks.get(p, float("inf")))
            if pair not in ranks:
                break  # no learned pair left in this piece
            tokens = merge_pair(tokens, pair, FIRST_MERGE_ID + ranks[pair])
        return tokens

    def _encode_ordinary(self, text: str) -> list[int]:
        ids: list[int] = []
        cache = self._cache
        for piece in pretokenize(text):
            piece_ids = cache.get(piece)
            if piece_ids is None:
                piece_ids = self._encode_piece(piece)
                if len(cache) < 200_000:  # bound the memory a huge, varied text could use
                    cache[piece] = piece_ids
            ids.extend(piece_ids)
        return ids

    # ----- decoding and the vocabulary ----------------------------------------------------

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes an ordinary token stands for (special tokens have none)."""
        if not BYTE_OFFSET <= token_id < self.vocab_size:
            raise ValueError(
                f"token id {token_id} has no bytes: ordinary ids are {BYTE_OFFSET}.."
                f"{self.vocab_size - 1} (0..{NUM_SPECIAL - 1} are special tokens)"
            )
        return self._token_bytes[token_id - BYTE_OFFSET]

    def _decode_ordinary(self, ids: list[int]) -> str:
        data = b"".join(self._token_bytes[i - BYTE_OFFSET] for i in ids)
        return data.decode("utf-8", errors="replace")

    @property
    def _ordinary_vocab_size(self) -> int:
        return len(self._token_bytes)

    def _ordinary_token(self, token_id: int) -> str:
        return show_bytes(self._token_bytes[token_id - BYTE_OFFSET])

    def _ordinary_id(self, token: str | bytes) -> int | None:
        data = token.encode("utf-8") if isinstance(token, str) else token
        return self._bytes_to_id.get(data)

    # ----- save / load --------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        # "merges" is what load reads: "a b" means ids a and b became the next id.
        # "tokens" is only for people reading the file: each learned id and what it spells.
        return {
            "merges": [f"{a} {b}" for a, b in self.merges],
            "tokens": {str(FIRST_MERGE_ID + k): self._ordinary_token(FIRST_MERGE_ID + k)
                       for k in range(len(self.merges))},
        }

    @classmethod
    def _from_dict(cls, data: dict[str, Any]) -> "BPETokenizer":
        try:
            merges = [tuple(int(t) for t in m.split()) for m in data["merges"]]
        except (KeyError, AttributeError, ValueError):
            raise ValueError("the file's 'merges' must be a list of strings like \"104 101\"; "
                             "was it written by BPETokenizer.save?") from None
        return cls(merges)

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)})"


# ----- a step-by-step trace for teaching ----------------------------------------------------


def bpe_trace(text: str, num_merges: int, *, top_k: int = 5) -> list[dict[str, Any]]:
    """Run BPE training on a small ``text`` and record every step, for reading along.

    Returns one dict per merge with:
      ``step``        1, 2, ...
      ``top_pairs``   the ``top_k`` most frequent pairs *before* the merge, as
                      ``((left, right), count)`` with tokens shown as strings
      ``pair``        the chosen pair (strings), ``pair_ids`` the same as ids
      ``count``       how often it occurred
      ``new_token``   the string the new token spells, ``new_id`` its id
      ``tokens``      the whole text as token strings after the merge
    Stops early if no pair is left. Uses exactly the algorithm of ``BPETokenizer.train``:
    ``BPETokenizer.train(text, 263 + n).merges`` equals the ``pair_ids`` of the trace.
    """
    if not isinstance(text, str) or not text:
        raise ValueError("bpe_trace needs a non-empty text to trace, e.g. 'aaabdaaabac'")
    check_int("num_merges", num_merges, minimum=0)
    # Each distinct piece once, and the order the pieces appear in, to show the whole text.
    sequence = [part for part, special in split_on_special_tokens(text) if special is None]
    sequence = [piece for part in sequence for piece in pretokenize(part)]
    index: dict[str, int] = {}
    for piece in sequence:
        index.setdefault(piece, len(index))
    counts = Counter(sequence)
    token_bytes = [b""] * NUM_SPECIAL + [bytes([b]) for b in range(256)]
    stats = PairCounts([byte_ids(p) for p in index], [counts[p] for p in index], token_bytes)
    show: Callable[[int], str] = lambda t: show_bytes(token_bytes[t])  # noqa: E731

    steps: list[dict[str, Any]] = []
    for step in range(1, num_merges + 1):
        found = stats.best()
        if found is None:
            break
        pair, count = found
        top = [((show(a), show(b)), c) for (a, b), c in stats.top(top_k)]
        new_id = FIRST_MERGE_ID + step - 1
        stats.merge(pair, new_id)
        tokens = [show(t) for piece in sequence for t in stats.words[index[piece]]]
        steps.append({
            "step": step, "top_pairs": top, "pair": (show(pair[0]), show(pair[1])),
            "pair_ids": pair, "count": count, "new_token": show(new_id), "new_id": new_id,
            "tokens": tokens,
        })
    return steps


def format_bpe_trace(steps: list[dict[str, Any]]) -> str:
    """A readable table of a ``bpe_trace``: one line per merge."""
    lines = []
    for s in steps:
        a, b = s["pair"]
        lines.append(f"step {s['step']}: {a!r} + {b!r} -> {s['new_token']!r} "
                     f"(count {s['count']}, id {s['new_id']})")
        tokens = " ".join(repr(t) for t in s["tokens"])
        lines.append(f"        tokens ({len(s['tokens'])}): {tokens}")
    return "\n".join(lines)
