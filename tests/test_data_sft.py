"""Tests for the instruction (SFT) task families: formats, splits, answers, scorers."""

import re
import time
from collections import Counter

import pytest

from sftlearn import data
from sftlearn.data.reviews import review_label
from sftlearn.data.sft import family_examples
from sftlearn.data.stories import COUNTABLES
from sftlearn.data.tasks import FAMILIES

CONTENT_KEYED = ("qa", "sentiment", "entities", "translate")  # split by content, not wording


@pytest.fixture(scope="module")
def splits():
    """Default-size examples of every split (made once for the module)."""
    return {split: data.sft_examples(split) for split in data.SFT_SPLITS}


def fields(example):
    """The template's slot values, read back from the prompt (e.g. passage and question)."""
    template = next(t for t in FAMILIES[example.family].templates if t.id == example.template)
    pattern = re.escape(template.text)
    pattern = pattern.replace(r"\{question\}", r"(?P<question>(?:Where|Which|What|How|Who)[^.]*\?)")
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>.*?)", pattern)
    match = re.fullmatch(pattern, example.prompt, flags=re.S)
    assert match, (example.template, example.prompt)
    return match.groupdict()


# ----- shape of the data -----------------------------------------------------------------------


def test_families_and_default_sizes(splits):
    assert set(data.TASK_FAMILIES) >= {"qa", "sentiment", "entities", "translate", "arithmetic", "strings"}
    for split, examples in splits.items():
        counts = Counter(ex.family for ex in examples)
        assert counts == {f: data.DEFAULT_SIZES[split] for f in data.TASK_FAMILIES}
    # families are interleaved, so any prefix is balanced
    first = splits["train"][: len(data.TASK_FAMILIES)]
    assert tuple(ex.family for ex in first) == data.TASK_FAMILIES


def test_examples_are_conversations(splits):
    ex = splits["val"][0]
    assert isinstance(ex, data.SFTExample)
    assert [m["role"] for m in ex.messages] == ["user", "assistant"]
    assert ex.messages[1]["content"] == ex.answer
    assert ex.prompt == ex.messages[0]["content"]
    with pytest.raises(Exception):
        ex.answer = "changed"  # frozen


def test_conversations_are_short(splits):
    for examples in splits.values():
        for ex in examples:
            assert len(ex.prompt) + len(ex.answer) <= 200, ex
            # entity lists are the longest answers ("Zhang Wei (person), ..., the old mill (place)")
            assert 1 <= len(ex.answer) <= (70 if ex.family == "entities" else 30), ex
            assert ex.answer == ex.answer.strip() and "<|" not in ex.prompt


def test_known_examples():
    """Real outputs, pinned: one per family (seed 0, the first test example)."""
    first = {ex.family: ex for ex in data.sft_examples("test", n_per_family=1)}
    for family, ex in first.items():
        assert data.score(family, ex.answer, ex.answer)
    assert {f: (ex.prompt, ex.answer) for f, ex in first.items()} == PINNED_FIRST_TEST_EXAMPLES


PINNED_FIRST_TEST_EXAMPLES = {
    'qa': (
        'Text: Jack drinks tea. Lucy likes to swim. Jack lives near the market.\nQuestion: Who likes to swim?',
        'Lucy',
    ),
    'sentiment': (
        'Customer: "The pears are stale, but the soup is good."\nWhich food did they not like?',
        'pears',
    ),
    'entities': (
        'People and places in "Hugo does not like milk."?',
        'Hugo (person)',
    ),
    'translate': (
        'In Chinese: Leo has a yellow ball.',
        '利奥有一个黄色的球。',
    ),
    'arithmetic': (
        'Tom has 9 cups and gives 7 to Hugo. How many cups does he have left?',
        '2',
    ),
    'strings': (
        'Length of the word soup?',
        '4',
    ),
}


# ----- determinism -----------------------------------------------------------------------------


def test_same_seed_same_examples_other_seed_other_examples():
    a = data.sft_examples("train", n_per_family=50, seed=7)
    assert data.sft_examples("train", n_per_family=50, seed=7) == a
    b = data.sft_examples("train", n_per_family=50, seed=8)
    assert [ex.prompt for ex in a] != [ex.prompt for ex in b]


def test_choosing_families_does_not_change_their_examples():
    everything = data.sft_examples("val", n_per_family=30)
    only = data.sft_examples("val", n_per_family=30, families=["strings", "qa"])
    assert [ex.family for ex in only[:2]] == ["strings", "qa"]
    assert [ex for ex in only if ex.family == "qa"] == [ex for ex in everything if ex.family == "qa"]
    assert data.sft_examples("val", n_per_family=5, families="qa") == family_examples("qa", "val", 5)


# ----- splits ----------------------------------------------------------------------------------


