"""Tests for pre-tokenization and the byte-level BPE tokenizer."""

import random
import time

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sftlearn.tokenizer import (
    MIN_VOCAB_SIZE,
    BPETokenizer,
    bpe_trace,
    format_bpe_trace,
    pretokenize,
    split_on_special_tokens,
)

CORPUS = (
    "The cat sat on the mat. The dog sat on the log. 12 cats and 3 dogs!\n\n"
    "小猫坐在垫子上。小狗坐在木头上。\n"
    "Lina found a red ball in the garden; the ball was not blue.\n"
) * 20


@pytest.fixture(scope="module")
def tok():
    return BPETokenizer.train(CORPUS, 320)


# ----- pre-tokenization ----------------------------------------------------------------------


def test_pretokenize_rules():
    assert pretokenize("The cat sat, 12 times.") == [
        "The", " cat", " sat", ",", " 1", "2", " times", "."]
    assert pretokenize("a  cat") == ["a", " ", " cat"]  # only the last space joins the word
    assert pretokenize("end.\n\nNext") == ["end", ".", "\n\n", "Next"]
    assert pretokenize("小猫 sat。") == ["小", "猫", " sat", "。"]
    assert pretokenize("wow?! 😀😀") == ["wow", "?!", " 😀😀"]
    assert pretokenize("") == []
    assert pretokenize("   ") == ["   "]


@settings(max_examples=100, deadline=None)
@given(st.text())
def test_pretokenize_loses_nothing(text):
    pieces = pretokenize(text)
    assert "".join(pieces) == text
    assert all(pieces)


# ----- training ------------------------------------------------------------------------------


def test_merges_match_hand_worked_example():
    # Corpus "aaabdaaabac" is a single piece (all letters). Bytes a=104, b=105, c=106, d=107
    # as ids (byte value + 7). Working it by hand:
    #
    # start   a a a b d a a a b a c
    #   pair counts: aa 4 (overlapping: positions 0-1, 1-2, 5-6, 6-7), ab 2, bd 1, da 1,
    #   ba 1, ac 1
    # merge 1 (a, a) -> "aa" (id 263), replacing left to right, so "aaa" -> "aa" "a":
    #         aa a b d aa a b a c
    #   counts: (aa, a) 2, (a, b) 2, others 1. Tie at 2: the pair whose byte strings sort
    #   first wins; ("a", "b") < ("aa", "a") because "a" < "aa".
    # merge 2 (a, b) -> "ab" (id 264):
    #         aa ab d aa ab a c
    #   counts: (aa, ab) 2, others 1.
    # merge 3 (aa, ab) -> "aaab" (id 265):
    #         aaab d aaab a c
    #   counts: all 1: (aaab, d), (d, aaab), (aaab, a), (a, c). Smallest: ("a", "c").
    # merge 4 (a, c) -> "ac" (id 266):
    #         aaab d aaab ac
    tok = BPETokenizer.train("aaabdaaabac", MIN_VOCAB_SIZE + 4)
    a, b, c = 104, 105, 106
    assert tok.merges == [(a, a), (a, b), (263, 264), (a, c)]
    assert [tok.id_to_token(i) for i in range(263, 267)] == ["aa", "ab", "aaab", "ac"]
    assert tok.tokenize("aaabdaaabac") == ["aaab", "d", "aaab", "ac"]
    assert tok.vocab_size == 267


def test_trace_agrees_with_hand_worked_example_and_train():
    steps = bpe_trace("aaabdaaabac", 4, top_k=3)
    assert [s["pair"] for s in steps] == [("a", "a"), ("a", "b"), ("aa", "ab"), ("a", "c")]
    assert [s["count"] for s in steps] == [4, 2, 2, 1]
    assert steps[0]["top_pairs"] == [(("a", "a"), 4), (("a", "b"), 2), (("a", "c"), 1)]
    assert steps[1]["top_pairs"][:2] == [(("a", "b"), 2), (("aa", "a"), 2)]
    assert steps[0]["tokens"] == ["aa", "a", "b", "d", "aa", "a", "b", "a", "c"]
    assert steps[-1]["tokens"] == ["aaab", "d", "aaab", "ac"]
    assert [s["new_id"] for s in steps] == [263, 264, 265, 266]
    text = "low lower lowest newest widest"
    trace = bpe_trace(text, 8)
    assert [s["pair_ids"] for s in trace] == BPETokenizer.train(text, MIN_VOCAB_SIZE + 8).merges
    assert "".join(trace[-1]["tokens"]) == text
    table = format_bpe_trace(steps)
    assert table.splitlines()[0] == "step 1: 'a' + 'a' -> 'aa' (count 4, id 263)"


