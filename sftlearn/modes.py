"""Switch a model to evaluation mode for a moment, then put every part back as it was.

``model.eval()`` and ``model.train()`` set the mode of *every* submodule. Saving only
``model.training`` and calling ``model.train(was_training)`` afterwards is therefore not a
restore: a part deliberately kept in eval mode (say a frozen body under a head trained with
dropout) comes back in training mode, with its dropout on. :func:`evaluation_mode` records the
mode of each submodule and restores each one exactly::

    with evaluation_mode(model):
        logits, _ = model(input_ids)   # dropout off everywhere
    # every submodule is back in the mode it had before, also after an exception
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from torch import nn

__all__ = ["evaluation_mode"]


@contextmanager
def evaluation_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Put ``module`` and all its submodules in eval mode inside the ``with`` block; on leaving
    it (also through an exception) give each submodule back its own earlier mode."""
    modes = {part: part.training for part in module.modules()}
    module.eval()
    try:
        yield module
    finally:
        for part, training in modes.items():
            # Set the flag itself: part.train(...) would also reset all of part's children.
            part.training = training
