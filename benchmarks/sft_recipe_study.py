"""Which SFT recipe turns the tiny base model into a task solver in ~60 s of CPU training?

Each run fine-tunes a model (the zoo's "tiny-base", or the same shape randomly initialised)
on ``sftlearn.data``'s train split for a fixed budget of *tokens processed* (padding
included: padding costs compute like any other position), then scores exact match per task
family on the test split with greedy decoding (``sftlearn.sft.evaluate_tasks``).

Budgets are counted in tokens, not seconds, because the machine this was measured on was
shared; an idle 2-core machine trains the tiny preset at about 7,700 tokens/s, so a budget
of B tokens is about B / 7,700 seconds of idle training.

Three ways of forming batches are compared:

* ``random``: the Trainer's default: shuffled examples, ``batch_size`` per step, padded to
  the longest in the batch;
* ``sorted``: examples shuffled, then sorted by length within chunks of 512, and cut into
  batches of at most ``step_tokens`` padded tokens (the Trainer shuffles the batch order);
* ``packed``: shuffled conversations concatenated into rows of up to the model's context
  (``block_size``: 256 for the character-level base, 128 for the BPE tiny-base; whole
  conversations only, each starting with <|bos|>); attention runs across conversation
  boundaries and positions continue, the simplest form of packing.

Usage (one thread; every run is independent and its result is appended to --out):

    python benchmarks/sft_recipe_study.py                 # all runs, then the tables
    python benchmarks/sft_recipe_study.py --only lr3e-3   # some runs (name prefixes)
    python benchmarks/sft_recipe_study.py --tables        # tables from saved results only
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from dataclasses import asdict, dataclass

import torch

from sftlearn import data, zoo
from sftlearn.datasets import SFTDataset, collate
from sftlearn.device import seed_everything
from sftlearn.model import GPT, IGNORE_INDEX
from sftlearn.sft import evaluate_tasks
from sftlearn.train import TrainConfig, Trainer

# Padded tokens per second of the character-level tiny-base on an idle 2-core CPU, measured
# once outside this script: the "idle s" column is a rough guide to compare runs at equal
# work, not a measurement of this run (the BPE base and other CPUs run at other speeds;
# benchmarks/RESULTS.md has measured throughputs).
IDLE_TOKENS_PER_S = 7_700
TEST_PER_FAMILY = 100  # the whole test split


@dataclass(frozen=True)
class Run:
    name: str
    init: str = "pretrained"  # "pretrained" (zoo tiny-base) or "random"
    lr: float = 3e-3
    n_per_family: int = 1500  # training examples per task family
    batching: str = "sorted"  # "random" | "sorted" | "packed"
    batch_size: int = 32  # examples per step ("random" only)
    step_tokens: int = 2048  # padded tokens per step ("sorted", "packed")
    budget: int = 500_000  # tokens processed (padding included)
    model: str = "tiny-base"
    seed: int = 0


RUNS = [
    Run("base-no-sft", budget=0),
    # learning rate, with the Trainer's default batching
    Run("lr1e-3-random-b32", lr=1e-3, batching="random"),
    Run("lr3e-3-random-b32", lr=3e-3, batching="random"),
    # batch formation at the same budget
    Run("lr3e-3-sorted-2k", batching="sorted"),
    Run("lr3e-3-packed-2k", batching="packed"),
    Run("lr1e-3-sorted-2k", lr=1e-3),
    Run("lr1e-2-sorted-2k", lr=1e-2),
    # fewer, larger steps at the same budget
    Run("lr3e-3-sorted-4k", step_tokens=4096),
    # training examples per family
    Run("n250-sorted-2k", n_per_family=250),
    # pretrained vs random init, same data and budget
    Run("random-init-sorted-2k", init="random"),
    # a larger budget
    Run("budget1m-sorted-2k", budget=1_000_000),
    Run("random-init-budget1m-sorted-2k", init="random", budget=1_000_000),
]


# ----------------------------------------------------------------------------- batching


class CountingCollate:
    """``collate`` that counts what the model processes: padded and real tokens, targets."""

    def __init__(self, pad_id: int, batched: bool = False):
        self.pad_id, self.batched = pad_id, batched
        self.padded = self.real = self.trained = 0

    def __call__(self, items):
        if self.batched:  # items = [one pre-formed batch]
            (items,) = items
        batch = collate(items, self.pad_id)
        self.padded += batch["input_ids"].numel()
        self.real += sum(len(it["input_ids"]) for it in items)
        self.trained += int((batch["targets"] != IGNORE_INDEX).sum())
        return batch


def sorted_batches(items, step_tokens: int, seed: int, chunk: int = 512):
    """Shuffle, sort by length within chunks, cut into batches of <= step_tokens padded."""
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    batches = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: len(items[i]["input_ids"]))
        batch, longest = [], 0
        for i in part:
            L = len(items[i]["input_ids"])
            if batch and max(longest, L) * (len(batch) + 1) > step_tokens:
                batches.append([items[j] for j in batch])
                batch, longest = [], 0
            batch.append(i)
            longest = max(longest, L)
        if batch:
            batches.append([items[j] for j in batch])
    return batches


def packed_rows(dataset: SFTDataset, seed: int, length: int):
    """Whole conversations concatenated into rows of at most ``length`` input tokens (the
    model's block size)."""
    order = list(range(len(dataset.rendered)))
    random.Random(seed).shuffle(order)
    rows, ids, mask = [], [], []

    def close():
        targets = [ids[t + 1] if mask[t + 1] else IGNORE_INDEX for t in range(len(ids) - 1)]
        rows.append({"input_ids": torch.tensor(ids[:-1]), "targets": torch.tensor(targets)})

    for i in order:
        r = dataset.rendered[i]
        if ids and len(ids) + len(r.ids) - 1 > length:
            close()
            ids, mask = [], []
        ids, mask = ids + r.ids, mask + r.loss_mask
    close()
    return rows


def training_data(run: Run, examples, tokenizer, block_size: int):
    """(dataset, batch_size for the Trainer, collate) for the run's batching."""
    ds = SFTDataset(examples, tokenizer, block_size)
    if run.batching == "random":
        return ds, run.batch_size, CountingCollate(tokenizer.pad_id)
    if run.batching == "sorted":
        return sorted_batches(ds.items, run.step_tokens, run.seed), 1, CountingCollate(
            tokenizer.pad_id, batched=True)
    if run.batching == "packed":
        return packed_rows(ds, run.seed, block_size), run.step_tokens // block_size, \
            CountingCollate(tokenizer.pad_id)
    raise ValueError(run.batching)


def steps_for_budget(dataset, batch_size: int, collate_fn, budget: int, seed: int) -> int:
    """Optimizer steps whose batches (in the Trainer's exact order) process ~budget tokens."""
    probe = CountingCollate(collate_fn.pad_id, collate_fn.batched)
    n, epoch, steps = len(dataset), 0, 0
    while True:
        g = torch.Generator().manual_seed(seed * 100_003 + epoch)  # = Trainer._epoch_order
        order = torch.randperm(n, generator=g).tolist()
        for start in range(0, n, batch_size):
            probe([dataset[i] for i in order[start : start + batch_size]])
            steps += 1
            if probe.padded >= budget:
                return steps
        epoch += 1


# ----------------------------------------------------------------------------- one run


def epoch_tokens(examples, tokenizer) -> int:
    """Real input tokens in one pass over the examples."""
    return sum(len(item["input_ids"]) for item in SFTDataset(examples, tokenizer, 10_000).items)


def load_model(run: Run):
    model, tokenizer = zoo.base_model(run.model, progress=False)
    if run.init == "random":
        seed_everything(run.seed)
        model = GPT(model.config)
    return model, tokenizer


def do_run(run: Run, show_mistakes: int = 3) -> dict:
    model, tokenizer = load_model(run)
    result = {"run": asdict(run), "recipe": asdict(zoo.recipe(run.model)),
              "fingerprint": zoo.recipe(run.model).fingerprint()}
    if run.budget:
        examples = data.sft_examples("train", n_per_family=run.n_per_family, seed=run.seed)
        dataset, batch_size, collate_fn = training_data(
            run, examples, tokenizer, model.config.block_size)
        steps = steps_for_budget(dataset, batch_size, collate_fn, run.budget, run.seed)
        config = TrainConfig(max_steps=steps, batch_size=batch_size, lr=run.lr,
                             eval_interval=0, progress=False, device="cpu", seed=run.seed,
                             log_interval=max(1, steps // 10))
        start = time.perf_counter()
        trainer = Trainer(model, dataset, None, config, collate_fn=collate_fn)
        trainer.fit()
        train_s = time.perf_counter() - start
        result.update(
            steps=steps, epochs=collate_fn.real / epoch_tokens(examples, tokenizer),
            tokens_padded=collate_fn.padded, tokens_real=collate_fn.real,
            tokens_trained=collate_fn.trained, train_s=train_s,
            idle_s_estimate=collate_fn.padded / IDLE_TOKENS_PER_S,
            final_train_loss=trainer.history.train_loss[-1],
        )
    start = time.perf_counter()
    report = evaluate_tasks(model.eval(), tokenizer, "test", n_per_family=TEST_PER_FAMILY,
                            max_new_tokens=96)
    result.update(
        eval_s=time.perf_counter() - start, overall=report.overall,
        per_family=report.per_family, response_loss=report.response_loss,
        mistakes={f: report.mistakes(f, show_mistakes) for f in report.per_family},
    )
    return result


# ----------------------------------------------------------------------------- output

FAMILIES = ("qa", "sentiment", "entities", "translate", "arithmetic", "strings")


def table(results: list[dict]) -> str:
    head = ("| run | init | lr | n/fam | batching | steps | tokens (padded) | pad % | epochs | "
            "idle s | " + " | ".join(FAMILIES) + " | overall | resp. loss |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        run = r["run"]
        batching = {"random": f"random B={run['batch_size']}",
                    "sorted": f"sorted {run['step_tokens']} tok/step",
                    "packed": f"packed {run['step_tokens']} tok/step"}[run["batching"]]
        if not run["budget"]:
            batching, cost = "(no SFT)", "| - | 0 | - | - | 0 |"
        else:
            pad = 1 - r["tokens_real"] / r["tokens_padded"]
            cost = (f"| {r['steps']} | {r['tokens_padded']:,} | {pad:.0%} | {r['epochs']:.2f} | "
                    f"{r['idle_s_estimate']:.0f} |")
        fams = " | ".join(f"{100 * r['per_family'][f]:.0f}" for f in FAMILIES)
        lines.append(f"| {run['name']} | {run['init']} | {run['lr']:g} | {run['n_per_family']} | "
                     f"{batching} {cost} {fams} | **{100 * r['overall']:.1f}** | "
                     f"{r['response_loss']:.3f} |")
    return "\n".join(lines)


def mistakes(result: dict) -> str:
    lines = [f"Wrong answers of {result['run']['name']}:"]
    for family, rows in result["mistakes"].items():
        for row in rows:
            prompt = row["prompt"].replace("\n", " / ")
            lines.append(f"  [{family}] {prompt[:70]!r}\n      want {row['answer']!r}  got "
                         f"{row['prediction']!r}")
    return "\n".join(lines)


def load_results(path: str) -> dict[str, dict]:
    """Saved runs by name, only those made with the zoo's current base recipe: a run saved
    from another base (an older recipe, another tokenizer) is left out, and said so."""
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        saved = [json.loads(line) for line in f]
    current = {name: zoo.recipe(name).fingerprint() for name in {r["run"]["model"] for r in saved}}
    stale = [r["run"]["name"] for r in saved if r.get("fingerprint") != current[r["run"]["model"]]]
    if stale:
        print(f"{path}: {len(stale)} saved run(s) of another base recipe left out "
              f"({', '.join(sorted(set(stale)))}); they run again.")
    return {r["run"]["name"]: r for r in saved if r["run"]["name"] not in stale}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", default=None, help="run names (prefixes) to run")
    parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(),
                                                      "sft_recipe_study.jsonl"))
    parser.add_argument("--tables", action="store_true", help="print saved results only")
    parser.add_argument("--rerun", action="store_true", help="run even if saved")
    args = parser.parse_args()
    torch.set_num_threads(1)  # a shared 2-core machine: one thread per process

    done = load_results(args.out)
    if not args.tables:
        for run in RUNS:
            if args.only is not None and not any(run.name.startswith(p) for p in args.only):
                continue
            if run.name in done and not args.rerun:
                continue
            print(f"--- {run.name}", flush=True)
            result = do_run(run)
            with open(args.out, "a") as f:
                f.write(json.dumps(result) + "\n")
            done[run.name] = result
            print(table([result]).splitlines()[-1], flush=True)
            if run.budget:
                print(f"    train {result['train_s']:.0f} s here "
                      f"({result['tokens_padded'] / result['train_s']:,.0f} tok/s), "
                      f"eval {result['eval_s']:.0f} s", flush=True)
    ordered = [done[r.name] for r in RUNS if r.name in done]
    if not ordered:
        return
    rec = ordered[0]["recipe"]
    pre_tokens = rec["train"]["max_steps"] * rec["train"]["batch_size"] * \
        rec["model_overrides"].get("block_size", 256)
    print(f"\nbase model: {ordered[0]['run']['model']} ({ordered[0]['fingerprint']}), "
          f"{pre_tokens:,} pretraining tokens, recipe {rec}")
    print(f"test split: {TEST_PER_FAMILY} per family, greedy, exact match (%)\n")
    print(table(ordered))
    best = max((r for r in ordered if r["run"]["budget"]), key=lambda r: r["overall"],
               default=None)
    if best:
        print()
        print(mistakes(best))


if __name__ == "__main__":
    main()
