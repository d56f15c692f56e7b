"""Training speed: sftlearn's GPT and Trainer against Hugging Face's GPT-2 of the same shape.

Both sides do the same work per optimizer step on the same batch of B × T tokens: forward,
cross-entropy over every position, backward, clip the gradient norm to 1.0, one AdamW step
(the same torch optimizer, with the same parameter groups and settings), clear the gradients.

- **sftlearn Trainer**: a full ``Trainer.train_step()``, which also fetches and collates the batch
  from single examples, sets the learning rate from the schedule and counts the targets.
- **sftlearn GPT, bare loop**: our model in the same plain loop as HF's below, to show what
  the Trainer's bookkeeping costs.
- **HF GPT-2**: ``transformers.GPT2LMHeadModel`` built from a ``GPT2Config`` in code, in a bare
  loop fed a ready-made batch (nothing to collate). Dropout is 0 like ours; attention is its
  default (SDPA). Its activation is GPT-2's own ``gelu_new``; a second row uses
  ``gelu_pytorch_tanh`` (the fused kernel we call), to show how much of the gap that is.

On a GPU both sides run under bf16 autocast (the Trainer's default there).

    python benchmarks/train_throughput.py                       # tiny on the CPU (1 thread),
                                                                # then small on a GPU if any
    python benchmarks/train_throughput.py --preset small --device cuda --batch 16
    python benchmarks/train_throughput.py --preset small --device cuda --batch 16 --compile
                                                                # every side compiled; with MFU
    python benchmarks/train_throughput.py --preset small --device cuda --compile --sides none
                                                                # the Trainer alone
    python benchmarks/train_throughput.py --profile             # where sftlearn's step spends time
    python benchmarks/train_throughput.py --vocab 2048 --block 128  # the shape of tiny-base

Rounds interleave the sides (and alternate who goes first) so that machine noise hits all
alike; the table reports medians over rounds, and the ratio is taken within each round. On a
CPU with one thread (the default) the times are CPU times of this process; with more threads,
and on a GPU (after synchronising), wall-clock times.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from sftlearn.config import GPTConfig
from sftlearn.device import get_device, seed_everything
from sftlearn.model import GPT
from sftlearn.perf import mfu, peak_flops
from sftlearn.train import TrainConfig, Trainer, make_optimizer


def random_blocks(n: int, block: int, vocab: int) -> list[dict]:
    """n next-token examples cut from one random token stream (what LMBlockDataset gives)."""
    stream = torch.randint(0, vocab, (n * block + 1,))
    return [{"input_ids": stream[i * block : (i + 1) * block],
             "targets": stream[i * block + 1 : (i + 1) * block + 1]} for i in range(n)]


def build_sftlearn(config: GPTConfig, data: list[dict], args, device) -> Trainer:
    seed_everything(0)
    train = TrainConfig(max_steps=10**6, batch_size=args.batch, lr=1e-4, warmup_steps=0,
                        device=str(device), progress=False, compile=args.compile)
    return Trainer(GPT(config), data, None, train)


def hf_gpt2(config: GPTConfig, activation: str):
    """transformers' GPT-2 with ``config``'s shape, no dropout, built in code (no download)."""
    import transformers

    seed_everything(0)
    return transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=config.vocab_size, n_positions=config.block_size, n_embd=config.n_embd,
        n_layer=config.n_layer, n_head=config.n_head, activation_function=activation,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=1, eos_token_id=2))


def hf_loss(model, batch):
    # labels = the inputs: HF shifts them itself (our targets come shifted already)
    return model(batch["input_ids"], labels=batch["input_ids"]).loss


def sftlearn_loss(model, batch):
    return model(batch["input_ids"], targets=batch["targets"])[1]


class BareStep:
    """One training step in a plain loop, with the Trainer's optimizer settings, as a callable."""

    def __init__(self, model, loss_fn, batch: dict, trainer: Trainer):
        self.device, self.precision = trainer.device, trainer.precision
        self.model = model.to(self.device).train()
        # with --compile every side is compiled the way the Trainer compiles its model, so the
        # ratios compare like with like
        self.forward = torch.compile(self.model) if trainer.config.compile else self.model
        self.loss_fn = loss_fn
        self.optimizer = make_optimizer(self.model, trainer.config, self.device)
        self.batch = {k: v.to(self.device) for k, v in batch.items()}

    def __call__(self) -> None:
        with self.precision.autocast(self.device):
            loss = self.loss_fn(self.forward, self.batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


def seconds(step, n: int, device: torch.device) -> float:
    """Time of ``n`` steps. On a CPU with one thread this is the CPU time of this process: on a
    shared machine other programs stretch the wall-clock time but not the work our process
    does. With several threads CPU time adds up every thread's, so wall time is used."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # the GPU being measured, which need not be GPU 0
    one_cpu_thread = device.type == "cpu" and torch.get_num_threads() == 1
    clock = time.process_time if one_cpu_thread else time.perf_counter
    start = clock()
    for _ in range(n):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return clock() - start


def profile(trainer: Trainer, steps: int) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    activities = [ProfilerActivity.CPU]
    if trainer.device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with torch_profile(activities=activities) as prof:
        for _ in range(steps):
            trainer.train_step()
    sort = "self_device_time_total" if trainer.device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=25))


def compare(preset: str, device: torch.device, args) -> None:
    """Time every side on one preset and device, and print the table."""
    overrides = {"vocab_size": args.vocab} if args.vocab else {}
    if args.block:
        overrides["block_size"] = args.block
    config = GPTConfig.preset(preset, **overrides)
    T = config.block_size
    data = random_blocks(args.batch * 4, T, config.vocab_size)
    trainer = build_sftlearn(config, data, args, device)
    if args.profile:
        trainer.train_step()  # warm-up
        profile(trainer, args.steps)
        return

    batch = {k: torch.stack([d[k] for d in data[: args.batch]]) for k in data[0]}  # (B, T)
    seed_everything(0)
    builders = {  # the other sides, built only when asked for (each is a whole model)
        "bare": ("sftlearn GPT, bare loop", lambda: BareStep(GPT(config), sftlearn_loss, batch,
                                                             trainer)),
        "hf": ("HF GPT-2 (gelu_new)", lambda: BareStep(hf_gpt2(config, "gelu_new"), hf_loss,
                                                       batch, trainer)),
        "hf-tanh": ("HF GPT-2 (gelu_pytorch_tanh)", lambda: BareStep(
            hf_gpt2(config, "gelu_pytorch_tanh"), hf_loss, batch, trainer)),
    }
    sides = {"sftlearn Trainer": trainer.train_step}  # always first: the reference of the ratios
    for key in args.sides:
        name, build = builders[key]
        sides[name] = build()
    names = list(sides)
    times: dict[str, list[float]] = {name: [] for name in names}
    for name, step in sides.items():  # warm-up: first-call allocations, kernel selection and,
        took = seconds(step, 3, device)  # with --compile, the compilation
        if args.compile:
            print(f"warm-up of {name} (compiling): {took:.0f} s", flush=True)
    for r in range(args.rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            times[name].append(seconds(sides[name], args.steps, device))

    tokens = args.batch * T * args.steps
    threads = f", {torch.get_num_threads()} thread(s)" if device.type == "cpu" else ""
    clock = "CPU time" if device.type == "cpu" and torch.get_num_threads() == 1 else "wall time"
    print(f"{preset} preset ({trainer.model.num_parameters():,} parameters, vocab "
          f"{config.vocab_size}), batch {args.batch} x {T} tokens, device {device}{threads}, "
          f"precision {trainer.precision.name}, {args.rounds} rounds x {args.steps} steps, {clock}")
    # MFU where the device's peak is known (GPUs in sftlearn.perf's table); every side does the
    # same arithmetic per token, so one FLOP count serves all
    peak = peak_flops(device, trainer.precision.name)
    flops = trainer.model.flops_per_token()
    print(f"{'':<30}{'tokens/s':>12}{'sftlearn Trainer / this':>26}" + (f"{'MFU':>8}" if peak else ""))
    ours = times[names[0]]
    for name in names:
        # within each round: this side's time / the Trainer's = the Trainer's speed / this one's
        ratio = statistics.median(t / o for t, o in zip(times[name], ours))
        speed = tokens / statistics.median(times[name])
        note = "" if name == names[0] else f"{ratio:.2f}x"
        util = f"{mfu(speed, flops, peak):>8.1%}" if peak else ""
        print(f"{name:<30}{speed:>12,.0f}{note:>26}{util}")
    print()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default=None,
                        help="default: tiny on the CPU, small on a GPU")
    parser.add_argument("--device", default=None,
                        help="default: the CPU, and then the GPU if there is one")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (CPU runs only)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=None, help="default: the preset's")
    parser.add_argument("--block", type=int, default=None,
                        help="tokens per example; default: the preset's context (tiny-base uses 128)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps per side per round")
    parser.add_argument("--profile", action="store_true", help="profile sftlearn's step instead")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile every side's model (the Trainer's through "
                             "TrainConfig(compile=True))")
    parser.add_argument("--sides", default="bare,hf,hf-tanh",
                        help="which sides to time beside the Trainer, comma-separated from "
                             "bare, hf, hf-tanh, or 'none' (each compiled side adds its "
                             "compilation time)")
    args = parser.parse_args(argv)
    known = {"bare", "hf", "hf-tanh"}
    args.sides = [] if args.sides == "none" else [s.strip() for s in args.sides.split(",")]
    if not set(args.sides) <= known:
        parser.error(f"--sides: unknown {sorted(set(args.sides) - known)}; choose from "
                     f"{sorted(known)} or 'none'")

    torch.set_num_threads(args.threads)
    if args.device is not None:
        devices = [get_device(args.device)]  # a clear error if it is not there
    else:
        gpu = [torch.device("cuda")] if torch.cuda.is_available() else []
        devices = [torch.device("cpu")] + gpu
    for device in devices:
        compare(args.preset or ("small" if device.type == "cuda" else "tiny"), device, args)


if __name__ == "__main__":
    main()
