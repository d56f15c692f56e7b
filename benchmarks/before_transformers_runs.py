"""Chapter 06's off-page runs, reproduced by executing the lesson with a few constants changed.

Chapter 06 (``notebooks/06_before_transformers.ipynb``) quotes three sets of results from runs
that are not on its page. This script repeats them from the lesson itself, not from a copy of
its code: it reads the notebook with nbformat, replaces a few constants in its code cells by
exact text substitution (a replacement whose text is not found exactly once stops the script),
executes the patched notebook top to bottom in a fresh headless kernel with nbclient
(``SFTLEARN_HEADLESS=1``, the lesson's own single torch thread), and parses what its cells print.
The notebook file is never written.

Parts (``--part``):

* ``lr-sweep`` (3 executions): every language model of the chapter (the window MLP with ReLU,
  GELU and tanh; the RNN, LSTM, GRU, causal CNN and micro GPT) at learning rate 0.003, then
  0.01, then 0.02, with the lesson's budget (``STEPS = 150``). The lesson says 0.02 is best for
  all except the GPT, which does best at 0.003.
* ``long`` (1 execution): the comparison with ``STEPS = 1500`` and the lesson's learning rates.
  The lesson quotes CNN 0.524, LSTM 0.533, GPT 0.535, GRU 0.542, MLP 0.553, RNN 0.600.
* ``recall`` (8 executions): the long-range recall task (RNN, LSTM and attention readers) at
  learning rates 0.003, 0.01 and 0.02, with seeds 0 and 1 each; the seed sets both the
  readers' initial weights and the order of their training batches (the test sequences stay
  the lesson's). Then the "curriculum" variant twice (learning rate 0.01, seeds 0 and 1):
  ``recall_batch`` draws the training distances log-uniformly on 1..47 instead of uniformly
  (a one-line substitution in the lesson's own function; the test set passes its distances
  explicitly and is unchanged).

``all`` runs the three parts: 12 executions, about 10 to 20 minutes on a 2-core CPU.

    python benchmarks/before_transformers_runs.py --part all
    python benchmarks/before_transformers_runs.py --part recall
    python benchmarks/before_transformers_runs.py --part long --show-patches   # print the patches, run nothing
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "06_before_transformers.ipynb"
CELL_TIMEOUT_S = 3600  # per cell; the longest (STEPS = 1500) takes a few minutes on 2 cores

SWEEP_LRS = (0.003, 0.01, 0.02)
RECALL_LRS = (0.003, 0.01, 0.02)
RECALL_SEEDS = (0, 1)
CURRICULUM_LR = 0.01
LM_NAMES = ("RNN", "LSTM", "GRU", "CNN", "GPT")  # the contenders of section 6, besides the MLP
READERS = ("RNN", "LSTM", "attention")
BANDS = ("1-5", "6-20", "21-47")

# The lesson's text that the patches replace (each must occur exactly once in its code cells).
STEPS_LINE = "STEPS = 150\n"
MLP_LR = "losses, seconds = train_lm(model, lr=0.02)"
CONTENDER_LRS = {  # model -> its line's text in the `contenders` dictionary, up to the rate
    "RNN": ('lambda: RecurrentLM("RNN", V), ', "0.02"),
    "LSTM": ('lambda: RecurrentLM("LSTM", V), ', "0.02"),
    "GRU": ('lambda: RecurrentLM("GRU", V), ', "0.02"),
    "CNN": ("lambda: CausalCNNLM(V), ", "0.02"),
    "GPT": ("lambda: GPTLM(V), ", "0.003"),
}
READER_LR = "def train_reader(model, steps=300, lr=0.01):"
READER_DATA_SEED = "generator = torch.Generator().manual_seed(0)\n    optimizer"
READER_INIT_SEED = "torch.manual_seed(0)\n    readers[name] = build()"
UNIFORM_DISTANCES = "distance = torch.randint(1, LENGTH, (n,), generator=generator)"
# exp(u ln 48) for u uniform in [0, 1) is log-uniform in [1, 48); truncated, 1..47
LOG_UNIFORM_DISTANCES = ("distance = torch.exp(torch.rand(n, generator=generator) * math.log(LENGTH))"
                         ".long().clamp(1, LENGTH - 1)  # curriculum: log-uniform")


def patch(nb: nbformat.NotebookNode, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in the notebook's code; ``old`` must occur exactly once."""
    hits = [(cell, cell.source.count(old)) for cell in nb.cells if cell.cell_type == "code"]
    total = sum(n for _, n in hits)
    if total != 1:
        raise SystemExit(f"patch failed: expected the text {old!r} exactly once in the code cells "
                         f"of {NOTEBOOK.name}, found it {total} times; has the lesson changed?")
    cell = next(cell for cell, n in hits if n)
    cell.source = cell.source.replace(old, new)


