"""The Trainer: schedule, optimizer, accumulation, overfitting, early stopping, resume."""

import math

import numpy as np
import pytest
import torch

from sftlearn.config import GPTConfig
from sftlearn.model import GPT
from sftlearn.schedule import lr_at
from sftlearn.train import Callback, NonFiniteLossError, TrainConfig, Trainer

from conftest import VOCAB, cyclic_blocks, stack_collate


def make_trainer(model, data, val=None, **config):
    config.setdefault("progress", False)
    return Trainer(model, data, val, TrainConfig(**config), collate_fn=stack_collate)


def fresh_model(dropout=0.0, seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig.preset("micro", vocab_size=VOCAB, block_size=64, dropout=dropout))


# ------------------------------------------------------------------ schedule
def test_schedule_values_at_known_steps():
    # warmup 10 steps to 1.0, cosine to 0.1 at step 110
    assert lr_at(0, 1.0, 110, 10, 0.1) == pytest.approx(0.1)
    assert lr_at(4, 1.0, 110, 10, 0.1) == pytest.approx(0.5)
    assert lr_at(9, 1.0, 110, 10, 0.1) == pytest.approx(1.0)
    assert lr_at(10, 1.0, 110, 10, 0.1) == pytest.approx(1.0)
    assert lr_at(60, 1.0, 110, 10, 0.1) == pytest.approx(0.55)  # half way: the mean
    assert lr_at(35, 1.0, 110, 10, 0.1) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi / 4)))
    assert lr_at(110, 1.0, 110, 10, 0.1) == pytest.approx(0.1)
    assert lr_at(500, 1.0, 110, 10, 0.1) == pytest.approx(0.1)


def test_schedule_bad_arguments():
    with pytest.raises(ValueError, match="total_steps must be positive"):
        lr_at(0, 1.0, 0)
    with pytest.raises(ValueError, match="warmup_steps"):
        lr_at(0, 1.0, 10, 20)
    # before step 0 the formula means nothing: -1.0 with warmup, a division by zero without
    with pytest.raises(ValueError, match=r"step must be >= 0 \(optimizer steps count from 0\), got -3"):
        lr_at(-3, 1.0, 10, 2, 0.1)
    with pytest.raises(ValueError, match="step must be >= 0"):
        lr_at(-5, 1.0, 10, 0, 0.0)


def test_trainer_uses_the_schedule():
    model = fresh_model()
    trainer = make_trainer(model, cyclic_blocks(), max_steps=20, batch_size=8, lr=1e-2,
                           warmup_steps=5, min_lr=1e-3, log_interval=1)
    history = trainer.fit()
    assert history.lr == pytest.approx([lr_at(s, 1e-2, 20, 5, 1e-3) for s in range(20)])


# ----------------------------------------------------------------- optimizer
def test_weight_decay_only_on_matrices():
    trainer = make_trainer(fresh_model(), cyclic_blocks(), max_steps=1, weight_decay=0.3)
    groups = trainer.optimizer.param_groups
    decayed = {id(p) for g in groups if g["weight_decay"] == 0.3 for p in g["params"]}
    for name, p in trainer.model.named_parameters():
        assert (id(p) in decayed) == (p.dim() >= 2), name


def test_one_step_matches_a_from_scratch_adamw():
    """The Trainer's update equals AdamW's formula written out (decoupled weight decay)."""
    data = cyclic_blocks(16)
    model = fresh_model()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    # reference gradient at the initial weights, on the same batch the trainer will use
    reference = fresh_model()
    batch = stack_collate(data[:16])
    _, loss = reference(batch["input_ids"], targets=batch["targets"])
    loss.backward()
    lr, wd, (b1, b2), eps = 1e-3, 0.1, (0.9, 0.95), 1e-8
    trainer = make_trainer(model, data, max_steps=1, batch_size=16, lr=lr, warmup_steps=0,
                           weight_decay=wd, grad_clip=None, shuffle=False)
    trainer.fit()
    for name, p in model.named_parameters():
        g = dict(reference.named_parameters())[name].grad
        m, v = (1 - b1) * g, (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1), v / (1 - b2)
        decay = wd if p.dim() >= 2 else 0.0
        expected = before[name] * (1 - lr * decay) - lr * m_hat / (v_hat.sqrt() + eps)
        assert torch.allclose(p, expected, atol=1e-6), name


