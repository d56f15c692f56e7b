"""Tests of sftlearn.glossary: the English ↔ Chinese key terms of the course."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sftlearn.glossary import CHAPTERS, GLOSSARY, Term, UnknownTermError, glossary_table, lookup, terms
from sftlearn.glossary import _chinese_names, _compact, _key

CJK = re.compile(r"[\u4e00-\u9fff]")

# Terms the course promises to cover, with the standard Chinese name expected for some.
REQUIRED = [
    "token", "BPE", "vocabulary", "embedding", "attention", "query", "key", "value", "softmax",
    "causal mask", "multi-head attention", "cross-attention", "entropy", "cross-entropy",
    "KL divergence", "perplexity", "gradient", "learning rate", "SGD", "momentum", "Adam",
    "AdamW", "weight decay", "warmup", "RNN", "LSTM", "GRU", "layer normalisation",
    "residual connection", "positional embedding", "Transformer", "decoder", "encoder",
    "pretraining", "fine-tuning", "SFT", "instruction", "chat template", "loss mask", "padding",
    "overfitting", "early stopping", "LoRA", "adapter", "rank", "freezing",
    "classification head", "token classification", "precision", "recall", "F1",
    "confusion matrix", "hyper-parameter", "cross-validation", "data augmentation",
    "mixed precision", "checkpoint", "GAN", "generator", "discriminator", "mode collapse",
]
STANDARD_CHINESE = {
    "token": "词元",
    "embedding": "嵌入",
    "attention": "注意力机制",
    "perplexity": "困惑度",
    "cross-entropy": "交叉熵",
    "fine-tuning": "微调",
    "supervised fine-tuning": "监督微调",
    "LoRA": "低秩适配",
    "byte-pair encoding": "字节对编码",
    "causal mask": "因果掩码",
    "layer normalisation": "层归一化",
    "overfitting": "过拟合",
    "mode collapse": "模式崩溃",
}


def all_names(entry: Term) -> list[str]:
    return [entry.term, *_chinese_names(entry.chinese), *entry.aliases]


def test_every_entry_is_complete():
    for entry in GLOSSARY:
        assert entry.term.strip() == entry.term and entry.term, entry
        assert CJK.search(entry.chinese), f"{entry.term!r} has no Chinese name"
        assert entry.definition.strip(), f"{entry.term!r} has no definition"
        assert "\n" not in entry.definition, f"{entry.term!r}: the definition is one line"
        assert entry.chapter in CHAPTERS, entry


def test_no_duplicates_even_ignoring_case_hyphens_and_spaces():
    seen: dict[str, str] = {}
    for entry in GLOSSARY:
        for name in {_compact(_key(n)) for n in all_names(entry)}:
            assert name not in seen, f"{name!r} names both {seen[name]!r} and {entry.term!r}"
            seen[name] = entry.term


def test_no_two_terms_share_a_chinese_name():
    chinese = [entry.chinese for entry in GLOSSARY]
    assert len(chinese) == len(set(chinese))


def test_every_chapter_introduces_terms():
    for chapter in CHAPTERS:
        assert terms(chapter), f"chapter {chapter} has no terms"
    assert len(GLOSSARY) >= 100


@pytest.mark.parametrize("name", REQUIRED)
def test_the_course_key_terms_are_covered(name):
    assert lookup(name).chinese


@pytest.mark.parametrize(("name", "chinese"), STANDARD_CHINESE.items())
def test_standard_chinese_names(name, chinese):
    assert lookup(name).chinese == chinese


@pytest.mark.parametrize("query", ["Token", "TOKEN", " token ", "tOkEn"])
def test_lookup_ignores_case_and_surrounding_space(query):
    assert lookup(query).term == "token"


def test_lookup_by_alias_spelling_and_chinese():
    assert lookup("sft").term == "supervised fine-tuning"
    assert lookup("Layer Normalization").term == "layer normalisation"
    assert lookup("crossentropy").term == "cross-entropy"
    assert lookup("Cross Entropy").term == "cross-entropy"
    assert lookup("hyperparameter").term == "hyper-parameter"
    assert lookup("encoder-decoder").term == "encoder–decoder"
    assert lookup("困惑度").term == "perplexity"
    assert lookup("低秩适配").term == "LoRA"


@pytest.mark.parametrize(("query", "english"), [
    ("轮次", "epoch"),                      # stored as "轮次（epoch）"
    ("核采样", "top-p sampling"),           # stored as "核采样（top-p 采样）"
    ("top-p 采样", "top-p sampling"),
    ("相对熵", "KL divergence"),            # the gloss in brackets finds it too
    ("KL 散度", "KL divergence"),
    ("top-k", "top-k sampling"),            # the lessons' short names
    ("Top-P", "top-p sampling"),
])
def test_lookup_by_either_part_of_a_bracketed_chinese_name_and_by_short_name(query, english):
    assert lookup(query).term == english


def test_chinese_names_split_only_at_full_width_brackets():
    assert _chinese_names("轮次（epoch）") == ["轮次（epoch）", "轮次", "epoch"]
    assert _chinese_names("困惑度") == ["困惑度"]


def test_introduced_in_the_right_chapter():
    assert lookup("token").chapter == 1
    assert lookup("softmax").chapter == 3
    assert lookup("perplexity").chapter == 4
    assert lookup("AdamW").chapter == 5
    assert lookup("LSTM").chapter == 6
    assert lookup("SFT").chapter == 9
    assert lookup("LoRA").chapter == 10
    assert lookup("F1").chapter == 11
    assert lookup("cross-validation").chapter == 12
    assert lookup("mode collapse").chapter == 13


def test_unknown_term_has_a_clear_message_with_suggestions():
    with pytest.raises(KeyError) as info:
        lookup("tokenz")
    message = str(info.value)
    assert message.startswith("'tokenz' is not in the course glossary.")
    assert "Did you mean 'token'" in message
    assert "glossary_table()" in message


def test_unknown_term_is_also_a_value_error_and_without_suggestions_when_far():
    with pytest.raises(ValueError) as info:
        lookup("qwxz")
    assert isinstance(info.value, UnknownTermError)
    assert "Did you mean" not in str(info.value)


def test_lookup_rejects_non_strings():
    with pytest.raises(TypeError, match="expects a term as a str"):
        lookup(3)  # type: ignore[arg-type]


def test_markdown_table_has_header_and_one_row_per_term():
    table = glossary_table()
    lines = table.splitlines()
    assert lines[0] == "| English | 中文 | Meaning | Chapter |"
    assert lines[1] == "| --- | --- | --- | --- |"
    assert len(lines) == 2 + len(GLOSSARY)
    assert "| **perplexity** | 困惑度 |" in table
    # Each row has exactly four cells: an unescaped "|" in a definition would add one.
    for line in lines[2:]:
        assert len(re.findall(r"(?<!\\)\|", line)) == 5, line


def test_markdown_table_escapes_special_token_brackets():
    row = next(line for line in glossary_table(1).splitlines() if "**special token**" in line)
    assert "&lt;\\|bos\\|&gt;" in row


def test_table_for_one_chapter():
    table = glossary_table(chapter=1)
    assert "**byte-pair encoding** | 字节对编码" in table
    assert "**attention**" not in table
    assert all(line.endswith("| 01 |") for line in table.splitlines()[2:])
    assert glossary_table("01") == table


def test_html_table():
    table = glossary_table(4, fmt="html")
    assert table.startswith("<table><tr><th>English</th><th>中文</th>")
    assert "<td><b>perplexity</b></td><td>困惑度</td>" in table
    assert table.count("<tr>") == 1 + len(terms(4))


@pytest.mark.parametrize("bad", [14, -1, "one", 1.5, True])
def test_bad_chapter_is_explained(bad):
    with pytest.raises(ValueError, match="chapter must be a chapter number from 0 to 13"):
        glossary_table(bad)


def test_bad_format_is_explained():
    with pytest.raises(ValueError, match="fmt must be 'markdown' or 'html'"):
        glossary_table(fmt="latex")


# ----- the lessons and the glossary agree ---------------------------------------------------
# A lesson introduces a key term as **term** (中文 ...). Every such term must be in the glossary
# under the same Chinese name, so the chapter tables and the lessons never disagree.
LESSONS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
INTRODUCED = re.compile(r"\*\*([^*\n]+?)\*\*\s*\(([^)]*)\)")


def introduced_terms(text: str) -> list[tuple[str, str]]:
    """(term, its Chinese name) for every '**term** (中文, ...)' in a lesson's text."""
    found = []
    for match in INTRODUCED.finditer(text):
        chinese = re.split(r"[,;:，；：]", match.group(2))[0].strip()
        if CJK.search(chinese):
            found.append((match.group(1), chinese))
    return found


