"""Data-parallel training: one copy of the model per process, each on its own share of a batch.

Launch any training script, or the ``sftlearn`` command, with ``torchrun``; the Trainer notices
and does the rest. Nothing else changes::

    torchrun --standalone --nproc_per_node 2 -m sftlearn pretrain --model micro-base --out out/
    torchrun --standalone --nproc_per_node 8 my_training_script.py     # one process per GPU

How it works (``torch.nn.parallel.DistributedDataParallel``, DDP):

1. ``torchrun`` starts N processes and tells each who it is through environment variables:
   ``RANK`` (0 … N-1), ``LOCAL_RANK`` (its number on this machine: which GPU to use),
   ``WORLD_SIZE`` (N), and ``MASTER_ADDR``/``MASTER_PORT`` (where to meet).
2. The processes join one *process group*: NCCL between GPUs, gloo between CPU processes.
3. Every process holds the same model. DDP copies rank 0's weights to the others at the start.
4. Each step, every process takes its own slice of the *global* batch: ``batch_size`` examples
   each, ``batch_size × N`` in all. It computes the gradient of its slice, and during the
   backward pass DDP averages the gradients over the processes (an *all-reduce*). Every
   process then applies the same averaged gradient, so the copies stay identical.
5. Anything written or printed happens once, on rank 0 (the *main process*): checkpoints,
   progress bars.

Without dropout the result equals training on one process with the global batch
(``tests/test_distributed.py`` checks it to 1e-5): N processes just share the work. With
dropout, every process starts from the same seed and draws the same masks for its own examples:
still a sound training run, but not the same random draws as one process would make.

Each process evaluates the whole validation set itself (they hold the same weights, so they get
the same number and take the same early-stopping decisions); a callback runs in every process,
so one that prints should check :func:`is_main_process` first.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.distributed as dist

REQUIRED_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
_cpu_group = None  # a gloo group for small host-side sums when the main group is NCCL


@dataclass(frozen=True)
class LaunchInfo:
    """Who this process is, as ``torchrun`` described it."""

    rank: int
    local_rank: int
    world_size: int


def launch_info(environ: Mapping[str, str] | None = None) -> LaunchInfo | None:
    """This process's place in a ``torchrun`` launch, or None when it runs alone.

    A launch of one process (``WORLD_SIZE=1``) counts as running alone: there is no one to
    talk to, so no process group is needed.
    """
    environ = os.environ if environ is None else environ
    if "WORLD_SIZE" not in environ or environ["WORLD_SIZE"].strip() == "1":
        return None
    values = {}
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        text = environ.get(name)
        if text is None or not text.strip().isdigit():
            raise ValueError(
                f"Environment variable {name}={text!r}: expected a whole number. These "
                f"variables are set by torchrun; start the script with "
                f"'torchrun --nproc_per_node N script.py' rather than setting them by hand "
                f"(or unset WORLD_SIZE to run in one process)."
            )
        values[name] = int(text)
    info = LaunchInfo(values["RANK"], values["LOCAL_RANK"], values["WORLD_SIZE"])
    if info.world_size < 1 or not 0 <= info.rank < info.world_size:
        raise ValueError(
            f"RANK={info.rank} does not fit WORLD_SIZE={info.world_size} (ranks run from 0 to "
            f"WORLD_SIZE - 1). Launch with torchrun, which numbers the processes itself."
        )
    if info.world_size == 1:
        return None
    missing = [name for name in REQUIRED_ENV if not environ.get(name)]
    if missing:
        raise ValueError(
            f"WORLD_SIZE={info.world_size} but {', '.join(missing)} is not set, so the processes "
            f"cannot find each other. Launch with 'torchrun --standalone --nproc_per_node "
            f"{info.world_size} script.py', which sets all of them."
        )
    return info


def setup(device: torch.device) -> torch.device:
    """Join the process group if ``torchrun`` started us; return the device this process uses.

    Does nothing (and returns ``device``) for a single process. Under ``torchrun`` on GPUs,
    process ``LOCAL_RANK`` uses GPU ``LOCAL_RANK``. Safe to call more than once.
    """
    global _cpu_group
    info = launch_info()
    if info is None:
        return device
    if device.type == "cuda":
        if info.local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"LOCAL_RANK={info.local_rank} but this machine has "
                f"{torch.cuda.device_count()} GPU(s): start at most one process per GPU "
                f"(torchrun --nproc_per_node {torch.cuda.device_count()})."
            )
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise ValueError(
            f"Data-parallel training runs on CUDA GPUs (NCCL) or on CPUs (gloo), not on "
            f"{device.type}. Set SFTLEARN_DEVICE=cpu, or train in one process."
        )
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        atexit.register(cleanup)  # leave the group cleanly when the script ends
    if dist.get_backend() != "gloo" and _cpu_group is None:
        # Counting target tokens happens on the host; NCCL only moves GPU tensors, and copying
        # the counts to the GPU would make the host wait for the GPU every step.
        _cpu_group = dist.new_group(backend="gloo")
    return device


def is_distributed() -> bool:
    """True inside a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """True on rank 0, and always when running alone: the process that writes and prints."""
    return rank() == 0


def barrier() -> None:
    """Wait until every process gets here (e.g. until rank 0 has finished a checkpoint)."""
    if is_distributed():
        dist.barrier()


def cleanup() -> None:
    """Leave the process group (at the end of a script)."""
    global _cpu_group
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _cpu_group = None


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``model`` wrapped in DistributedDataParallel when distributed, else ``model`` itself."""
    if not is_distributed():
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index] if device.type == "cuda" else None  # None: CPU processes
    return DistributedDataParallel(model, device_ids=device_ids)


def sum_over_ranks(values: Sequence[int]) -> list[int]:
    """Each number summed over all processes (host-side, no GPU involved)."""
    if not is_distributed():
        return list(values)
    tensor = torch.tensor(list(values), dtype=torch.int64)
    dist.all_reduce(tensor, group=_cpu_group)
    return tensor.tolist()


def sum_tensor_over_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` summed over all processes, in place (on GPUs without waiting for the host)."""
    if is_distributed():
        dist.all_reduce(tensor)
    return tensor


def shard(global_indices: Sequence[int], epoch_order: Sequence[int], rank: int, world_size: int,
          per_rank: int) -> list[int]:
    """This process's ``per_rank`` examples of one global batch.

    Process ``r`` takes positions ``r·per_rank … (r+1)·per_rank − 1`` of the global batch, so
    the global batch is exactly what one process would take with ``per_rank × world_size``.
    The last batch of an epoch may be short; it is filled up from the start of the epoch's
    order (as ``torch.utils.data.DistributedSampler`` does), so that every process gets a
    full share and none waits for a partner that has nothing to do.
    """
    if world_size < 1 or not 0 <= rank < world_size or per_rank < 1:
        raise ValueError(
            f"shard needs 0 <= rank < world_size and per_rank >= 1, got rank={rank}, "
            f"world_size={world_size}, per_rank={per_rank}."
        )
    if not epoch_order:
        raise ValueError("shard needs a non-empty epoch order to fill a short batch from.")
    indices = list(global_indices)
    needed = per_rank * world_size
    k = 0
    while len(indices) < needed:  # a dataset smaller than one global batch wraps more than once
        indices.append(epoch_order[k % len(epoch_order)])
        k += 1
    return indices[rank * per_rank : (rank + 1) * per_rank]
