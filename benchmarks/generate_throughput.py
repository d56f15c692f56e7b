"""Generation speed with and without the KV cache, as a ratio measured in one run.

Without a cache, every new token re-runs the model over the whole sequence so far: the cost
of token t grows with t. With the cache, each step feeds one token and reuses the keys and
values already computed. The ratio should therefore grow with the number of new tokens.

    python benchmarks/generate_throughput.py              # tiny preset, CPU
    python benchmarks/generate_throughput.py --preset mini --device cuda

Rounds alternate cached / uncached so that machine noise hits both alike; the table reports
medians over rounds.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from sftlearn.config import GPTConfig
from sftlearn.device import get_device, seed_everything
from sftlearn.model import GPT


def seconds(model: GPT, prompt: torch.Tensor, new: int, use_cache: bool) -> float:
    if prompt.device.type == "cuda":
        torch.cuda.synchronize(prompt.device)
    start = time.perf_counter()
    model.generate(prompt, new, greedy=True, use_cache=use_cache)
    if prompt.device.type == "cuda":
        torch.cuda.synchronize(prompt.device)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--prompt-len", type=int, default=16)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--new", type=int, nargs="+", default=[32, 128, 512])
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.batch < 1 or args.prompt_len < 1 or min(args.new) < 1:
        parser.error("--rounds, --batch, --prompt-len and --new must be at least 1")

    device = get_device(args.device)
    seed_everything(0)
    block = args.prompt_len + max(args.new)
    model = GPT(GPTConfig.preset(args.preset, vocab_size=300, block_size=max(block, 256)))
    model = model.to(device).eval()
    prompt = torch.randint(0, 300, (args.batch, args.prompt_len), device=device)  # (B, T)

    print(f"{args.preset} preset, {model.num_parameters():,} parameters, device {device}, "
          f"batch {args.batch}, prompt {args.prompt_len} tokens, {torch.get_num_threads()} threads")
    print(f"{'new tokens':>10} {'cached tok/s':>13} {'uncached tok/s':>15} {'speed-up':>9}")
    with torch.inference_mode():
        seconds(model, prompt, 8, True), seconds(model, prompt, 8, False)  # warm-up
        for new in args.new:
            cached, uncached, ratios = [], [], []
            for r in range(args.rounds):
                # alternate who goes first, so that a drift in the machine's speed hits both
                if r % 2:
                    u, c = seconds(model, prompt, new, False), seconds(model, prompt, new, True)
                else:
                    c, u = seconds(model, prompt, new, True), seconds(model, prompt, new, False)
                cached.append(c), uncached.append(u), ratios.append(u / c)
            tokens = new * args.batch
            print(f"{new:>10} {tokens / statistics.median(cached):>13,.0f} "
                  f"{tokens / statistics.median(uncached):>15,.0f} {statistics.median(ratios):>8.1f}×")


if __name__ == "__main__":
    main()
