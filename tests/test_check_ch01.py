"""Tests of the chapter 01 checks (sftlearn.check.ch01): right answers, typical wrong ones,
unfinished stubs; and that the checks' reference BPE agrees with sftlearn.tokenizer."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from sftlearn.check import ch01
from sftlearn.datasets import render_conversation
from sftlearn.tokenizer import BPETokenizer, pretokenize
from conftest import failure_of, stub


# ------------------------------------------------------------- the reference is the package's


def merges_as_strings(tokenizer: BPETokenizer) -> list[tuple[str, str]]:
    return [(tokenizer.token_bytes(a).decode(), tokenizer.token_bytes(b).decode()) for a, b in tokenizer.merges]


@pytest.mark.parametrize(
    "text",
    [
        "the cat ate the hat",
        "low lower lowest low low, newer newest 12 34!",
        "a banana and a bandana. Anna has 3 bananas?\n\nBob has none.",
    ],
)
def test_reference_training_matches_the_package_on_ascii_text(text):
    n = 15
    package = BPETokenizer.train(text, 263 + n)
    assert ch01.reference_train_bpe(text, n) == merges_as_strings(package)


def test_reference_encoding_matches_the_package():
    text = "the cat sat on the mat, the cats ran to the hat; that cat sat."
    package = BPETokenizer.train(text, 263 + 20)
    merges = merges_as_strings(package)
    for new in ["the rat sat on a hat", "chats that scatter", "", "mat 42"]:
        assert ch01.reference_encode(new, merges) == package.tokenize(new)


def test_best_pair_breaks_ties_by_sorting():
    assert ch01.best_pair(Counter({("b", "a"): 2, ("a", "b"): 2, ("z", "z"): 1})) == ("a", "b")


# ------------------------------------------------------------------------------ encode_chars


def right_encode_chars(text, stoi):
    return [stoi.get(c, ch01.UNK_ID) for c in text]


def test_encode_chars_right(capsys):
    ch01.check_encode_chars(right_encode_chars)
    assert capsys.readouterr().out.startswith("✓ encode_chars: correct on 5 texts")


def test_encode_chars_stub(capsys):
    ch01.check_encode_chars(stub)
    assert "encode_chars: not done yet" in capsys.readouterr().out


def test_encode_chars_returning_one_number_is_a_failure_not_a_crash():
    # a 0-d tensor has __len__ but no length: it used to crash the check with a TypeError
    failure = failure_of(ch01.check_encode_chars, lambda text, stoi: torch.tensor(0))
    assert failure.message == "encode_chars('the cat', stoi) should return a list of ints, but returned tensor(0)."


def test_encode_chars_key_error_is_explained():
    failure = failure_of(ch01.check_encode_chars, lambda text, stoi: [stoi[c] for c in text])
    assert failure.message == (
        "encode_chars('hello 猫', stoi) raised KeyError for the unknown character '猫' instead of "
        "encoding it as <|unk|> (id 3)."
    )
    assert "stoi.get(c, UNK_ID)" in failure.hint


def test_encode_chars_dropping_unknown_characters():
    failure = failure_of(ch01.check_encode_chars, lambda text, stoi: [stoi[c] for c in text if c in stoi])
    assert "it drops the unknown character '猫'" in failure.message


@pytest.mark.parametrize(
    ("default", "words"),
    [(0, "the id 0, which is <|pad|>"), (-1, "the id -1; it should be UNK_ID = 3"),
     (None, "the id None, which is not a token id")],
)
def test_encode_chars_wrong_unknown_id(default, words):
    failure = failure_of(ch01.check_encode_chars, lambda text, stoi: [stoi.get(c, default) for c in text])
    assert words in failure.message


def test_encode_chars_other_wrong_answers():
    assert "returned None" in failure_of(ch01.check_encode_chars, lambda t, s: None).message
    assert "should return a list of ints" in failure_of(ch01.check_encode_chars, lambda t, s: t).message
    assert "but should return [17, 12, 11, 18, 9, 7, 17]" in failure_of(
        ch01.check_encode_chars, lambda t, s: sorted(right_encode_chars(t, s))
    ).message


@pytest.mark.parametrize("as_array", [torch.tensor, np.array])
def test_encode_chars_as_a_tensor_or_array_is_read_as_its_ids(as_array, capsys):
    ch01.check_encode_chars(lambda t, s: as_array(right_encode_chars(t, s)))
    assert "✓ encode_chars" in capsys.readouterr().out
    # a wrong answer gets the same message as the list would, not "it holds tensor(17)"
    failure = failure_of(ch01.check_encode_chars, lambda t, s: as_array(sorted(right_encode_chars(t, s))))
    assert failure.message == ("encode_chars('the cat', stoi) returned [7, 9, 11, 12, 17, 17, 18], but "
                               "should return [17, 12, 11, 18, 9, 7, 17].")


# ------------------------------------------------------------------------------- count_pairs


def test_count_pairs_right(capsys):
    ch01.check_count_pairs(lambda tokens: Counter(zip(tokens, tokens[1:])))
    ch01.check_count_pairs(lambda tokens: dict(Counter(zip(tokens, tokens[1:]))))
    out = capsys.readouterr().out
    assert out.count("✓ count_pairs: correct on 6 sequences") == 2


def test_count_pairs_stub(capsys):
    ch01.check_count_pairs(stub)
    assert "count_pairs: not done yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda t: Counter(zip(t, t[1:-1])), "misses the last pair"),
        (lambda t: Counter(zip(t[::2], t[1::2])), "counts only pairs starting at even positions"),
        (lambda t: Counter(a + b for a, b in zip(t, t[1:])), "each key should be a pair"),
        (lambda t: list(zip(t, t[1:])), "should return a dict (or Counter)"),
        (lambda t: None, "returned None"),
        (lambda t: {p: 1 for p in zip(t, t[1:])}, "counts ('a', 'n') 1 times, but it occurs 2 times"),
        (lambda t: Counter(zip(t, t[2:])), "is missing the pair ('b', 'a')"),
    ],
)
def test_count_pairs_wrong_answers(answer, words):
    assert words in failure_of(ch01.check_count_pairs, answer).message


# ------------------------------------------------------------------------------------- merge


def test_merge_right(capsys):
    ch01.check_merge(ch01.reference_merge)
    assert capsys.readouterr().out.startswith("✓ merge: correct on 8 cases")


def test_merge_stub(capsys):
    ch01.check_merge(stub)
    assert "merge: not done yet" in capsys.readouterr().out


def merge_reusing_tokens(tokens, pair):
    """Looks at every position, so 'aaa' becomes ['aa', 'aa']."""
    out = []
    for i in range(len(tokens) - 1):
        if (tokens[i], tokens[i + 1]) == pair:
            out.append(tokens[i] + tokens[i + 1])
        elif i == 0 or (tokens[i - 1], tokens[i]) != pair:
            out.append(tokens[i])
    if tokens and not (len(tokens) >= 2 and (tokens[-2], tokens[-1]) == pair):
        out.append(tokens[-1])
    return out


def merge_dropping_last(tokens, pair):
    out, i = [], 0
    while i < len(tokens) - 1:
        if (tokens[i], tokens[i + 1]) == pair:
            out.append(pair[0] + pair[1])
            i += 2
        else:
            out.append(tokens[i])
            i += 1
    return out


def merge_first_only(tokens, pair):
    for i in range(len(tokens) - 1):
        if (tokens[i], tokens[i + 1]) == pair:
            return tokens[:i] + [pair[0] + pair[1]] + tokens[i + 2:]
    return list(tokens)


def merge_in_place(tokens, pair):
    tokens[:] = ch01.reference_merge(tokens, pair)


def merge_tuples(tokens, pair):
    return [(p if isinstance(p, tuple) else p) for p in _merge_keep_tuple(tokens, pair)]


def _merge_keep_tuple(tokens, pair):
    out, i = [], 0
    while i < len(tokens):
        if i + 1 < len(tokens) and (tokens[i], tokens[i + 1]) == pair:
            out.append(pair)
            i += 2
        else:
            out.append(tokens[i])
            i += 1
    return out


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (merge_reusing_tokens, "the middle 'a' was used twice"),
        (merge_dropping_last, "the last token is lost"),
        (merge_first_only, "not every occurrence of ('a', 'n') was merged"),
        (merge_in_place, "returned None"),
        (merge_tuples, "a merged token should be one string, 'an', not a tuple"),
        (lambda t, p: list(t), "returned the tokens unchanged"),
        (lambda t, p: "".join(t), "should return a list of tokens"),
    ],
)
def test_merge_wrong_answers(answer, words):
    assert words in failure_of(ch01.check_merge, answer).message


# --------------------------------------------------------------------------------- train_bpe


def test_train_bpe_right(capsys):
    ch01.check_train_bpe(ch01.reference_train_bpe)
    assert capsys.readouterr().out.startswith("✓ train_bpe: correct on 6 texts")


def test_train_bpe_stub(capsys):
    ch01.check_train_bpe(stub)
    assert "train_bpe: not done yet" in capsys.readouterr().out


# The mistaken trainers below are written out as a student would write them (their own merge
# loop, their own choice of the pair), not taken from the check's table of mistakes.


def student_merge(tokens, pair):
    out, i = [], 0
    while i < len(tokens):
        if tokens[i:i + 2] == list(pair):
            out.append(tokens[i] + tokens[i + 1])
            i += 2
        else:
            out.append(tokens[i])
            i += 1
    return out


def most_frequent_sorted_first(counts):
    top = max(counts.values())
    return sorted(pair for pair, n in counts.items() if n == top)[0]


def student_train(words, num_merges, choose=most_frequent_sorted_first):
    """BPE over a list of words, each occurrence listed (repeats count again)."""
    pieces = {w: list(w) for w in words}
    merges = []
    for _ in range(num_merges):
        counts = {}
        for w in words:
            for pair in zip(pieces[w], pieces[w][1:]):
                counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            break
        pair = choose(counts)
        merges.append(pair)
        pieces = {w: student_merge(t, pair) for w, t in pieces.items()}
    return merges


def across_words(text, num_merges):
    """The whole text as one sequence of characters: pairs run over the spaces."""
    tokens, merges = list(text), []
    for _ in range(num_merges):
        counts = {}
        for pair in zip(tokens, tokens[1:]):
            counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            break
        pair = most_frequent_sorted_first(counts)
        merges.append(pair)
        tokens = student_merge(tokens, pair)
    return merges


def each_word_once(text, num_merges):
    return student_train(sorted(set(pretokenize(text))), num_merges)


def first_seen_wins(text, num_merges):
    """`max` over a dict keeps the first of equally frequent pairs, in the order they were seen."""
    return student_train(pretokenize(text), num_merges, choose=lambda counts: max(counts, key=counts.get))


def split_on_spaces(text, num_merges):
    return student_train(text.split(), num_merges)


def test_train_bpe_across_word_boundaries_is_recognised():
    failure = failure_of(ch01.check_train_bpe, across_words)
    assert failure.message.startswith("train_bpe('the cat ate the hat', 4) returned")
    assert "counting pairs across word boundaries such as ('e', ' ')" in failure.message
    assert "Pre-tokenize first" in failure.hint


def test_train_bpe_unweighted_and_tie_breaking_are_recognised():
    unweighted = failure_of(ch01.check_train_bpe, each_word_once)
    assert "each distinct word was counted once" in unweighted.message
    assert unweighted.message.startswith("train_bpe('hop hop hop top stop', 5)")
    ties = failure_of(ch01.check_train_bpe, first_seen_wins)
    assert "in the order they were first seen" in ties.message
    assert "best_pair(counts)" in ties.hint


def never_applied(text, num_merges):
    """Chooses the best pair but never merges it in the words."""
    counts = Counter()
    for word, freq in Counter(pretokenize(text)).items():
        for pair in zip(word, word[1:]):
            counts[pair] += freq
    return [ch01.best_pair(counts)] * num_merges if counts else []


def does_not_stop(text, num_merges):
    merges = ch01.reference_train_bpe(text, num_merges)
    return merges + [merges[-1]] * (num_merges - len(merges)) if merges else []


def one_merge_short(text, num_merges):
    return ch01.reference_train_bpe(text, num_merges)[:-1]


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (never_applied, "('a', 't') is chosen more than once, so the merges are never applied"),
        (one_merge_short, "returned 3 merges, but should return 4"),
        (lambda t, n: None, "returned None"),
        (lambda t, n: "at", "should return a list of pairs"),
        (lambda t, n: [("a", "t", "x")] * n, "should return a list of pairs of strings"),
        (lambda t, n: [(a.encode(), b.encode()) for a, b in ch01.reference_train_bpe(t, n)],
         "should return a list of pairs of strings, but it contains a tuple (b'a', b't')"),
        (lambda t, n: ch01.reference_train_bpe(t, n)[::-1], "merge 1 is (' ', 'at'), but should be ('a', 't')"),
    ],
)
def test_train_bpe_wrong_answers(answer, words):
    assert words in failure_of(ch01.check_train_bpe, answer).message


def test_train_bpe_repeating_the_last_merge():
    # Right on the first texts; on "ab ab ab" it keeps repeating a merge after the pairs run out.
    # The merges were applied; what is wrong is that the loop did not stop.
    failure = failure_of(ch01.check_train_bpe, does_not_stop)
    assert failure.message == (
        "train_bpe('ab ab ab', 10) returned 10 merges; the first 2 are right, but after them every "
        "word is a single token and no pair is left, so training should stop there.")
    assert "never applied" not in failure.message
    assert "`break`" in failure.hint


def test_train_bpe_loop_without_a_stop_keeps_the_last_pair():
    def keeps_going(text, num_merges):
        """`pair` is only chosen while there are pairs, but appended on every pass."""
        words = pretokenize(text)
        pieces, merges, pair = {w: list(w) for w in words}, [], None
        for _ in range(num_merges):
            counts = Counter(p for w in words for p in zip(pieces[w], pieces[w][1:]))
            if counts:
                pair = most_frequent_sorted_first(counts)
                pieces = {w: student_merge(t, pair) for w, t in pieces.items()}
            merges.append(pair)
        return merges

    failure = failure_of(ch01.check_train_bpe, keeps_going)
    assert "no pair is left, so training should stop there" in failure.message


def crashes_when_pairs_run_out(text, num_merges):
    """The right loop, without the `break`: best_pair of empty counts raises ValueError."""
    word_counts = Counter(pretokenize(text))
    splits = {w: list(w) for w in word_counts}
    merges = []
    for _ in range(num_merges):
        counts = Counter()
        for w, freq in word_counts.items():
            for pair in zip(splits[w], splits[w][1:]):
                counts[pair] += freq
        pair = max(sorted(counts), key=counts.get)
        merges.append(pair)
        splits = {w: ch01.reference_merge(t, pair) for w, t in splits.items()}
    return merges


def test_train_bpe_crashing_when_the_pairs_run_out():
    failure = failure_of(ch01.check_train_bpe, crashes_when_pairs_run_out)
    assert failure.message.startswith(
        "your function `crashes_when_pairs_run_out` raised ValueError: max() ")
    assert failure.message.endswith(
        "(on input 'ab ab ab', 10). After 2 merges every word of this text is a single token, "
        "so no pair is left to choose from.")
    assert "`break`" in failure.hint


def test_train_bpe_other_errors_are_reported_plainly():
    def broken(text, num_merges):
        return [("a", "b")] + 1

    failure = failure_of(ch01.check_train_bpe, broken)
    assert failure.message.startswith("your function `broken` raised TypeError")
    assert "no pair is left" not in failure.message


def test_train_bpe_splitting_on_spaces_is_recognised():
    failure = failure_of(ch01.check_train_bpe, split_on_spaces)
    assert failure.message.startswith("train_bpe('the cat ate the hat', 4) returned")
    assert "split on spaces and the spaces thrown away" in failure.message
    assert "pretokenize(text)" in failure.hint


def test_train_bpe_accepts_lists_as_pairs(capsys):
    ch01.check_train_bpe(lambda t, n: [list(p) for p in ch01.reference_train_bpe(t, n)])
    assert capsys.readouterr().out.startswith("✓ train_bpe")


# ------------------------------------------------------------------------------------ encode


def test_encode_right(capsys):
    ch01.check_encode(ch01.reference_encode)
    assert capsys.readouterr().out.startswith("✓ encode: correct on 8 texts")


def test_encode_stub(capsys):
    ch01.check_encode(stub)
    assert "encode: not done yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda t, m: ch01.reference_encode(t, m[::-1]), "applied in a different order"),
        (lambda t, m: ch01.reference_encode(t, sorted(m)), "applied in a different order"),
        (lambda t, m: list(t), "no merge was applied"),
        (lambda t, m: ch01.reference_encode(t, m)[:-1], "does not spell the text again"),
        (lambda t, m: "".join(ch01.reference_encode(t, m)), "should return a list of token strings"),
        (lambda t, m: None, "returned None"),
        (lambda t, m: ch01.reference_encode(t, m[:3]), "but should return"),
        (lambda t, m: [len(x) for x in ch01.reference_encode(t, m)], "should return token strings"),
    ],
)
def test_encode_wrong_answers(answer, words):
    assert words in failure_of(ch01.check_encode, answer).message


def test_crosses_words():
    assert ch01._crosses_words("e ")
    assert ch01._crosses_words("e c")
    assert not ch01._crosses_words(" cat")
    assert not ch01._crosses_words("  ")
    assert not ch01._crosses_words("cat")


# -------------------------------------------------------------------------------- prompt_ids


def right_prompt_ids(tokenizer, user_text):
    return [tokenizer.bos_id, tokenizer.user_id, *tokenizer.encode(user_text),
            tokenizer.end_id, tokenizer.assistant_id]


def test_reference_prompt_matches_the_chat_template():
    for tokenizer in ch01._prompt_tokenizers():
        for text in ch01.PROMPT_TEXTS:
            ids, _ = render_conversation(tokenizer, [{"role": "user", "content": text}],
                                         add_generation_prompt=True)
            assert ch01.reference_prompt_ids(tokenizer, text) == ids


def test_prompt_ids_right(capsys):
    ch01.check_prompt_ids(right_prompt_ids)
    ch01.check_prompt_ids(lambda tok, text: tok.encode("<|bos|><|user|>" + text + "<|end|><|assistant|>"))
    ch01.check_prompt_ids(lambda tok, text: torch.tensor(right_prompt_ids(tok, text)))
    out = capsys.readouterr().out
    assert out.count("✓ prompt_ids: correct for a character tokenizer and a BPE tokenizer on 4 texts") == 3


def test_prompt_ids_stub(capsys):
    ch01.check_prompt_ids(stub)
    assert "prompt_ids: not done yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda tok, t: right_prompt_ids(tok, t)[1:], "does not start with <|bos|> (id 1)"),
        (lambda tok, t: right_prompt_ids(tok, t) + [tok.eos_id], "it ends with <|eos|> (id 2)"),
        (lambda tok, t: [1, 4, *tok.encode(t), 5], "the user's turn is not closed with <|end|>"),
        (lambda tok, t: right_prompt_ids(tok, t)[:-1], "lacks the final <|assistant|>"),
        (lambda tok, t: right_prompt_ids(tok, t) + [6], "closes the assistant's turn with <|end|>"),
        (lambda tok, t: [1, 5, *tok.encode(t), 6, 4], "<|user|> and <|assistant|> are swapped"),
        (lambda tok, t: [1, 4, *tok.encode(t), 2, 5], "it uses <|eos|> (id 2) to close the user's turn"),
        (lambda tok, t: None, "returned None"),
        (lambda tok, t: "<|bos|><|user|>" + t + "<|end|><|assistant|>", "should return a list of token ids"),
        (lambda tok, t: tok.tokenize("<|bos|><|user|>" + t + "<|end|><|assistant|>"),
         "should hold ints (token ids), but it holds '<|bos|>'"),
    ],
)
def test_prompt_ids_wrong_answers(answer, words):
    failure = failure_of(ch01.check_prompt_ids, answer)
    assert words in failure.message
    assert failure.message.startswith("prompt_ids(CharTokenizer, 'Who has a cat?') ")


def test_prompt_ids_other_mistake_shows_both_decodings():
    failure = failure_of(ch01.check_prompt_ids, lambda tok, t: [1, 4, *tok.encode(t.lower()), 6, 5])
    assert failure.message == (
        "prompt_ids(CharTokenizer, 'Who has a cat?') returned "
        f"{[1, 4, *ch01._prompt_tokenizers()[0].encode('who has a cat?'), 6, 5]}, which decodes to "
        "'<|bos|><|user|>who has a cat?<|end|><|assistant|>'; it should return "
        f"{ch01.reference_prompt_ids(ch01._prompt_tokenizers()[0], 'Who has a cat?')}, which decodes to "
        "'<|bos|><|user|>Who has a cat?<|end|><|assistant|>'."
    )
    out_of_range = failure_of(ch01.check_prompt_ids, lambda tok, t: [1, 4, 99_999, 6, 5])
    assert "which decodes to '(ids outside 0..291)'" in out_of_range.message


def test_encode_by_longest_match_or_across_pieces_is_caught():
    def longest(text, merges):
        """Greedy longest match in each piece, WordPiece style."""
        known = {a + b for a, b in merges}
        tokens = []
        for piece in pretokenize(text):
            start = 0
            while start < len(piece):
                end = len(piece)
                while end > start + 1 and piece[start:end] not in known:
                    end -= 1
                tokens.append(piece[start:end])
                start = end
        return tokens

    def whole_text(text, merges):
        """The merges replayed on the whole text, not piece by piece."""
        tokens = list(text)
        for pair in merges:
            tokens = student_merge(tokens, pair)
        return tokens

    assert "as WordPiece does" in failure_of(ch01.check_encode, longest).message
    assert "across the pieces of the pre-tokenizer" in failure_of(ch01.check_encode, whole_text).message


def test_merge_that_edits_its_input_in_place_is_refused():
    # the exercise asks for a new list; this one rewrites the caller's
    def in_place(tokens, pair):
        i = 0
        while i < len(tokens) - 1:
            if (tokens[i], tokens[i + 1]) == pair:
                tokens[i:i + 2] = [tokens[i] + tokens[i + 1]]
            i += 1
        return tokens

    failure = failure_of(ch01.check_merge, in_place)
    assert "changed its input" in failure.message and "in place" in failure.message