def lm_patches(lr: float | None = None, steps: int | None = None) -> list[tuple[str, str]]:
    """Every language model at learning rate ``lr`` (None: the lesson's), ``steps`` steps."""
    patches = []
    if steps is not None:
        patches.append((STEPS_LINE, f"STEPS = {steps}\n"))
    if lr is not None:
        patches.append((MLP_LR, MLP_LR.replace("0.02", repr(lr))))
        for prefix, rate in CONTENDER_LRS.values():
            patches.append((prefix + rate + ")", f"{prefix}{lr!r})"))
    return patches


def recall_patches(lr: float, seed: int, curriculum: bool = False) -> list[tuple[str, str]]:
    patches = [
        (READER_LR, READER_LR.replace("0.01", repr(lr))),
        (READER_DATA_SEED, READER_DATA_SEED.replace("(0)", f"({seed})")),
        (READER_INIT_SEED, READER_INIT_SEED.replace("(0)", f"({seed})")),
    ]
    if curriculum:
        patches.append((UNIFORM_DISTANCES, LOG_UNIFORM_DISTANCES))
    return patches


def execute(patches: list[tuple[str, str]], label: str) -> str:
    """Run the lesson with ``patches`` applied in a fresh kernel; return all its printed text."""
    from nbclient import NotebookClient

    from sftlearn.course import _this_python_kernel_manager

    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    for old, new in patches:
        patch(nb, old, new)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        allow_errors=False,  # a cell error stops the run and this script
        kernel_name="python3",
        kernel_manager_class=_this_python_kernel_manager(),  # the Python running this script
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    env = {k: v for k, v in os.environ.items() if k != "SFTLEARN_GRADING"}
    env.update(SFTLEARN_HEADLESS="1", SFTLEARN_DEVICE="cpu", MPLBACKEND="Agg")
    start = time.perf_counter()
    client.execute(env=env)
    print(f"  [{label}: executed in {time.perf_counter() - start:.0f} s]", flush=True)
    return "\n".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                     for out in cell.outputs if out.output_type == "stream")


def parse_lm(text: str) -> dict[str, dict[str, float]]:
    """Validation loss and CPU seconds of every language model, from the lesson's printouts."""
    found = {}
    for act, val, sec in re.findall(r"^MLP with (\w+)\s+validation loss ([\d.]+)\s+\(([\d.]+) s", text, re.M):
        found[f"MLP ({act})"] = dict(val=float(val), seconds=float(sec))
    for name, params, val, sec in re.findall(r"^(RNN|LSTM|GRU|CNN|GPT)\s+([\d,]+)\s+([\d.]+)\s+([\d.]+)$",
                                             text, re.M):
        found[name] = dict(val=float(val), seconds=float(sec), params=int(params.replace(",", "")))
    missing = [n for n in ("MLP (ReLU)", "MLP (GELU)", "MLP (tanh)", *LM_NAMES) if n not in found]
    if missing:
        raise SystemExit(f"could not find the validation losses of {missing} in the lesson's output")
    found["MLP (GELU)"]["params"] = int(re.search(r"^MLP\s+([\d,]+)\s", text, re.M)[1].replace(",", ""))
    return found


def parse_recall(text: str) -> dict[str, tuple[int, int, int]]:
    """Accuracy (%) per band of distances of every reader."""
    rows = re.findall(r"^(RNN|LSTM|attention)\s+accuracy at distances 1-5: (\d+)%, 6-20: (\d+)%, "
                      r"21-47: (\d+)%", text, re.M)
    found = {name: tuple(int(v) for v in values) for name, *values in rows}
    if sorted(found) != sorted(READERS):
        raise SystemExit(f"expected the accuracies of {READERS} in the lesson's output, found {sorted(found)}")
    return found


