"""Learning-rate schedule: linear warmup, then cosine decay to a floor.

.. math::

   \\eta(t) = \\begin{cases}
     \\eta_{\\max} \\cdot \\frac{t + 1}{W} & t < W \\\\
     \\eta_{\\min} + \\tfrac12 (\\eta_{\\max} - \\eta_{\\min})
        \\big(1 + \\cos(\\pi \\frac{t - W}{S - W})\\big) & W \\le t < S \\\\
     \\eta_{\\min} & t \\ge S
   \\end{cases}

Warmup protects the first steps, when Adam's running averages are still poor estimates; the
cosine lets the model settle into a minimum with ever smaller steps. ``t`` counts optimizer
steps from 0, ``W`` is the number of warmup steps and ``S`` the total number of steps.
"""

from __future__ import annotations

import math


def lr_at(step: int, max_lr: float, total_steps: int, warmup_steps: int = 0,
          min_lr: float = 0.0) -> float:
    """The learning rate to use for optimizer step ``step`` (0-based)."""
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}.")
    if not 0 <= warmup_steps <= total_steps:
        raise ValueError(
            f"warmup_steps ({warmup_steps}) must be between 0 and total_steps ({total_steps})."
        )
    if step < 0:
        # the formula has no meaning before step 0 (with no warmup it would divide by zero)
        raise ValueError(f"step must be >= 0 (optimizer steps count from 0), got {step}.")
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return min_lr
    progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
    return min_lr + 0.5 * (max_lr - min_lr) * (1.0 + math.cos(math.pi * progress))
