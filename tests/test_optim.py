"""The from-scratch optimizers (sftlearn.optim) take exactly torch.optim's steps."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from sftlearn.optim import ScratchOptimizer, adam_step, adamw_step, momentum_step, sgd_step


def small_problem(seed: int = 0):
    """A two-layer network and a fixed regression batch: the same problem for every optimizer."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 4, generator=g)
    y = torch.sin(x.sum(dim=1, keepdim=True))
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    return model, x, y


def train(model, opt, x, y, steps: int) -> list[float]:
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


CASES = [
    ("sgd", torch.optim.SGD, dict(lr=0.1), {}),
    ("sgd", torch.optim.SGD, dict(lr=0.1, weight_decay=0.05), {}),
    ("momentum", torch.optim.SGD, dict(lr=0.05, momentum=0.9), {}),
    ("momentum", torch.optim.SGD, dict(lr=0.05, momentum=0.5, weight_decay=0.01), {}),
    ("adam", torch.optim.Adam, dict(lr=0.01), {}),
    ("adam", torch.optim.Adam, dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1), {}),
    ("adamw", torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1), {}),
    ("adamw", torch.optim.AdamW, dict(lr=0.03, betas=(0.9, 0.95), weight_decay=0.5), {}),
]


def scratch_kwargs(torch_kwargs: dict) -> dict:
    kwargs = dict(torch_kwargs)
    if "betas" in kwargs:
        kwargs["beta1"], kwargs["beta2"] = kwargs.pop("betas")
    return kwargs


@pytest.mark.parametrize("method, torch_cls, kwargs, _", CASES)
def test_matches_torch_optim_over_many_steps(method, torch_cls, kwargs, _):
    model, x, y = small_problem()
    twin = copy.deepcopy(model)
    reference = train(model, torch_cls(model.parameters(), **kwargs), x, y, steps=25)
    ours = train(twin, ScratchOptimizer(twin.parameters(), method, **scratch_kwargs(kwargs)), x, y, steps=25)
    assert reference[-1] < reference[0]  # the problem is being solved, not just matched
    for a, b in zip(model.parameters(), twin.parameters()):
        assert torch.allclose(a, b, atol=1e-6, rtol=0)
    assert max(abs(r - o) for r, o in zip(reference, ours)) < 1e-6


def test_adamw_default_weight_decay_matches_torch():
    model, x, y = small_problem(seed=3)
    twin = copy.deepcopy(model)
    train(model, torch.optim.AdamW(model.parameters(), lr=0.01), x, y, steps=10)
    train(twin, ScratchOptimizer(twin.parameters(), "adamw", lr=0.01), x, y, steps=10)
    for a, b in zip(model.parameters(), twin.parameters()):
        assert torch.allclose(a, b, atol=1e-6, rtol=0)


def test_first_adam_step_moves_every_coordinate_by_lr():
    # With bias correction, m̂ = g and √v̂ = |g| at t = 1: the step is lr·sign(g).
    g = torch.tensor([1e-4, -3.0, 250.0])
    new, m, v = adam_step(torch.zeros(3), g, torch.zeros(3), torch.zeros(3), t=1, lr=0.01, eps=0.0)
    assert torch.allclose(new, -0.01 * torch.sign(g))
    assert torch.allclose(m, 0.1 * g)
    assert torch.allclose(v, 0.001 * g * g)


def test_sgd_and_momentum_by_hand():
    p, g = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 0.5])
    assert torch.allclose(sgd_step(p, g, lr=0.1), torch.tensor([0.95, -2.05]))
    new, velocity = momentum_step(p, g, torch.tensor([1.0, 0.0]), lr=0.1, momentum=0.9)
    assert torch.allclose(velocity, torch.tensor([1.4, 0.5]))
    assert torch.allclose(new, torch.tensor([0.86, -2.05]))


def test_adamw_decays_the_old_parameter_and_leaves_moments_alone():
    p, g = torch.tensor([2.0]), torch.tensor([0.3])
    zeros = torch.zeros(1)
    new_w, m_w, v_w = adamw_step(p, g, zeros, zeros, t=1, lr=0.1, weight_decay=0.5, eps=0.0)
    new_a, m_a, v_a = adam_step(p, g, zeros, zeros, t=1, lr=0.1, eps=0.0)
    assert torch.equal(m_w, m_a) and torch.equal(v_w, v_a)
    assert math.isclose(new_w.item(), 2.0 * (1 - 0.05) - 0.1, rel_tol=1e-6)
    assert math.isclose(new_a.item(), 2.0 - 0.1, rel_tol=1e-6)


