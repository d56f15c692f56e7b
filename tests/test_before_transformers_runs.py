"""benchmarks/before_transformers_runs.py reproduces chapter 06's off-page runs by patching the
lesson's constants: every patch must still apply to the lesson as it is, and the parsers must
read the lesson's own printouts (checked on its committed outputs)."""

import math
import sys
from pathlib import Path

import nbformat
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import before_transformers_runs as runs  # noqa: E402  (a benchmark script: an error must fail, not skip)


def committed_text():
    nb = nbformat.read(str(runs.NOTEBOOK), as_version=4)
    return "\n".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                     for out in cell.outputs if out.output_type == "stream")


def test_every_patch_applies_exactly_once_to_the_lesson(capsys):
    runs.main(["--show-patches"])  # a patch whose text the lesson lost raises SystemExit
    out = capsys.readouterr().out
    assert "lr-sweep: 3 executions" in out and "long: 1 executions" in out
    assert "recall: 8 executions" in out and "log-uniform" in out


def test_the_parsers_read_the_lessons_printouts():
    text = committed_text()
    lm = runs.parse_lm(text)
    assert set(lm) == {"MLP (ReLU)", "MLP (GELU)", "MLP (tanh)", *runs.LM_NAMES}
    assert all(0 < r["val"] < math.log(200) for r in lm.values())  # losses in nats, not noise
    assert lm["CNN"]["params"] > 0 and lm["MLP (GELU)"]["params"] > 0
    recall = runs.parse_recall(text)
    assert recall["attention"] == (100, 100, 100)
    assert all(0 <= v <= 100 for bands in recall.values() for v in bands)


def test_the_curriculum_draws_every_distance_from_1_to_47_mostly_short_ones():
    LENGTH, n = 48, 200_000
    generator = torch.Generator().manual_seed(0)
    distance = eval(runs.LOG_UNIFORM_DISTANCES.split("=", 1)[1].split("#")[0],
                    {"torch": torch, "math": math, "generator": generator, "n": n, "LENGTH": LENGTH})
    assert set(distance.tolist()) == set(range(1, LENGTH))
    short, far = (distance <= 5).float().mean(), (distance >= 21).float().mean()
    assert 0.44 < short < 0.48 and 0.19 < far < 0.23  # log-uniform: ln 6 / ln 48 and ln(48/21) / ln 48
