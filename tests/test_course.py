"""Tests of sftlearn.course: building exercises, validating and running notebooks.

The last tests are about the repository itself: committed exercises must match the
solutions they are generated from, and every exercise notebook must run with no
error other than its stubs' NotImplementedError.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from sftlearn.course import (
    SOLUTION_STUB,
    ExerciseMarkerError,
    NotebookRun,
    build_exercises,
    check_exercises_in_sync,
    list_chapters,
    make_exercise,
    notebook_is_clean,
    run_notebook,
    solution_regions,
    strip_outputs,
)

REPO = Path(__file__).resolve().parent.parent

FUNCTION_CELL = '''def count_characters(text):
    """How many characters `text` has."""
    ### BEGIN SOLUTION
    n = len(text)
    return n
    ### END SOLUTION'''

TOP_LEVEL_CELL = """### BEGIN SOLUTION
n_params = 3 * 4 + 4
### END SOLUTION
ch00.check_linear_parameter_count(n_params)"""

DEEP_CELL = """class Counter:
    def count(self, text):
        if text:
            ### BEGIN SOLUTION
            return len(text)
            ### END SOLUTION
        return 0"""


def code_cell(source: str, **fields) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.update(fields)
    return cell


def solution_notebook() -> nbformat.NotebookNode:
    """A small solution notebook using every feature, with outputs as if it had been run."""
    output = nbformat.v4.new_output("stream", name="stdout", text="✓ done\n")
    cells = [
        nbformat.v4.new_markdown_cell("# Chapter 99: Testing the builder\n\nSome words."),
        code_cell("from sftlearn.check import ch00", execution_count=1),
        code_cell(FUNCTION_CELL, execution_count=2, metadata={"scrolled": True, "nbgrader": {"solution": True}}),
        code_cell("ch00.check_count_characters(count_characters)", execution_count=3, outputs=[output]),
        code_cell(TOP_LEVEL_CELL, execution_count=4, outputs=[output]),
        code_cell(DEEP_CELL),
        nbformat.v4.new_markdown_cell("Why?\n\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION\n\nEnd."),
        code_cell("### BEGIN HIDDEN\nassert count_characters('ab') == 2\n### END HIDDEN"),
        code_cell("x = 1\n### BEGIN HIDDEN TESTS\nassert x == 1\n### END HIDDEN TESTS\nprint(x)"),
        code_cell("raise ValueError('a demonstration')", metadata={"tags": ["raises-exception"]}),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {
        "kernelspec": {"name": "sftlearn-env", "display_name": "My env", "language": "python"},
        "widgets": {"application/vnd.jupyter.widget-state+json": {"state": {}}},
        "language_info": {"name": "python", "version": "3.11.7"},
    }
    return nb


def write(nb: nbformat.NotebookNode, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


@pytest.fixture
def course(tmp_path: Path) -> Path:
    """A course folder whose solutions/ holds the small notebook above as 99_testing.ipynb."""
    write(solution_notebook(), tmp_path / "solutions" / "99_testing.ipynb")
    return tmp_path


def built(course: Path) -> nbformat.NotebookNode:
    (path,) = build_exercises(course / "solutions", course / "exercises")
    return nbformat.read(str(path), as_version=4)


# ---------------------------------------------------------------------- building


def test_solution_regions_become_one_stub_line_at_the_markers_indentation(course):
    cells = built(course).cells
    assert cells[2].source == (
        'def count_characters(text):\n    """How many characters `text` has."""\n    ' + SOLUTION_STUB
    )
    assert cells[4].source == SOLUTION_STUB + "\nch00.check_linear_parameter_count(n_params)"
    assert cells[5].source == (
        "class Counter:\n    def count(self, text):\n        if text:\n"
        "            " + SOLUTION_STUB + "\n        return 0"
    )
    assert SOLUTION_STUB == 'raise NotImplementedError("Exercise: replace this line with your code")'


def test_markdown_answers_become_a_placeholder(course):
    assert built(course).cells[6].source == "Why?\n\n*Your answer here.*\n\nEnd."


def test_hidden_regions_are_removed_and_emptied_cells_dropped(course):
    sources = [cell.source for cell in built(course).cells]
    assert len(sources) == 9  # the cell that was all hidden is gone
    assert "x = 1\nprint(x)" in sources
    assert not any("assert" in s or "BEGIN" in s or "len(text)" in s for s in sources[:6])


def test_outputs_metadata_and_ids_are_normalised(course):
    nb = built(course)
    assert nb.metadata == {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert [c.id for c in nb.cells[:3]] == ["cell-000", "cell-001", "cell-002"]
    assert nb.cells[2].metadata == {}
    assert nb.cells[-1].metadata == {"tags": ["raises-exception"]}
    assert (nb.nbformat, nb.nbformat_minor) == (4, 5)
    nbformat.validate(nb)


def test_building_twice_gives_identical_bytes_and_ignores_cell_ids(course):
    (path,) = build_exercises(course / "solutions", course / "exercises")
    first = path.read_bytes()
    # Re-save the solution with fresh random cell ids, as Jupyter would.
    solution = course / "solutions" / "99_testing.ipynb"
    write(solution_notebook(), solution)
    build_exercises(course / "solutions", course / "exercises")
    assert path.read_bytes() == first
    assert first.endswith(b"\n") and b"\r\n" not in first


def test_the_solution_notebook_is_not_changed(course):
    solution = course / "solutions" / "99_testing.ipynb"
    before = solution.read_bytes()
    build_exercises(course / "solutions", course / "exercises")
    assert solution.read_bytes() == before


def test_make_exercise_leaves_its_input_unchanged():
    nb = solution_notebook()
    before = nbformat.writes(nb)
    exercise = make_exercise(nb)
    assert nbformat.writes(nb) == before
    assert len(exercise.cells) == len(nb.cells) - 1


def test_every_notebook_is_built_in_sorted_order(course):
    write(solution_notebook(), course / "solutions" / "01_first.ipynb")
    (course / "solutions" / "notes.txt").write_text("not a notebook")
    paths = build_exercises(course / "solutions", course / "exercises")
    assert [p.name for p in paths] == ["01_first.ipynb", "99_testing.ipynb"]
    assert sorted(p.name for p in (course / "exercises").iterdir()) == ["01_first.ipynb", "99_testing.ipynb"]


def test_regions_are_found_per_cell():
    regions = solution_regions(solution_notebook())
    assert [(r.cell, r.begin, r.end, r.kind) for r in regions] == [
        (2, 2, 5, "SOLUTION"), (4, 0, 2, "SOLUTION"), (5, 3, 5, "SOLUTION"),
        (6, 2, 4, "SOLUTION"), (7, 0, 2, "HIDDEN"), (8, 1, 3, "HIDDEN TESTS"),
    ]


# ------------------------------------------------------------------ marker errors


def marker_error(source: str, tmp_path: Path, make_cell=None) -> str:
    cell = (make_cell or code_cell)(source)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# T"), cell])
    write(nb, tmp_path / "solutions" / "05_bad.ipynb")
    with pytest.raises(ExerciseMarkerError) as info:
        build_exercises(tmp_path / "solutions", tmp_path / "exercises")
    assert not (tmp_path / "exercises").exists()  # nothing is written on error
    return str(info.value)


def test_unclosed_begin_names_notebook_cell_and_line(tmp_path):
    message = marker_error("x = 1\n### BEGIN SOLUTION\ny = 2", tmp_path)
    assert "05_bad.ipynb, cell 1, line 2" in message
    assert "has no '### END SOLUTION'" in message


def test_nested_begin_is_an_error(tmp_path):
    message = marker_error("### BEGIN SOLUTION\n  ### BEGIN SOLUTION\n### END SOLUTION", tmp_path)
    assert "cell 1, line 2" in message and "cannot nest" in message


def test_end_without_begin_is_an_error(tmp_path):
    assert "without a '### BEGIN SOLUTION'" in marker_error("x = 1\n### END SOLUTION", tmp_path)


def test_mismatched_end_is_an_error(tmp_path):
    message = marker_error("### BEGIN SOLUTION\nx = 1\n### END HIDDEN", tmp_path)
    assert "write '### END SOLUTION'" in message


def test_misspelled_marker_is_an_error_so_solutions_cannot_leak(tmp_path):
    message = marker_error("## BEGIN SOLUTION\nx = 1\n### END SOLUTION", tmp_path)
    assert "looks like an exercise marker" in message and "line 1" in message


@pytest.mark.parametrize("source", [
    "### BEGIN_SOLUTION\nx = 1\n### END_SOLUTION",  # underscores
    "### BEGIN-SOLUTION\nx = 1\n### END SOLUTION",
    "# begin solution\nx = 1\n### END SOLUTION",
])
def test_other_misspellings_in_code_are_errors(source, tmp_path):
    assert "looks like an exercise marker" in marker_error(source, tmp_path)


@pytest.mark.parametrize("source", [
    "## BEGIN SOLUTION\nThe answer is 42.\n### END SOLUTION",
    "**BEGIN SOLUTION**\nThe answer is 42.\n### END SOLUTION",
    "### BEGIN SOLUTION\nThe answer is 42.\n### END_SOLUTION",
])
def test_a_markdown_line_that_is_only_a_misspelled_marker_is_an_error(source, tmp_path):
    message = marker_error(source, tmp_path, nbformat.v4.new_markdown_cell)
    assert "looks like an exercise marker" in message


def test_markdown_prose_may_mention_markers(tmp_path):
    prose = "Put the answer between `### BEGIN SOLUTION` and `### END SOLUTION` lines, as nbgrader does."
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(prose)])
    assert solution_regions(nb) == []


def test_a_raw_cell_is_read_like_code(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_raw_cell("### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION")])
    exercise = make_exercise(nb)
    assert "42" not in exercise.cells[0].source  # the answer does not pass through
    assert "looks like an exercise marker" in marker_error(
        "## BEGIN SOLUTION\nanswer = 42\n### END SOLUTION", tmp_path, nbformat.v4.new_raw_cell)


def test_missing_or_empty_solutions_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_exercises(tmp_path / "nowhere", tmp_path / "exercises")
    (tmp_path / "solutions").mkdir()
    with pytest.raises(ValueError, match="no \\*.ipynb notebooks"):
        build_exercises(tmp_path / "solutions", tmp_path / "exercises")


def test_refuses_to_overwrite_the_solutions(course):
    with pytest.raises(ValueError, match="overwrite the solutions"):
        build_exercises(course / "solutions", course / "solutions")


# ----------------------------------------------------------- clean / in-sync checks


def test_strip_outputs_and_notebook_is_clean(tmp_path):
    path = write(solution_notebook(), tmp_path / "nb.ipynb")
    assert not notebook_is_clean(path)
    nb = strip_outputs(nbformat.read(str(path), as_version=4))
    write(nb, path)
    assert notebook_is_clean(path)
    assert nb.cells[2].metadata["scrolled"] is True  # other metadata is left alone


def test_in_sync_after_building(course):
    build_exercises(course / "solutions", course / "exercises")
    assert check_exercises_in_sync(course / "solutions", course / "exercises") == []


def test_out_of_sync_exercises_are_described(course):
    exercises = course / "exercises"
    assert check_exercises_in_sync(course / "solutions", exercises) == [
        f"{exercises / '99_testing.ipynb'} is missing: run `sftlearn build-exercises` "
        "(never edit exercises by hand)."
    ]
    (path,) = build_exercises(course / "solutions", exercises)
    nb = nbformat.read(str(path), as_version=4)
    nb.cells[4].source = "n_params = 16"
    write(nb, path)
    write(nb, exercises / "50_orphan.ipynb")
    problems = check_exercises_in_sync(course / "solutions", exercises)
    assert len(problems) == 2
    assert "99_testing.ipynb differs from what" in problems[0] and "(cell 4 differs)" in problems[0]
    assert "50_orphan.ipynb has no solution" in problems[1]


# ---------------------------------------------------------------------- chapters


def test_list_chapters(tmp_path):
    lesson = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("Intro\n\n## 3. Attention  ")])
    write(lesson, tmp_path / "notebooks" / "03_attention.ipynb")
    write(solution_notebook(), tmp_path / "solutions" / "03_attention.ipynb")
    write(nbformat.v4.new_notebook(), tmp_path / "solutions" / "01_tokens.ipynb")
    write(nbformat.v4.new_notebook(), tmp_path / "notebooks" / "scratch.ipynb")
    chapters = list_chapters(tmp_path)
    assert [(c.number, c.slug, c.title, c.name) for c in chapters] == [
        (1, "tokens", "Tokens", "01_tokens"),
        (3, "attention", "3. Attention", "03_attention"),
    ]
    assert chapters[1].lesson == tmp_path / "notebooks" / "03_attention.ipynb"
    assert chapters[1].solution == tmp_path / "solutions" / "03_attention.ipynb"
    assert chapters[1].exercise is None and chapters[0].lesson is None


def test_list_chapters_rejects_two_names_for_one_number(tmp_path):
    write(nbformat.v4.new_notebook(), tmp_path / "notebooks" / "03_attention.ipynb")
    write(nbformat.v4.new_notebook(), tmp_path / "solutions" / "03_attn.ipynb")
    with pytest.raises(ValueError, match="chapter 03 has two names"):
        list_chapters(tmp_path)


# ------------------------------------------------------------------ running notebooks


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> tuple[NotebookRun, int]:
    """One kernel run (starting Python with torch takes seconds) shared by the tests below:
    the exercise built from solution_notebook(), followed by three cells that fail."""
    folder = tmp_path_factory.mktemp("run")
    write(solution_notebook(), folder / "solutions" / "99_testing.ipynb")
    (path,) = build_exercises(folder / "solutions", folder / "exercises")
    nb = nbformat.read(str(path), as_version=4)
    n_built = len(nb.cells)
    nb.cells += [
        code_cell("print(total)"),
        code_cell("ch00.check_linear_parameter_count(12)"),
        code_cell("ch00.check_linear_parameter_count(16)"),
    ]
    write(nb, path)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SFTLEARN_GRADING", "1")  # must not reach the kernel unless grading=True
        return run_notebook(path, timeout=120), n_built


def test_stub_errors_and_tagged_cells_are_allowed(executed):
    run, _ = executed
    assert [(e.index, e.ename) for e in run.errors if e.allowed] == [
        (4, "NotImplementedError"), (8, "ValueError"),
    ]
    check_output = run.notebook.cells[3].outputs[0].text
    assert check_output.startswith("… count_characters: not done yet.")
    assert run.notebook.cells[-1].outputs[0].text.startswith("✓ linear_parameter_count:")


def test_other_errors_are_reported_with_cell_and_message(executed):
    run, n_built = executed
    assert not run.ok
    assert [(e.index, e.ename) for e in run.unexpected] == [(n_built, "NameError"), (n_built + 1, "CheckFailure")]
    report = run.report()
    assert f"cell {n_built} ('print(total)'): NameError: name 'total' is not defined" in report
    assert "put that exercise's check in the same cell" in report


def test_a_failed_check_shows_the_student_two_short_lines(executed):
    run, n_built = executed
    failure = run.notebook.cells[n_built + 1].outputs[0]
    assert failure.traceback == [
        "✗ linear_parameter_count: 12 counts the weight matrix (3 × 4) only.",
        "Hint: A Linear layer also has a bias: one number per output.",
    ]


# ------------------------------------------------------------- the repository itself


def committed(folder: str) -> list[Path]:
    return sorted((REPO / folder).glob("*.ipynb"))


def test_committed_exercises_match_the_solutions():
    if not committed("solutions"):
        pytest.skip("solutions/ has no notebooks yet")
    problems = check_exercises_in_sync(REPO / "solutions", REPO / "exercises")
    assert problems == [], "\n".join(problems)


def test_solutions_and_exercises_are_committed_without_outputs():
    notebooks = committed("solutions") + committed("exercises")
    if not notebooks:
        pytest.skip("no solution or exercise notebooks yet")
    dirty = [str(p.relative_to(REPO)) for p in notebooks if not notebook_is_clean(p)]
    assert dirty == [], f"clear the outputs of: {', '.join(dirty)}"


def test_every_solution_notebook_has_an_exercise():
    if not committed("solutions"):
        pytest.skip("solutions/ has no notebooks yet")
    without = [p.name for p in committed("solutions")
               if not solution_regions(nbformat.read(str(p), as_version=4), str(p))]
    assert without == [], f"no '### BEGIN SOLUTION' region in: {', '.join(without)}"


def exercise_params() -> list:
    notebooks = committed("exercises")
    if not notebooks:
        return [pytest.param(None, marks=pytest.mark.skip(reason="exercises/ has no notebooks yet"), id="none")]
    return [pytest.param(p, id=p.stem) for p in notebooks]


@pytest.mark.slow
@pytest.mark.parametrize("exercise", exercise_params())
def test_exercise_notebook_runs_with_only_stub_errors(exercise: Path):
    """Everything in a student notebook but the stubs must run (DESIGN: Notebooks and tests)."""
    run = run_notebook(exercise, timeout=300)
    assert run.ok, run.report()