def test_steps_do_not_change_their_inputs():
    p, g, m, v = torch.ones(3), torch.ones(3), torch.zeros(3), torch.zeros(3)
    adamw_step(p, g, m, v, t=1, lr=0.1, weight_decay=0.1)
    momentum_step(p, g, m, lr=0.1)
    assert torch.equal(p, torch.ones(3)) and torch.equal(m, torch.zeros(3)) and torch.equal(v, torch.zeros(3))


def test_parameters_without_gradients_are_skipped_and_keep_their_own_step_count():
    a = torch.nn.Parameter(torch.ones(2))
    b = torch.nn.Parameter(torch.ones(2))
    a_ref, b_ref = (torch.nn.Parameter(torch.ones(2)) for _ in range(2))
    ours = ScratchOptimizer([a, b], "adam", lr=0.1)
    theirs = torch.optim.Adam([a_ref, b_ref], lr=0.1)
    for step in range(4):
        for opt, (pa, pb) in ((ours, (a, b)), (theirs, (a_ref, b_ref))):
            opt.zero_grad()
            loss = (pa * torch.tensor([1.0, -2.0])).sum()
            if step % 2:
                loss = loss + (pb**2).sum()  # b gets a gradient on odd steps only
            loss.backward()
            opt.step()
    assert torch.allclose(a, a_ref, atol=1e-6) and torch.allclose(b, b_ref, atol=1e-6)


def test_bad_inputs_are_explained():
    p = torch.zeros(3)
    with pytest.raises(ValueError, match="counts from 1"):
        adam_step(p, p, p, p, t=0)
    with pytest.raises(ValueError, match="own gradient"):
        sgd_step(p, torch.zeros(2), lr=0.1)
    with pytest.raises(ValueError, match="learning rate must be ≥ 0"):
        sgd_step(p, p, lr=-0.1)
    with pytest.raises(ValueError, match="beta2 must be in"):
        adam_step(p, p, p, p, t=1, beta2=1.0)
    with pytest.raises(ValueError, match="zeros_like"):
        momentum_step(p, p, torch.zeros(2), lr=0.1)
    with pytest.raises(ValueError, match="weight_decay must be"):
        adamw_step(p, p, p, p, t=1, weight_decay=-1.0)
    with pytest.raises(ValueError, match="weight_decay must be"):  # NaN would make the weights NaN
        adam_step(p, p, p, p, t=1, weight_decay=float("nan"))
    with pytest.raises(ValueError, match="unknown method 'rmsprop'"):
        ScratchOptimizer([torch.nn.Parameter(p)], "rmsprop")
    with pytest.raises(ValueError, match="no trainable parameters"):
        ScratchOptimizer([], "sgd")
    with pytest.raises(TypeError, match="torch tensors"):
        sgd_step([1.0], [1.0], lr=0.1)


def test_settings_that_a_method_does_not_take_are_refused_up_front():
    p = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(TypeError, match="sgd takes no momentum; .*method='momentum'"):
        ScratchOptimizer([p], "sgd", lr=0.1, momentum=0.9)
    with pytest.raises(TypeError, match="adam takes no betas; its settings are beta1, beta2, eps, weight_decay"):
        ScratchOptimizer([p], "adam", betas=(0.9, 0.99))


def test_nan_and_bad_eps_and_a_bool_step_number_are_refused():
    p = torch.ones(2)
    # NaN fails every comparison, so `lr < 0` let it through and every weight became NaN
    with pytest.raises(ValueError, match="learning rate must be ≥ 0, got nan"):
        adamw_step(p, p, torch.zeros(2), torch.zeros(2), 1, lr=float("nan"))
    for eps in (-1e-8, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"eps must be a finite number ≥ 0, got"):
            adam_step(p, p, torch.zeros(2), torch.zeros(2), 1, eps=eps)
    with pytest.raises(ValueError, match=r"counts from 1 \(an int: 1, 2, 3, \.\.\.\), got True"):
        adam_step(p, p, torch.zeros(2), torch.zeros(2), True)


@pytest.mark.parametrize("method, setting, message", [
    ("adamw", dict(beta1=1.5), "beta1 must be in"),
    ("adam", dict(eps=-1.0), "eps must be a finite number"),
    ("momentum", dict(momentum=1.0), "momentum must be in"),
    ("sgd", dict(weight_decay=-0.1), "weight_decay must be"),
    ("adamw", dict(lr=float("nan")), "learning rate must be"),
])
def test_bad_settings_are_refused_when_the_optimizer_is_made(method, setting, message):
    # they used to pass until the first step(), which may come long after
    with pytest.raises(ValueError, match=message):
        ScratchOptimizer([torch.nn.Parameter(torch.zeros(3))], method, **setting)