def test_no_prompt_is_in_two_splits(splits):
    prompts = {split: [ex.prompt for ex in exs] for split, exs in splits.items()}
    for split, ps in prompts.items():
        assert len(ps) == len(set(ps)), f"duplicate prompt within {split}"
    names = list(prompts)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not set(prompts[a]) & set(prompts[b]), (a, b)


def test_content_families_keep_contents_apart(splits):
    """For qa, sentiment, entities and translate, even the content (the passage, the review,
    the sentence) is never shared between train, val and test, whatever the wording."""

    def contents(split, family):
        return {tuple(sorted(fields(ex).items())) for ex in splits[split] if ex.family == family}

    for family in CONTENT_KEYED:
        train, val = contents("train", family), contents("val", family)
        test = contents("test", family) | contents("test_heldout", family)
        assert not train & val and not train & test and not val & test, family


def test_evaluation_splits_never_repeat_a_content(splits):
    """Within val, test and test_heldout each passage, review or sentence is asked about once:
    two wordings of one sentence would count one item twice. (Train may repeat a content.)"""
    for split in ("val", "test", "test_heldout"):
        for family in CONTENT_KEYED:
            contents = [tuple(sorted(fields(ex).items())) for ex in splits[split] if ex.family == family]
            assert len(contents) == len(set(contents)), (split, family)
    train = [fields(ex)["sentence"] for ex in splits["train"] if ex.family == "entities"]
    assert len(set(train)) < len(train)  # the rule is for evaluation only


def test_numbers_agree_with_their_words(splits):
    """ "There is 1 bag", "There are 3 bags", "1 apple", never "There are 1 bag"."""
    singulars = "|".join(single for single, _ in COUNTABLES)
    plurals = "|".join(plural for _, plural in COUNTABLES)
    many = r"(?:0|[2-9]|\d\d)"
    wrong = re.compile(rf"\bare 1 |\bis {many} [a-z]|\b1 (?:{plurals})\b|\b{many} (?:{singulars})\b")
    checked = 0
    for examples in splits.values():
        for ex in examples:
            assert not wrong.search(ex.prompt), ex.prompt
            checked += ex.prompt.startswith("There is 1 ")
    assert checked >= 1  # the singular case is drawn, and right


def test_heldout_templates_appear_only_in_test_heldout(splits):
    for family, fam in FAMILIES.items():
        heldout = {t.id for t in fam.templates if t.heldout}
        seen = {t.id for t in fam.templates if not t.heldout}
        assert len(seen) >= 4 and len(heldout) >= 1, family
        for split, examples in splits.items():
            used = {ex.template for ex in examples if ex.family == family}
            if split == "test_heldout":
                assert used <= heldout and len(used) == len(heldout), (family, used)
            else:
                assert used <= seen and len(used) == len(seen), (family, split, used)


# ----- answers: right, input-dependent, not guessable ------------------------------------------


def test_a_constant_answer_scores_under_20_percent(splits):
    for family in data.TASK_FAMILIES:
        for split in ("train", "test", "test_heldout"):
            answers = [ex.answer for ex in splits[split] if ex.family == family]
            top, count = Counter(answers).most_common(1)[0]
            assert count / len(answers) < 0.2, (family, split, top, count)
            assert len(set(answers)) >= 10, (family, split)


def test_qa_answers_come_from_the_passage(splits):
    for ex in (e for e in splits["test"] if e.family == "qa"):
        f = fields(ex)
        assert ex.answer in f["passage"], ex
        if f["question"].startswith("Who "):
            assert ex.answer in [p.name for p in data.lexicon.PEOPLE]
        else:
            assert ex.answer not in [p.name for p in data.lexicon.PEOPLE]


def test_sentiment_answers_follow_the_review(splits):
    for ex in (e for e in splits["train"] if e.family == "sentiment"):
        f = fields(ex)
        clauses = re.split(r", but |, yet |, while |\. |, ", f["review"].removeprefix("Although ").rstrip("."))
        polarity = {}
        for clause in clauses:
            food = clause.split()[1]
            polarity[food] = review_label(clause.lower() + ".")
        assert sorted(polarity.values()) == [0, 1], ex
        wanted = 1 if f["question"].endswith(" like?") and " not " not in f["question"] else 0
        assert polarity[ex.answer] == wanted, ex


def test_entities_answer_format(splits):
    for ex in (e for e in splits["train"] if e.family == "entities"):
        sentence = fields(ex)["sentence"]
        position = 0
        for part in ex.answer.split(", "):
            text, kind = re.fullmatch(r"(.+) \((person|place)\)", part).groups()
            if kind == "place":
                assert text.startswith("the ")
            found = sentence.find(text, position)
            assert found >= position, ex  # in order of appearance
            position = found + len(text)


