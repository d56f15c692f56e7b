"""Data-parallel training: two processes under torchrun train exactly like one process.

The comparison is exact by construction: dropout is 0, both runs see the same global batches
in the same order (the epoch permutation depends only on the seed), and the Trainer weights
each process's loss by its share of the global target count, so the averaged gradient is the
gradient of the whole global batch. What is left is float rounding from summing the gradient
in a different order: weights and losses must agree to 1e-5.

This file is also the worker script: ``torchrun ... tests/test_distributed.py OUT_DIR`` runs
``worker()`` in each process.
"""

import glob
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from sftlearn import checkpoint as ckpt
from sftlearn import distributed, zoo
from sftlearn.config import GPTConfig
from sftlearn.model import GPT
from sftlearn.train import Callback, TrainConfig, Trainer, default_loss, targets_only_loss

from conftest import VOCAB, cyclic_blocks, stack_collate

PER_RANK = 2  # examples per process per micro-batch
WORLD = 2
PEAK = 1e12  # a made-up peak FLOP/s, so the CPU run logs an MFU as a GPU run does
TOL = 1e-5


def masked_data():
    """24 training blocks whose number of counted targets differs from example to example
    (as in SFT), so that weighting each process by its target count matters."""
    data = cyclic_blocks(24, block=32)
    for i, item in enumerate(data):
        item["targets"] = item["targets"].clone()
        item["targets"][: (i * 7) % 23] = -100
    return data, cyclic_blocks(8, block=32, seed=1)


def run(batch_size, checkpoint_dir=None, progress=False, length_groups=0,
        loss_fn=default_loss, logs=None) -> tuple[Trainer, dict]:
    """4 optimizer steps of 2 accumulated micro-batches; 24 examples / 4 per global
    micro-batch = 6 per epoch, so the run also crosses an epoch boundary. Returns the trainer
    and the gradient that the first optimizer step applied."""
    train, val = masked_data()
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("micro", vocab_size=VOCAB, block_size=32))
    config = TrainConfig(max_steps=4, batch_size=batch_size, grad_accum_steps=2, lr=1e-3,
                         warmup_steps=1, log_interval=1, eval_interval=2, eval_batches=None,
                         device="cpu", seed=0, progress=progress, checkpoint_dir=checkpoint_dir,
                         checkpoint_interval=2, length_groups=length_groups)
    trainer = Trainer(model, train, val, config, collate_fn=stack_collate, loss_fn=loss_fn)
    if logs is not None:  # record each log entry, MFU included (given a peak, as on a GPU)
        trainer._peak = PEAK

        class Record(Callback):
            def on_log(self, trainer, entry):
                logs.append(entry)

        trainer.callbacks.append(Record())
    first_grads = {}
    original_step = trainer.optimizer.step

    def capture(*args, **kwargs):
        if not first_grads:
            first_grads.update({n: p.grad.clone() for n, p in model.named_parameters()})
        return original_step(*args, **kwargs)

    trainer.optimizer.step = capture
    trainer.fit()
    return trainer, first_grads


def worker(out_dir: Path) -> None:
    """What each torchrun process does: train, and record what it ended with."""
    saves = []
    original = ckpt.save_training_checkpoint

    def counting_save(*args, **kwargs):
        saves.append(args[1])  # the step
        return original(*args, **kwargs)

    ckpt.save_training_checkpoint = counting_save
    logs = []
    trainer, grads = run(PER_RANK, checkpoint_dir=str(out_dir / "checkpoints"), progress=True,
                         logs=logs)
    grouped, _ = run(PER_RANK, length_groups=2)  # batches shuffled in groups of global batches
    only, _ = run(PER_RANK, loss_fn=targets_only_loss)  # the output layer where targets count

    # Building a zoo model under torchrun: the processes train it together, one caches it.
    stores = []
    original_store = zoo.store
    zoo.store = lambda *args, **kwargs: stores.append(args[0]) or original_store(*args, **kwargs)
    os.environ[zoo.ENV_CACHE] = str(out_dir / "cache")
    zoo_model, _ = zoo.base_model("micro-base", progress=False, device="cpu")
    torch.save({"state": trainer.model.state_dict(), "history": asdict(trainer.history),
                "grads": grads, "grouped_state": grouped.model.state_dict(),
                "targets_only_state": only.model.state_dict(),
                "saves": saves, "world": distributed.world_size(), "device": str(trainer.device),
                "logs": logs, "flops_per_token": trainer.model.flops_per_token(32),
                "is_ddp": trainer.parallel_model is not trainer.model,
                "zoo_stores": stores, "zoo_state": zoo_model.state_dict()},
               out_dir / f"rank{distributed.rank()}.pt")


