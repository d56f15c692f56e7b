"""Generation: sampling filters, KV cache equivalence, stop tokens, padding, errors."""

import numpy as np
import pytest
import torch

from sftlearn.generation import filter_logits, next_token
from sftlearn.model import GPT

from conftest import VOCAB, lively


@pytest.fixture
def model(micro_config):
    torch.manual_seed(0)
    return lively(GPT(micro_config).eval())  # greedy tokens that vary (see conftest.lively)


def test_cached_and_uncached_greedy_generation_are_identical(model):
    prompt = torch.randint(0, VOCAB, (3, 7))
    a = model.generate(prompt, 50, greedy=True, use_cache=True)
    b = model.generate(prompt, 50, greedy=True, use_cache=False)
    assert a.shape == (3, 57)
    assert all(len(set(row.tolist())) >= 5 for row in a[:, 7:])  # not one token repeated
    assert torch.equal(a, b)
    assert torch.equal(a[:, :7], prompt)


def test_cached_and_uncached_sampling_are_identical_with_the_same_generator(model):
    prompt = torch.randint(0, VOCAB, (2, 5))
    kw = dict(temperature=1.3, top_k=20, top_p=0.9)
    a = model.generate(prompt, 40, generator=torch.Generator().manual_seed(3), **kw)
    b = model.generate(prompt, 40, generator=torch.Generator().manual_seed(3), use_cache=False, **kw)
    assert torch.equal(a, b)


def test_cached_logits_match_full_forward(model):
    from sftlearn.kv_cache import KVCache

    x = torch.randint(0, VOCAB, (2, 20))
    full, _ = model(x)
    cfg = model.config
    cache = KVCache(cfg.n_layer, 2, cfg.n_head, cfg.head_dim, 20, torch.device("cpu"))
    first, _ = model(x[:, :12], kv_cache=cache)
    rest = [model(x[:, t : t + 1], kv_cache=cache)[0] for t in range(12, 20)]
    stepwise = torch.cat([first] + rest, dim=1)
    assert torch.allclose(full, stepwise, atol=1e-5)


def test_a_cache_made_for_another_model_or_batch_is_refused_before_it_is_written(model):
    from sftlearn.kv_cache import KVCache

    cfg = model.config
    x = torch.randint(0, VOCAB, (2, 5))
    wrong = {"batch": (cfg.n_layer, 3, cfg.n_head, cfg.head_dim),
             "layers": (cfg.n_layer - 1, 2, cfg.n_head, cfg.head_dim),
             "head_dim": (cfg.n_layer, 2, cfg.n_head, cfg.head_dim * 2)}
    for sizes in wrong.values():
        cache = KVCache(*sizes, 20, torch.device("cpu"))
        with pytest.raises(ValueError, match=rf"made for \(layers, batch, heads, head_dim\) = "
                                             rf"\({sizes[0]}, {sizes[1]}, {sizes[2]}, {sizes[3]}\).*"
                                             rf"need \({cfg.n_layer}, 2, {cfg.n_head}, {cfg.head_dim}\)"):
            model(x, kv_cache=cache)
        assert all(not k.any() for k in cache.keys) and cache.length == 0  # nothing written


def test_left_padded_batch_matches_single_prompts(model):
    """A batch of prompts of different lengths, left-padded, gives each prompt's own tokens."""
    short = torch.randint(1, VOCAB, (1, 4))
    long = torch.randint(1, VOCAB, (1, 9))
    batch = torch.cat([torch.cat([torch.zeros(1, 5, dtype=torch.long), short], 1), long])
    mask = torch.ones_like(batch)
    mask[0, :5] = 0
    for use_cache in (True, False):
        out = model.generate(batch, 15, greedy=True, attention_mask=mask, use_cache=use_cache)
        alone_short = model.generate(short, 15, greedy=True)
        alone_long = model.generate(long, 15, greedy=True)
        assert torch.equal(out[0, 9:], alone_short[0, 4:])
        assert torch.equal(out[1, 9:], alone_long[0, 9:])
    # The mask is what makes the short row right: without it the padding is read as text.
    unmasked = model.generate(batch, 15, greedy=True)
    assert not torch.equal(unmasked[0, 9:], alone_short[0, 4:])


