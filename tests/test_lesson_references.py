"""The lessons and solutions refer only to things that exist.

Their markdown, and the comments of their code, name package objects (`sftlearn.zoo.base_model`),
repository files (`benchmarks/RESULTS.md`), numbered sections of the same notebook ("section 4")
and chapters ("chapter 08"). A rename, a move or a renumbering leaves such a reference pointing
nowhere without failing anything else; these tests catch it. exercises/ is generated from
solutions/ (`sftlearn build-exercises`), so it is covered through solutions/.
"""

from __future__ import annotations

import ast
import importlib
import io
import re
import tokenize
import types
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(ROOT.glob("notebooks/*.ipynb")) + sorted(ROOT.glob("solutions/*.ipynb"))
IDS = [str(path.relative_to(ROOT)) for path in NOTEBOOKS]
# The chapters are the lessons: notebooks/00_welcome.ipynb ... notebooks/13_adversarial.ipynb.
CHAPTERS = {int(path.name[:2]) for path in ROOT.glob("notebooks/[0-9][0-9]_*.ipynb")}

FENCE = re.compile(r"```.*?```", re.S)  # a fenced code block: code, not prose
CODE_SPAN = re.compile(r"(?<!`)`([^`]+)`(?!`)")  # `inline code`
# sftlearn.zoo.base_model, but not a piece of a longer name or path (x.sftlearn.y, a/sftlearn.y).
SFTLEARN_NAME = re.compile(r"(?<![\w./-])sftlearn(?:\.\w+)+")
# A code span that is exactly a dotted name, maybe called: `data.score`, `zoo.base_model("x")`.
DOTTED_SPAN = re.compile(r"([A-Za-z_]\w*)((?:\.\w+)+)(?:\(.*\))?", re.S)
# A path under one of the repository's folders, naming a file (with an extension) or a folder
# (with a trailing slash): `benchmarks/RESULTS.md`, `notebooks/`. A bare name such as
# `environment.yml` is left out: without a folder it cannot be told from a file name in an example.
REPO_PATH = re.compile(
    r"(?:benchmarks|notebooks|solutions|exercises|sftlearn|tests|docs)/"
    r"(?:[\w.-]+/)*(?:[\w.-]+\.[A-Za-z0-9]+)?"
)
# The lessons number their sections as "## 4 · Title" (03_attention: "## 1. Title"). Only level-2
# headings count: 09's "### 1 · ..." are its experiments, not sections.
NUMBERED_HEADING = re.compile(r"^## (\d+)(?: ·|\.) ", re.M)
# "section 4", "Section 7", "sections 2 and 3"; "chapter 08", "chapters 07 and 08".
NUMBER_LIST = r"(\d+(?:(?:, | and | or | to )\d+)*)"
SECTION_REF = re.compile(r"\b[Ss]ections? " + NUMBER_LIST + r"\b")
CHAPTER_REF = re.compile(r"\b[Cc]hapters? " + NUMBER_LIST + r"\b")


def cells(path: Path) -> list:
    return nbformat.read(path, as_version=4).cells


def comments(source: str) -> str:
    """A code cell's comments, one per line ('' for a cell that is not Python)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return ""
    return "\n".join(token.string for token in tokens if token.type == tokenize.COMMENT)


def prose(path: Path) -> list[tuple[int, str]]:
    """(cell index, text) of every markdown cell without its fenced code, and of every code
    cell's comments."""
    texts = []
    for index, cell in enumerate(cells(path)):
        if cell.cell_type == "markdown":
            texts.append((index, FENCE.sub("", cell.source)))
        elif cell.cell_type == "code":
            texts.append((index, comments(cell.source)))
    return texts


