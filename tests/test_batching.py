"""Grouping batches by length (sftlearn.batching) and the Trainer's length_groups option."""

import pytest
import torch

from sftlearn.batching import example_lengths, length_grouped_order, padding_share
from sftlearn.config import GPTConfig
from sftlearn.datasets import collate
from sftlearn.model import GPT
from sftlearn.train import Callback, TrainConfig, Trainer

from conftest import VOCAB


def random_lengths(n, low=5, high=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(low, high + 1, (n,), generator=g)  # (n,)


def batches_of(order, batch_size):
    return [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]


def shuffled(n, seed=0):
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------- the order itself
def test_grouped_order_is_a_permutation_with_only_the_last_batch_short():
    lengths = random_lengths(203)
    order = length_grouped_order(shuffled(203), lengths, 16, 4, torch.Generator().manual_seed(1))
    assert sorted(order.tolist()) == list(range(203))
    sizes = [len(b) for b in batches_of(order, 16)]
    assert sizes[:-1] == [16] * 12 and sizes[-1] == 203 - 12 * 16


def test_lists_are_taken_as_padding_share_takes_them():
    lengths, order = random_lengths(50), shuffled(50)
    from_tensors = length_grouped_order(order, lengths, 8, 2, torch.Generator().manual_seed(3))
    from_lists = length_grouped_order(order.tolist(), lengths.tolist(), 8, 2, torch.Generator().manual_seed(3))
    assert torch.equal(from_lists, from_tensors)


def test_each_window_is_cut_into_batches_of_neighbouring_lengths():
    # Reference: sort each window of the shuffled order by length and cut it into batches. The
    # grouped order must consist of exactly those batches (in some order).
    # 250 = 7 windows of 32 and one of 26, whose last batch is short (2 examples)
    lengths, order = random_lengths(250), shuffled(250)
    lens = lengths.tolist()
    grouped = length_grouped_order(order, lengths, 8, 4, torch.Generator().manual_seed(2))
    expected = []
    for start in range(0, 250, 32):
        window = sorted(order[start : start + 32].tolist(), key=lambda i: lens[i])  # stable
        expected += [sorted(window[k : k + 8]) for k in range(0, len(window), 8)]
    assert sorted(sorted(b) for b in batches_of(grouped, 8)) == sorted(expected)
    # within a batch the lengths are non-decreasing (sorted by length, equal ones kept in order)
    for batch in batches_of(grouped, 8):
        assert lengths[batch].tolist() == sorted(lengths[batch].tolist())


def test_batches_come_in_random_order_not_shortest_first():
    # One window holding everything: sorted batches, if not shuffled, would grow steadily longer
    # through the epoch (a drift in the data every epoch).
    lengths = random_lengths(160)
    grouped = length_grouped_order(shuffled(160), lengths, 8, 20, torch.Generator().manual_seed(9))
    longest = [max(lengths[b].tolist()) for b in batches_of(grouped, 8)]
    assert longest != sorted(longest) and longest != sorted(longest, reverse=True)
    assert sorted(longest) == sorted(max(lengths[b].tolist()) for b in
                                     batches_of(torch.argsort(lengths, stable=True), 8))


def test_a_window_of_one_batch_keeps_the_random_batches():
    # Sorting inside a single batch changes nothing about which examples share it.
    lengths, order = random_lengths(100), shuffled(100, seed=3)
    grouped = length_grouped_order(order, lengths, 10, 1, torch.Generator().manual_seed(4))
    assert sorted(map(sorted, batches_of(grouped, 10))) == sorted(map(sorted, batches_of(order, 10)))


def test_equal_lengths_only_shuffle_whole_batches():
    # LM blocks all have one length: the stable sort keeps each window's order, so the batches
    # are the random ones, each one intact.
    order = shuffled(64, seed=5)
    grouped = length_grouped_order(order, torch.full((64,), 32), 8, 4, torch.Generator().manual_seed(6))
    assert sorted(batches_of(grouped, 8)) == sorted(batches_of(order, 8))


def test_grouping_removes_most_of_the_padding():
    # Lengths spread evenly over 5-40 tokens: random batches of 16 are about a third padding
    # (0.35); windows of 8 batches leave under a tenth (0.08).
    lengths, order = random_lengths(4096), shuffled(4096, seed=7)
    grouped = length_grouped_order(order, lengths, 16, 8, torch.Generator().manual_seed(8))
    random_share = padding_share(lengths, order, 16)
    grouped_share = padding_share(lengths, grouped, 16)
    assert 0.25 < random_share < 0.45
    assert grouped_share < min(0.1, random_share / 3)
    # a larger window pads even less
    wider = length_grouped_order(order, lengths, 16, 64, torch.Generator().manual_seed(8))
    assert padding_share(lengths, wider, 16) < grouped_share


def test_padding_share_by_hand():
    # batches [0, 1] -> padded to 4: 8 slots, 6 real; [2] -> 1 slot, 1 real: 2 of 9 are padding
    assert padding_share([2, 4, 1], [0, 1, 2], 2) == pytest.approx(2 / 9)
    # the order decides the batches: [2, 0] -> 2 x 2 slots, 3 real; [1] -> none: 1 of 8
    assert padding_share([2, 4, 1], torch.tensor([2, 0, 1]), 2) == pytest.approx(1 / 8)
    assert padding_share([3, 3], [0, 1], 2) == 0.0
    assert padding_share([], [], 4) == 0.0
    for bad in (0, -1, True, 2.0):
        with pytest.raises(ValueError, match="batch_size must be a positive int"):
            padding_share([3, 3], [0, 1], bad)


def test_small_and_empty_inputs():
    # fewer examples than one batch: one short batch, sorted by length
    lengths = torch.tensor([9, 3, 5])
    assert length_grouped_order(torch.tensor([0, 1, 2]), lengths, 8, 2).tolist() == [1, 2, 0]
    empty = torch.zeros(0, dtype=torch.long)
    assert length_grouped_order(empty, empty, 4, 2).tolist() == []


@pytest.mark.parametrize("bad", [0, -2, True, 2.0, None])
def test_bad_window_or_batch_size_is_refused(bad):
    lengths, order = random_lengths(10), shuffled(10)
    with pytest.raises(ValueError, match="window must be a positive int"):
        length_grouped_order(order, lengths, 4, bad)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        length_grouped_order(order, lengths, bad, 2)


def test_mismatched_order_and_lengths_are_refused():
    with pytest.raises(ValueError, match="equally long"):
        length_grouped_order(shuffled(10), random_lengths(9), 4, 2)
    with pytest.raises(ValueError, match="1-D"):
        length_grouped_order(shuffled(10).view(2, 5), random_lengths(10), 4, 2)


def test_example_lengths_reads_input_ids_and_names_the_fix():
    items = [{"input_ids": torch.zeros(n)} for n in (3, 7, 1)]
    assert example_lengths(items).tolist() == [3, 7, 1]
    with pytest.raises(ValueError, match="item 1 is a tuple.*length_groups=0"):
        example_lengths([{"input_ids": [1]}, (torch.zeros(3), torch.zeros(3))])


# --------------------------------------------------------------- in the Trainer
def varied_items(n=48, seed=0):
    """Next-token examples of 4-30 tokens from a repeating sequence (learnable)."""
    g = torch.Generator().manual_seed(seed)
    period = torch.randint(0, VOCAB, (23,), generator=g)
    seq = period.repeat(10)
    items = []
    for i, length in enumerate(random_lengths(n, 4, 30, seed).tolist()):
        start = i % 23
        items.append({"input_ids": seq[start : start + length],
                      "targets": seq[start + 1 : start + length + 1], "index": i})
    return items


class Recorder:
    """A collate function that pads like ``collate`` and remembers each batch's examples."""

    def __init__(self):
        self.batches = []

    def __call__(self, items):
        if torch.is_grad_enabled():  # training batches only
            self.batches.append([item["index"] for item in items])
        return collate([{k: v for k, v in item.items() if k != "index"} for item in items])


def trainer(items, recorder, callbacks=(), **config):
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("micro", vocab_size=VOCAB, block_size=64))
    settings = dict(max_steps=12, batch_size=8, lr=3e-3, log_interval=1, progress=False, seed=3)
    return Trainer(model, items, None, TrainConfig(**{**settings, **config}),
                   collate_fn=recorder, callbacks=callbacks)