# -------------------------------------------------------------- accumulation
def gradients_of_first_step(trainer):
    """Run one optimizer step and return the gradient it applied, per parameter name."""
    grads = {}
    original_step = trainer.optimizer.step

    def capture(*args, **kwargs):
        for name, p in trainer.model.named_parameters():
            grads[name] = p.grad.detach().clone()
        return original_step(*args, **kwargs)

    trainer.optimizer.step = capture
    trainer.fit()
    return grads


def test_grad_accumulation_equals_one_big_batch_even_with_masked_targets():
    data = cyclic_blocks(32)
    for i, item in enumerate(data):  # uneven numbers of counted targets per example
        item["targets"] = item["targets"].clone()
        item["targets"][: (i * 5) % 29] = -100
    common = dict(max_steps=1, lr=1e-3, shuffle=False, grad_clip=None)
    big = gradients_of_first_step(make_trainer(fresh_model(), data, batch_size=16, **common))
    small = gradients_of_first_step(
        make_trainer(fresh_model(), data, batch_size=4, grad_accum_steps=4, **common))
    for name in big:
        assert torch.allclose(big[name], small[name], rtol=1e-5, atol=1e-7), name


def test_a_micro_batch_with_every_target_masked_adds_nothing():
    # Its mean loss is 0/0; it must be skipped, not turn the whole step into NaN.
    data = cyclic_blocks(8)
    for item in data[:2]:  # the first micro-batch of two: nothing to learn from
        item["targets"] = torch.full_like(item["targets"], -100)
    common = dict(max_steps=1, lr=1e-3, shuffle=False, grad_clip=None)
    big = gradients_of_first_step(make_trainer(fresh_model(), data[:4], batch_size=4, **common))
    small = gradients_of_first_step(
        make_trainer(fresh_model(), data[:4], batch_size=2, grad_accum_steps=2, **common))
    for name in big:
        assert torch.isfinite(small[name]).all(), name
        assert torch.allclose(big[name], small[name], rtol=1e-5, atol=1e-7), name


# -------------------------------------------------------------- learning
def test_tiny_model_overfits_one_batch():
    data = cyclic_blocks(8)
    model = fresh_model()
    history = make_trainer(model, data, max_steps=150, batch_size=8, lr=3e-3, log_interval=10).fit()
    assert history.train_loss[0] > 3.0
    assert history.train_loss[-1] < 0.05


def test_early_stopping_restores_the_best_weights():
    train = cyclic_blocks(8, seed=0)
    val = cyclic_blocks(8, seed=1)  # a different sequence: val loss rises as we memorise train
    model = fresh_model()
    trainer = make_trainer(model, train, val, max_steps=400, batch_size=8, lr=3e-3,
                           eval_interval=10, early_stopping_patience=3)
    history = trainer.fit()
    assert history.stopped_early
    assert history.steps[-1] < 400
    assert "did not improve" in history.stop_reason
    best = history.best_val_loss
    assert history.val_loss[-1] > best
    assert trainer.evaluate() == pytest.approx(best, abs=1e-5)  # best weights are back


def test_evaluating_before_the_first_log_with_a_progress_bar():
    """eval_interval < log_interval: the bar shows val alone until a train loss exists."""
    trainer = make_trainer(fresh_model(), cyclic_blocks(), cyclic_blocks(4, seed=2),
                           max_steps=4, batch_size=4, eval_interval=1, log_interval=10,
                           progress=True)
    history = trainer.fit()
    assert history.val_steps == [1, 2, 3, 4]
    assert history.steps == [4]  # the final step is always logged


def test_callbacks_see_logs_and_can_stop_training():
    seen = []

    class StopAtFive(Callback):
        def on_log(self, trainer, logs):
            seen.append(logs["step"])
            if logs["step"] >= 5:
                trainer.should_stop = True

    trainer = Trainer(fresh_model(), cyclic_blocks(), config=TrainConfig(
        max_steps=50, batch_size=4, log_interval=1, progress=False),
        collate_fn=stack_collate, callbacks=[StopAtFive()])
    trainer.fit()
    assert seen == [1, 2, 3, 4, 5]
    assert trainer.step == 5


