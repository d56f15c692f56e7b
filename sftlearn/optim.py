"""Optimizers written from scratch: SGD, momentum, Adam and AdamW, one step at a time.

Each ``*_step`` function takes a parameter tensor, its gradient and the optimizer's state,
and returns new tensors; nothing is changed in place, so you can print every intermediate
value. They compute exactly what ``torch.optim.SGD``, ``Adam`` and ``AdamW`` compute (the
tests run both for many steps and compare to 1e-6). Notation: ``θ`` the parameter, ``g``
its gradient, ``η`` the learning rate, ``λ`` the weight decay, ``t`` the step number,
counted from 1.

================  =====================================================================
SGD               θ ← θ − η g
momentum          v ← μ v + g ;  θ ← θ − η v
Adam              m ← β₁ m + (1 − β₁) g ;  v ← β₂ v + (1 − β₂) g²
                  m̂ = m / (1 − β₁ᵗ) ;  v̂ = v / (1 − β₂ᵗ) ;  θ ← θ − η m̂ / (√v̂ + ε)
AdamW             θ ← θ (1 − η λ), then the Adam step (λ never enters m or v)
================  =====================================================================

With ``weight_decay`` λ > 0, SGD, momentum and Adam add λθ to the gradient (an L2 penalty
½λ‖θ‖² in the loss), as torch does. AdamW instead shrinks θ directly ("decoupled" weight
decay): in Adam the added λθ would be divided by √v̂ like the rest of the gradient, so
weights with large gradients would hardly be decayed at all.

:class:`ScratchOptimizer` applies one of these functions to every parameter of a model,
with the same ``step()`` / ``zero_grad()`` interface as a torch optimizer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

METHODS = ("sgd", "momentum", "adam", "adamw")
# The keyword arguments each method accepts besides lr (those of its *_step function).
_HYPER = {
    "sgd": ("weight_decay",),
    "momentum": ("momentum", "weight_decay"),
    "adam": ("beta1", "beta2", "eps", "weight_decay"),
    "adamw": ("beta1", "beta2", "eps", "weight_decay"),
}


def _check_pair(param: torch.Tensor, grad: torch.Tensor) -> None:
    if not isinstance(param, torch.Tensor) or not isinstance(grad, torch.Tensor):
        raise TypeError("param and grad must be torch tensors; wrap numbers with torch.tensor(...).")
    if param.shape != grad.shape:
        raise ValueError(
            f"param has shape {tuple(param.shape)} but grad has shape {tuple(grad.shape)}; "
            "pass each parameter with its own gradient (param.grad)."
        )


def _check_lr(lr: float) -> None:
    # written `not lr >= 0` so that NaN, which fails every comparison, is refused too: it
    # would make every weight NaN
    if not lr >= 0:
        raise ValueError(f"the learning rate must be ≥ 0, got {lr}; a step goes against the gradient "
                         "because of the minus sign in the update, not because of the sign of lr.")


def _check_betas(beta1: float, beta2: float) -> None:
    for name, beta in (("beta1", beta1), ("beta2", beta2)):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {beta}; typical values are 0.9 and 0.999.")


def _add_weight_decay(grad: torch.Tensor, param: torch.Tensor, weight_decay: float) -> torch.Tensor:
    """The gradient plus the L2 penalty's λθ (coupled weight decay), after checking λ ≥ 0."""
    _check_weight_decay(weight_decay)
    return grad + weight_decay * param if weight_decay else grad


def _check_weight_decay(weight_decay: float) -> None:
    # a negative λ would grow the weights instead of shrinking them (and NaN, which fails
    # every comparison, would make them NaN)
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be ≥ 0, got {weight_decay}; 0.01 to 0.1 is usual.")


def _check_eps(eps: float) -> None:
    # ε keeps m̂ / (√v̂ + ε) finite where v̂ is 0 (a weight whose gradients were all 0 so far).
    # 0 is allowed, as torch allows it: with it the first step is exactly lr·sign(g).
    if not 0 <= eps < math.inf:
        raise ValueError(f"eps must be a finite number ≥ 0, got {eps}; 1e-8 is usual. It keeps "
                         "the division by √v̂ + ε finite where v̂ is 0.")


def _check_t(t: int) -> None:
    # True == 1 in Python, but a bool passed as a step number is always a slip
    if isinstance(t, bool) or int(t) != t or t < 1:
        raise ValueError(f"the step number t counts from 1 (an int: 1, 2, 3, ...), got {t!r}; at "
                         "t = 0 the bias corrections 1 − βᵗ would be 0 and the step would divide "
                         "by zero.")


def sgd_step(param: torch.Tensor, grad: torch.Tensor, lr: float,
             weight_decay: float = 0.0) -> torch.Tensor:
    """One step of (stochastic) gradient descent: θ ← θ − η (g + λθ)."""
    _check_pair(param, grad)
    _check_lr(lr)
    grad = _add_weight_decay(grad, param, weight_decay)  # the L2 penalty ½λ‖θ‖² adds λθ
    return param - lr * grad


