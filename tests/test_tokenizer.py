"""Tests for the shared tokenizer behaviour and the character tokenizer."""

import json
import string

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sftlearn.tokenizer import (
    SPECIAL_TOKENS,
    BPETokenizer,
    CharTokenizer,
    Tokenizer,
    load_tokenizer,
    split_on_special_tokens,
)

ALPHABET = "".join(sorted(set(string.printable) - set("\x0b\x0c\r"))) + "我你猫。，"


@pytest.fixture(scope="module")
def char_tok():
    return CharTokenizer(ALPHABET)


@pytest.fixture(scope="module")
def bpe_tok():
    return BPETokenizer.train("the cat sat on the mat. the cat ate. 小猫吃鱼。" * 5, 300)


# ----- special tokens: same ids everywhere --------------------------------------------------


def test_special_tokens_are_fixed():
    assert SPECIAL_TOKENS == ["<|pad|>", "<|bos|>", "<|eos|>", "<|unk|>",
                              "<|user|>", "<|assistant|>", "<|end|>"]


@pytest.mark.parametrize("make", [lambda: CharTokenizer("abc"), lambda: BPETokenizer()])
def test_special_ids_identical_in_every_tokenizer(make):
    tok = make()
    assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id,
            tok.user_id, tok.assistant_id, tok.end_id) == (0, 1, 2, 3, 4, 5, 6)
    for i, s in enumerate(SPECIAL_TOKENS):
        assert tok.token_to_id(s) == i
        assert tok.id_to_token(i) == s


def test_split_on_special_tokens():
    assert split_on_special_tokens("a<|user|>b<|end|>") == [
        ("a", None), ("<|user|>", 4), ("b", None), ("<|end|>", 6)]
    # "<|" that does not start a special token is ordinary text
    assert split_on_special_tokens("x<|y|><|eos|>") == [("x<|y|>", None), ("<|eos|>", 2)]
    assert split_on_special_tokens("") == []


def test_special_token_strings_in_text_become_special_ids(char_tok, bpe_tok):
    for tok in (char_tok, bpe_tok):
        ids = tok.encode("ab<|end|>c<|eos|>")
        assert ids[len(tok.encode("ab"))] == 6
        assert ids[-1] == 2
        assert ids.count(6) == 1
        assert tok.decode(ids) == "ab<|end|>c<|eos|>"
        assert tok.decode(ids, skip_special=True) == "abc"


def test_add_bos_eos_and_empty_text(char_tok, bpe_tok):
    for tok in (char_tok, bpe_tok):
        assert tok.encode("") == []
        assert tok.encode("", add_bos=True, add_eos=True) == [1, 2]
        ids = tok.encode("hi", add_bos=True, add_eos=True)
        assert ids[0] == 1 and ids[-1] == 2
        assert tok.decode(ids) == "<|bos|>hi<|eos|>"
        assert tok.decode([]) == ""


def test_encode_batch(char_tok, bpe_tok):
    for tok in (char_tok, bpe_tok):
        texts = ["the cat", "", "我"]
        assert tok.encode_batch(texts) == [tok.encode(t) for t in texts]
        assert tok.encode_batch(texts, add_eos=True)[1] == [2]
        with pytest.raises(TypeError, match="single str"):
            tok.encode_batch("the cat")


def test_decode_accepts_tensors(char_tok):
    ids = char_tok.encode("cat")
    assert char_tok.decode(torch.tensor(ids)) == "cat"
    assert char_tok.decode_batch(torch.tensor([ids, ids])) == ["cat", "cat"]


def test_decode_rejects_bad_ids(char_tok):
    V = char_tok.vocab_size
    with pytest.raises(ValueError, match=rf"token id {V} is out of range .*vocab_size={V}"):
        char_tok.decode([7, V])
    with pytest.raises(ValueError, match="token id -1 is out of range"):
        char_tok.decode([-1])
    with pytest.raises(TypeError, match="decode_batch"):
        char_tok.decode([[7, 8]])
    with pytest.raises(TypeError, match="must be ints"):
        char_tok.decode(["a"])
    with pytest.raises(TypeError, match="encode_batch"):
        char_tok.encode(["a"])


# ----- the character tokenizer ---------------------------------------------------------------


def test_char_ids_are_specials_then_sorted_chars():
    tok = CharTokenizer("cabbage")  # duplicates ignored, order does not matter
    assert tok.chars == "abceg"
    assert tok.vocab_size == 7 + 5 == len(tok)
    assert tok.encode("cab") == [9, 7, 8]
    assert [tok.id_to_token(i) for i in range(7, 12)] == list("abceg")
    assert CharTokenizer("gabce") == tok


