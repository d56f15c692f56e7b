"""Tests for the synthetic world's lexicon, sentence pairs, stories and alphabet."""

import hashlib
import random
import re
import string
import time

import pytest

from sftlearn import data
from sftlearn.data.lexicon import ANIMALS, PEOPLE, PLACES, THINGS, article, person_named
from sftlearn.data.sentences import PAIR_TEMPLATE_IDS, make_pair, tokenize_words
from sftlearn.data.splits import bucket, in_pretraining_text
from sftlearn.data.tasks import get_family
from sftlearn.data.stories import PARALLEL_FRACTION, iter_stories

# sha256 of pretraining_text(100_000, seed=0). If a generator changes on purpose,
# update this (and say so in the change): every machine must produce these bytes.
PINNED_SHA256 = "63893d77783113f8cda380129f5694e37bb63459ca1f7fc3de4d46da68554158"

PRONOUNS = {"f": {"she", "her"}, "m": {"he", "him", "his"}}
ALL_PRONOUNS = {"she", "her", "he", "him", "his"}
NAMES_LONGEST_FIRST = sorted((p.name for p in PEOPLE), key=len, reverse=True)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ----- determinism ---------------------------------------------------------------------------


def test_corpus_bytes_are_pinned():
    text = data.pretraining_text(100_000, seed=0)
    assert len(text) == 100_000
    assert sha(text) == PINNED_SHA256


def test_same_seed_same_text_other_seed_other_text():
    a = data.pretraining_text(20_000, seed=3)
    assert data.pretraining_text(20_000, seed=3) == a
    assert data.pretraining_text(20_000, seed=4) != a
    assert data.pretraining_text(20_000, seed=3, split="val") != a


def test_the_text_has_exactly_the_length_asked_for():
    # Lengths ending just past a block boundary came out one or two characters short when the
    # blank line after the last block was counted but never written.
    first = data.story_corpus(1)[0]
    boundary = len(first)
    for n in [1, boundary - 1, boundary, boundary + 1, boundary + 2, boundary + 3, *range(1, 700, 7)]:
        assert len(data.pretraining_text(n)) == n, n
    assert data.pretraining_text(boundary + 2) == first + "\n\n"
    assert data.pretraining_text(0) == ""


def test_shorter_text_is_a_prefix_of_longer_text():
    long = data.pretraining_text(30_000)
    assert long.startswith(data.pretraining_text(12_345))
    assert data.pretraining_text(0) == ""


def test_story_corpus_matches_pretraining_text():
    stories = data.story_corpus(50, seed=1)
    assert len(stories) == 50
    joined = "\n\n".join(stories)
    assert data.pretraining_text(len(joined), seed=1) == joined
    assert data.story_corpus(0) == []


# ----- the corpus ------------------------------------------------------------------------------


