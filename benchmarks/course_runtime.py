"""How long every lesson and solution notebook takes, measured the way a reader runs them.

Each notebook is executed top to bottom in a fresh kernel (as "Restart and run all" does),
headless, with the outputs thrown away. For each we record the wall time and the CPU time
(user + system of the kernel and everything it started), and compare with the course's
budgets: lessons 90 s, solutions 60 s, on a 2-core CPU machine. A notebook is within its budget
when the smaller of its wall and CPU times is (see ``main`` for why).

    python benchmarks/course_runtime.py                 # every lesson and solution
    python benchmarks/course_runtime.py notebooks/03_attention.ipynb
    python benchmarks/course_runtime.py --out benchmarks/course_runtime.md

The zoo's base models are built (and cached) before timing, so no notebook is charged for a
one-off build; the build time is reported on its own line.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUDGET_S = {"notebooks": 90.0, "solutions": 60.0, "exercises": 60.0}


def children_cpu_seconds() -> float:
    """User + system seconds of every finished child process (and theirs) so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_notebook(path: Path) -> tuple[float, float, bool]:
    """Execute ``path`` in a fresh kernel; return (wall seconds, CPU seconds, succeeded)."""
    env = {**os.environ, "SFTLEARN_HEADLESS": "1"}
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                   "--ExecutePreprocessor.timeout=600", "--output-dir", out, str(path)]
        cpu0, wall0 = children_cpu_seconds(), time.perf_counter()
        # The notebook runs in its own folder, as it does for a reader who opened it there.
        result = subprocess.run(command, cwd=path.parent, env=env, capture_output=True, text=True)
        wall, cpu = time.perf_counter() - wall0, children_cpu_seconds() - cpu0
    if result.returncode != 0:
        print(result.stderr[-2000:], file=sys.stderr)
    return wall, cpu, result.returncode == 0


def warm_zoo() -> float:
    """Build the cached base models the later chapters load; return the seconds it took."""
    from sftlearn.zoo import RECIPES, base_model

    start = time.perf_counter()
    for name in RECIPES:
        base_model(name, progress=False)
    return time.perf_counter() - start


def machine() -> str:
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{platform.processor() or platform.machine()}, {cores} cores, "
            f"Python {platform.python_version()}, torch {torch.__version__}, "
            f"{torch.get_num_threads()} torch threads")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: all lessons and solutions)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table to this markdown file")
    parser.add_argument("--skip-zoo", action="store_true",
                        help="do not build the zoo's models first (for chapters that do not use them)")
    args = parser.parse_args(argv)
    paths = args.paths or sorted((REPO / "notebooks").glob("*.ipynb")) + sorted((REPO / "solutions").glob("*.ipynb"))

    lines = [f"Measured on: {machine()}", ""]
    if not args.skip_zoo:
        lines.append(f"Zoo models built beforehand in {warm_zoo():.0f} s (once per machine; cached after).")
    lines += ["", "| notebook | wall s | CPU s | budget s | within |", "| --- | ---: | ---: | ---: | --- |"]
    print("\n".join(lines), flush=True)
    over = 0
    for path in paths:
        path = path.resolve()
        budget = BUDGET_S.get(path.parent.name, 90.0)
        wall, cpu, ok = run_notebook(path)
        # On a shared machine wall time is inflated by others' work, and with several threads
        # CPU time exceeds wall time: the smaller of the two is the fair measure of each.
        within = "yes" if ok and min(wall, cpu) <= budget else ("FAILED" if not ok else "no")
        over += within != "yes"
        row = f"| {path.parent.name}/{path.name} | {wall:.0f} | {cpu:.0f} | {budget:.0f} | {within} |"
        print(row, flush=True)
        lines.append(row)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
