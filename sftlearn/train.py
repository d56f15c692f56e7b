"""The ``Trainer``: one training loop for pretraining, fine-tuning and classification.

One optimizer step, in order:

1. set the learning rate from the schedule (warmup, then cosine decay),
2. take ``grad_accum_steps`` micro-batches; for each, run the model (under autocast on GPUs)
   and back-propagate its loss, weighted by its share of the step's target tokens — so k
   micro-batches give exactly the gradient of one batch k times as large,
3. clip the gradient norm, take an AdamW step, clear the gradients.

Batches are drawn at random from a fresh shuffle each epoch, or, with ``length_groups``,
grouped by length so that they pad little (``sftlearn.batching``). Around that loop the
Trainer evaluates on validation data, stops early when the validation loss stops improving (and
restores the best weights), writes checkpoints atomically, resumes from them exactly, shows a
progress bar, and records a ``History`` that can plot itself.

Launched by ``torchrun --nproc_per_node N``, the same code trains data-parallel: each process
takes ``batch_size`` examples of every global batch and DistributedDataParallel averages the
gradients, which gives the step one process would take with the whole global batch
(see ``sftlearn.distributed``). Rank 0 alone writes checkpoints and shows the progress bar.

A batch is a dict with ``input_ids`` (B, T) and ``targets`` (targets already shifted; -100 is
ignored) and optionally ``attention_mask``. The model is called as
``model(input_ids, targets=targets, attention_mask=attention_mask)`` and returns
``(logits, loss)``; pass ``loss_fn`` to compute the loss another way (the batch still needs
``targets``: the Trainer weights micro-batches, and reports losses, per target token).

Process-wide settings it changes: a fresh ``fit`` seeds torch's global generator with
``TrainConfig.seed`` (so that dropout masks repeat run for run; a resumed run restores the
saved random state instead), and on CUDA a Trainer turns on TF32 matrix multiplies for the
whole process (``sftlearn.device.enable_fast_math``).
"""

from __future__ import annotations

import contextlib
import math
import numbers
import random
import time
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from . import checkpoint as ckpt
from . import distributed
from .batching import example_lengths, length_grouped_order
from .device import PRECISIONS, choose_precision, enable_fast_math, get_device
from .history import History
from .model import IGNORE_INDEX
from .modes import evaluation_mode
from .perf import mfu, peak_flops
from .schedule import lr_at
from .validation import check_betas, check_int, check_seed


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss and was stopped."""


def _is_real(value) -> bool:
    """A real number (int, float, NumPy float), but not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _seed64(value: int) -> int:
    """``value`` as a seed torch accepts (a signed 64-bit int): unchanged when it is one, else
    folded into range, so that a large seed (``time.time_ns() * 100_003``) still works. (Torch's
    CPU generator then uses its low 32 bits only: seeds that differ by a multiple of 2**32
    give the same data order and dropout.)"""
    return value if -2**63 <= value < 2**63 else value % 2**63


def _warn_if_used(checkpoint_dir) -> None:
    """Warn when a fresh run is about to write into a folder holding another run's checkpoints."""
    pointer = Path(checkpoint_dir) / ckpt.LATEST_FILE
    if pointer.exists():
        warnings.warn(
            f"{checkpoint_dir} already holds checkpoints of a run (it has a {pointer.name}). "
            f"This run starts from step 0 and its checkpoints take over the folder; to continue "
            f"that run instead, call fit(resume=True), or give this run an empty folder.",
            stacklevel=3,
        )


