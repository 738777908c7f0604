"""Callbacks: hooks into the Trainer's loop for what the Trainer itself should not know about.

Subclass :class:`Callback` and override the hooks you need; every hook receives the trainer, so a
callback can read ``trainer.step`` / ``trainer.epoch`` / ``trainer.model`` and call
``trainer.request_stop()`` (the run then saves ``last`` and ``fit`` returns normally). Hooks run
on every rank; guard file output with ``trainer.is_main``. Callback state is not checkpointed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .trainer import FitResult, Trainer

__all__ = ["Callback", "EarlyStopping"]


class Callback:
    """Base class; every hook is a no-op."""

    def on_fit_start(self, trainer: Trainer) -> None:
        """Before the first step (after a resume has restored the state)."""

    def on_step_end(self, trainer: Trainer, loss: float) -> None:
        """After optimiser step ``trainer.step`` (already incremented); ``loss`` is the global
        batch's mean training loss (all-reduced over ranks)."""

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        """After the last batch of ``epoch``."""

    def on_evaluate(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        """After a validation pass; ``metrics`` are dataset means over all ranks."""

    def on_checkpoint(self, trainer: Trainer, path: Path) -> None:
        """After rank 0 published a checkpoint directory ``path``."""

    def on_fit_end(self, trainer: Trainer, result: FitResult) -> None:
        """Just before ``fit`` returns (also after an interrupt)."""


class EarlyStopping(Callback):
    """Stop when the monitored validation metric has not improved for ``patience`` evaluations.

    Args:
        patience: evaluations without improvement before stopping.
        monitor: the metric name in ``trainer.evaluate``'s dict (default: the trainer's monitor).
        min_delta: an improvement must lower the metric by more than this.
    """

    def __init__(self, patience: int, *, monitor: str | None = None, min_delta: float = 0.0):
        self.patience = patience
        self.monitor = monitor
        self.min_delta = min_delta
        self._best = float("inf")
        self._bad = 0

    def on_evaluate(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        value = metrics[self.monitor or trainer.monitor]
        if value < self._best - self.min_delta:
            self._best, self._bad = value, 0
        else:
            self._bad += 1
            if self._bad >= self.patience:
                trainer.request_stop()