def part_lr_sweep() -> None:
    print("== lr-sweep: validation loss after STEPS = 150, every model at each learning rate ==", flush=True)
    by_lr = {lr: parse_lm(execute(lm_patches(lr=lr), f"lr {lr}")) for lr in SWEEP_LRS}
    names = ["MLP (ReLU)", "MLP (GELU)", "MLP (tanh)", *LM_NAMES]
    print(f"{'model':11s}" + "".join(f"{'lr ' + str(lr):>10s}" for lr in SWEEP_LRS) + f"{'best lr':>9s}")
    for name in names:
        losses = [by_lr[lr][name]["val"] for lr in SWEEP_LRS]
        best = SWEEP_LRS[losses.index(min(losses))]
        print(f"{name:11s}" + "".join(f"{v:10.3f}" for v in losses) + f"{best:>9}")
    print(flush=True)


def part_long() -> None:
    print("== long: the comparison with STEPS = 1500 (the lesson's learning rates) ==", flush=True)
    results = parse_lm(execute(lm_patches(steps=1500), "STEPS = 1500"))
    table = {name: r for name, r in results.items() if name in LM_NAMES or name == "MLP (GELU)"}
    print(f"{'model':11s} {'parameters':>10s} {'val loss':>9s} {'CPU s':>7s}")
    for name, r in sorted(table.items(), key=lambda item: item[1]["val"]):
        print(f"{name:11s} {r['params']:10,d} {r['val']:9.3f} {r['seconds']:7.1f}")
    vals = [r["val"] for r in table.values()]
    print(f"spread (worst - best): {max(vals) - min(vals):.3f} nats")
    print("(not in the comparison) " + ", ".join(f"{n} {results[n]['val']:.3f}" for n in ("MLP (ReLU)", "MLP (tanh)")))
    print(flush=True)


def recall_table(runs: dict[tuple[float, int], dict[str, tuple[int, int, int]]]) -> None:
    print(f"{'lr':>6s} {'seed':>4s}  {'reader':9s}" + "".join(f"{d:>7s}" for d in BANDS))
    for (lr, seed), found in runs.items():
        for name in READERS:
            print(f"{lr:6} {seed:4d}  {name:9s}" + "".join(f"{v:6d}%" for v in found[name]))
    for name in READERS:
        values = [v for found in runs.values() for v in found[name]]
        print(f"{name}: every band of every run between {min(values)}% and {max(values)}%")


def part_recall() -> None:
    print("== recall: accuracy per band of distances (%), 300 steps, uniform training distances ==",
          flush=True)
    runs = {(lr, seed): parse_recall(execute(recall_patches(lr, seed), f"recall lr {lr} seed {seed}"))
            for lr in RECALL_LRS for seed in RECALL_SEEDS}
    recall_table(runs)
    print()
    print("== recall, curriculum: training distances log-uniform on 1..47 ==", flush=True)
    runs = {(CURRICULUM_LR, seed): parse_recall(execute(recall_patches(CURRICULUM_LR, seed, curriculum=True),
                                                        f"curriculum lr {CURRICULUM_LR} seed {seed}"))
            for seed in RECALL_SEEDS}
    recall_table(runs)
    print(flush=True)


PARTS = {"lr-sweep": part_lr_sweep, "long": part_long, "recall": part_recall}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=[*PARTS, "all"], default="all",
                        help="which runs: lr-sweep (3 executions), long (1), recall (8), all (12)")
    parser.add_argument("--show-patches", action="store_true",
                        help="check that every patch applies and print them; execute nothing")
    args = parser.parse_args(argv)
    parts = list(PARTS) if args.part == "all" else [args.part]
    if args.show_patches:
        sets = {"lr-sweep": [lm_patches(lr=lr) for lr in SWEEP_LRS], "long": [lm_patches(steps=1500)],
                "recall": [recall_patches(lr, s) for lr in RECALL_LRS for s in RECALL_SEEDS]
                + [recall_patches(CURRICULUM_LR, s, curriculum=True) for s in RECALL_SEEDS]}
        for part in parts:
            for patches in sets[part]:
                nb = nbformat.read(str(NOTEBOOK), as_version=4)
                for old, new in patches:
                    patch(nb, old, new)
            print(f"{part}: {len(sets[part])} executions; the patches of the last one:")
            for old, new in sets[part][-1]:
                print(f"  {old!r}\n    -> {new!r}")
        return
    import torch

    print(f"{NOTEBOOK.relative_to(REPO)}; Python {sys.version.split()[0]}, torch {torch.__version__}", flush=True)
    start = time.perf_counter()
    for part in parts:
        PARTS[part]()
    print(f"total wall time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