def import_module(name: str) -> types.ModuleType | None:
    """The module `name`, or None when no module has that name."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        # Only "`name` is not a module" gives None. A module that fails to import for another
        # reason is a bug of its own and should not be hidden.
        if error.name is None or not (name + ".").startswith(error.name + "."):
            raise
        return None


def resolves(dotted: str) -> bool:
    """Whether `dotted` names something: import its longest module prefix, getattr the rest."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        obj = import_module(".".join(parts[:n]))
        if obj is None:
            continue
        try:
            for attr in parts[n:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


def sftlearn_module_names(path: Path) -> dict[str, str]:
    """The names a notebook's code binds to sftlearn modules (`from sftlearn import data` gives
    data -> sftlearn.data). A name the notebook also assigns (`data = ...`) is left out: what
    `data.x` in its text means then depends on the cell, and checking it could fail wrongly."""
    bound, assigned = {}, set()
    for cell in cells(path):
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module.split(".")[0] == "sftlearn":
                    for alias in node.names:
                        # imported as a submodule: the package need not have imported it yet
                        full = f"{node.module}.{alias.name}"
                        if import_module(full) is not None:
                            bound[alias.asname or alias.name] = full
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname and alias.name.startswith("sftlearn."):
                        bound[alias.asname] = alias.name
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                assigned.add(node.id)
            elif isinstance(node, ast.arg):
                assigned.add(node.arg)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                assigned.add(node.name)
    return {name: module for name, module in bound.items() if name not in assigned}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_package_names_resolve(path):
    modules = sftlearn_module_names(path)
    broken = []
    for index, text in prose(path):
        # sftlearn.module.name, backticked or not
        for match in SFTLEARN_NAME.finditer(text):
            if not resolves(match.group()):
                broken.append(f"cell {index}: {match.group()}")
        # `data.score`, where the notebook's code did `from sftlearn import data`
        for span in CODE_SPAN.findall(text):
            dotted = DOTTED_SPAN.fullmatch(span)
            if dotted and dotted[1] in modules and not resolves(modules[dotted[1]] + dotted[2]):
                broken.append(f"cell {index}: `{span}` ({modules[dotted[1]]}{dotted[2]})")
    assert not broken, "names that sftlearn does not have:\n" + "\n".join(broken)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_repository_paths_exist(path):
    missing = []
    for index, text in prose(path):
        for span in CODE_SPAN.findall(text):
            # a path alone or inside a command line: `python benchmarks/x.py --part long`
            for token in span.split():
                # `notebooks/NN_topic.ipynb` is a pattern for every chapter, not a file.
                if not REPO_PATH.fullmatch(token) or "NN_" in token:
                    continue
                if not (ROOT / token).exists():
                    missing.append(f"cell {index}: {token}")
    assert not missing, "paths that are not in the repository:\n" + "\n".join(missing)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_section_references_match_headings(path):
    # "section N" means a section of this notebook. A notebook without numbered sections (00, 01,
    # 07 to 11 and every solutions/ notebook, whose headings are "## Exercise N · ...") must not
    # refer to one at all.
    sections = {
        int(number)
        for cell in cells(path)
        if cell.cell_type == "markdown"
        for number in NUMBERED_HEADING.findall(FENCE.sub("", cell.source))
    }
    wrong = [
        f"cell {index}: {match.group()}"
        for index, text in prose(path)
        for match in SECTION_REF.finditer(text)
        if any(int(n) not in sections for n in re.findall(r"\d+", match[1]))
    ]
    assert not wrong, (
        f"sections this notebook does not have (its numbered sections: {sorted(sections)}):\n"
        + "\n".join(wrong)
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_chapter_references_exist(path):
    wrong = [
        f"cell {index}: {match.group()}"
        for index, text in prose(path)
        for match in CHAPTER_REF.finditer(text)
        if any(int(n) not in CHAPTERS for n in re.findall(r"\d+", match[1]))
    ]
    first, last = min(CHAPTERS), max(CHAPTERS)
    assert not wrong, f"chapters other than {first} to {last}:\n" + "\n".join(wrong)


def test_the_patterns_find_what_they_are_meant_to():
    # Guards against a pattern that silently matches nothing, which would pass every test above.
    assert CHAPTERS == set(range(14))
    text = "see section 4, sections 2 and 3, Section 7 and chapters 07 and 08; chapter 9"
    assert [m[1] for m in SECTION_REF.finditer(text)] == ["4", "2 and 3", "7"]
    assert [m[1] for m in CHAPTER_REF.finditer(text)] == ["07 and 08", "9"]
    headings = "## 4 · Title\n## 1. Title\n### 5 · Sub\n## Step 6 · X"
    assert NUMBERED_HEADING.findall(headings) == ["4", "1"]
    assert REPO_PATH.fullmatch("benchmarks/x.py") and REPO_PATH.fullmatch("notebooks/")
    assert not REPO_PATH.fullmatch("benchmarks/results") and not REPO_PATH.fullmatch("x/y.py")
    assert resolves("sftlearn.zoo.base_model") and resolves("sftlearn.check.ch03")
    assert not resolves("sftlearn.zoo.no_such_name") and not resolves("sftlearn.no_such_module")
    # 08 imports zoo before anything else has imported sftlearn.zoo
    assert sftlearn_module_names(ROOT / "notebooks/08_pretraining.ipynb")["zoo"] == "sftlearn.zoo"