def test_trainer_reads_every_example_once_per_epoch_in_grouped_batches():
    items = varied_items(48)
    lengths = [len(item["input_ids"]) for item in items]
    grouped, plain = Recorder(), Recorder()
    trainer(items, grouped, length_groups=3).fit()  # 12 steps = 2 epochs of 6 batches
    trainer(items, plain).fit()
    for rec in (grouped, plain):
        assert len(rec.batches) == 12
        for epoch in (rec.batches[:6], rec.batches[6:]):
            assert sorted(i for batch in epoch for i in batch) == list(range(48))
    assert grouped.batches[:6] != grouped.batches[6:]  # each epoch is shuffled anew
    def share(batches):  # every recorded batch holds 8 examples
        return padding_share(lengths, [i for batch in batches for i in batch], 8)

    assert share(grouped.batches) < share(plain.batches) / 2


def test_grouped_training_is_deterministic_and_learns():
    first, second = Recorder(), Recorder()
    history = trainer(varied_items(), first, length_groups=2, max_steps=60).fit()
    trainer(varied_items(), second, length_groups=2, max_steps=60).fit()
    assert first.batches == second.batches
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]


def test_grouped_training_resumes_bit_identically(tmp_path):
    full = trainer(varied_items(), Recorder(), length_groups=2, max_steps=14).fit()

    class Kill(Callback):
        def on_log(self, trainer, logs):
            if logs["step"] == 9:
                raise RuntimeError("killed")

    killed = trainer(varied_items(), Recorder(), [Kill()], length_groups=2, max_steps=14,
                     checkpoint_dir=str(tmp_path), checkpoint_interval=4)
    with pytest.raises(RuntimeError, match="killed"):
        killed.fit()
    resumed = trainer(varied_items(), Recorder(), length_groups=2, max_steps=14,
                      checkpoint_dir=str(tmp_path))
    assert resumed.fit(resume=True).train_loss == full.train_loss  # exact