@dataclass
class TrainConfig:
    """Everything that controls a training run (the model's shape lives in ``GPTConfig``)."""

    max_steps: int = 500  # optimizer steps
    batch_size: int = 32  # examples per micro-batch (per process under torchrun)
    grad_accum_steps: int = 1  # micro-batches per optimizer step
    lr: float = 3e-3  # peak learning rate
    min_lr: float | None = None  # end of the cosine; None = lr / 10
    warmup_steps: int | None = None  # None = 5% of max_steps
    weight_decay: float = 0.1  # applied to matrices only, never to biases/norms
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float | None = 1.0  # max gradient norm; None = no clipping
    eval_interval: int = 100  # evaluate every this many steps (0 = only at the end)
    eval_batches: int | None = 20  # validation batches per evaluation (None = all)
    early_stopping_patience: int | None = None  # evaluations without improvement before stopping
    restore_best: bool = True  # after early stopping / at the end, reload the best weights
    log_interval: int = 10
    precision: str = "auto"  # "auto" | "fp32" | "bf16" | "fp16"  (see sftlearn.device)
    compile: bool = False  # torch.compile the model (GPU runs; slow to start on a CPU)
    device: str | None = None  # None = SFTLEARN_DEVICE or the best available
    seed: int = 0  # data order and dropout
    shuffle: bool = True
    # 0 = random batches; k > 0 = group by length: each window of k batches' examples is sorted
    # by length before it is cut into batches, so batches pad little (see sftlearn.batching)
    length_groups: int = 0
    checkpoint_dir: str | None = None  # where to write checkpoints (None = never)
    checkpoint_interval: int = 0  # also checkpoint every this many steps (0 = only at the end)
    progress: bool = True  # show a progress bar

    def __post_init__(self) -> None:
        for switch in [f.name for f in fields(self) if f.type == "bool"]:  # shuffle, compile, ...
            value = getattr(self, switch)
            if not isinstance(value, bool):
                # any non-empty string counts as True: restore_best="False" would restore
                raise ValueError(f"TrainConfig.{switch} must be True or False, got {value!r}.")
        positive = ("max_steps", "batch_size", "grad_accum_steps", "log_interval")
        for name in positive:
            check_int(f"TrainConfig.{name}", getattr(self, name))
        if not _is_real(self.lr) or not 0 < self.lr < math.inf:
            raise ValueError(f"TrainConfig.lr must be positive, got {self.lr!r}; pass a number "
                             f"such as 3e-4.")
        if self.eval_batches is not None:
            check_int("TrainConfig.eval_batches", self.eval_batches,
                      fix="Or None for every validation batch.")
        if self.min_lr is not None and (not _is_real(self.min_lr) or not 0 <= self.min_lr <= self.lr):
            # a min_lr above lr would turn the cosine "decay" into a climb
            raise ValueError(f"TrainConfig.min_lr must lie between 0 and lr ({self.lr}), got "
                             f"{self.min_lr!r}; None means lr / 10.")
        if self.warmup_steps is not None:
            check_int("TrainConfig.warmup_steps", self.warmup_steps, minimum=0,
                      fix="Or None for 5% of max_steps.")
        check_int("TrainConfig.length_groups", self.length_groups, minimum=0,
                  fix="0 = random batches, k = sort each window of k batches by length.")
        if self.length_groups and not self.shuffle:
            raise ValueError("TrainConfig.length_groups reorders the examples, which needs "
                             "shuffle=True; set length_groups=0 to keep the data's order.")
        if self.early_stopping_patience is not None:
            check_int("TrainConfig.early_stopping_patience", self.early_stopping_patience,
                      fix="Or None for no early stopping.")
        if self.grad_clip is not None and (not _is_real(self.grad_clip) or not self.grad_clip > 0):
            # A negative max norm would flip the gradient's sign: training would climb the loss.
            raise ValueError(
                f"TrainConfig.grad_clip must be a positive max gradient norm (e.g. 1.0) or None "
                f"for no clipping, got {self.grad_clip!r}."
            )
        # Each check below stops a value that used to pass here and then fail inside fit with
        # a torch error that does not name the setting, or train in some unintended way.
        check_seed(self.seed)
        check_int("TrainConfig.eval_interval", self.eval_interval, minimum=0,
                  fix="0 = evaluate only at the end of training.")
        check_int("TrainConfig.checkpoint_interval", self.checkpoint_interval, minimum=0,
                  fix="0 = checkpoint only at the end of training.")
        if not _is_real(self.weight_decay) or not 0 <= self.weight_decay < math.inf:
            # a negative decay would push the weights away from 0 instead of towards it
            raise ValueError(f"TrainConfig.weight_decay must be a number >= 0 (0.1 is usual, "
                             f"0 = no decay), got {self.weight_decay!r}.")
        betas = check_betas("TrainConfig.betas", self.betas, "(0.9, 0.95)")
        names = ("auto", *PRECISIONS)  # choose_precision ignores case
        if not isinstance(self.precision, str) or self.precision.lower() not in names:
            raise ValueError(f"TrainConfig.precision must be one of {', '.join(map(repr, names))}, "
                             f"got {self.precision!r}; 'auto' picks the best for the device.")
        # The numbers above may be NumPy numbers, which would reach the checkpoint (its config,
        # the optimizer's settings, the history's lr), and loading a checkpoint safely
        # (weights_only=True) refuses NumPy objects, so the run could not be resumed. Store
        # plain floats (the betas as a tuple: a checkpoint gives them back as a list).
        self.lr = float(self.lr)
        self.min_lr = None if self.min_lr is None else float(self.min_lr)
        self.weight_decay = float(self.weight_decay)
        self.betas = betas
        self.grad_clip = None if self.grad_clip is None else float(self.grad_clip)

    @property
    def resolved_min_lr(self) -> float:
        return self.lr / 10 if self.min_lr is None else self.min_lr

    @property
    def resolved_warmup(self) -> int:
        if self.warmup_steps is None:
            return max(1, self.max_steps // 20)
        return min(self.warmup_steps, self.max_steps)

    def lr_at(self, step: int) -> float:
        return lr_at(step, self.lr, self.max_steps, self.resolved_warmup, self.resolved_min_lr)


class Callback:
    """Override any hook to watch or steer training (set ``trainer.should_stop`` to stop)."""

    def on_log(self, trainer: "Trainer", logs: dict) -> None: ...
    def on_eval(self, trainer: "Trainer", val_loss: float) -> None: ...
    def on_train_end(self, trainer: "Trainer") -> None: ...


def default_loss(model, batch: dict) -> torch.Tensor:
    _, loss = model(
        batch["input_ids"], targets=batch["targets"], attention_mask=batch.get("attention_mask")
    )
    return loss


def targets_only_loss(model, batch: dict) -> torch.Tensor:
    """``default_loss`` with the output layer computed only where a target counts (``GPT``'s
    ``targets_only``): the same loss and gradients, and cheaper when most targets are ignored,
    as in fine-tuning. For models whose forward accepts ``targets_only`` (``GPT``, also with
    LoRA attached); ``sft.finetune`` uses it."""
    _, loss = model(batch["input_ids"], targets=batch["targets"],
                    attention_mask=batch.get("attention_mask"), targets_only=True)
    return loss


def make_optimizer(model: torch.nn.Module, config: TrainConfig, device: torch.device):
    """AdamW with weight decay on matrices (≥ 2-D) only.

    Decaying biases and LayerNorm gains would only pull them towards 0 for no benefit, so they
    go in a group without decay. On CUDA and CPUs the fused kernel updates every tensor in one
    call (on a CPU about 3x faster than a Python loop over the tensors, which is what
    torch picks there by default); other devices get the default implementation.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(
            "The model has no trainable parameters (every requires_grad is False). "
            "Unfreeze some parameters before training."
        )
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    return torch.optim.AdamW(
        groups, lr=config.lr, betas=config.betas, fused=device.type in ("cuda", "cpu")
    )


def count_targets(batch: dict) -> int:
    """Number of target tokens that count in the loss (computed on the CPU: no GPU sync)."""
    if "targets" not in batch:
        raise ValueError(
            f"A training batch needs 'targets' (the next tokens, -100 where ignored), but the "
            f"collate function gave only {sorted(batch)}. The Trainer weights every micro-batch "
            f"by its number of targets, so a custom loss_fn still needs them in the batch."
        )
    return int((batch["targets"] != IGNORE_INDEX).sum())


@torch.no_grad()
def evaluate_loss(model, data: Sequence, collate_fn: Callable | None = None, batch_size: int = 32,
                  max_batches: int | None = None, loss_fn: Callable = default_loss,
                  precision=None) -> float:
    """Mean loss per target token of ``model`` over ``data``, in order, without training."""
    if max_batches is not None:
        check_int("max_batches", max_batches, fix="Or None for every batch.")
    collate_fn = collate_fn or _default_collate
    device = next(model.parameters()).device
    total_loss, total_count = 0.0, 0
    n_batches = math.ceil(len(data) / batch_size)
    if max_batches is not None:
        n_batches = min(n_batches, max_batches)
    with evaluation_mode(model):  # dropout off; every submodule's own mode comes back after
        for b in range(n_batches):
            items = [data[i] for i in range(b * batch_size, min((b + 1) * batch_size, len(data)))]
            batch = collate_fn(items)
            count = count_targets(batch)
            if count == 0:
                continue
            batch = {k: v.to(device) for k, v in batch.items()}
            with (precision.autocast(device) if precision else contextlib.nullcontext()):
                loss = loss_fn(model, batch)
            total_loss += float(loss) * count
            total_count += count
    if total_count == 0:
        raise ValueError("Every target in the evaluation data is masked; nothing to score.")
    return total_loss / total_count


def _default_collate(items):
    from .datasets import collate

    return collate(items, pad_id=0)


class Trainer:
    """Train ``model`` on ``train_data`` (a sequence of example dicts), see the module doc."""

    def __init__(
        self,
        model: torch.nn.Module,
        train_data: Sequence,
        val_data: Sequence | None = None,
        config: TrainConfig | None = None,
        collate_fn: Callable | None = None,
        loss_fn: Callable = default_loss,
        callbacks: Sequence[Callback] = (),
    ):
        if config is not None and not isinstance(config, TrainConfig):
            hint = (" Build one from the dict: TrainConfig(**settings)." if isinstance(config, dict)
                    else "")
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}.{hint}")
        self.config = config if config is not None else TrainConfig()
        if not isinstance(callbacks, (list, tuple)):
            raise TypeError(f"callbacks must be a list of callbacks (objects with on_log, on_eval "
                            f"or on_train_end), got a {type(callbacks).__name__}; wrap a single "
                            f"one in a list: callbacks=[watcher].")
        if train_data is None or len(train_data) == 0:
            raise ValueError(
                "The training set is empty: there is nothing to learn from. "
                "Check the data generation or filtering step that produced it."
            )
        if val_data is not None and len(val_data) == 0:
            raise ValueError("The validation set is empty; pass val_data=None to skip validation.")
        if self.config.checkpoint_dir and not hasattr(getattr(model, "config", None), "to_dict"):
            # A checkpoint records the model's config, so that resuming can rebuild and check
            # it; without one the first save would fail after all the training steps.
            raise ValueError(
                f"checkpoint_dir is set, but a {type(model).__name__} has no .config (a GPTConfig) "
                f"to save with its checkpoints. Train a sftlearn GPT (or a task head on one) to "
                f"checkpoint it, or leave checkpoint_dir unset and save the weights yourself "
                f"with torch.save(model.state_dict(), path)."
            )
        self.model = model
        self.train_data = train_data
        self.val_data = val_data
        self.collate_fn = collate_fn or _default_collate
        self.loss_fn = loss_fn
        self.callbacks = list(callbacks)
        # Under torchrun this joins the other processes (and picks this process's GPU).
        self.device = distributed.setup(get_device(self.config.device))
        self.is_main = distributed.is_main_process()  # the one process that writes and prints
        self.precision = choose_precision(self.device, self.config.precision)
        enable_fast_math(self.device)
        self.model.to(self.device)
        self.optimizer = make_optimizer(model, self.config, self.device)
        self.scaler = torch.amp.GradScaler("cuda") if self.precision.needs_grad_scaler else None
        # DistributedDataParallel when distributed (it averages gradients across processes),
        # else the model itself; self.model stays the bare model for saving and evaluating.
        self.parallel_model = distributed.wrap(model, self.device)
        self.forward_model = (torch.compile(self.parallel_model) if self.config.compile
                              else self.parallel_model)
        self.history = History()
        self.step = 0  # optimizer steps taken
        self.epoch = 0  # passes over the training data started
        self.batch_in_epoch = 0  # next batch index within the epoch
        self.best_val = math.inf
        self.evals_without_improvement = 0
        self.should_stop = False
        self._best_state: dict | None = None
        self._order: torch.Tensor | None = None
        self._lengths: torch.Tensor | None = None  # examples' lengths, for length_groups
        self._step_start: tuple | None = None  # set while a step is in progress
        self._saved_step: int | None = None  # the step of the last checkpoint written
        self._peak = peak_flops(self.device, self.precision.name)
        # Steps since the last log: summed loss (a device tensor: no sync per step), targets,
        # tokens and tokens x sequence length (see train_step). The first two are part of a
        # checkpoint, so a resumed run logs the same averages as an uninterrupted one.
        self._window = (torch.zeros((), device=self.device), 0, 0, 0)

    # ------------------------------------------------------------------- data
    def _epoch_order(self) -> torch.Tensor:
        """The order of examples in the current epoch: a permutation seeded by (seed, epoch),
        so resuming at (epoch, batch) sees exactly the batches an uninterrupted run would."""
        n = len(self.train_data)
        if not self.config.shuffle:
            return torch.arange(n)
        g = torch.Generator().manual_seed(_seed64(self.config.seed * 100_003 + self.epoch))
        order = torch.randperm(n, generator=g)  # (n,)
        if not self.config.length_groups:
            return order
        if self._lengths is None:
            self._lengths = example_lengths(self.train_data)  # once: (n,)
        global_batch = self.config.batch_size * distributed.world_size()
        return length_grouped_order(order, self._lengths, global_batch,
                                    self.config.length_groups, g)

    def _next_batch(self) -> dict:
        # Under torchrun, batches are *global*: batch_size examples for each of the processes,
        # and this process takes its own share (see sftlearn.distributed.shard).
        world = distributed.world_size()
        n, bs = len(self.train_data), self.config.batch_size * world
        batches_per_epoch = math.ceil(n / bs)
        if self.batch_in_epoch >= batches_per_epoch:
            self.epoch += 1
            self.batch_in_epoch = 0
            self._order = None
        if self._order is None:
            self._order = self._epoch_order()
        start = self.batch_in_epoch * bs
        indices = self._order[start : start + bs].tolist()
        if world > 1:
            # the epoch's first bs examples are enough to fill up a short last batch
            indices = distributed.shard(indices, self._order[:bs].tolist(), distributed.rank(),
                                        world, self.config.batch_size)
        self.batch_in_epoch += 1
        return self.collate_fn([self.train_data[i] for i in indices])

    def _to_device(self, batch: dict) -> dict:
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    # ------------------------------------------------------------------- steps
    def train_step(self) -> tuple[torch.Tensor, int, int, int]:
        """One optimizer step. Returns (sum of token losses as a tensor, target tokens, tokens,
        the sum over the step's batches of tokens x sequence length). The last divided by
        tokens is the step's mean sequence length, weighted by tokens: the length that
        attention's cost per token (and so MFU) depends on, shorter than the context in SFT."""
        cfg = self.config
        lr = cfg.lr_at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        position = (self.epoch, self.batch_in_epoch, self._order)
        # Where this step started, so an interruption inside it (Ctrl-C, a notebook's stop
        # button) can be undone and the checkpoint written on the way out resumes exactly.
        self._step_start = (*position, torch.get_rng_state())
        self.optimizer.zero_grad(set_to_none=True)  # the last step's gradients
        micro = [self._next_batch() for _ in range(cfg.grad_accum_steps)]
        counts = [count_targets(b) for b in micro]
        # The step's targets and tokens over all processes (a small host-side sum under torchrun).
        total, tokens, token_lengths = distributed.sum_over_ranks(
            [sum(counts), sum(b["input_ids"].numel() for b in micro),
             sum(b["input_ids"].numel() * b["input_ids"].shape[1] for b in micro)])
        if total == 0:
            self.epoch, self.batch_in_epoch, self._order = position
            raise ValueError(
                f"Every target in the batches for step {self.step + 1} is masked (-100), so there "
                f"is nothing to learn. Check the loss mask: SFT examples need an assistant turn."
            )
        self.model.train()
        world = distributed.world_size()
        loss_sum = torch.zeros((), device=self.device)
        for k, (batch, count) in enumerate(zip(micro, counts)):
            # DDP averages the gradients over processes during backward. Only the step's last
            # micro-batch needs that; before it, gradients just accumulate in each process.
            needs_sync = world == 1 or k == len(micro) - 1
            if count == 0:
                # Every target of this micro-batch is masked: its mean loss would be 0/0 = NaN
                # and poison the step, though its share of the step is zero. Skip it. Under DDP
                # the last one must still join the gradient exchange: it runs with one target
                # unmasked (so its loss is finite) and weight 0, which adds zero gradients.
                if world == 1 or not needs_sync:
                    continue
                targets = batch["targets"].clone()
                targets.view(-1)[0] = 0
                batch = dict(batch, targets=targets)
            batch = self._to_device(batch)
            with contextlib.nullcontext() if needs_sync else self.parallel_model.no_sync():
                with self.precision.autocast(self.device):
                    loss = self.loss_fn(self.forward_model, batch)
                # mean loss of this micro-batch × its share of the step's targets (in all
                # processes) = its part of the mean over all targets in the step. The factor
                # `world` undoes DDP's averaging: the shares must be summed, not averaged.
                weighted = loss * (count * world / total)
                (self.scaler.scale(weighted) if self.scaler else weighted).backward()
            loss_sum += loss.detach().float() * count
        loss_sum = distributed.sum_tensor_over_ranks(loss_sum)  # every process sees the same
        if self.device.type == "cpu" and not torch.isfinite(loss_sum):
            # On the CPU checking costs nothing, so we catch the first bad step before the
            # optimizer spreads NaN into the weights. On GPUs the check happens at each log.
            self.optimizer.zero_grad(set_to_none=True)
            self._diverged(loss_sum / total, f"at step {self.step + 1}")
        if cfg.grad_clip:
            if self.scaler:
                self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        # The weights have changed, so the step is taken: count it (and its loss, for the next
        # log) at once. A Ctrl-C from here on must not rewind the data position; that is why
        # the gradients are cleared at the start of the next step, not in a loop here.
        self.step += 1
        self._step_start = None
        result = (loss_sum, total, tokens, token_lengths)
        self._window = tuple(so_far + new for so_far, new in zip(self._window, result))
        return result

    def _diverged(self, loss: torch.Tensor, where: str) -> None:
        # where: "at step 7", or "in steps 5 to 8" when found in a logged mean (GPU runs)
        last = self.history.train_loss[-1] if self.history.train_loss else None
        last_text = f"{last:.4f}" if last is not None else "none logged yet"
        self.history.stop_reason = f"stopped: non-finite loss {where}"
        raise NonFiniteLossError(
            f"The loss became {float(loss)} {where} (last good logged loss: "
            f"{last_text}). Training stopped; the last checkpoint on disk was not touched. "
            f"Likely causes: a learning rate that is too high (try 3-10x lower), fp16 overflow "
            f"(use bf16 or fp32), or bad data (a batch whose every target is masked)."
        )

    def evaluate(self, data: Sequence | None = None, max_batches: int | None = -1) -> float:
        """Mean loss per target token over ``data`` (default: the validation set) using at most
        ``max_batches`` batches (default: ``eval_batches``; None = all)."""
        data = self.val_data if data is None else data
        if data is None:
            raise ValueError("No validation data: pass val_data to the Trainer or data here.")
        return evaluate_loss(
            self.model, data, self.collate_fn, self.config.batch_size,
            self.config.eval_batches if max_batches == -1 else max_batches,
            self.loss_fn, self.precision,
        )

    # -------------------------------------------------------------------- fit
    def fit(self, resume: bool = False) -> History:
        """Train until ``max_steps`` (or early stopping). ``resume=True`` continues from the
        latest checkpoint in ``checkpoint_dir`` when there is one. A fresh run first seeds
        torch's global generator with ``TrainConfig.seed``."""
        cfg = self.config
        if resume:
            if not cfg.checkpoint_dir:
                raise ValueError("resume=True needs TrainConfig.checkpoint_dir to be set.")
            folder = ckpt.latest_checkpoint(cfg.checkpoint_dir)
            if folder is not None:
                self.load_checkpoint(folder)
        elif cfg.checkpoint_dir and self.step == 0 and self.is_main:
            _warn_if_used(cfg.checkpoint_dir)
        # A run that stopped early is finished, like one that reached max_steps: fitting it
        # again, or resuming it from its checkpoint (whose history records the early stop),
        # trains nothing and writes nothing.
        self.should_stop = self.history.stopped_early
        if self.history.stop_reason.startswith("interrupted"):
            self.history.stop_reason = ""  # the run goes on; another Ctrl-C will say so again
        if self.step == 0:
            torch.manual_seed(_seed64(cfg.seed))  # dropout masks start from a known state
        from tqdm.auto import tqdm

        show = cfg.progress and self.is_main  # under torchrun, one progress bar, not one each
        bar = tqdm(total=cfg.max_steps, initial=self.step, disable=not show,
                   desc="training", dynamic_ncols=True, leave=True)
        window_start = time.perf_counter()
        try:
            if self._evaluation_pending():
                # A Ctrl-C during this step's evaluation left it undone, though the checkpoint
                # written on the way out records the step as taken. Evaluate now, as the
                # uninterrupted run did, so that the validation history, the best weights and
                # early stopping come out the same.
                self._evaluate_and_maybe_stop(bar)
                self._saved_step = None  # the checkpoint of this step lacks that evaluation
            while self.step < cfg.max_steps and not self.should_stop:
                self.train_step()  # also adds the step's loss and counts to self._window
                bar.update(1)
                last_step = self.step == cfg.max_steps
                if self.step % cfg.log_interval == 0 or last_step:
                    self._log(bar, window_start)
                    window_start = time.perf_counter()
                if self._evaluation_due():
                    self._evaluate_and_maybe_stop(bar)
                if cfg.checkpoint_dir and cfg.checkpoint_interval and (
                    self.step % cfg.checkpoint_interval == 0
                ):
                    self.save_checkpoint()
            if self._window[1]:
                # Stopped before max_steps (early stopping, a callback): log the steps since
                # the last log, or the history would end before the step training stopped at.
                # (A run that reaches max_steps has logged its last step; an interrupted one
                # does not get here and keeps its window in the checkpoint, to resume exactly.)
                self._log(bar, window_start)
                self._saved_step = None  # a checkpoint of this step lacks this log: rewrite it
        except KeyboardInterrupt:
            if self._step_start is not None:  # undo the half-done step: data position, RNG
                self.epoch, self.batch_in_epoch, self._order, rng = self._step_start
                torch.set_rng_state(rng)
            self.history.stop_reason = f"interrupted at step {self.step}"
            self.should_stop = True
        finally:
            bar.close()
            # each step clears the gradients it starts with; the last step's are not kept
            self.optimizer.zero_grad(set_to_none=True)
        if cfg.checkpoint_dir and self.step > 0 and self._saved_step != self.step:
            self.save_checkpoint()  # unless the interval just saved this very step
        # An interrupted run keeps its latest weights: calling fit again continues it, and the
        # optimizer state, step and data position all belong to those weights, not the best.
        interrupted = self.history.stop_reason.startswith("interrupted")
        if cfg.restore_best and self._best_state is not None and not interrupted:
            self.model.load_state_dict(self._best_state)
        for cb in self.callbacks:
            cb.on_train_end(self)
        return self.history

    def _log(self, bar, window_start) -> None:
        """Write the steps since the last log (``self._window``) as one history entry, and
        start a new window."""
        window_loss, window_count, window_tokens, window_token_lengths = self._window
        mean_loss = float(window_loss) / max(window_count, 1)  # the one host sync per log
        if not math.isfinite(mean_loss):
            # the mean of the steps since the last log: one of them went wrong
            first = self.history.steps[-1] + 1 if self.history.steps else 1
            where = f"at step {self.step}" if first == self.step else f"in steps {first} to {self.step}"
            self._diverged(torch.tensor(mean_loss), where)
        elapsed = max(time.perf_counter() - window_start, 1e-9)
        tok_s = window_tokens / elapsed
        lr = self.optimizer.param_groups[0]["lr"]
        self.history.steps.append(self.step)
        self.history.train_loss.append(mean_loss)
        self.history.lr.append(lr)
        self.history.tokens_per_sec.append(tok_s)
        # These steps are logged: start the next window now, before the callbacks, so that an
        # interruption inside one (a Ctrl-C in a notebook's plotting on_log) cannot leave them
        # in the window, where the next log would count them a second time.
        self._window = (torch.zeros((), device=self.device), 0, 0, 0)
        logs = {"step": self.step, "loss": mean_loss, "lr": lr, "tokens_per_sec": tok_s}
        postfix = {"loss": f"{mean_loss:.3f}", "tok/s": f"{tok_s:,.0f}"}
        if self._peak and hasattr(self.model, "flops_per_token"):
            seq_len = window_token_lengths / max(window_tokens, 1)  # mean, weighted by tokens
            # tok_s counts every process's tokens, so they ran on world_size devices
            value = mfu(tok_s, self.model.flops_per_token(seq_len),
                        self._peak * distributed.world_size())
            logs["mfu"] = value
            postfix["mfu"] = f"{100 * value:.1f}%"
        if self.history.val_loss:
            postfix["val"] = f"{self.history.val_loss[-1]:.3f}"
        bar.set_postfix(postfix)
        for cb in self.callbacks:
            cb.on_log(self, logs)

    def _evaluation_due(self) -> bool:
        """Whether the step just taken is one to evaluate: every ``eval_interval`` steps and
        the last one, when there is validation data."""
        cfg = self.config
        if self.val_data is None or self.step == 0:
            return False
        return bool(cfg.eval_interval and self.step % cfg.eval_interval == 0) or self.step == cfg.max_steps

    def _evaluation_pending(self) -> bool:
        """Whether the step just taken should have been evaluated but was not (fit was
        interrupted during that evaluation)."""
        return (not self.should_stop and self._evaluation_due()
                and self.history.val_steps[-1:] != [self.step])

    def _evaluate_and_maybe_stop(self, bar) -> None:
        cfg = self.config
        val = self.evaluate()
        self.history.val_steps.append(self.step)
        self.history.val_loss.append(val)
        postfix = {"val": f"{val:.3f}"}
        if self.history.train_loss:  # nothing logged yet when eval_interval < log_interval
            postfix["loss"] = f"{self.history.train_loss[-1]:.3f}"
        bar.set_postfix(postfix)
        if val < self.best_val:
            self.best_val = val
            self.evals_without_improvement = 0
            if cfg.restore_best:
                self._best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        else:
            self.evals_without_improvement += 1
            patience = cfg.early_stopping_patience
            if patience and self.evals_without_improvement >= patience:
                self.should_stop = True
                self.history.stopped_early = True
                self.history.stop_reason = (
                    f"early stop at step {self.step}: validation loss did not improve for "
                    f"{patience} evaluations (best {self.best_val:.4f} at step "
                    f"{self.history.best_step})"
                )
        for cb in self.callbacks:
            cb.on_eval(self, val)

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """Everything besides the weights needed to continue exactly where we are."""
        state = {
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "best_val": self.best_val,
            "evals_without_improvement": self.evals_without_improvement,
            "log_window": [float(self._window[0]), self._window[1]],  # loss sum, targets
            "world_size": distributed.world_size(),  # the global batch depends on it
            "optimizer": self.optimizer.state_dict(),
            "history": self.history.to_dict(),
            "train_config": {k: (list(v) if isinstance(v, tuple) else v)
                             for k, v in asdict(self.config).items()},
            "rng": {
                "torch": torch.get_rng_state(),
                "python": _python_rng_to_lists(random.getstate()),
                "numpy": _numpy_rng_to_lists(np.random.get_state()),
            },
        }
        if torch.cuda.is_available():
            state["rng"]["cuda"] = torch.cuda.get_rng_state_all()
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        if self._best_state is not None:  # so restore_best still works after a resume
            state["best_state"] = self._best_state
        return state

    def save_checkpoint(self):
        """Write a checkpoint for the current step into ``checkpoint_dir`` (atomically)."""
        if not self.config.checkpoint_dir:
            raise ValueError("Set TrainConfig.checkpoint_dir to save checkpoints.")
        if any(not torch.isfinite(p).all() for p in self.model.parameters()):
            raise NonFiniteLossError(
                "The weights contain NaN/inf; refusing to overwrite the last good checkpoint. "
                "Resume from it (fit(resume=True)) with a lower learning rate."
            )
        # Every process holds the same weights: rank 0 writes, the others wait until the
        # checkpoint is complete (so none can read a half-written one). Returns None on them.
        folder = None
        if self.is_main:
            folder = ckpt.save_training_checkpoint(
                self.config.checkpoint_dir, self.step, self.model, self.state_dict()
            )
        distributed.barrier()
        self._saved_step = self.step
        return folder

    def load_checkpoint(self, folder) -> None:
        """Restore weights, optimizer, schedule position, data position and RNGs."""
        saved_config = ckpt.read_config(folder)
        if hasattr(self.model, "config") and saved_config != self.model.config:
            diffs = ckpt.config_differences(saved_config, self.model.config)
            raise ValueError(
                f"Checkpoint {folder} was made for a different model ({'; '.join(diffs)}; "
                f"checkpoint vs this model). Build the model with the checkpoint's config or "
                f"start with a fresh checkpoint_dir."
            )
        state = ckpt.load_training_state(folder)
        # (checkpoints older than length_groups trained with random batches: 0)
        saved = {"length_groups": 0, **state["train_config"]}
        for name in ("batch_size", "grad_accum_steps", "seed", "shuffle", "length_groups"):
            if saved[name] != getattr(self.config, name):
                raise ValueError(
                    f"Cannot resume exactly: the checkpoint used {name}={saved[name]!r} but this "
                    f"run has {name}={getattr(self.config, name)!r}. Use the same value."
                )
        saved_world = state.get("world_size", 1)
        if saved_world != distributed.world_size():
            raise ValueError(
                f"Cannot resume exactly: the checkpoint was written by {saved_world} process(es) "
                f"but this run has {distributed.world_size()}, so the global batch would change. "
                f"Launch with torchrun --nproc_per_node {saved_world} (or 1 = no torchrun)."
            )
        # The optimizer's state first: torch checks that it fits (the same trainable
        # parameters) before changing anything, so a refused resume leaves the model untouched.
        # Loading also brings back the checkpoint's settings (weight_decay, betas, ...), but
        # this run's config decides those, as it decides lr (which lr_at sets at every step):
        # keep the settings the optimizer was built with, or trainer.config would show values
        # the optimizer does not use.
        settings = [{k: v for k, v in group.items() if k not in ("params", "lr")}
                    for group in self.optimizer.param_groups]
        self.optimizer.load_state_dict(state["optimizer"])
        for group, own in zip(self.optimizer.param_groups, settings):
            group.update(own)
        ckpt.load_weights(self.model, ckpt.Path(folder) / ckpt.MODEL_FILE)
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        self.step = state["step"]
        self._saved_step = self.step  # this step is on disk already
        self.epoch = state["epoch"]
        self.batch_in_epoch = state["batch_in_epoch"]
        self._order = None
        self.best_val = state["best_val"]
        self.evals_without_improvement = state["evals_without_improvement"]
        best = state.get("best_state")
        self._best_state = ({k: v.to(self.device) for k, v in best.items()}
                            if best is not None else None)
        loss, count = state.get("log_window", [0.0, 0])
        # tokens restart at 0: they only measure speed, over the time since this resume
        self._window = (torch.tensor(loss, device=self.device), count, 0, 0)
        self.history = History.from_dict(state["history"])
        torch.set_rng_state(state["rng"]["torch"])
        random.setstate(_lists_to_python_rng(state["rng"]["python"]))
        np.random.set_state(_lists_to_numpy_rng(state["rng"]["numpy"]))
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])


# RNG states contain tuples and NumPy arrays, which ``weights_only`` loading refuses; store them
# as plain lists and rebuild the exact objects on load.
def _python_rng_to_lists(state):
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _lists_to_python_rng(state):
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


def _numpy_rng_to_lists(state):
    name, keys, pos, has_gauss, cached = state
    return [name, torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos, has_gauss, cached]


def _lists_to_numpy_rng(state):
    name, keys, pos, has_gauss, cached = state
    return (name, keys.numpy().astype(np.uint32), pos, has_gauss, cached)