def test_a_stopped_run_logs_the_steps_since_its_last_log(tmp_path):
    # A run that stops before max_steps (early stopping, a callback) used to end its history at
    # its last log, up to log_interval - 1 steps before the stop. Each entry must be the mean
    # of its steps, as a run that logs every step shows (its steps all have 8 x 32 targets).
    train, val = cyclic_blocks(8, seed=0), cyclic_blocks(8, seed=1)
    common = dict(max_steps=200, batch_size=8, lr=3e-3)

    class StopAfter13(Callback):
        def on_log(self, trainer, logs):
            trainer.should_stop = logs["step"] == 13

    every_step = Trainer(fresh_model(), train, None, TrainConfig(
        log_interval=1, progress=False, **common), collate_fn=stack_collate,
        callbacks=[StopAfter13()]).fit().train_loss

    early = make_trainer(fresh_model(), train, val, log_interval=10, eval_interval=3,
                         early_stopping_patience=1, **common)
    history = early.fit()
    assert history.stopped_early and early.step == 6  # the case this test is about
    assert history.steps == [6]
    assert history.train_loss == pytest.approx([np.mean(every_step[:6])], rel=1e-5)

    class StopAt13(Callback):
        def on_eval(self, trainer, val_loss):
            if trainer.step == 13:
                trainer.should_stop = True

    # The interval checkpoints step 13 before the loop ends: it is rewritten with that log.
    stopped = Trainer(fresh_model(), train, val, TrainConfig(
        log_interval=10, eval_interval=13, checkpoint_dir=str(tmp_path), checkpoint_interval=13,
        progress=False, **common), collate_fn=stack_collate, callbacks=[StopAt13()])
    history = stopped.fit()
    assert stopped.step == 13 and history.steps == [10, 13]
    assert history.train_loss == pytest.approx(
        [np.mean(every_step[:10]), np.mean(every_step[10:13])], rel=1e-5)
    from sftlearn import checkpoint
    state = checkpoint.load_training_state(checkpoint.latest_checkpoint(tmp_path))
    assert state["history"]["steps"] == [10, 13] and state["log_window"] == [0.0, 0]


def test_a_run_that_reaches_max_steps_logs_as_before():
    # The last step is always logged, so nothing is left to log at the end of the run.
    logged = []

    class Record(Callback):
        def on_log(self, trainer, logs):
            logged.append(logs["step"])

    trainer = Trainer(fresh_model(), cyclic_blocks(), config=TrainConfig(
        max_steps=7, batch_size=4, log_interval=3, progress=False),
        collate_fn=stack_collate, callbacks=[Record()])
    history = trainer.fit()
    assert logged == history.steps == [3, 6, 7]
    assert len(history.train_loss) == len(history.lr) == len(history.tokens_per_sec) == 3


def test_a_ctrl_c_in_on_log_does_not_count_the_logged_steps_twice(tmp_path):
    # A Ctrl-C inside a callback's on_log (a notebook's plotting callback) came after the log
    # entry was written but before the window was cleared: the next log averaged those steps
    # in again, in the same Trainer and, through the checkpoint, in a resumed one.
    data = cyclic_blocks(40)
    common = dict(max_steps=16, batch_size=6, lr=3e-3, log_interval=4, seed=3)
    full = make_trainer(fresh_model(), data, **common).fit()

    class CtrlC(Callback):
        fired = False

        def on_log(self, trainer, logs):
            if logs["step"] == 8 and not self.fired:
                self.fired = True
                raise KeyboardInterrupt

    interrupted = Trainer(fresh_model(), data, None, TrainConfig(
        progress=False, checkpoint_dir=str(tmp_path), **common),
        collate_fn=stack_collate, callbacks=[CtrlC()])
    assert interrupted.fit().stop_reason == "interrupted at step 8"
    resumed = make_trainer(fresh_model(seed=9), data, checkpoint_dir=str(tmp_path), **common)
    assert resumed.fit(resume=True).train_loss == full.train_loss
    assert interrupted.fit().train_loss == full.train_loss  # fit() again, same Trainer


def test_mfu_counts_attention_at_the_batches_own_lengths():
    # MFU is logged where the peak is known (GPUs). Given a peak on the CPU, one window of a
    # batch of 4 x 32 tokens and one of 4 x 8 must use their token-weighted mean length,
    # (128 * 32 + 32 * 8) / 160 = 27.2, not the context's 64.
    logs = []

    class Record(Callback):
        def on_log(self, trainer, entry):
            logs.append(entry)

    data = cyclic_blocks(4, block=32) + cyclic_blocks(4, block=8)
    model = fresh_model()
    trainer = Trainer(model, data, config=TrainConfig(
        max_steps=2, batch_size=4, shuffle=False, log_interval=2, progress=False),
        collate_fn=stack_collate, callbacks=[Record()])
    trainer._peak = 1e12
    trainer.fit()
    (entry,) = logs
    expected = entry["tokens_per_sec"] * model.flops_per_token(27.2) / 1e12
    assert entry["mfu"] == pytest.approx(expected, rel=1e-12)
    assert model.flops_per_token(27.2) < model.flops_per_token()  # the context would overstate it


