"""Fine-tuning with batches grouped by length vs random batches: padding, speed, accuracy.

Chapter 09's fine-tuning batches 16 conversations of 23 tokens on average; a random batch is
padded to its longest member. ``TrainConfig(length_groups=k)`` sorts each window of k batches
by length first (``sftlearn.batching``). This script measures, on chapter 09's training set and
the zoo's tiny-base:

1. the share of padding in an epoch, random vs grouped (windows of 1, 2, 4, 8, 16, 64 batches);
2. the time of an optimizer step on real batches from each order, interleaved in rounds so
   that the machine's noise hits both sides alike (median of the per-round ratios);
3. with ``--quality``: exact match on 100 test conversations per family after chapter 09's
   recipe (1,200 steps, lr 3e-3) with random batches, and after as many steps of grouped
   batches as fit in the same time (default 1,500), over several seeds (about 50 s each on
   two cores).

    python benchmarks/length_grouping.py                      # padding and step time
    python benchmarks/length_grouping.py --quality --seeds 4  # plus accuracy, ~7 minutes
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from sftlearn import data, zoo
from sftlearn.batching import example_lengths, length_grouped_order, padding_share
from sftlearn.datasets import Collator, SFTDataset
from sftlearn.device import seed_everything
from sftlearn.sft import evaluate_tasks
from sftlearn.train import Trainer, TrainConfig

BATCH = 16


def batches(order: torch.Tensor) -> list[list[int]]:
    return [order[i : i + BATCH].tolist() for i in range(0, len(order), BATCH)]


def padding_table(lengths: torch.Tensor) -> None:
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(lengths), generator=g)
    print(f"{len(lengths):,} conversations, {lengths.float().mean():.1f} tokens on average, "
          f"batches of {BATCH}")
    print(f"  random batches:            padding {padding_share(lengths.tolist(), batches(order)):.1%}")
    for window in (1, 2, 4, 8, 16, 64):
        grouped = length_grouped_order(order, lengths, BATCH, window, g)
        print(f"  windows of {window:>2} batches:     "
              f"padding {padding_share(lengths.tolist(), batches(grouped)):.1%}")


def step_times(train_set, tok, window: int, rounds: int, steps: int) -> None:
    """Median time of an optimizer step on random vs grouped batches, interleaved."""
    model, _ = zoo.base_model("tiny-base", progress=False)
    config = TrainConfig(max_steps=10**6, batch_size=BATCH, lr=1e-4, progress=False)
    trainer = Trainer(model, train_set, None, config, collate_fn=Collator(tok.pad_id))
    lengths = example_lengths(train_set)
    g = torch.Generator().manual_seed(1)
    order = torch.randperm(len(train_set), generator=g)
    orders = {"random": order, "grouped": length_grouped_order(order, lengths, BATCH, window, g)}
    collate = Collator(tok.pad_id)
    sides = {name: [collate([train_set[i] for i in b]) for b in batches(o)[: rounds * steps]]
             for name, o in orders.items()}
    model.train()

    def run(batch_list) -> float:
        start = time.perf_counter()
        for batch in batch_list:
            loss = trainer.loss_fn(model, batch)
            loss.backward()
            trainer.optimizer.step()
            trainer.optimizer.zero_grad(set_to_none=True)
        return (time.perf_counter() - start) / len(batch_list)

    run(sides["random"][:5])  # warm-up
    ratios, times = [], {name: [] for name in sides}
    for r in range(rounds):
        for name in (("random", "grouped") if r % 2 == 0 else ("grouped", "random")):
            times[name].append(run(sides[name][r * steps : (r + 1) * steps]))
        ratios.append(times["random"][-1] / times["grouped"][-1])
    for name, ts in times.items():
        print(f"  {name:<8} {statistics.median(ts) * 1000:6.1f} ms per step (median of {rounds})")
    print(f"  grouped (windows of {window}) is {statistics.median(ratios):.2f}x as fast "
          f"(median of per-round ratios; range {min(ratios):.2f}-{max(ratios):.2f})")


def quality(train_set, tok, window: int, grouped_steps: int, seeds: int) -> None:
    test = data.sft_examples("test", n_per_family=100)
    runs = [("random", 0, 1200, s) for s in range(seeds)]
    runs += [("grouped", window, grouped_steps, s) for s in range(seeds)]
    runs.sort(key=lambda run: run[3])  # interleave the two sides, seed by seed
    results = {}
    for name, groups, steps, seed in runs:
        seed_everything(0)
        model, _ = zoo.base_model("tiny-base", progress=False)
        config = TrainConfig(max_steps=steps, batch_size=BATCH, lr=3e-3, warmup_steps=steps // 20,
                             eval_interval=0, log_interval=100, progress=False, seed=seed,
                             length_groups=groups)
        start = time.perf_counter()
        Trainer(model, train_set, None, config, collate_fn=Collator(tok.pad_id)).fit()
        seconds = time.perf_counter() - start
        report = evaluate_tasks(model, tok, test, max_new_tokens=24, with_loss=False)
        results.setdefault(name, []).append((report.overall, seconds))
        families = " ".join(f"{f} {v:.0%}" for f, v in report.per_family.items())
        print(f"  {name:<8} {steps} steps, seed {seed}: {seconds:4.0f} s, exact match "
              f"{report.overall:.1%} ({families})", flush=True)
    for name, rows in results.items():
        print(f"  {name:<8} median exact match {statistics.median(r[0] for r in rows):.1%}, "
              f"median time {statistics.median(r[1] for r in rows):.0f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=8, help="batches per window (length_groups)")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=20, help="steps per side per round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quality", action="store_true", help="also fine-tune and score")
    parser.add_argument("--grouped-steps", type=int, default=1500)
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    _, tok = zoo.base_model("tiny-base", progress=False)
    train_set = SFTDataset(data.sft_examples("train"), tok, 128)
    print("1. padding")
    padding_table(example_lengths(train_set))
    print(f"2. step time ({args.threads} threads)")
    step_times(train_set, tok, args.window, args.rounds, args.steps)
    if args.quality:
        print("3. exact match after fine-tuning")
        quality(train_set, tok, args.window, args.grouped_steps, args.seeds)


if __name__ == "__main__":
    main()
