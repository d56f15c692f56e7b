"""Training memory per fine-tuning method: full, last-k blocks, LoRA at several ranks.

One training step of a GPT (forward, cross-entropy, backward, AdamW step) on a batch of random
tokens, once per method, and what it holds in memory, split into four parts:

- **parameters**: every parameter tensor, shared (tied) tensors once. The same for every
  method: a frozen weight still has to be in memory for the forward pass.
- **gradients**: the ``.grad`` tensors after ``backward()``. Only trainable parameters get one.
- **optimizer state**: every tensor in ``optimizer.state`` after the step. AdamW keeps two per
  trainable parameter (the moving averages of the gradient and of its square) plus a scalar
  step count.
- **saved activations**: the tensors autograd keeps from the forward pass to use in the
  backward pass, counted with ``torch.autograd.graph.saved_tensors_hooks`` while the forward
  pass runs; each storage once, parameters left out (they are counted above). A layer whose
  input and weights need no gradient saves nothing, which is why freezing the *early* blocks
  saves activation memory and LoRA, which needs gradients in every layer, does not.

Those four are measured by looking at the tensors themselves, so they are the same on any
device. Their sum is the "accounted" total. On a CUDA GPU the benchmark also reports
``torch.cuda.max_memory_allocated()`` over the measured step (after one warm-up step, so the
optimizer state already exists): the allocator's true peak, which adds temporary buffers
(logits, softmax and attention workspaces, the fused optimizer's scratch space) to the
accounting. A CPU has no such counter in torch, so there the accounted total is what is shown.

    python benchmarks/finetune_memory.py                             # tiny preset on the CPU
    python benchmarks/finetune_memory.py --preset small --vocab 50257 --device cuda --batch 8 --seq 1024
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

import torch

from sftlearn.config import GPTConfig
from sftlearn.device import get_device, seed_everything
from sftlearn.freeze import freeze_all_but
from sftlearn.lora import LoRAConfig, attach_lora
from sftlearn.model import GPT
from sftlearn.train import TrainConfig, make_optimizer

LORA_TARGETS = ("c_attn", "c_proj", "c_fc")  # every linear layer inside the blocks


@dataclass
class Method:
    name: str
    prepare: Callable[[GPT], None]  # freezes / attaches adapters, in place


def methods(n_layer: int) -> list[Method]:
    """The methods of chapter 10's table."""
    def lora(r: int, embeddings: bool) -> Callable[[GPT], None]:
        def prepare(model: GPT) -> None:
            attach_lora(model, LoRAConfig(r=r, alpha=2 * r, target_modules=LORA_TARGETS))
            if embeddings:
                freeze_all_but(model, head=True)  # the tied embedding / output layer trains too
        return prepare

    return [
        Method("full fine-tuning", lambda m: None),
        Method(f"last block ({n_layer - 1} of {n_layer} frozen)",
               lambda m: freeze_all_but(m, last_blocks=1)),
        Method("last block + embeddings", lambda m: freeze_all_but(m, last_blocks=1, head=True)),
        Method("embeddings only", lambda m: freeze_all_but(m, head=True)),
        Method("LoRA r=4", lora(4, embeddings=False)),
        *[Method(f"LoRA r={r} + embeddings", lora(r, embeddings=True)) for r in (1, 4, 16)],
    ]


def tensor_bytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


class SavedActivations:
    """Context manager: the bytes of the distinct storages autograd saves for backward,
    leaving out the parameters' own storages."""

    def __init__(self, model: torch.nn.Module):
        self.skip = {p.untyped_storage().data_ptr() for p in model.parameters()}
        self.seen: dict[int, int] = {}  # storage address -> bytes

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        address = storage.data_ptr()
        if address not in self.skip:
            self.seen[address] = storage.nbytes()
        return t

    def __enter__(self) -> "SavedActivations":
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)

    @property
    def bytes(self) -> int:
        return sum(self.seen.values())


def random_batch(config: GPTConfig, batch: int, seq: int, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, config.vocab_size, (batch, seq + 1), generator=g)
    return {"input_ids": ids[:, :-1].to(device), "targets": ids[:, 1:].to(device)}


def measure(method: Method, config: GPTConfig, batch: dict, device: torch.device) -> dict:
    """One warm-up step, then one measured step; returns bytes (and counts) per part."""
    seed_everything(0)
    model = GPT(config).to(device)
    method.prepare(model)
    optimizer = make_optimizer(model, TrainConfig(), device)
    params = list(model.parameters())

    def step(meter: SavedActivations | None = None) -> int:
        if meter is None:
            _, loss = model(batch["input_ids"], targets=batch["targets"])
        else:
            with meter:
                _, loss = model(batch["input_ids"], targets=batch["targets"])
        loss.backward()
        grads = sum(tensor_bytes(p.grad) for p in params if p.grad is not None)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return grads

    step()  # warm-up: creates the optimizer state, warms the allocator
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    meter = SavedActivations(model)
    grads = step(meter)
    peak = None
    if cuda:
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
    state = sum(tensor_bytes(t) for s in optimizer.state.values() for t in s.values()
                if isinstance(t, torch.Tensor))
    return {
        "trainable": sum(p.numel() for p in params if p.requires_grad),
        "total": sum(p.numel() for p in params),
        "parameters": sum(tensor_bytes(p) for p in params),
        "gradients": grads,
        "optimizer": state,
        "activations": meter.bytes,
        "peak": peak,
    }


def table(rows: list[tuple[str, dict]]) -> str:
    """A Markdown table, sizes in MiB."""
    unit = 2**20
    has_peak = any(r["peak"] is not None for _, r in rows)
    head = ["method", "trainable", "parameters", "gradients", "optimizer state",
            "saved activations", "accounted total"] + (["CUDA peak"] if has_peak else [])
    lines = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    for name, r in rows:
        accounted = r["parameters"] + r["gradients"] + r["optimizer"] + r["activations"]
        cells = [name, f"{r['trainable']:,} ({r['trainable'] / r['total']:.1%})"]
        cells += [f"{r[k] / unit:,.2f}" for k in ("parameters", "gradients", "optimizer", "activations")]
        cells.append(f"{accounted / unit:,.2f}")
        if has_peak:
            cells.append(f"{r['peak'] / unit:,.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n(sizes in MiB)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="tiny", help="GPTConfig preset (default: tiny)")
    parser.add_argument("--vocab", type=int, default=2048, help="vocabulary (the course's BPE: 2048)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128, help="tokens per sequence (tiny-base's block)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, mps")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    device = get_device(args.device)
    config = GPTConfig.preset(args.preset, vocab_size=args.vocab,
                              block_size=args.seq)  # the model's context is the sequence: tiny-base's shape
    batch = random_batch(config, args.batch, args.seq, device)
    rows = [(m.name, measure(m, config, batch, device)) for m in methods(config.n_layer)]
    print(f"preset {args.preset!r} ({config.n_layer} layers, width {config.n_embd}, vocab "
          f"{config.vocab_size}), batch {args.batch} x {args.seq} tokens, fp32, device {device}; "
          f"LoRA on {', '.join(LORA_TARGETS)} with alpha = 2r\n")
    print(table(rows))


if __name__ == "__main__":
    main()
