"""What happened during training: losses, learning rates and speed, step by step."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field


@dataclass
class History:
    """Logged values of one training run. ``plot()`` draws the loss curves."""

    steps: list[int] = field(default_factory=list)  # optimizer step of each train log
    train_loss: list[float] = field(default_factory=list)  # mean loss since the previous log
    lr: list[float] = field(default_factory=list)
    tokens_per_sec: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    stopped_early: bool = False
    stop_reason: str = ""

    @property
    def best_val_loss(self) -> float:
        """The lowest finite validation loss (inf if there is none: a NaN is never the best)."""
        return min((v for v in self.val_loss if math.isfinite(v)), default=math.inf)

    @property
    def best_step(self) -> int | None:
        best = self.best_val_loss
        if not math.isfinite(best):
            return None
        return self.val_steps[self.val_loss.index(best)]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "History":
        return cls(**data)

    def summary(self) -> str:
        parts = []
        if self.train_loss:
            parts.append(f"step {self.steps[-1]}: train loss {self.train_loss[-1]:.3f}")
        if self.best_step is not None:
            parts.append(f"best val loss {self.best_val_loss:.3f} at step {self.best_step}")
        elif self.val_loss:  # every one NaN or infinite: there is no best
            parts.append(f"no finite val loss in {len(self.val_loss)} evaluations")
        if self.stop_reason:
            parts.append(self.stop_reason)
        return "; ".join(parts) or "nothing logged yet"

    def plot(self, ax=None, title: str | None = None, log_scale: bool = False):
        """Train and validation loss against step; returns the matplotlib Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(self.steps, self.train_loss, label="train")
        if self.val_loss:
            ax.plot(self.val_steps, self.val_loss, "o-", label="validation")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("cross-entropy loss (nats)")
        if log_scale:
            ax.set_yscale("log")
        ax.set_title(title or "Loss during training")
        ax.grid(alpha=0.3)
        ax.legend()
        return ax