def test_merges_never_cross_pieces():
    tok = BPETokenizer.train("ab ab ab ab", MIN_VOCAB_SIZE + 10)
    # pieces: "ab", " ab" x3 -> merges stay inside them; no token contains "b " (b then space)
    tokens = [tok.id_to_token(i) for i in range(MIN_VOCAB_SIZE, tok.vocab_size)]
    assert tokens == ["ab", " ab"]  # then no pairs are left: vocab stops early
    assert not any("b " in t for t in tokens)


def test_training_is_deterministic(tok):
    again = BPETokenizer.train(CORPUS, 320)
    assert again.merges == tok.merges
    assert again == tok


def test_training_learns_words_and_chinese_characters(tok):
    assert tok.vocab_size == 320
    assert tok.tokenize(" the") == [" the"]
    assert tok.tokenize("小猫") == ["小", "\\xe7", "\\x8c", "\\xab"]  # 小: 3 bytes, 1 token; 猫 too rare
    assert len(tok.encode(CORPUS)) < len(CORPUS.encode("utf-8")) / 2


def test_train_errors():
    with pytest.raises(ValueError, match="at least 263 ids.*vocab_size >= 263"):
        BPETokenizer.train("hello", 262)
    with pytest.raises(ValueError, match="empty text"):
        BPETokenizer.train("", 300)
    with pytest.raises(ValueError, match="empty text"):
        BPETokenizer.train("<|end|>", 300)  # only a special token: nothing to learn from
    with pytest.raises(TypeError, match="vocab_size must be an int"):
        BPETokenizer.train("hello", 300.0)
    with pytest.raises(ValueError, match="non-empty text"):
        bpe_trace("", 3)


def test_bad_merges_rejected():
    with pytest.raises(ValueError, match="merge 1 is"):
        BPETokenizer([(104, 105), (300, 104)])  # id 300 does not exist yet


def test_untrained_bpe_is_plain_bytes():
    tok = BPETokenizer()
    assert tok.vocab_size == MIN_VOCAB_SIZE == 263
    assert tok.encode("A猫") == [65 + 7, 0xE7 + 7, 0x8C + 7, 0xAB + 7]
    assert tok.id_to_token(0xE7 + 7) == "\\xe7"  # a lone byte of a character, shown escaped
    assert tok.token_to_id(b"\xe7") == 0xE7 + 7


def test_decode_of_a_prefix_may_end_mid_character(tok):
    ids = BPETokenizer().encode("猫")  # three byte tokens
    assert BPETokenizer().decode(ids[:2]) == "\ufffd"
    assert tok.decode(tok.encode("小猫")) == "小猫"


def test_bpe_token_lookup(tok):
    i = tok.token_to_id(" the")
    assert tok.id_to_token(i) == " the"
    assert tok.token_bytes(i) == b" the"
    with pytest.raises(ValueError, match="not a single token"):
        tok.token_to_id(" the cat sat")
    with pytest.raises(ValueError, match="out of range"):
        tok.id_to_token(tok.vocab_size)