def test_stop_token_ends_rows_and_fills_them(model):
    prompt = torch.randint(0, VOCAB, (2, 5))
    free = model.generate(prompt, 30, greedy=True)
    new = free[0, 5:].tolist()
    # a token that row 0 first produces a few steps in, and is followed by other tokens
    first = next(k for k in range(2, 20) if new[k] not in new[:k] and set(new[k + 1:]) - {new[k]})
    stop = new[first]
    out = model.generate(prompt, 30, greedy=True, stop_token=stop)
    row = out[0, 5:].tolist()
    assert row[: first + 1] == new[: first + 1]  # the same tokens up to the stop id
    assert row[first + 1:] == [stop] * (len(row) - first - 1)  # then only the stop id
    assert row != new  # which the free row is not: the filling is visible
    assert out[1].tolist()[: 5 + first] == free[1].tolist()[: 5 + first]


def test_a_stop_token_may_be_a_numpy_integer_or_a_tensor(model):
    np = pytest.importorskip("numpy")
    prompt = torch.randint(0, VOCAB, (2, 5))
    stop = int(model.generate(prompt, 3, greedy=True)[0, -1])
    plain = model.generate(prompt, 12, greedy=True, stop_token=stop)
    for same in (np.int64(stop), torch.tensor(stop), torch.tensor([stop]), [np.int32(stop)]):
        assert torch.equal(model.generate(prompt, 12, greedy=True, stop_token=same), plain)


def test_an_empty_list_of_stop_tokens_means_no_stop_token(model):
    prompt = torch.randint(0, VOCAB, (2, 5))
    plain = model.generate(prompt, 6, greedy=True)
    for empty in ([], (), torch.tensor([], dtype=torch.long)):
        assert torch.equal(model.generate(prompt, 6, greedy=True, stop_token=empty), plain)


@pytest.mark.parametrize("bad", [2.5, "<|end|>", [1.0], True, torch.tensor([0.5])])
def test_a_stop_token_that_is_not_an_id_is_named(model, bad):
    with pytest.raises(TypeError, match="stop_token must be a token id or a list of ids"):
        model.generate(torch.zeros(1, 3, dtype=torch.long), 2, stop_token=bad)


@pytest.mark.parametrize("bad", [2.5, None, -1, "3"])
def test_max_new_tokens_must_be_a_whole_number(model, bad):
    with pytest.raises(ValueError, match="max_new_tokens must be an int >= 0"):
        model.generate(torch.zeros(1, 3, dtype=torch.long), bad)


def test_generation_builds_no_autograd_graph(model):
    # A graph kept for every generated token would hold the whole forward pass in memory.
    seen = []
    hook = model.lm_head.register_forward_hook(lambda module, args, out: seen.append(out.requires_grad))
    try:
        with torch.enable_grad():
            model.generate(torch.randint(0, VOCAB, (2, 5)), 3, greedy=True)
            inside = list(seen)
            model(torch.randint(0, VOCAB, (1, 3)))  # the same model outside generate
    finally:
        hook.remove()
    assert inside and not any(inside)
    assert seen[-1]  # the hook does see a graph when one is built


def test_generation_stops_early_when_every_row_is_done(model):
    prompt = torch.randint(0, VOCAB, (1, 5))
    first = int(model.generate(prompt, 1, greedy=True)[0, -1])
    out = model.generate(prompt, 40, greedy=True, stop_token=[first, 0])
    assert out.shape == (1, 6)


def test_top_k_keeps_exactly_k_tokens():
    logits = torch.tensor([[1.0, 5.0, 3.0, 2.0, 4.0]])
    kept = torch.isfinite(filter_logits(logits, top_k=2))
    assert kept.tolist() == [[False, True, False, False, True]]