def test_the_best_validation_loss_is_never_a_nan():
    from sftlearn.history import History

    for losses in ([math.nan, 1.2, 1.5], [1.2, math.nan, 1.5], [1.5, 1.2, math.nan]):
        history = History(val_steps=[10, 20, 30], val_loss=losses)
        assert history.best_val_loss == 1.2 and history.best_step == 10 * (losses.index(1.2) + 1)
    nothing = History(val_steps=[10], val_loss=[math.nan])
    assert nothing.best_val_loss == math.inf and nothing.best_step is None
    assert History().best_step is None
    # and the summary does not call inf the best loss, "at step None"
    assert nothing.summary() == "no finite val loss in 1 evaluations"
    assert History(val_steps=[10, 20], val_loss=[1.5, 1.2]).summary() == "best val loss 1.200 at step 20"


def test_history_plot_draws_train_and_validation_curves():
    trainer = make_trainer(fresh_model(), cyclic_blocks(), cyclic_blocks(4, seed=2),
                           max_steps=20, batch_size=8, eval_interval=10, log_interval=5)
    ax = trainer.fit().plot()
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["train", "validation"]
    assert list(ax.get_lines()[0].get_xdata()) == [5, 10, 15, 20]


# -------------------------------------------------------------- resume
def test_resume_continues_bit_identically(tmp_path):
    data = cyclic_blocks(40)
    common = dict(max_steps=24, batch_size=6, lr=3e-3, log_interval=1, seed=3)
    full = make_trainer(fresh_model(dropout=0.1), data, **common).fit()

    # The same run, killed at step 13 (after the checkpoint of step 10), then resumed by a new
    # Trainer around a differently initialised model.
    class Kill(Callback):
        def on_log(self, trainer, logs):
            if logs["step"] == 13:
                raise RuntimeError("killed")

    killed = Trainer(fresh_model(dropout=0.1), data, config=TrainConfig(
        progress=False, checkpoint_dir=str(tmp_path), checkpoint_interval=5, **common),
        collate_fn=stack_collate, callbacks=[Kill()])
    with pytest.raises(RuntimeError, match="killed"):
        killed.fit()
    torch.manual_seed(12345)  # disturb the global RNG state: resume must restore it
    resumed = make_trainer(fresh_model(dropout=0.1, seed=99), data, checkpoint_dir=str(tmp_path),
                           **common)
    history = resumed.fit(resume=True)
    assert history.steps == full.steps
    assert history.train_loss == full.train_loss  # exact, not approximate


def test_resume_keeps_the_log_window_and_the_best_weights(tmp_path):
    # Logs every 4 steps and checkpoints every 10: the checkpoint of step 40 falls inside a log
    # window, and the best validation loss comes long before it. A resumed run must log the
    # same averages and, with restore_best, end on the same (best) weights.
    train, val = cyclic_blocks(8, seed=0), cyclic_blocks(8, seed=1)
    common = dict(max_steps=60, batch_size=8, lr=3e-3, log_interval=4, eval_interval=10, seed=3)
    full_trainer = make_trainer(fresh_model(), train, val, **common)
    full = full_trainer.fit()
    assert full.best_step < 40 < full.val_steps[-1]  # the case this test is about

    class Kill(Callback):
        def on_log(self, trainer, logs):
            if logs["step"] == 44:
                raise RuntimeError("killed")

    killed = Trainer(fresh_model(), train, val, TrainConfig(
        progress=False, checkpoint_dir=str(tmp_path), checkpoint_interval=10, **common),
        collate_fn=stack_collate, callbacks=[Kill()])
    with pytest.raises(RuntimeError, match="killed"):
        killed.fit()
    resumed = make_trainer(fresh_model(seed=99), train, val, checkpoint_dir=str(tmp_path), **common)
    history = resumed.fit(resume=True)
    assert history.train_loss == full.train_loss  # exact, the window over step 40 included
    assert resumed.evaluate() == pytest.approx(full_trainer.evaluate(), abs=1e-6)
    assert resumed.evaluate() == pytest.approx(full.best_val_loss, abs=1e-5)