def momentum_step(param: torch.Tensor, grad: torch.Tensor, velocity: torch.Tensor, lr: float,
                  momentum: float = 0.9, weight_decay: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of SGD with momentum, as ``torch.optim.SGD(momentum=μ)`` takes it.

    v ← μ v + g ;  θ ← θ − η v.  Start with ``velocity = torch.zeros_like(param)``.
    The velocity is a running sum of past gradients, each older one weighted by a further
    factor μ; with a constant gradient it grows to g / (1 − μ), ten times g for μ = 0.9.
    Returns ``(new_param, new_velocity)``.
    """
    _check_pair(param, grad)
    _check_lr(lr)
    if velocity.shape != param.shape:
        raise ValueError(f"velocity has shape {tuple(velocity.shape)} but param has shape "
                         f"{tuple(param.shape)}; start from torch.zeros_like(param).")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}; 0.9 is the usual choice.")
    grad = _add_weight_decay(grad, param, weight_decay)
    velocity = momentum * velocity + grad
    return param - lr * velocity, velocity


def adam_step(param: torch.Tensor, grad: torch.Tensor, m: torch.Tensor, v: torch.Tensor, t: int,
              lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
              weight_decay: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One Adam step, as ``torch.optim.Adam`` takes it. ``t`` is this step's number (1, 2, ...).

    m ← β₁ m + (1 − β₁) g            running mean of the gradient
    v ← β₂ v + (1 − β₂) g²           running mean of its square
    m̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ)   bias corrections: m and v start at 0
    θ ← θ − η m̂ / (√v̂ + ε)

    Start with ``m = v = torch.zeros_like(param)``. Returns ``(new_param, new_m, new_v)``;
    the stored m and v are the uncorrected averages.
    """
    _check_pair(param, grad)
    _check_lr(lr)
    _check_betas(beta1, beta2)
    _check_eps(eps)
    _check_t(t)
    grad = _add_weight_decay(grad, param, weight_decay)  # coupled: divided by √v̂ below
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad * grad
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    return param - lr * m_hat / (v_hat.sqrt() + eps), m, v


def adamw_step(param: torch.Tensor, grad: torch.Tensor, m: torch.Tensor, v: torch.Tensor, t: int,
               lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
               weight_decay: float = 1e-2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One AdamW step, as ``torch.optim.AdamW`` takes it: decay θ, then an Adam step.

    θ ← θ (1 − η λ)                   decoupled weight decay, on the old θ
    then m, v, m̂, v̂ and θ ← θ − η m̂ / (√v̂ + ε) exactly as in :func:`adam_step`, where
    the gradient g is the loss's gradient alone: λ enters neither m nor v.

    Returns ``(new_param, new_m, new_v)``.
    """
    _check_weight_decay(weight_decay)
    _check_lr(lr)
    decayed = param * (1 - lr * weight_decay)
    return adam_step(decayed, grad, m, v, t, lr=lr, beta1=beta1, beta2=beta2, eps=eps)


class ScratchOptimizer:
    """Applies one of the step functions above to every parameter, like a torch optimizer.

    >>> opt = ScratchOptimizer(model.parameters(), "adamw", lr=1e-3, weight_decay=0.1)
    >>> loss.backward(); opt.step(); opt.zero_grad()

    ``method`` is ``"sgd"``, ``"momentum"``, ``"adam"`` or ``"adamw"``; the keyword
    arguments are those of the matching ``*_step`` function (``momentum``, ``beta1``,
    ``beta2``, ``eps``, ``weight_decay``). Set ``opt.lr`` to follow a schedule.
    Parameters whose ``.grad`` is ``None`` are skipped, as in torch.
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], method: str = "adamw",
                 lr: float = 1e-3, **hyper: float):
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}.")
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError("no trainable parameters were given; pass model.parameters().")
        _check_lr(lr)
        allowed = _HYPER[method]
        unknown = sorted(set(hyper) - set(allowed))
        if unknown:
            raise TypeError(f"{method} takes no {', '.join(unknown)}; its settings are "
                            f"{', '.join(allowed)} (besides lr). For momentum use method='momentum'.")
        self.method, self.lr, self.hyper = method, lr, hyper
        # Check the settings now, not only at the first step(), which may come much later: one
        # step of a stand-in parameter runs exactly the checks that step() runs.
        self._update(torch.zeros(1), torch.zeros(1), {"t": 0})
        # Each parameter keeps its own state, and its own step count as torch does: a
        # parameter that had no gradient at some step was not stepped.
        self.state: list[dict] = [{"t": 0} for _ in self.params]

    @torch.no_grad()
    def step(self) -> None:
        """Update every parameter that has a gradient, in place (its values, not its identity)."""
        for p, state in zip(self.params, self.state):
            if p.grad is None:
                continue
            # keep the same Parameter object: the model still points to it
            p.copy_(self._update(p, p.grad, state))

    def _update(self, p: torch.Tensor, grad: torch.Tensor, state: dict) -> torch.Tensor:
        """The new value of ``p`` after one step of ``self.method``; updates ``state``."""
        state["t"] += 1
        if self.method == "sgd":
            return sgd_step(p, grad, self.lr, **self.hyper)
        if self.method == "momentum":
            velocity = state.get("velocity", torch.zeros_like(p))
            new, state["velocity"] = momentum_step(p, grad, velocity, self.lr, **self.hyper)
            return new
        step_fn = adam_step if self.method == "adam" else adamw_step
        m = state.get("m", torch.zeros_like(p))
        v = state.get("v", torch.zeros_like(p))
        new, state["m"], state["v"] = step_fn(p, grad, m, v, state["t"], lr=self.lr, **self.hyper)
        return new

    def zero_grad(self) -> None:
        """Forget the gradients, so that the next backward() does not add to them."""
        for p in self.params:
            p.grad = None
