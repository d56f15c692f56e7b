"""Checks for chapter 01, tokens.

- ``check_encode_chars(fn)``: a character tokenizer that maps unknown characters to <|unk|>;
- ``check_count_pairs(fn)``: counts of neighbouring token pairs, the first step of BPE;
- ``check_merge(fn)``: replacing every occurrence of a pair by one merged token;
- ``check_train_bpe(fn)``: the BPE training loop (the "spot the mistake" exercise: a common
  mistake counts pairs across word boundaries);
- ``check_encode(fn)``: encoding new text by replaying the merges in the order learned;
- ``check_prompt_ids(fn)``: the token ids of a chat prompt, special tokens included.

Tokens are Python strings here (one character each to begin with; a merge joins two strings),
so every answer can be printed and read. The reference versions below are what the checks
compare with; ``tests/test_check_ch01.py`` confirms they agree with ``sftlearn.tokenizer``.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from sftlearn.check._core import CheckFailure, call_student, checker, is_collection, python_number, short_repr
from sftlearn.tokenizer import SPECIAL_IDS, pretokenize

UNK_ID = SPECIAL_IDS["<|unk|>"]  # 3 in every tokenizer of the course
BOS_ID, EOS_ID = SPECIAL_IDS["<|bos|>"], SPECIAL_IDS["<|eos|>"]
USER_ID, ASSISTANT_ID, END_ID = (SPECIAL_IDS[t] for t in ("<|user|>", "<|assistant|>", "<|end|>"))

Pair = tuple[str, str]


# ------------------------------------------------------------------- reference versions


def reference_encode_chars(text: str, stoi: Mapping[str, int]) -> list[int]:
    return [stoi.get(c, UNK_ID) for c in text]


def reference_count_pairs(tokens: list[str]) -> Counter[Pair]:
    return Counter(zip(tokens, tokens[1:]))


def reference_merge(tokens: list[str], pair: Pair) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(tokens):
        if i + 1 < len(tokens) and (tokens[i], tokens[i + 1]) == pair:
            out.append(pair[0] + pair[1])
            i += 2
        else:
            out.append(tokens[i])
            i += 1
    return out


def best_pair(counts: Mapping[Pair, int]) -> Pair:
    """The most frequent pair; among equally frequent pairs, the one that sorts first."""
    return min(counts, key=lambda pair: (-counts[pair], pair))


def _train_words(word_counts: Mapping[str, int], num_merges: int,
                 pick: Callable[[Counter[Pair]], Pair] = best_pair) -> list[Pair]:
    """BPE on the given words, each weighted by its count; ``pick`` chooses each merge."""
    splits = {word: list(word) for word in word_counts}
    merges: list[Pair] = []
    for _ in range(num_merges):
        counts: Counter[Pair] = Counter()
        for word, freq in word_counts.items():
            for pair in zip(splits[word], splits[word][1:]):
                counts[pair] += freq
        if not counts:
            break
        pair = pick(counts)
        merges.append(pair)
        splits = {word: reference_merge(tokens, pair) for word, tokens in splits.items()}
    return merges


def reference_train_bpe(text: str, num_merges: int) -> list[Pair]:
    """BPE on characters: pairs are counted inside each pre-tokenized word, weighted by
    how often the word occurs."""
    return _train_words(Counter(pretokenize(text)), num_merges)


def reference_encode(text: str, merges: list[Pair]) -> list[str]:
    tokens: list[str] = []
    for piece in pretokenize(text):
        piece_tokens = list(piece)
        for pair in merges:
            piece_tokens = reference_merge(piece_tokens, pair)
        tokens.extend(piece_tokens)
    return tokens


# ----------------------------------------------------------------- the typical mistakes


def _train_across_words(text: str, num_merges: int) -> list[Pair]:
    """The common mistake: the whole text as one sequence, so pairs span word boundaries."""
    tokens = list(text)
    merges: list[Pair] = []
    for _ in range(num_merges):
        counts = reference_count_pairs(tokens)
        if not counts:
            break
        pair = best_pair(counts)
        merges.append(pair)
        tokens = reference_merge(tokens, pair)
    return merges


def _train_split_on_spaces(text: str, num_merges: int) -> list[Pair]:
    """Words cut with ``str.split()``: the spaces are lost, so ' the' can never be learned."""
    return _train_words(Counter(text.split()), num_merges)


def _train_unweighted(text: str, num_merges: int) -> list[Pair]:
    """Each distinct word counted once, however often it occurs."""
    return _train_words(dict.fromkeys(pretokenize(text), 1), num_merges)


def _train_most_common(text: str, num_merges: int) -> list[Pair]:
    """Ties broken by ``Counter.most_common`` (first seen) instead of by ``best_pair``."""
    return _train_words(Counter(pretokenize(text)), num_merges, pick=lambda c: c.most_common(1)[0][0])


# --------------------------------------------------------------------------- encode_chars

CHAR_VOCAB = {c: 7 + i for i, c in enumerate("abcdehlnost ")}
CHAR_CASES = ["the cat", "", "hello 猫", "dog!!", "ants"]


@checker("encode_chars")
def check_encode_chars(encode_chars: Any) -> str:
    """``encode_chars(text, stoi)``: one id per character, ``UNK_ID`` for unknown ones."""
    for text in CHAR_CASES:
        expected = reference_encode_chars(text, CHAR_VOCAB)
        unknown = sorted({c for c in text if c not in CHAR_VOCAB})
        try:
            got = call_student(encode_chars, text, dict(CHAR_VOCAB))
        except CheckFailure as failure:
            if "raised KeyError" in failure.message:
                raise CheckFailure(
                    f"encode_chars({text!r}, stoi) raised KeyError for the unknown character "
                    f"{unknown[0]!r} instead of encoding it as <|unk|> (id {UNK_ID}).",
                    hint="`stoi.get(c, UNK_ID)` looks a character up with a default.",
                ) from None
            raise
        _check_char_ids(text, got, expected, unknown)
    return (f"correct on {len(CHAR_CASES)} texts, including empty text and characters "
            "outside the vocabulary.")


def _check_char_ids(text: str, got: Any, expected: list[int], unknown: list[str]) -> None:
    name = f"encode_chars({text!r}, stoi)"
    if got is None:
        raise CheckFailure(f"{name} returned None.", hint="Did you forget to `return` the list?")
    if not is_collection(got):
        raise CheckFailure(f"{name} should return a list of ints, but returned {short_repr(got)}.")
    got = [python_number(g) for g in got]  # a tensor's or array's elements as plain ints
    if got == expected:
        return
    if got == [i for i, c in zip(expected, text) if c in CHAR_VOCAB]:
        raise CheckFailure(
            f"{name} returned {got}: it drops the unknown character {unknown[0]!r}. Every character "
            f"must get an id, so that the text keeps its length; unknown ones get <|unk|> (id {UNK_ID}).",
            hint="Use the unknown id instead of skipping the character.",
        )
    if len(got) == len(expected):
        wrong = [g for g, e, c in zip(got, expected, text) if g != e and c not in CHAR_VOCAB]
        if wrong and all(g == wrong[0] for g in wrong) and len(wrong) == sum(
            g != e for g, e in zip(got, expected)
        ):
            if wrong[0] == 0:
                what = "0, which is <|pad|>, the padding token"
            elif wrong[0] is None or not isinstance(wrong[0], int):
                what = repr(wrong[0]) + ", which is not a token id"
            else:
                what = f"{wrong[0]}"
            raise CheckFailure(
                f"{name} gives the unknown character {unknown[0]!r} the id {what}; "
                f"it should be UNK_ID = {UNK_ID} (<|unk|>).",
            )
    if any(isinstance(g, bool) or not isinstance(g, int) for g in got):
        bad = next(g for g in got if isinstance(g, bool) or not isinstance(g, int))
        raise CheckFailure(f"{name} should hold ints (token ids), but it holds {short_repr(bad)}.")
    raise CheckFailure(f"{name} returned {got}, but should return {expected}.")


# ---------------------------------------------------------------------------- count_pairs

PAIR_CASES = [
    list("banana"),
    list("aaaa"),
    ["th", "e", " ", "th", "e"],
    ["a"],
    [],
    list("小猫小猫"),
]


@checker("count_pairs")
def check_count_pairs(count_pairs: Any) -> str:
    """``count_pairs(tokens)`` must count every pair of neighbouring tokens."""
    for tokens in PAIR_CASES:
        got = call_student(count_pairs, list(tokens))
        expected = reference_count_pairs(tokens)
        name = f"count_pairs({tokens!r})"
        if got is None:
            raise CheckFailure(f"{name} returned None.", hint="Did you forget to `return` the counts?")
        if not isinstance(got, Mapping):
            raise CheckFailure(
                f"{name} should return a dict (or Counter) from pairs to counts, "
                f"but returned {short_repr(got)}.",
                hint="`collections.Counter` counts for you: `Counter(iterable_of_pairs)`.",
            )
        got = {k: v for k, v in got.items() if v != 0}
        if got == dict(expected):
            continue
        _diagnose_pairs(name, tokens, got, expected)
    return (f"correct on {len(PAIR_CASES)} sequences, including overlapping pairs, "
            "a single token and an empty list.")


def _diagnose_pairs(name: str, tokens: list[str], got: dict, expected: Counter) -> None:
    bad_keys = [k for k in got if not (isinstance(k, tuple) and len(k) == 2)]
    if bad_keys:
        raise CheckFailure(
            f"{name} has the key {bad_keys[0]!r}; each key should be a pair (left, right), a tuple "
            "of two tokens.",
            hint="`zip(tokens, tokens[1:])` gives the neighbouring pairs as tuples.",
        )
    if got == dict(Counter(zip(tokens, tokens[1:-1]))) or got == dict(Counter(zip(tokens[:-2], tokens[1:-1]))):
        raise CheckFailure(f"{name} misses the last pair of the sequence.",
                           hint="A sequence of n tokens has n - 1 neighbouring pairs.")
    if got == dict(Counter(zip(tokens[::2], tokens[1::2]))):
        raise CheckFailure(
            f"{name} counts only pairs starting at even positions: {got}. Pairs overlap: in "
            "'banana' the pairs are ba, an, na, an, na.",
            hint="Move one token at a time, not two.",
        )
    if set(got) == set(expected):
        pair = next(p for p in expected if got[p] != expected[p])
        raise CheckFailure(f"{name} counts {pair!r} {got[pair]} times, but it occurs {expected[pair]} times.")
    missing = [p for p in expected if p not in got]
    extra = [p for p in got if p not in expected]
    if missing:
        raise CheckFailure(f"{name} is missing the pair {missing[0]!r} (it occurs {expected[missing[0]]} times).")
    raise CheckFailure(f"{name} contains {extra[0]!r}, which is not a pair of neighbouring tokens.")


# ---------------------------------------------------------------------------------- merge

MERGE_CASES: list[tuple[list[str], Pair]] = [
    (list("banana"), ("a", "n")),
    (list("aaa"), ("a", "a")),
    (list("aaaa"), ("a", "a")),
    (["th", "e", " ", "c", "a", "t"], ("th", "e")),
    (list("cat"), ("a", "b")),
    (list("abab"), ("a", "b")),
    ([], ("a", "b")),
    (["a"], ("a", "a")),
]


@checker("merge")
def check_merge(merge: Any) -> str:
    """``merge(tokens, pair)``: every non-overlapping occurrence, left to right, becomes one token."""
    for tokens, pair in MERGE_CASES:
        got = call_student(merge, list(tokens), pair, inputs_unchanged=True)
        expected = reference_merge(tokens, pair)
        name = f"merge({tokens!r}, {pair!r})"
        if got is None:
            raise CheckFailure(f"{name} returned None.",
                               hint="Build a new list and `return` it (changing the input list is not enough).")
        if isinstance(got, str) or not isinstance(got, (list, tuple)):
            raise CheckFailure(f"{name} should return a list of tokens, but returned {short_repr(got)}.")
        got = list(got)
        if got == expected:
            continue
        _diagnose_merge(name, tokens, pair, got, expected)
    return (f"correct on {len(MERGE_CASES)} cases, including overlapping pairs ('aaa'), "
            "a pair that does not occur and an empty list.")


def _diagnose_merge(name: str, tokens: list[str], pair: Pair, got: list, expected: list[str]) -> None:
    joined = pair[0] + pair[1]
    if len(tokens) >= 1 and got == expected[:-1] and expected and expected[-1] == tokens[-1]:
        raise CheckFailure(f"{name} returned {got}: the last token is lost.",
                           hint="When the loop stops before the last token, append the last token too.")
    if any(isinstance(t, tuple) for t in got):
        raise CheckFailure(f"{name} returned {got}: a merged token should be one string, "
                           f"{joined!r}, not a tuple.", hint="Join the two strings: `a + b`.")
    if tokens == list("aaa") and got == [joined, joined]:
        raise CheckFailure(f"{name} returned {got}: the middle 'a' was used twice. Once a pair "
                           "is merged, its second token cannot start another pair.",
                           hint="After merging at position i, continue at i + 2.")
    if got == tokens and expected != tokens:
        raise CheckFailure(f"{name} returned the tokens unchanged, but {pair!r} occurs in them.")
    if len(got) > len(expected) and got.count(joined) < expected.count(joined):
        raise CheckFailure(f"{name} returned {got}: not every occurrence of {pair!r} was merged.",
                           hint="Keep scanning to the end of the list after the first merge.")
    raise CheckFailure(f"{name} returned {got}, but should return {expected}.")


# ------------------------------------------------------------------------------ train_bpe

TRAIN_CASES: list[tuple[str, int]] = [
    ("the cat ate the hat", 4),
    ("low lower lowest low low", 6),
    ("a banana and a bandana", 5),
    ("hop hop hop top stop", 5),
    ("ab ab ab", 10),  # the pairs run out after two merges ("ab", then " ab")
    ("x", 3),
]


@checker("train_bpe")
def check_train_bpe(train_bpe: Any) -> str:
    """``train_bpe(text, num_merges)`` must return the merges BPE learns, in order."""
    for text, num_merges in TRAIN_CASES:
        expected = reference_train_bpe(text, num_merges)
        name = f"train_bpe({text!r}, {num_merges})"
        try:
            got = call_student(train_bpe, text, num_merges)
        except CheckFailure as failure:
            if len(expected) < num_merges and "raised" in failure.message:
                # Typically max()/min() of empty counts: the loop ran past the last pair.
                raise CheckFailure(
                    f"{failure.message[:-1]}. After {len(expected)} merges every word of this "
                    "text is a single token, so no pair is left to choose from.",
                    hint="Stop the loop (`break`) when the pair counts are empty.",
                ) from None
            raise
        if got is None:
            raise CheckFailure(f"{name} returned None.", hint="Did you forget to `return merges`?")
        if isinstance(got, str) or not isinstance(got, (list, tuple)):
            raise CheckFailure(f"{name} should return a list of pairs, but returned {short_repr(got)}.")
        got = [tuple(p) if isinstance(p, list) else p for p in got]
        if got == expected:
            continue
        _diagnose_train(name, text, num_merges, got, expected)
    return (f"correct on {len(TRAIN_CASES)} texts, including one whose pairs run out "
            "before num_merges.")


def _diagnose_train(name: str, text: str, num_merges: int, got: list, expected: list[Pair]) -> None:
    if got == _train_across_words(text, num_merges):
        crossing = next(((a, b) for a, b in got if _crosses_words(a + b)), None)
        example = f" such as {crossing!r}" if crossing else ""
        raise CheckFailure(
            f"{name} returned {got}: these merges come from counting pairs across word "
            f"boundaries{example}, treating the whole text as one sequence.",
            hint="Pre-tokenize first and count pairs inside each word, weighted by how often the word occurs.",
        )
    if got == _train_split_on_spaces(text, num_merges):
        raise CheckFailure(
            f"{name} returned {got}: the words were split on spaces and the spaces thrown away, "
            "so no merge can learn a word together with the space before it (such as ' the').",
            hint="Cut the text with `pretokenize(text)`, which keeps each space at the start of "
            "the word that follows it.",
        )
    if got == _train_unweighted(text, num_merges):
        raise CheckFailure(
            f"{name} returned {got}: each distinct word was counted once. A word that occurs "
            "three times contributes its pairs three times.",
            hint="Multiply each word's pair counts by the word's frequency.",
        )
    if got == _train_most_common(text, num_merges):
        raise CheckFailure(
            f"{name} returned {got}: equally frequent pairs were chosen in the order they were "
            "first seen. Ties must be broken the same way every time.",
            hint="Choose the pair with `best_pair(counts)`.",
        )
    def is_pair(p: Any) -> bool:
        return isinstance(p, tuple) and len(p) == 2 and all(isinstance(t, str) for t in p)

    if not all(is_pair(p) for p in got):
        bad = next(p for p in got if not is_pair(p))
        raise CheckFailure(f"{name} should return a list of pairs of strings, but it contains {short_repr(bad)}.")
    if len(got) > len(expected) and len(expected) < num_merges and got[:len(expected)] == expected:
        # right up to the last possible merge, then more (often the last one again): the loop
        # did not stop when the pairs ran out
        raise CheckFailure(
            f"{name} returned {len(got)} merges; the first {len(expected)} are right, but after them "
            "every word is a single token and no pair is left, so training should stop there.",
            hint="Stop the loop (`break`) when the pair counts are empty.",
        )
    if len(set(got)) < len(got):
        repeated = next(p for p in got if got.count(p) > 1)
        raise CheckFailure(
            f"{name} returned {got}: {repeated!r} is chosen more than once, so the merges are "
            "never applied to the words.",
            hint="After choosing a pair, merge it in every word before counting again.",
        )
    crossing = next(((a, b) for a, b in got if _crosses_words(a + b)), None)
    if crossing is not None:
        raise CheckFailure(
            f"{name} returned {got}: the merge {crossing!r} joins the end of one word to the next, "
            "so pairs are being counted across word boundaries.",
            hint="Count pairs inside each pre-tokenized word only.",
        )
    if len(got) != len(expected):
        if len(expected) < num_merges and len(got) > len(expected):
            raise CheckFailure(
                f"{name} returned {len(got)} merges; after {len(expected)} every word is a single token "
                "and no pair is left, so training should stop there.",
                hint="Stop when there are no pairs to count.",
            )
        raise CheckFailure(f"{name} returned {len(got)} merges, but should return {len(expected)}.")
    k = next(i for i, (g, e) in enumerate(zip(got, expected)) if g != e)
    raise CheckFailure(f"{name}: merge {k + 1} is {got[k]!r}, but should be {expected[k]!r} "
                       f"(the merges before it are right).")


def _crosses_words(token: str) -> bool:
    """A token that a correct BPE can never learn: whitespace after a non-space character,
    e.g. "t " or "e c" (a correct token may only *start* with a space)."""
    stripped = token.lstrip(" ")
    return any(c.isspace() for c in stripped) and not stripped.isspace()


# --------------------------------------------------------------------------------- encode

ENCODE_TRAINING_TEXT = "the cat sat on the mat. the cats ran to the hat. that cat!"
ENCODE_MERGES = reference_train_bpe(ENCODE_TRAINING_TEXT, 12)
ENCODE_CASES = ["the cat", "that hat sat", "", "chats", "the rat, the bat", "猫 cat 12"]
# Hand-made merges where two other algorithms part from BPE: "abc" -> ["ab", "c"], though
# "abc" is a learned token (matching the longest known token instead of merging in order
# gives ["abc"]); and "x  cab" keeps its pieces apart (merging across the pre-tokenizer's
# pieces gives "  " instead of " " + " c").
HAND_MERGES: list[Pair] = [("a", "b"), ("b", "c"), ("a", "bc"), (" ", " "), (" ", "c")]
HAND_CASES = ["abc", "x  cab"]


def _merged_without_pretokenizing(text: str, merges: list[Pair]) -> list[str]:
    tokens = list(text)
    for pair in merges:
        tokens = reference_merge(tokens, pair)
    return tokens


def _longest_match(text: str, merges: list[Pair]) -> list[str]:
    """WordPiece-style: at each position the longest token the merges can make."""
    vocab = {a + b for a, b in merges} | set(text)
    tokens, i = [], 0
    while i < len(text):
        j = max(k for k in range(i + 1, len(text) + 1) if text[i:k] in vocab)
        tokens.append(text[i:j])
        i = j
    return tokens


@checker("encode")
def check_encode(encode: Any) -> str:
    """``encode(text, merges)``: pre-tokenize, then apply every merge, in the order learned."""
    cases = [(t, ENCODE_MERGES) for t in ENCODE_CASES] + [(t, HAND_MERGES) for t in HAND_CASES]
    for text, merges in cases:
        got = call_student(encode, text, list(merges))
        expected = reference_encode(text, merges)
        name = f"encode({text!r}, merges)" + ("" if merges is ENCODE_MERGES else f" with merges {merges}")
        if got is None:
            raise CheckFailure(f"{name} returned None.", hint="Did you forget to `return` the tokens?")
        if isinstance(got, str) or not isinstance(got, (list, tuple)):
            raise CheckFailure(f"{name} should return a list of token strings, but returned {short_repr(got)}.")
        got = list(got)
        if got == expected:
            continue
        if not all(isinstance(t, str) for t in got):
            bad = next(t for t in got if not isinstance(t, str))
            raise CheckFailure(f"{name} should return token strings such as 'the', but it contains "
                               f"{short_repr(bad)}.",
                               hint="Keep the tokens as strings; ids come later, from a vocabulary.")
        if "".join(got) != text:
            raise CheckFailure(f"{name} returned {got}, which does not spell the text again: "
                               "joining the tokens must give back the text exactly.")
        if got == _merged_without_pretokenizing(text, merges):
            raise CheckFailure(f"{name} returned {got}, but should return {expected}: merges were "
                               "applied across the pieces of the pre-tokenizer.",
                               hint="Split the text with `pretokenize(text)` first and merge inside each piece.")
        if got == _longest_match(text, merges):
            raise CheckFailure(f"{name} returned {got}, but should return {expected}: it takes the "
                               "longest known token at each position (as WordPiece does), but BPE "
                               "replays the merges in the order they were learned.",
                               hint="For each piece: start from its characters and apply every merge, first to last.")
        if got in (reference_encode(text, merges[::-1]), reference_encode(text, sorted(merges))):
            raise CheckFailure(f"{name} returned {got}, but should return {expected}: the merges "
                               "were applied in a different order from the one they were learned in.",
                               hint="Loop over `merges` as it is, first to last: its order is part of the tokenizer.")
        if got == list(text):
            raise CheckFailure(f"{name} returned single characters: no merge was applied.")
        raise CheckFailure(f"{name} returned {got}, but should return {expected}.")
    return (f"correct on {len(cases)} texts, including unseen words, empty text, digits, a "
            "Chinese character and merges where the longest token is not the answer.")


# ----------------------------------------------------------------------------- prompt_ids

PROMPT_TEXTS = ["Who has a cat?", "", "Say 猫 in English.", "Write Lucy in reverse.\nThen stop."]


@functools.cache
def _prompt_tokenizers() -> tuple[Any, ...]:
    """A character tokenizer for the world and a small BPE (built once, on first use)."""
    from sftlearn.tokenizer import BPETokenizer, CharTokenizer

    bpe = BPETokenizer.train("Who has a cat? The cat has a hat. Write it in reverse. " * 3, 263 + 30)
    return CharTokenizer.from_world(), bpe


def reference_prompt_ids(tokenizer: Any, user_text: str) -> list[int]:
    """``<|bos|><|user|>{user_text}<|end|><|assistant|>`` as ids (what the model is given)."""
    return [BOS_ID, USER_ID, *tokenizer.encode(user_text), END_ID, ASSISTANT_ID]


def _prompt_mistakes(content: list[int]) -> dict[str, tuple[list[int], str]]:
    """What the usual slips produce, each with the sentence that explains it and a hint."""
    return {
        "it does not start with <|bos|> (id 1), which marks the beginning of every sequence": (
            [USER_ID, *content, END_ID, ASSISTANT_ID], "Put `tokenizer.bos_id` first."),
        "it ends with <|eos|> (id 2), which tells the model the conversation is already over, "
        "so there is nothing left for it to write": (
            [BOS_ID, USER_ID, *content, END_ID, ASSISTANT_ID, EOS_ID],
            "A prompt stops right after <|assistant|>; the model writes from there."),
        "the user's turn is not closed with <|end|> (id 6), so the model cannot tell where the "
        "question stops": (
            [BOS_ID, USER_ID, *content, ASSISTANT_ID], "Every turn ends with `tokenizer.end_id`."),
        "it lacks the final <|assistant|> (id 5) that tells the model it is its turn to answer": (
            [BOS_ID, USER_ID, *content, END_ID], "End with `tokenizer.assistant_id`."),
        "it closes the assistant's turn with <|end|> before the assistant has said anything": (
            [BOS_ID, USER_ID, *content, END_ID, ASSISTANT_ID, END_ID],
            "The prompt ends with <|assistant|>: the answer and its <|end|> are the model's to write."),
        "<|user|> and <|assistant|> are swapped: the text is presented as the assistant's words": (
            [BOS_ID, ASSISTANT_ID, *content, END_ID, USER_ID],
            "The user's text follows <|user|> (id 4); <|assistant|> (id 5) comes last."),
        "it uses <|eos|> (id 2) to close the user's turn, but <|eos|> ends the whole sequence; "
        "a turn ends with <|end|> (id 6)": (
            [BOS_ID, USER_ID, *content, EOS_ID, ASSISTANT_ID], "Use `tokenizer.end_id`."),
    }


@checker("prompt_ids")
def check_prompt_ids(prompt_ids: Any) -> str:
    """``prompt_ids(tokenizer, user_text)``: the chat template up to and including <|assistant|>."""
    tokenizers = _prompt_tokenizers()
    for tokenizer in tokenizers:
        kind = type(tokenizer).__name__
        for text in PROMPT_TEXTS:
            got = call_student(prompt_ids, tokenizer, text)
            content = tokenizer.encode(text)
            expected = reference_prompt_ids(tokenizer, text)
            name = f"prompt_ids({kind}, {text!r})"
            if got is None:
                raise CheckFailure(f"{name} returned None.", hint="Did you forget to `return` the ids?")
            if hasattr(got, "tolist") and not isinstance(got, (str, bytes)):
                got = got.tolist()
            if isinstance(got, (str, bytes)) or not isinstance(got, (list, tuple)):
                raise CheckFailure(f"{name} should return a list of token ids (ints), "
                                   f"but returned {short_repr(got)}.",
                                   hint="`tokenizer.encode(text)` turns text into ids.")
            got = list(got)
            if got == expected:
                continue
            if any(isinstance(i, bool) or not isinstance(i, int) for i in got):
                bad = next(i for i in got if isinstance(i, bool) or not isinstance(i, int))
                raise CheckFailure(f"{name} should hold ints (token ids), but it holds {short_repr(bad)}.",
                                   hint="`tokenizer.encode` gives ids; `tokenizer.bos_id` etc. are ints.")
            for description, (wrong, hint) in _prompt_mistakes(content).items():
                if got == wrong:
                    raise CheckFailure(f"{name} returned {got}: {description}.", hint=hint)
            raise CheckFailure(
                f"{name} returned {got}, which decodes to {_decode(tokenizer, got)!r}; it should "
                f"return {expected}, which decodes to {tokenizer.decode(expected)!r}.")
    return (f"correct for a character tokenizer and a BPE tokenizer on {len(PROMPT_TEXTS)} "
            "texts each, including empty text and Chinese.")


def _decode(tokenizer: Any, ids: list[int]) -> str:
    """Decode for a message, or say the ids are out of range."""
    try:
        return tokenizer.decode(ids)
    except ValueError:
        return f"(ids outside 0..{tokenizer.vocab_size - 1})"