def test_resume_uses_the_configs_weight_decay_and_betas(tmp_path):
    # Loading the optimizer's state used to bring back the checkpoint's weight decay and betas,
    # while trainer.config (and the next checkpoint's train_config) showed the new ones.
    data = cyclic_blocks(16)
    make_trainer(fresh_model(), data, checkpoint_dir=str(tmp_path), max_steps=2, batch_size=4,
                 weight_decay=0.1, betas=(0.9, 0.95)).fit()
    resumed = make_trainer(fresh_model(), data, checkpoint_dir=str(tmp_path), max_steps=4,
                           batch_size=4, weight_decay=0.5, betas=(0.8, 0.99))
    resumed.fit(resume=True)
    assert resumed.step == 4
    from sftlearn import checkpoint
    saved = checkpoint.load_training_state(checkpoint.latest_checkpoint(tmp_path))["optimizer"]
    for groups in (resumed.optimizer.param_groups, saved["param_groups"]):
        decay, no_decay = groups  # matrices, then biases and norms (see make_optimizer)
        assert (decay["weight_decay"], no_decay["weight_decay"]) == (0.5, 0.0)
        assert tuple(decay["betas"]) == tuple(no_decay["betas"]) == (0.8, 0.99)
    assert all(p.dim() >= 2 for p in resumed.optimizer.param_groups[0]["params"])


def test_a_config_of_numpy_numbers_resumes(tmp_path):
    # NumPy numbers used to reach the checkpoint, which safe loading (weights_only=True) refuses.
    def numpy_config(max_steps):
        return dict(max_steps=max_steps, batch_size=4, log_interval=1, lr=np.float32(3e-3),
                    min_lr=np.float64(1e-4), weight_decay=np.float64(0.1),
                    grad_clip=np.float32(1.0), betas=(np.float64(0.9), np.float32(0.95)),
                    checkpoint_dir=str(tmp_path))

    first = make_trainer(fresh_model(), cyclic_blocks(16), **numpy_config(2))
    first.fit()
    config = first.config
    for value in (config.lr, config.min_lr, config.weight_decay, config.grad_clip, *config.betas):
        assert type(value) is float
    assert config.lr == float(np.float32(3e-3))  # the same number, as a Python float
    history = make_trainer(fresh_model(), cyclic_blocks(16), **numpy_config(3)).fit(resume=True)
    assert history.steps == [1, 2, 3]


def test_each_step_is_checkpointed_once(tmp_path, monkeypatch):
    # max_steps is a multiple of the interval: the interval's save of step 6 is the final one,
    # so the end of fit() must not write step 6 a second time.
    from sftlearn import checkpoint

    saved = []
    real = checkpoint.save_training_checkpoint
    monkeypatch.setattr(checkpoint, "save_training_checkpoint",
                        lambda folder, step, *a: saved.append(step) or real(folder, step, *a))
    make_trainer(fresh_model(), cyclic_blocks(), max_steps=6, checkpoint_dir=str(tmp_path),
                 checkpoint_interval=3).fit()
    assert saved == [3, 6]
    # A resumed run that has nothing left to do writes nothing either.
    make_trainer(fresh_model(), cyclic_blocks(), max_steps=6, checkpoint_dir=str(tmp_path)).fit(resume=True)
    assert saved == [3, 6]


def test_a_fresh_run_in_a_folder_with_checkpoints_is_warned(tmp_path, recwarn):
    make_trainer(fresh_model(), cyclic_blocks(), max_steps=2, checkpoint_dir=str(tmp_path)).fit()
    assert not recwarn.list  # an empty folder: nothing to say
    with pytest.warns(UserWarning, match=r"already holds checkpoints of a run.*fit\(resume=True\)"):
        make_trainer(fresh_model(), cyclic_blocks(), max_steps=2, checkpoint_dir=str(tmp_path)).fit()
    recwarn.clear()
    make_trainer(fresh_model(), cyclic_blocks(), max_steps=4, checkpoint_dir=str(tmp_path)).fit(resume=True)
    assert not [w for w in recwarn.list if "already holds" in str(w.message)]  # resuming is the point