def test_translations_are_chinese(splits):
    for ex in (e for e in splits["train"] if e.family == "translate"):
        assert ex.answer.endswith("。") and not re.search(r"[A-Za-z0-9.,]", ex.answer), ex
    pairs = dict(data.translation_pairs("train", n=2000))
    matched = [ex for ex in splits["train"] if ex.family == "translate" and fields(ex)["en"] in pairs]
    assert matched and all(pairs[fields(ex)["en"]] == ex.answer for ex in matched)


def test_arithmetic_answers_are_right(splits):
    for ex in (e for e in splits["train"] + splits["test_heldout"] if e.family == "arithmetic"):
        numbers = [int(n) for n in re.findall(r"\d+", ex.prompt)]
        assert len(numbers) == 2, ex
        a, b = numbers
        subtract = "-" in ex.prompt or re.search(r"gives|takes|lost|left", ex.prompt)
        assert int(ex.answer) == (a - b if subtract else a + b), ex
        assert int(ex.answer) >= 0


def test_string_answers_are_right(splits):
    for ex in (e for e in splits["train"] + splits["test_heldout"] if e.family == "strings"):
        f = fields(ex)
        op = ex.template.split(".")[1]
        word = f["w"]
        expected = {
            "reverse": word[::-1],
            "upper": word.upper(),
            "count": str(len(word)),
            "count_char": str(word.count(f.get("c", ""))) if op == "count_char" else None,
        }[op]
        assert ex.answer == expected, ex


# ----- scoring ---------------------------------------------------------------------------------


def test_score_accepts_own_answers_and_rejects_perturbed_ones(splits):
    examples = splits["test"]
    for i, ex in enumerate(examples):
        assert data.score(ex.family, ex.answer, ex.answer)
        assert data.score(ex.family, f"  {ex.answer}\n", ex.answer)
        assert not data.score(ex.family, ex.answer + "!", ex.answer)
        assert not data.score(ex.family, "", ex.answer)
        if len(ex.answer) > 1:
            assert not data.score(ex.family, ex.answer[:-1], ex.answer)
        if ex.answer.upper() != ex.answer:
            assert not data.score(ex.family, ex.answer.upper(), ex.answer)
        other = examples[(i + len(data.TASK_FAMILIES)) % len(examples)]  # same family, next one
        assert other.family == ex.family
        assert data.score(ex.family, other.answer, ex.answer) == (other.answer == ex.answer)


def test_score_rejects_bad_arguments():
    with pytest.raises(ValueError, match="qa, sentiment"):
        data.score("poetry", "a", "a")
    with pytest.raises(TypeError, match="prediction"):
        data.score("qa", None, "a")
    with pytest.raises(TypeError, match="answer"):
        data.score("qa", "a", 3)


# ----- bad input and speed ---------------------------------------------------------------------


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="train, val, test, test_heldout"):
        data.sft_examples("testing")
    with pytest.raises(ValueError, match="qa, sentiment, entities"):
        data.sft_examples("train", n_per_family=2, families=["qa", "jokes"])
    with pytest.raises(ValueError, match="families"):
        data.sft_examples("train", n_per_family=2, families=[])
    # a family named twice would repeat every one of its prompts within the split
    with pytest.raises(ValueError, match="families names 'qa' more than once; list each"):
        data.sft_examples("val", n_per_family=2, families=["qa", "strings", "qa"])
    with pytest.raises(ValueError, match=">= 0"):
        data.sft_examples("train", n_per_family=-1)
    with pytest.raises(TypeError, match="int"):
        data.sft_examples("train", n_per_family=2.5)
    with pytest.raises(TypeError, match="int"):
        data.sft_examples("train", n_per_family=True)
    with pytest.raises(TypeError, match="seed"):
        data.sft_examples("train", n_per_family=1, seed=None)
    assert data.sft_examples("val", n_per_family=0) == []


def test_running_out_of_distinct_examples_is_explained(monkeypatch):
    """A family with too few distinct prompts says so instead of looping forever."""
    from dataclasses import replace

    from sftlearn.data.tasks import Item

    def one_prompt(rng, templates):
        return Item("What is 1 + 1?", "2", templates[0].id, "What is 1 + 1?")

    monkeypatch.setitem(FAMILIES, "arithmetic", replace(FAMILIES["arithmetic"], draw=one_prompt))
    with pytest.raises(ValueError, match="ask for fewer"):
        family_examples("arithmetic", "train", 2)


def test_all_sft_data_is_fast():
    # CPU time of this process, not wall time: a busy machine must not fail the test.
    start = time.process_time()
    for split in data.SFT_SPLITS:
        data.sft_examples(split)
    assert time.process_time() - start < 10  # typically ~1 s