def lookup_plural(term: str) -> Term:
    """The glossary entry for a term as a lesson writes it, plural or not ('tokens')."""
    try:
        return lookup(term)
    except UnknownTermError:
        if term.endswith("s"):
            return lookup(term[:-1])
        raise


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_every_term_of_a_chapter_is_written_in_its_lesson(lesson):
    # A chapter's glossary table lists the terms it introduces; a term its lesson never
    # mentions belongs to another chapter.
    import nbformat

    notebook = nbformat.read(lesson, as_version=4)
    text = _key(" ".join(c.source for c in notebook.cells if c.cell_type == "markdown").replace("*", ""))
    missing = [entry.term for entry in terms(int(lesson.name[:2]))
               if not any(_key(name) in text for name in (entry.term, *entry.aliases))]
    assert not missing, f"{lesson.name} never writes {missing}"


def test_introduced_terms_are_found_in_a_lesson_like_text():
    text = "A **token** (词元) and **Jacobians** (雅可比矩阵: matrices). Not **bold** (here), " \
           "**softmax** (chapter 03)."
    assert introduced_terms(text) == [("token", "词元"), ("Jacobians", "雅可比矩阵")]
    assert lookup_plural("Jacobians").term == "Jacobian"


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_every_term_a_lesson_introduces_is_in_the_glossary_with_its_chinese_name(lesson):
    import nbformat

    notebook = nbformat.read(lesson, as_version=4)
    problems = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "markdown":
            continue
        for term, chinese in introduced_terms(cell.source):
            try:
                entry = lookup_plural(term)
            except UnknownTermError:
                problems.append(f"cell {index}: **{term}** ({chinese}) is not in the glossary")
                continue
            if chinese not in entry.chinese:
                problems.append(f"cell {index}: **{term}** ({chinese}) but the glossary says "
                                f"{entry.chinese}")
    assert not problems, "\n".join(problems)