def test_resuming_an_early_stopped_run_trains_and_writes_nothing(tmp_path, monkeypatch):
    # An early stop ends the run as reaching max_steps does: resuming it used to clear the stop
    # and train on until the next evaluation without improvement, writing a new checkpoint.
    from sftlearn import checkpoint

    saved = []
    real = checkpoint.save_training_checkpoint
    monkeypatch.setattr(checkpoint, "save_training_checkpoint",
                        lambda folder, step, *a: saved.append(step) or real(folder, step, *a))
    train, val = cyclic_blocks(8, seed=0), cyclic_blocks(8, seed=1)
    common = dict(max_steps=400, batch_size=4, lr=3e-3, eval_interval=5,
                  early_stopping_patience=2, checkpoint_dir=str(tmp_path))
    first = make_trainer(fresh_model(), train, val, **common)
    full = first.fit()
    assert full.stopped_early and saved == [first.step] and first.step < 400
    assert full.best_step < first.step  # so restoring the best weights shows

    resumed = make_trainer(fresh_model(seed=99), train, val, **common)
    history = resumed.fit(resume=True)
    assert resumed.step == first.step
    assert saved == [first.step]  # no new checkpoint
    assert (history.steps, history.val_steps, history.val_loss) == (
        full.steps, full.val_steps, full.val_loss)
    assert history.stop_reason == full.stop_reason
    assert resumed.evaluate() == pytest.approx(full.best_val_loss, abs=1e-5)  # best weights back


def test_ctrl_c_during_an_evaluation_resumes_with_that_evaluation(tmp_path):
    # The checkpoint written on a Ctrl-C inside the evaluation of step 10 records step 10 as
    # taken; the resumed run must still evaluate it, or the best weights and early stopping
    # would be decided on other evaluations than the uninterrupted run's.
    train, val = cyclic_blocks(8, seed=0), cyclic_blocks(8, seed=1)
    common = dict(max_steps=30, batch_size=4, lr=3e-3, log_interval=5, eval_interval=5,
                  eval_batches=None, early_stopping_patience=10, seed=3)
    full_model = fresh_model()
    full_trainer = make_trainer(full_model, train, val, **common)
    full = full_trainer.fit()
    assert full.val_steps == [5, 10, 15, 20, 25, 30]
    assert full_trainer.evals_without_improvement > 0  # the counter is part of what must match

    class Evals(Callback):
        def __init__(self):
            self.steps = []

        def on_eval(self, trainer, val_loss):
            self.steps.append(trainer.step)

    eval_batches = {"n": 0}

    def loss_interrupted_in_the_second_evaluation(m, batch):
        if not m.training:  # evaluating: 2 validation batches per evaluation
            eval_batches["n"] += 1
            if eval_batches["n"] == 4:
                raise KeyboardInterrupt
        return m(batch["input_ids"], targets=batch["targets"])[1]

    first = make_trainer(fresh_model(), train, val, checkpoint_dir=str(tmp_path), **common)
    first.loss_fn = loss_interrupted_in_the_second_evaluation
    first.fit()
    assert first.history.stop_reason == "interrupted at step 10"
    assert first.history.val_steps == [5]

    evals = Evals()
    resumed_model = fresh_model(seed=99)
    resumed = Trainer(resumed_model, train, val, TrainConfig(
        progress=False, checkpoint_dir=str(tmp_path), **common), collate_fn=stack_collate,
        callbacks=[evals])
    history = resumed.fit(resume=True)
    assert evals.steps == [10, 15, 20, 25, 30]  # step 10's evaluation first, with its callback
    assert history.val_steps == full.val_steps
    assert history.val_loss == full.val_loss  # exact: the same weights at every evaluation
    assert history.train_loss == full.train_loss
    assert history.stop_reason == full.stop_reason  # the interruption is over once resumed
    assert (resumed.best_val, resumed.evals_without_improvement) == (
        full_trainer.best_val, full_trainer.evals_without_improvement)
    for name, value in full_model.state_dict().items():  # the same best weights restored
        assert torch.equal(resumed_model.state_dict()[name], value), name


def test_ctrl_c_during_the_last_evaluation_rewrites_the_last_checkpoint(tmp_path):
    # Interrupted in the evaluation of the final step, the resumed run has no step left to take:
    # it evaluates and saves that step again, so that the checkpoint holds the evaluation too.
    from sftlearn.checkpoint import latest_checkpoint, load_training_state

    train, val = cyclic_blocks(8, seed=0), cyclic_blocks(8, seed=1)
    common = dict(max_steps=6, batch_size=4, eval_interval=0, checkpoint_dir=str(tmp_path))

    def interrupted_evaluation(m, batch):
        if not m.training:
            raise KeyboardInterrupt
        return m(batch["input_ids"], targets=batch["targets"])[1]

    first = make_trainer(fresh_model(), train, val, **common)
    first.loss_fn = interrupted_evaluation
    first.fit()
    assert first.history.stop_reason == "interrupted at step 6"
    assert first.history.val_steps == []

    history = make_trainer(fresh_model(seed=99), train, val, **common).fit(resume=True)
    assert history.val_steps == [6]
    state = load_training_state(latest_checkpoint(tmp_path))
    assert state["step"] == 6 and state["history"]["val_steps"] == [6]