def test_stories_are_short_and_some_are_bilingual():
    stories = data.story_corpus(2000)
    bilingual = [s for s in stories if "。" in s]
    english = [s for s in stories if "。" not in s]
    assert 0.09 < len(bilingual) / len(stories) < 0.16
    assert PARALLEL_FRACTION == 0.125
    lengths = sorted(len(s) for s in english)
    assert lengths[len(lengths) // 2] > 150  # median story
    assert max(lengths) < 500
    assert all("\n\n" not in s for s in stories)  # a blank line separates blocks only


def test_bilingual_blocks_alternate_english_and_chinese():
    blocks = [s for s in data.story_corpus(400) if "。" in s]
    assert blocks
    for block in blocks:
        lines = block.split("\n")
        assert len(lines) % 2 == 0 and len(lines) >= 2
        for en, zh in zip(lines[::2], lines[1::2]):
            assert all(ch in string.printable for ch in en) and en.endswith(".")
            assert zh.endswith("。") and not re.search(r"[A-Za-z.]", zh)


def _hero(story: str) -> str:
    """The name the story is about: the first person named (longest match first)."""
    first = min(
        ((story.find(n), n) for n in NAMES_LONGEST_FIRST if story.find(n) >= 0),
        key=lambda t: (t[0], -len(t[1])),
    )
    return first[1]


def test_a_named_persons_pronoun_never_changes_within_a_story():
    checked = 0
    for story in data.story_corpus(1500):
        hero = person_named(_hero(story))
        english = " ".join(line for line in story.split("\n") if "。" not in line)
        words = {w.lower() for w in tokenize_words(english)}
        used = words & ALL_PRONOUNS
        assert used <= PRONOUNS[hero.gender], (story, hero)
        chinese = "".join(line for line in story.split("\n") if "。" in line)
        assert ("他" if hero.gender == "f" else "她") not in chinese, story
        checked += bool(used)
    assert checked > 1000  # most stories do use pronouns


def test_a_story_keeps_its_home():
    for story in data.story_corpus(1500):
        if "。" in story:
            continue
        home = re.search(r"lives (?:in|on|by|near) (the [a-z ]+?)\.", story).group(1)
        back = re.search(r"goes back to (the [a-z ]+?)\.", story)
        if back:
            assert back.group(1) == home, story


def test_arithmetic_in_stories_is_right():
    found = 0
    for story in data.story_corpus(1000):
        for a, b, total in re.findall(r"has (\d+) \w+\. \w+(?: \w+)? gives \w+ (\d+) more, so now \w+ has (\d+)", story):
            assert int(a) + int(b) == int(total)
            found += 1
        for a, b, rest in re.findall(r"has (\d+) \w+ and gives (\d+) to [\w ]+\. Now \w+ has (\d+)", story):
            assert int(a) - int(b) == int(rest)
            found += 1
    assert found > 50


def test_corpus_splits_share_no_block():
    train = set(data.story_corpus(1500, split="train"))
    val = set(data.story_corpus(150, split="val"))
    test = set(data.story_corpus(150, split="test"))
    assert not train & val and not train & test and not val & test
    assert all(bucket("story", s) == "val" for s in val)


def test_training_corpus_never_contains_a_test_translation():
    lines = set(data.pretraining_text(400_000).split("\n"))
    test_pairs = data.translation_pairs("test") + data.translation_pairs("val")
    assert not any(en in lines for en, _ in test_pairs)
    # ...while training translations do appear (the corpus is meant to show both languages)
    assert sum(en in lines for en, _ in data.translation_pairs("train", n=300)) > 10


def _sentence_of(example) -> str:
    """The sentence inside an entities prompt, read back through its template."""
    text = next(t.text for t in get_family("entities").templates if t.id == example.template)
    pattern = re.escape(text).replace(re.escape("{sentence}"), "(.+)")
    return re.fullmatch(pattern, example.prompt).group(1)


def test_no_entity_evaluation_sentence_is_pretraining_text():
    """The corpus interleaves translation training sentences with the stories; entity lists and
    entity tagging must not evaluate on those (they were found verbatim: 52 of 200 tagging test
    sentences, before the rule). Generic story sentences can still coincide; not tested here."""
    text = data.pretraining_text(1_000_000)
    lines = set(text.split("\n"))
    blocks = [block.split("\n") for block in text.split("\n\n")]
    bilingual = {english for block in blocks if len(block) > 1 for english in block[0::2]}
    assert len(bilingual) > 500 and all(in_pretraining_text(line) for line in bilingual)
    tagging = {" ".join(words).replace(" .", ".").replace(" ,", ",").replace(" 's", "'s")
               for split in ("val", "test") for words, _ in data.entity_tagging(split)}
    assert len(tagging) == 400 and not tagging & lines
    listing = {_sentence_of(ex) for split in ("val", "test", "test_heldout")
               for ex in data.sft_examples(split, families="entities")}
    assert len(listing) >= 200 and not listing & lines
    assert not any(in_pretraining_text(s) for s in tagging | listing)
    # the training splits keep their sentences: the rule costs nothing there
    assert any(in_pretraining_text(_sentence_of(ex)) for ex in data.sft_examples("train", families="entities"))


def test_one_megabyte_of_corpus_is_fast():
    start = time.process_time()  # CPU time: a busy machine must not fail the test
    text = data.pretraining_text(1_000_000)
    assert len(text) == 1_000_000
    assert time.process_time() - start < 10  # typically ~0.6 s


# ----- sentence pairs --------------------------------------------------------------------------


def _pair(template, **slots):
    return make_pair(random.Random(0), template, **slots)


def test_known_translations():
    mia, tom, li_na = person_named("Mia"), person_named("Tom"), person_named("Li Na")
    forest = next(p for p in PLACES if p.name == "the forest")
    park = next(p for p in PLACES if p.name == "the park")
    assert (_pair("live", person=mia, place=forest).en, _pair("live", person=mia, place=forest).zh) == (
        "Mia lives in the forest.",
        "米娅住在森林里。",
    )
    p = _pair("live", person=tom, place=park)
    assert (p.en, p.zh) == ("Tom lives near the park.", "汤姆住在公园附近。")
    p = _pair("go", person=li_na, place=park, pronoun=True)
    assert (p.en, p.zh) == ("She goes to the park.", "她去公园。")
    p = _pair("go_with", person=mia, friend=li_na, place=forest)
    assert (p.en, p.zh) == ("Mia and Li Na go to the forest.", "米娅和李娜去森林。")
    assert p.entities == (("Mia", "person"), ("Li Na", "person"), ("the forest", "place"))


def test_chinese_uses_the_right_measure_words_and_numbers():
    rng = random.Random(5)
    for _ in range(3000):
        p = make_pair(rng)
        words = set(tokenize_words(p.en))
        for animal in ANIMALS:
            if animal.name in words or animal.plural in words:
                assert animal.mw + animal.zh in p.zh, p
        for thing in THINGS:
            if thing.name in words and p.template in ("gives", "has_obj"):
                assert "一" + thing.mw in p.zh, p
        if "two" in words:
            assert "两" in p.zh and "二" not in p.zh, p
        assert p.zh.endswith("。") and p.zh.count("。") == 1
        assert p.en[0].isupper() and p.en.endswith(".")
        assert not re.search(r"[A-Za-z0-9,.?!]", p.zh), p  # Chinese side: Chinese punctuation only


def test_every_template_is_used_and_articles_are_right():
    rng = random.Random(1)
    seen = {make_pair(rng).template for _ in range(2000)}
    assert seen == set(PAIR_TEMPLATE_IDS)
    assert article("owl") == "an owl" and article("red hat") == "a red hat"
    assert article("orange kite") == "an orange kite"


def test_unknown_template_and_person_are_value_errors():
    with pytest.raises(ValueError, match="live"):
        make_pair(random.Random(0), "no_such_template")
    with pytest.raises(ValueError, match="Mia"):
        person_named("Nobody")


# ----- alphabet --------------------------------------------------------------------------------


def test_alphabet_is_sorted_unique_and_has_printable_ascii():
    abc = data.alphabet()
    assert abc == "".join(sorted(set(abc)))
    assert set(string.printable) - set("\x0b\x0c\r") <= set(abc)
    assert not set("\x0b\x0c\r") & set(abc)
    assert {"。", "，", "米", "娅", "猫"} <= set(abc)
    assert len(abc) < 400  # a small world


def test_alphabet_covers_everything_the_world_writes():
    seen = set(data.pretraining_text(300_000))
    for seed in (0, 1):
        seen.update(data.pretraining_text(50_000, seed=seed, split="val"))
    for split in data.SFT_SPLITS:
        for ex in data.sft_examples(split, n_per_family=300 if split == "train" else 100):
            seen.update(ex.prompt)
            seen.update(ex.answer)
    for text, _ in data.sentiment_classification("train", n=500):
        seen.update(text)
    for words, _ in data.entity_tagging("train", n=500):
        seen.update("".join(words))
    for en, zh in data.translation_pairs("train", n=2000):
        seen.update(en + zh)
    assert seen <= set(data.alphabet()), seen - set(data.alphabet())
    assert "<|" not in data.pretraining_text(100_000)  # never collides with special tokens


# ----- bad input -------------------------------------------------------------------------------


def test_bad_corpus_arguments_are_explained():
    with pytest.raises(ValueError, match="train, val, test"):
        data.pretraining_text(100, split="validation")
    with pytest.raises(ValueError, match="train, val, test"):
        data.story_corpus(3, split="test_heldout")
    with pytest.raises(ValueError, match=">= 0"):
        data.pretraining_text(-1)
    with pytest.raises(ValueError, match=">= 0"):
        data.story_corpus(-5)
    with pytest.raises(TypeError, match="int"):
        data.story_corpus("10")
    with pytest.raises(TypeError, match="seed"):
        data.pretraining_text(100, seed="0")
    with pytest.raises(TypeError, match="int"):
        next(iter_stories(seed=1.5))
