"""Two ways to make a fine-tuning step cheaper, measured: less padding, a smaller output layer.

Chapter 09's fine-tuning batches 16 conversations of 23 tokens on average, and only about 4 of
each conversation's positions have a target (the reply and its end token). Two levers:

* **grouping by length**: a random batch is padded to its longest member;
  ``TrainConfig(length_groups=k)`` sorts each window of k batches by length first
  (``sftlearn.batching``);
* **the output layer only where a target counts**: ``GPT(..., targets_only=True)``
  (``train.targets_only_loss``, which ``sft.finetune`` uses) scores the vocabulary at the
  reply's positions only, not at the prompt's and the padding's.

On chapter 09's training set and the zoo's tiny-base this script measures:

1. the share of padding in an epoch, random vs grouped (windows of 1, 2, 4, 8, 16, 64 batches);
2. the time of an optimizer step on real batches: random batches with the full output layer,
   grouped batches, grouped batches with the output layer at the targets only; interleaved in
   rounds so that the machine's noise hits every side alike (medians of per-round ratios);
3. with ``--quality``: exact match on 100 test conversations per family after chapter 09's
   recipe (lr 3e-3, 5% warm-up, cosine) in each arm, with as many steps as fit in the time of
   1,200 random ones, over several seeds (about 50 s per run on two cores).

    python benchmarks/sft_step_speed.py                                 # padding, step time
    python benchmarks/sft_step_speed.py --quality --seeds 4             # and accuracy, ~10 min
    python benchmarks/sft_step_speed.py --quality --arms both --seeds 4 # one arm only
    python benchmarks/sft_step_speed.py --quality --arms both --seeds 4 --lr 2e-3
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
from sftlearn.train import Trainer, TrainConfig, default_loss, make_optimizer, targets_only_loss

BATCH = 16
# arm -> (length_groups, loss function); the steps of each arm are command-line options
ARMS = {
    "random": (0, default_loss),  # chapter 09's recipe before either lever
    "grouped": (8, default_loss),
    "both": (8, targets_only_loss),  # chapter 09's recipe now
}


def padding_table(lengths: torch.Tensor) -> None:
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(lengths), generator=g)
    print(f"{len(lengths):,} conversations, {lengths.float().mean():.1f} tokens on average, "
          f"batches of {BATCH}")
    print(f"  random batches:            padding {padding_share(lengths, order, BATCH):.1%}")
    for window in (1, 2, 4, 8, 16, 64):
        grouped = length_grouped_order(order, lengths, BATCH, window, g)
        print(f"  windows of {window:>2} batches:     padding {padding_share(lengths, grouped, BATCH):.1%}")


def step_times(train_set, tok, rounds: int, steps: int) -> None:
    """Median time of an optimizer step in each arm, interleaved in rounds."""
    model, _ = zoo.base_model("tiny-base", progress=False)
    optimizer = make_optimizer(model, TrainConfig(lr=1e-4), torch.device("cpu"))
    g = torch.Generator().manual_seed(1)
    order = torch.randperm(len(train_set), generator=g)  # (N,)
    lengths = example_lengths(train_set)  # (N,)
    collate = Collator(tok.pad_id)
    orders = {0: order}  # length_groups -> order; arms with the same grouping share batches
    sides = {}
    for name, (groups, loss_fn) in ARMS.items():
        if groups not in orders:
            orders[groups] = length_grouped_order(order, lengths, BATCH, groups, g)
        sides[name] = ([collate([train_set[i] for i in b.tolist()])
                        for b in orders[groups].split(BATCH)[: rounds * steps]], loss_fn)
    model.train()

    def run(batch_list, loss_fn) -> float:
        start = time.perf_counter()
        for batch in batch_list:
            loss_fn(model, batch).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return (time.perf_counter() - start) / len(batch_list)

    for batch_list, loss_fn in sides.values():  # warm-up: every arm's first calls cost extra
        run(batch_list[:3], loss_fn)
    times = {name: [] for name in sides}
    names = list(sides)
    for r in range(rounds):
        for name in names[r % 3:] + names[: r % 3]:  # rotate who goes first
            batch_list, loss_fn = sides[name]
            times[name].append(run(batch_list[r * steps : (r + 1) * steps], loss_fn))
    for name, ts in times.items():
        ratios = [a / b for a, b in zip(times["random"], ts)]
        print(f"  {name:<8} {statistics.median(ts) * 1000:6.1f} ms per step (median of {rounds}); "
              f"{statistics.median(ratios):.2f}x as fast as random "
              f"(rounds {min(ratios):.2f}-{max(ratios):.2f})")


def quality(train_set, tok, arms: dict[str, int], seeds: int, lr: float) -> None:
    """Fine-tune tiny-base in each arm (name -> steps) with several data-order seeds, interleaved."""
    test = data.sft_examples("test", n_per_family=100)
    results = {}
    for seed in range(seeds):
        for name, steps in arms.items():
            groups, loss_fn = ARMS[name]
            seed_everything(0)
            model, _ = zoo.base_model("tiny-base", progress=False)
            config = TrainConfig(max_steps=steps, batch_size=BATCH, lr=lr,
                                 warmup_steps=steps // 20, eval_interval=0, log_interval=100,
                                 progress=False, seed=seed, length_groups=groups)
            start = time.perf_counter()
            Trainer(model, train_set, None, config, collate_fn=Collator(tok.pad_id),
                    loss_fn=loss_fn).fit()
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
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=20, help="steps per side per round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quality", action="store_true", help="also fine-tune and score")
    parser.add_argument("--arms", default="random,grouped,both",
                        help=f"with --quality: some of {', '.join(ARMS)}")
    parser.add_argument("--random-steps", type=int, default=1200)
    parser.add_argument("--grouped-steps", type=int, default=1500)
    parser.add_argument("--both-steps", type=int, default=1800)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (chapter 09's)")
    args = parser.parse_args(argv)
    for name in ("rounds", "steps", "threads", "seeds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    unknown = set(args.arms.split(",")) - set(ARMS)
    if unknown:
        parser.error(f"unknown arm(s) {', '.join(sorted(unknown))}: use some of {', '.join(ARMS)}")
    torch.set_num_threads(args.threads)
    _, tok = zoo.base_model("tiny-base", progress=False)
    train_set = SFTDataset(data.sft_examples("train"), tok, 128)
    available = len(train_set) // BATCH  # whole batches; each round and arm reads new ones
    if args.rounds * args.steps > available:
        parser.error(f"--rounds x --steps = {args.rounds * args.steps} steps per arm, but the "
                     f"training set has {available} batches of {BATCH}")
    print("1. padding")
    padding_table(example_lengths(train_set))
    print(f"2. step time ({args.threads} threads)")
    step_times(train_set, tok, args.rounds, args.steps)
    if args.quality:
        print("3. exact match after fine-tuning")
        arms = {name: getattr(args, f"{name}_steps") for name in args.arms.split(",")}
        quality(train_set, tok, arms, args.seeds, args.lr)


if __name__ == "__main__":
    main()