def test_resume_refuses_a_different_model(tmp_path):
    make_trainer(fresh_model(), cyclic_blocks(), max_steps=2, checkpoint_dir=str(tmp_path)).fit()
    other = GPT(GPTConfig.preset("micro", vocab_size=VOCAB, block_size=64, n_layer=3))
    trainer = make_trainer(other, cyclic_blocks(), max_steps=4, checkpoint_dir=str(tmp_path))
    with pytest.raises(ValueError, match="different model.*n_layer: 2 vs 3"):
        trainer.fit(resume=True)


def test_resume_refuses_a_different_batch_size(tmp_path):
    make_trainer(fresh_model(), cyclic_blocks(), max_steps=2, batch_size=4,
                 checkpoint_dir=str(tmp_path)).fit()
    trainer = make_trainer(fresh_model(), cyclic_blocks(), max_steps=4, batch_size=8,
                           checkpoint_dir=str(tmp_path))
    with pytest.raises(ValueError, match="batch_size=4.*batch_size=8"):
        trainer.fit(resume=True)


# -------------------------------------------------------------- failures
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    from sftlearn.checkpoint import latest_checkpoint, load_model

    model = fresh_model()
    trainer = make_trainer(model, cyclic_blocks(), max_steps=30, batch_size=4,
                           checkpoint_dir=str(tmp_path), checkpoint_interval=5, log_interval=1)
    calls = {"n": 0}

    def poisoned_loss(m, batch):
        calls["n"] += 1
        _, loss = m(batch["input_ids"], targets=batch["targets"])
        return loss * float("nan") if calls["n"] == 8 else loss

    trainer.loss_fn = poisoned_loss
    with pytest.raises(NonFiniteLossError, match="step 8.*last good logged loss.*learning rate"):
        trainer.fit()
    folder = latest_checkpoint(tmp_path)
    assert folder.name == "step-0000005"
    restored = load_model(folder)
    assert all(torch.isfinite(p).all() for p in restored.parameters())
    assert all(torch.isfinite(p).all() for p in model.parameters())  # bad step never applied


def test_a_non_finite_logged_mean_names_the_steps_it_covers():
    # On GPUs the loss is checked once per log, on the window's sum. Here each step's loss is
    # finite (so the CPU's per-step check passes) but the sum of four overflows float32: the
    # error must name steps 1 to 4, not a step 5 that never ran.
    trainer = make_trainer(fresh_model(), cyclic_blocks(), max_steps=8, batch_size=4, log_interval=4)
    per_target = 3e38 / (4 * 63)  # a step's loss sum is loss x its 4 x 63 targets: just finite

    def huge_but_finite(m, batch):
        _, loss = m(batch["input_ids"], targets=batch["targets"])
        return loss * 0 + per_target

    trainer.loss_fn = huge_but_finite
    with pytest.raises(NonFiniteLossError, match=r"The loss became inf in steps 1 to 4 \("):
        trainer.fit()
    assert trainer.history.stop_reason == "stopped: non-finite loss in steps 1 to 4"


def test_batch_with_every_target_masked_is_refused():
    data = cyclic_blocks(8)
    for item in data:
        item["targets"] = torch.full_like(item["targets"], -100)
    with pytest.raises(ValueError, match="Every target.*masked"):
        make_trainer(fresh_model(), data, max_steps=2, batch_size=4).fit()


def test_empty_datasets_and_bad_config_are_refused():
    with pytest.raises(ValueError, match="training set is empty"):
        make_trainer(fresh_model(), [], max_steps=2)
    with pytest.raises(ValueError, match="validation set is empty"):
        make_trainer(fresh_model(), cyclic_blocks(), [], max_steps=2)
    with pytest.raises(ValueError, match="max_steps must be a positive int"):
        TrainConfig(max_steps=0)
    with pytest.raises(ValueError, match="lr must be positive"):
        TrainConfig(lr=-1.0)