def test_char_unknown_error_names_char_code_point_and_fix():
    tok = CharTokenizer("abc")
    with pytest.raises(ValueError) as e:
        tok.encode("abé猫a")
    msg = str(e.value)
    assert "'é' (U+00E9)" in msg and "'猫' (U+732B)" in msg
    assert "build the tokenizer from text that contains it" in msg
    assert "unknown='replace'" in msg


def test_char_unknown_replace_maps_to_unk():
    tok = CharTokenizer("abc", unknown="replace")
    assert tok.encode("aéb") == [7, 3, 8]
    assert tok.decode(tok.encode("aéb")) == "a<|unk|>b"
    assert tok.decode(tok.encode("aéb"), skip_special=True) == "ab"


def test_char_constructor_errors():
    with pytest.raises(ValueError, match="at least one character"):
        CharTokenizer("")
    with pytest.raises(ValueError, match="unknown must be one of"):
        CharTokenizer("abc", unknown="ignore")
    with pytest.raises(TypeError, match="str of characters"):
        CharTokenizer(["a", "b"])


def test_token_to_id_errors(char_tok):
    assert char_tok.token_to_id("a") == char_tok.encode("a")[0]
    with pytest.raises(ValueError, match="not a single token.*use encode"):
        char_tok.token_to_id("ab")


def test_lone_surrogates_are_refused_with_the_fix(char_tok, bpe_tok):
    # Half of a UTF-16 pair is not a character: it has no UTF-8 bytes, so a CharTokenizer
    # built on one could never be saved, and a BPE could not turn it into bytes.
    fix = r"text\.encode\('utf-8', 'replace'\)"
    with pytest.raises(ValueError, match=r"CharTokenizer has a lone surrogate '\\ud800' "
                                         r"at position 2.*" + fix):
        CharTokenizer("ab\ud800c")
    with pytest.raises(ValueError, match=r"training text has a lone surrogate '\\udc80'.*" + fix):
        BPETokenizer.train("hello \udc80 world", 300)
    for tok in (char_tok, bpe_tok):
        with pytest.raises(ValueError, match=r"The token has a lone surrogate"):
            tok.token_to_id("\ud83d")
        with pytest.raises(ValueError, match=r"The text has a lone surrogate"):
            tok.encode("a\ud83db")


def test_char_from_world_covers_the_world_alphabet():
    from sftlearn.data import alphabet

    tok = CharTokenizer.from_world()
    world = alphabet()
    assert tok.chars == "".join(sorted(set(world)))
    assert tok.decode(tok.encode(world)) == world
    assert CharTokenizer.from_world() == tok  # deterministic


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=60))
def test_char_round_trip(text):
    tok = CharTokenizer(ALPHABET)
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert all(0 <= i < tok.vocab_size for i in ids)


# ----- save and load -------------------------------------------------------------------------


def test_char_save_load(tmp_path, char_tok):
    path = char_tok.save(tmp_path / "char.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["type"] == "char" and data["special_tokens"] == SPECIAL_TOKENS
    assert "猫" in path.read_text(encoding="utf-8")  # human-readable, not \\u escapes
    for loaded in (CharTokenizer.load(path), load_tokenizer(path), Tokenizer.load(path)):
        assert isinstance(loaded, CharTokenizer)
        assert loaded == char_tok
        assert loaded.encode("the cat 我") == char_tok.encode("the cat 我")


def test_bpe_save_load(tmp_path, bpe_tok):
    path = bpe_tok.save(tmp_path / "sub" / "bpe.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["type"] == "bpe"
    assert len(data["merges"]) == len(bpe_tok.merges)
    assert data["merges"][0] == "{} {}".format(*bpe_tok.merges[0])
    loaded = load_tokenizer(path)
    assert isinstance(loaded, BPETokenizer) and loaded == bpe_tok
    assert loaded.merges == bpe_tok.merges
    assert loaded.encode("the cat 小猫") == bpe_tok.encode("the cat 小猫")


def test_load_errors(tmp_path, char_tok):
    with pytest.raises(FileNotFoundError, match="save one first"):
        load_tokenizer(tmp_path / "missing.json")
    path = char_tok.save(tmp_path / "char.json")
    with pytest.raises(ValueError, match="holds a CharTokenizer.*use CharTokenizer.load"):
        BPETokenizer.load(path)
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "wordpiece"}')
    with pytest.raises(ValueError, match="expected one of \\['bpe', 'char'\\]"):
        load_tokenizer(bad)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["special_tokens"] = ["<pad>"]
    bad.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="special tokens"):
        load_tokenizer(bad)