# ------------------------------------------------------------- two processes
@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """Launch this file under torchrun with two CPU processes (gloo) and collect results."""
    out = tmp_path_factory.mktemp("ddp")
    logs = out / "logs"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", str(WORLD), "--redirects", "3", "--log-dir", str(logs),
               __file__, str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent)}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    stderr = {rank: Path(f).read_text() for rank in range(WORLD)
              for f in glob.glob(f"{logs}/**/attempt_0/{rank}/stderr.log", recursive=True)}
    assert result.returncode == 0, (result.stderr[-2000:], {r: t[-2000:] for r, t in stderr.items()})
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    return ranks, stderr, out


def test_every_process_ran_ddp(ddp_run):
    ranks, _, _ = ddp_run
    assert all(r["world"] == WORLD and r["is_ddp"] and r["device"] == "cpu" for r in ranks)


def one_process(**settings) -> tuple[Trainer, dict]:
    """``run`` in this process with the two processes' global batch, on one thread like each
    worker (on a busy 2-core machine also much faster)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run(PER_RANK * WORLD, **settings)
    finally:
        torch.set_num_threads(threads)


def assert_weights_close(state: dict, reference: dict) -> None:
    for name, tensor in reference.items():
        torch.testing.assert_close(state[name], tensor, atol=TOL, rtol=0, msg=name)


def test_two_processes_end_with_the_weights_of_one(ddp_run):
    ranks, _, _ = ddp_run
    single, grads = one_process()
    # The first step's gradient: Adam would hide a wrong overall scale (it divides by the
    # gradient's size), so the gradient itself is compared too, before any update.
    for name, grad in grads.items():
        torch.testing.assert_close(ranks[0]["grads"][name], grad, atol=1e-6, rtol=1e-5, msg=name)
    reference = single.model.state_dict()
    first, second = ranks[0]["state"], ranks[1]["state"]
    for name in reference:
        assert torch.equal(first[name], second[name]), name  # the copies never drift apart
    assert_weights_close(first, reference)
    # and training moved the weights far more than the tolerance, so the check means something
    start = GPT(GPTConfig.preset("micro", vocab_size=VOCAB, block_size=32)).state_dict()
    moved = max((reference[n] - start[n]).abs().max() for n in reference if n in start)
    assert moved > 100 * TOL

    ddp_history, history = ranks[0]["history"], single.history
    assert ddp_history["steps"] == history.steps == [1, 2, 3, 4]
    assert ddp_history["train_loss"] == pytest.approx(history.train_loss, abs=TOL)
    assert ddp_history["val_loss"] == pytest.approx(history.val_loss, abs=TOL)
    assert ranks[1]["history"]["train_loss"] == ddp_history["train_loss"]  # logged the same


def test_grouping_by_length_groups_global_batches(ddp_run):
    # length_groups orders *global* batches (batch_size x processes), which the processes then
    # share: two processes must train exactly like one process with the whole global batch.
    ranks, _, _ = ddp_run
    single, _ = one_process(length_groups=2)
    plain, _ = one_process()
    assert_weights_close(ranks[0]["grouped_state"], single.model.state_dict())
    # and the grouped run read its batches in another order than the plain one
    assert any(not torch.allclose(tensor, plain.model.state_dict()[name], atol=100 * TOL)
               for name, tensor in single.model.state_dict().items())


def test_the_targets_only_loss_trains_alike_under_torchrun(ddp_run):
    # Two processes computing the output layer only where targets count (a different number
    # of positions in each process and micro-batch) end where one process with the full output
    # layer ends.
    ranks, _, _ = ddp_run
    single, _ = one_process()
    assert_weights_close(ranks[0]["targets_only_state"], single.model.state_dict())


def test_mfu_charges_the_tokens_of_every_process_to_every_device(ddp_run):
    # tokens_per_sec counts the whole job's tokens; one device's peak would overstate MFU
    # WORLD times (the batches are 32 tokens long, so the attention length is 32)
    ranks, _, _ = ddp_run
    logs, flops = ranks[0]["logs"], ranks[0]["flops_per_token"]
    assert len(logs) == 4
    for entry in logs:
        assert entry["mfu"] == pytest.approx(entry["tokens_per_sec"] * flops / (WORLD * PEAK),
                                             rel=1e-9)


def test_only_rank_0_writes_checkpoints_and_shows_progress(ddp_run):
    ranks, stderr, out = ddp_run
    assert ranks[0]["saves"] == [2, 4] and ranks[1]["saves"] == []  # every 2 steps; 4 is the end
    assert sorted(p.name for p in (out / "checkpoints").glob("step-*")) == [
        "step-0000002", "step-0000004"]
    assert "training" in stderr[0] and "training" not in stderr[1]


def test_a_zoo_model_built_under_torchrun_is_cached_once(ddp_run):
    ranks, _, out = ddp_run
    assert ranks[0]["zoo_stores"] == ["micro-base"] and ranks[1]["zoo_stores"] == []
    for name, tensor in ranks[0]["zoo_state"].items():
        assert torch.equal(tensor, ranks[1]["zoo_state"][name]), name
    folders = [p.name for p in (out / "cache").iterdir()]
    assert len(folders) == 1 and folders[0].startswith("micro-base-")  # no temporary leftovers
    cached = ckpt.load_model(out / "cache" / folders[0])
    for name, tensor in cached.state_dict().items():
        assert torch.equal(tensor, ranks[0]["zoo_state"][name]), name


def test_a_checkpoint_of_two_processes_does_not_resume_in_one(ddp_run, tmp_path):
    _, _, out = ddp_run
    train, _ = masked_data()
    model = GPT(GPTConfig.preset("micro", vocab_size=VOCAB, block_size=32))
    config = TrainConfig(max_steps=6, batch_size=PER_RANK, grad_accum_steps=2, device="cpu",
                         progress=False, checkpoint_dir=str(out / "checkpoints"))
    trainer = Trainer(model, train, None, config, collate_fn=stack_collate)
    with pytest.raises(ValueError, match=r"written by 2 process\(es\).*--nproc_per_node 2"):
        trainer.fit(resume=True)


# ------------------------------------------------------------ single process
def test_alone_nothing_is_distributed():
    assert distributed.launch_info({}) is None
    assert distributed.launch_info({"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0"}) is None
    assert distributed.launch_info({"WORLD_SIZE": "1"}) is None  # one process: nothing else needed
    assert (distributed.rank(), distributed.world_size(), distributed.is_main_process()) == (0, 1, True)
    assert distributed.sum_over_ranks([3, 4]) == [3, 4]
    model = torch.nn.Linear(2, 2)
    assert distributed.wrap(model, torch.device("cpu")) is model
    assert distributed.setup(torch.device("cpu")) == torch.device("cpu")
    distributed.barrier()  # returns at once


def test_torchrun_environment_is_read_and_checked(monkeypatch):
    env = {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": "29500"}
    assert distributed.launch_info(env) == distributed.LaunchInfo(rank=1, local_rank=1, world_size=2)
    with pytest.raises(ValueError, match=r"WORLD_SIZE='two'.*torchrun --nproc_per_node"):
        distributed.launch_info({**env, "WORLD_SIZE": "two"})
    with pytest.raises(ValueError, match="RANK=2 does not fit WORLD_SIZE=2"):
        distributed.launch_info({**env, "RANK": "2"})
    without_master = {k: v for k, v in env.items() if not k.startswith("MASTER")}
    with pytest.raises(ValueError, match="MASTER_ADDR, MASTER_PORT is not set"):
        distributed.launch_info(without_master)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match="not on mps"):
        distributed.setup(torch.device("mps"))


@pytest.mark.parametrize("rank", [0, 1, 2])
def test_shards_of_a_global_batch_are_its_consecutive_slices(rank):
    order = [9, 4, 7, 1, 0, 3, 8, 2, 6, 5]
    full = distributed.shard(order[:6], order, rank, 3, 2)
    assert full == order[2 * rank : 2 * rank + 2]
    # the last batch of the epoch holds 2 of 6: filled up from the start of the epoch
    short = distributed.shard([6, 5], order, rank, 3, 2)
    assert short == [[6, 5], [9, 4], [7, 1]][rank]


def test_a_dataset_smaller_than_the_global_batch_wraps_around():
    assert [distributed.shard([2, 0], [2, 0], r, 3, 2) for r in range(3)] == [
        [2, 0], [2, 0], [2, 0]]
    with pytest.raises(ValueError, match="0 <= rank < world_size"):
        distributed.shard([1], [1], 2, 2, 1)
    with pytest.raises(ValueError, match="per_rank >= 1"):
        distributed.shard([1], [1], 0, 2, 0)


if __name__ == "__main__":
    worker(Path(sys.argv[1]))