def test_two_merges_spelling_the_same_bytes(tmp_path):
    a, b, c = (BPETokenizer().encode(ch)[0] for ch in "abc")
    # "b"+"c" -> 263, "a"+"b" -> 264, "ab"+"c" -> 265 and "a"+"bc" -> 266: two ids for "abc".
    tok = BPETokenizer([(b, c), (a, b), (264, c), (a, 263)])
    assert tok.id_to_token(265) == tok.id_to_token(266) == "abc"
    assert tok.decode([265]) == tok.decode([266]) == "abc"
    # The lookup names one of them, the same one on every load: the id learned first.
    assert tok.token_to_id("abc") == tok.token_to_id(b"abc") == 265
    tok.save(tmp_path / "dup.json")
    assert BPETokenizer.load(tmp_path / "dup.json").token_to_id("abc") == 265


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_round_trip_any_unicode(text):
    tok = _SMALL_BPE
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert all(0 <= i < tok.vocab_size for i in ids)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=200))
def test_training_on_any_text_round_trips_it(text):
    # text made only of special tokens has nothing to learn from (tested in test_train_errors)
    assume(any(special is None for _, special in split_on_special_tokens(text)))
    tok = BPETokenizer.train(text, MIN_VOCAB_SIZE + 20)
    assert tok.decode(tok.encode(text)) == text


_SMALL_BPE = BPETokenizer.train(CORPUS + "emoji 😀 tab\t nul \x00 é", 350)


def test_round_trip_examples():
    for text in ["", "\x00\x01\n\t", "😀🙈", "é", "e\u0301", "小猫 ate 3 fish", "<|end|>", "<|x|>"]:
        assert _SMALL_BPE.decode(_SMALL_BPE.encode(text)) == text


def test_encode_batch_bpe(tok):
    assert tok.encode_batch(["the cat", "小猫"]) == [tok.encode("the cat"), tok.encode("小猫")]


# ----- speed ---------------------------------------------------------------------------------


def _one_megabyte_of_text() -> str:
    try:
        from sftlearn.data import pretraining_text
    except ImportError:  # the data package is not there: a synthetic stand-in of words
        rng = random.Random(0)
        words = ["".join(rng.choice("etaoinshrdlucmfw") for _ in range(rng.randint(1, 9)))
                 for _ in range(5000)]
        return " ".join(rng.choice(words) for _ in range(250_000))[:1_000_000]
    return pretraining_text(1_000_000, seed=0)[:1_000_000]


def test_training_on_one_megabyte_is_fast():
    text = _one_megabyte_of_text()
    assert len(text) >= 900_000
    start = time.process_time()  # CPU time on one core: a busy machine must not fail the test
    tok = BPETokenizer.train(text, 2048)
    seconds = time.process_time() - start
    assert seconds < 30, f"training took {seconds:.1f} s"
    # the world's vocabulary is small, so its pairs may run out before 2048 ids
    assert MIN_VOCAB_SIZE + 500 < tok.vocab_size <= 2048
    sample = text[:50_000]
    assert tok.decode(tok.encode(sample)) == sample


# ----- the world's tokenizer (the base models' tokenizer) -----------------------------------


@pytest.fixture(scope="module")
def world():
    return BPETokenizer.from_world()


def test_world_tokenizer_is_deterministic_and_full_size(world):
    assert world.vocab_size == 2048
    assert BPETokenizer.from_world().merges == world.merges


def test_world_tokenizer_makes_world_words_single_tokens(world):
    from sftlearn.data.lexicon import ANIMALS, FOODS, PEOPLE, PLACES

    for entry in (*PEOPLE, *FOODS, *ANIMALS, *PLACES):
        # two-word names ("Li Na") are two pieces for the pre-tokenizer: one token per word
        assert len(world.encode(" " + entry.name)) == len(entry.name.split()), entry.name
    for person in PEOPLE:
        assert len(world.encode(person.zh)) == len(person.zh), person.zh  # a token per character
    # a made-up string is not a word of the world: it falls apart into letters
    assert world.tokenize(" kzpo") == [" k", "z", "p", "o"]


def test_world_tokenizer_round_trips_and_compresses_held_out_text(world):
    from sftlearn.data import pretraining_text, sft_examples

    stories = pretraining_text(50_000, seed=5, split="test")  # never used to train it
    ids = world.encode(stories)
    assert world.decode(ids) == stories
    assert len(stories) / len(ids) > 3.3  # characters per token
    chats = "\n".join(f"{ex.prompt} {ex.answer}" for ex in sft_examples("test", n_per_family=20))
    assert world.decode(world.encode(chats)) == chats
    assert len(chats) / len(world.encode(chats)) > 3.0