@pytest.mark.parametrize("setting, error, message", [
    # each of these used to pass TrainConfig and fail inside fit with a torch error, or not at all
    (dict(seed=None), TypeError, r"seed must be an int \(got NoneType\); pass e\.g\. seed=0"),
    (dict(seed=1.5), TypeError, r"seed must be an int \(got float\)"),
    (dict(eval_interval=-1), ValueError,
     r"TrainConfig\.eval_interval must be an int >= 0, got -1\. 0 = evaluate only at the end"),
    (dict(eval_interval=2.5), ValueError, r"TrainConfig\.eval_interval must be an int >= 0, got 2\.5"),
    (dict(checkpoint_interval=-3), ValueError,
     r"TrainConfig\.checkpoint_interval must be an int >= 0, got -3\. 0 = checkpoint only"),
    (dict(weight_decay=-1), ValueError, r"TrainConfig\.weight_decay must be a number >= 0.*got -1"),
    (dict(betas=(0.9,)), ValueError, r"TrainConfig\.betas must be two numbers in \[0, 1\).*got \(0\.9,\)"),
    (dict(betas=(0.9, 1.5)), ValueError, r"TrainConfig\.betas must be two numbers in \[0, 1\)"),
    (dict(precision="xx"), ValueError,
     r"TrainConfig\.precision must be one of 'auto', 'fp32', 'bf16', 'fp16', got 'xx'"),
])
def test_bad_config_values_are_refused_when_the_config_is_made(setting, error, message):
    with pytest.raises(error, match=message):
        TrainConfig(**setting)


@pytest.mark.parametrize("name, value", [
    ("restore_best", "False"), ("compile", "False"), ("shuffle", "no"), ("progress", None),
    ("progress", 1),
])
def test_on_off_settings_must_be_true_or_false(name, value):
    # any non-empty string counts as True: restore_best="False" restored, compile="False" compiled
    with pytest.raises(ValueError, match=rf"TrainConfig\.{name} must be True or False, got {value!r}\."):
        TrainConfig(**{name: value})


def test_config_values_the_package_uses_are_accepted():
    # eval_interval=0 and checkpoint_interval=0 mean "only at the end"; a checkpoint stores betas
    # as a list; choose_precision ignores the case of the precision's name.
    config = TrainConfig(seed=-7, eval_interval=0, checkpoint_interval=0, weight_decay=0,
                         betas=[0.0, 0.999], precision="BF16")
    assert config.betas == (0.0, 0.999)


def test_frozen_model_is_refused():
    model = fresh_model()
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        make_trainer(model, cyclic_blocks(), max_steps=2)


class Bigram(torch.nn.Module):
    """A model with the Trainer's interface ((logits, loss) from ids and targets) and no config."""

    def __init__(self):
        super().__init__()
        self.table = torch.nn.Embedding(VOCAB, VOCAB)

    def forward(self, input_ids, targets=None, attention_mask=None):
        logits = self.table(input_ids)  # (B, T, V)
        loss = None if targets is None else torch.nn.functional.cross_entropy(
            logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        return logits, loss


def test_a_model_without_a_config_trains_but_is_not_checkpointed(tmp_path):
    history = make_trainer(Bigram(), cyclic_blocks(), max_steps=3, batch_size=4, log_interval=1).fit()
    assert len(history.train_loss) == 3
    # Refused before the first step, not after the last one (where saving would fail).
    with pytest.raises(ValueError, match="a Bigram has no .config.*leave checkpoint_dir unset"):
        make_trainer(Bigram(), cyclic_blocks(), max_steps=3, batch_size=4, checkpoint_dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_unavailable_device_is_refused():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match="'cuda' was requested.*not available.*cpu"):
        make_trainer(fresh_model(), cyclic_blocks(), max_steps=2, device="cuda")


# -------------------------------------------------------------- GPU paths, exercised on the CPU
def test_bf16_autocast_training_runs_and_learns_on_cpu():
    """The mixed-precision code path (autocast + fp32 master weights) works off the GPU too."""
    trainer = make_trainer(fresh_model(), cyclic_blocks(8), max_steps=40, batch_size=8,
                           precision="bf16", log_interval=10)
    history = trainer.fit()
    assert trainer.precision.name == "bf16"
    assert next(trainer.model.parameters()).dtype == torch.float32  # weights stay fp32
    assert history.train_loss[-1] < history.train_loss[0] - 1.0


def test_compiled_model_gives_the_same_losses():
    """torch.compile changes speed, not results (same losses to float tolerance)."""
    plain = make_trainer(fresh_model(), cyclic_blocks(8), max_steps=3, batch_size=8, log_interval=1)
    compiled = make_trainer(fresh_model(), cyclic_blocks(8), max_steps=3, batch_size=8,
                            log_interval=1, compile=True)
    assert compiled.forward_model is not compiled.model
    a, b = plain.fit().train_loss, compiled.fit().train_loss
    assert b == pytest.approx(a, rel=1e-4)