def test_resume_refuses_another_grouping(tmp_path):
    trainer(varied_items(), Recorder(), max_steps=2, checkpoint_dir=str(tmp_path)).fit()
    other = trainer(varied_items(), Recorder(), length_groups=4, max_steps=4,
                    checkpoint_dir=str(tmp_path))
    with pytest.raises(ValueError, match="length_groups=0.*length_groups=4"):
        other.fit(resume=True)


@pytest.mark.parametrize("bad", [-1, True, 1.5, "8", None])
def test_bad_length_groups_are_refused(bad):
    with pytest.raises(ValueError, match="length_groups must be an int >= 0"):
        TrainConfig(length_groups=bad)


def test_length_groups_need_shuffling():
    with pytest.raises(ValueError, match="needs shuffle=True"):
        TrainConfig(length_groups=4, shuffle=False)
    TrainConfig(length_groups=0, shuffle=False)  # fine: nothing to group


def test_data_without_input_ids_is_refused_with_the_fix():
    items = [(torch.zeros(4, dtype=torch.long), torch.zeros(4, dtype=torch.long))] * 8
    run = Trainer(GPT(GPTConfig.preset("micro", vocab_size=VOCAB, block_size=64)), items, None,
                  TrainConfig(max_steps=1, batch_size=4, length_groups=2, progress=False),
                  collate_fn=lambda batch: batch)
    with pytest.raises(ValueError, match="length_groups=0"):
        run.fit()