def test_top_p_of_one_keeps_every_token():
    # In float32 the running sum of sorted probabilities can reach 1.0 before the tail; top_p=1
    # must still keep the tail (it is "no top-p"), or its tokens could never be sampled.
    assert torch.isfinite(filter_logits(torch.tensor([[0.0, -30.0, -30.0]]), top_p=1.0)).all()
    logits = torch.randn(8, 2048, generator=torch.Generator().manual_seed(0)) * 3  # (8, V)
    assert torch.equal(filter_logits(logits, top_p=1.0), logits)


def test_top_p_keeps_the_smallest_nucleus():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    logits = probs.log()
    assert torch.isfinite(filter_logits(logits, top_p=0.75)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_logits(logits, top_p=0.8)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_logits(logits, top_p=0.81)).tolist() == [[True, True, True, False]]
    assert torch.isfinite(filter_logits(logits, top_p=0.1)).tolist() == [[True, False, False, False]]


def test_temperature_zero_is_argmax_and_sampling_follows_probabilities():
    logits = torch.tensor([[0.0, 2.0, 1.0]])
    assert next_token(logits, temperature=0).item() == 1
    g = torch.Generator().manual_seed(0)
    for tau in (0.5, 1.0, 2.0):  # the logits are divided by the temperature
        draws = torch.cat([next_token(logits.expand(2000, 3), tau, generator=g) for _ in range(5)])
        freq = torch.bincount(draws[:, 0], minlength=3).float() / draws.numel()
        assert torch.allclose(freq, torch.softmax(logits[0] / tau, -1), atol=0.02), tau


def test_a_tiny_temperature_picks_the_most_likely_token():
    # 1e-39 turns the largest logits into +inf when divided; sampling must still work and
    # (since every other token is then infinitely less likely) pick the argmax.
    logits = torch.tensor([[0.0, 2.0, 1.0], [3.0, -1.0, 2.5]])
    g = torch.Generator().manual_seed(0)
    for tau in (1e-39, 1e-45, 1e-30):
        for kwargs in ({}, {"top_k": 2}, {"top_p": 0.9}):
            picks = next_token(logits, tau, generator=g, **kwargs)
            assert picks[:, 0].tolist() == [1, 0], (tau, kwargs)
    # a tie at the top stays a tie: both tokens are drawn
    tied = torch.tensor([[5.0, 5.0, 0.0]]).expand(400, 3)
    draws = next_token(tied, 1e-39, generator=g)[:, 0]
    assert set(draws.tolist()) == {0, 1}


def test_temperature_of_other_number_types():
    logits = torch.tensor([[0.0, 2.0, 1.0]])
    g = torch.Generator().manual_seed(0)
    assert next_token(logits, np.float32(1e-3), generator=g).item() == 1  # NumPy numbers work
    assert next_token(logits, 1, generator=g).shape == (1, 1)  # so does an int
    with pytest.raises(TypeError, match="temperature must be a number.*got str '0.7'"):
        next_token(logits, "0.7")
    with pytest.raises(TypeError, match="temperature must be a number.*got bool"):
        next_token(logits, True)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"temperature": -1.0}, "temperature must be a finite number >= 0"),
        ({"temperature": float("inf")}, "temperature must be a finite number >= 0"),
        ({"top_k": 0}, "top_k must be a positive int"),
        ({"top_p": 1.5}, r"top_p must be in \(0, 1\]"),
        ({"temperature": float("nan")}, "temperature must be a finite number >= 0"),
        ({"greedy": True, "top_k": 0}, "top_k must be a positive int"),  # greedy too: a slip
        ({"greedy": True, "temperature": -1.0}, "temperature must be a finite number >= 0"),
    ],
)
def test_bad_sampling_settings(model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        model.generate(torch.zeros(1, 3, dtype=torch.long), 2, **kwargs)


def test_prompt_plus_new_tokens_beyond_context_is_refused(model):
    prompt = torch.zeros(1, 60, dtype=torch.long)
    with pytest.raises(ValueError, match="exceeds the model's context of 64.*at most 4 new"):
        model.generate(prompt, 10)


def test_generate_restores_training_mode(model):
    model.train()
    model.generate(torch.zeros(1, 3, dtype=torch.long), 2)
    assert model.training
