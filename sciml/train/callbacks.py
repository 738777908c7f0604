"""Callbacks: hooks into the Trainer's loop for what the Trainer itself should not know about.

Subclass :class:`Callback` and override the hooks you need; every hook receives the trainer, so a
callback can read ``trainer.step`` / ``trainer.epoch`` / ``trainer.model`` and call
``trainer.request_stop()`` (the run then saves ``last`` and ``fit`` returns normally). Hooks run
on every rank; guard file output with ``trainer.is_main``. A callback whose state a resume needs
returns it from :meth:`Callback.state_dict`; every checkpoint stores it and a resume hands it back
to :meth:`Callback.load_state_dict` (:class:`TimeBudget` keeps its elapsed time this way;
:class:`EarlyStopping` rebuilds its own from the history a resume restores).
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._scalars import is_real as _is_real

__all__ = ["Callback", "EarlyStopping", "TimeBudget"]


_MODES = ("min", "max")


def _check_mode(mode: Any, what: str = "mode") -> str:
    """``mode`` if it is ``"min"`` or ``"max"``, else a ValueError naming both."""
    if not isinstance(mode, str) or mode not in _MODES:
        raise ValueError(
            f"{what}: expected 'min' or 'max', got {mode!r} (the direction in which the "
            "monitored metric is better: 'min' for an error or a loss, 'max' for an accuracy)"
        )
    return mode


def _improves(value: float, best: float, mode: str, min_delta: float = 0.0) -> bool:
    """True when ``value`` is better than ``best`` by more than ``min_delta``: below
    ``best - min_delta`` for ``mode="min"``, above ``best + min_delta`` for ``"max"`` (a nan is
    never better)."""
    if mode == "min":
        return value < best - min_delta
    return value > best + min_delta


class Callback:
    """Base class; every hook is a no-op."""

    def on_fit_start(self, trainer: Trainer) -> None:
        """Before the first step (after a resume has restored the state); a stop requested here
        trains no step."""

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

    def state_dict(self) -> dict[str, Any] | None:
        """What a resumed run needs of this callback (a dict of numbers, strings, lists, dicts),
        written into every checkpoint under the class name; None (the default): nothing."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back what :meth:`state_dict` returned, when a resume restores a checkpoint
        (before :meth:`on_fit_start`)."""


class EarlyStopping(Callback):
    """Stop when the monitored validation metric has not improved for ``patience`` evaluations.

    At the start of a fit it replays the validation rows of ``trainer.history``, so a resumed run
    stops where the uninterrupted run would, and resuming a run it stopped trains no further.

    Args:
        patience: evaluations without improvement before stopping.
        monitor: the metric name in ``trainer.evaluate``'s dict (default: the trainer's monitor).
        mode: ``"min"`` (lower is better) or ``"max"`` (higher is better, an accuracy); default
            the trainer's ``mode`` when ``monitor`` is the trainer's, else ``"min"``.
        min_delta: an improvement must lower (``"min"``) or raise (``"max"``) the metric by
            more than this.
    """

    def __init__(
        self,
        patience: int,
        *,
        monitor: str | None = None,
        mode: str | None = None,
        min_delta: float = 0.0,
    ):
        # (why) min_delta=nan stopped an improving run (no value is below nan), patience='3'
        # failed only at the first validation that did not improve, True ran as 1
        if not _is_real(patience) or not isinstance(patience, numbers.Integral) or patience < 0:
            error = ValueError if isinstance(patience, numbers.Integral) else TypeError
            raise error(f"expected patience as an int >= 0, got {patience!r}")
        if not _is_real(min_delta) or not 0 <= min_delta < math.inf:
            error = ValueError if _is_real(min_delta) else TypeError
            raise error(f"expected min_delta as a finite number >= 0, got {min_delta!r}")
        if mode is not None:
            _check_mode(mode, "EarlyStopping mode")
        self.patience = patience
        self.monitor = monitor
        self.mode = mode
        self.min_delta = min_delta
        self._mode = mode or "min"  # the mode in use, set from the trainer's at on_fit_start
        self._best = math.inf
        self._bad = 0

    def on_fit_start(self, trainer: Trainer) -> None:
        """Reset, then replay the validation rows of ``trainer.history`` (restored by a resume),
        so that a resumed run stops where the uninterrupted one would; a run this callback
        already stopped stops again before its first step."""
        # (why) before any step: an unknown name raised a KeyError at the first validation,
        # losing the epoch trained before it
        names = ("loss", *trainer.metrics)
        if self.monitor is not None and self.monitor not in names:
            raise ValueError(
                f"EarlyStopping(monitor={self.monitor!r}) is not a validation metric; expected "
                f"one of {sorted(names)} (the trainer's metrics), or monitor=None for the "
                f"trainer's monitor {trainer.monitor!r}"
            )
        monitor = self.monitor or trainer.monitor
        if monitor == trainer.monitor:
            # (why) the trainer's `best` and this callback's would run against each other
            if self.mode is not None and self.mode != trainer.mode:
                raise ValueError(
                    f"EarlyStopping(mode={self.mode!r}) on {monitor!r}, which the Trainer "
                    f"monitors with mode={trainer.mode!r}: one metric cannot be better both "
                    f"lower and higher; leave EarlyStopping's mode out (it follows the "
                    f"Trainer's) or pass Trainer(mode={self.mode!r})"
                )
            self._mode = trainer.mode
        else:
            self._mode = self.mode or "min"
        # (why) callback state is not checkpointed; the history restored by a resume holds it
        self._best, self._bad = (math.inf if self._mode == "min" else -math.inf), 0
        column = f"val_{monitor}"
        for row in trainer.history:
            if row.get(column) is not None:
                self._update(trainer, row[column])

    def on_evaluate(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        """Count an evaluation whose monitored metric does not improve on the best so far by
        more than ``min_delta`` as bad; at ``patience`` bad evaluations in a row, request a
        stop."""
        self._update(trainer, metrics[self.monitor or trainer.monitor])

    def _update(self, trainer: Trainer, value: float) -> None:
        if _improves(value, self._best, self._mode, self.min_delta):
            self._best, self._bad = value, 0
        else:
            self._bad += 1
            if self._bad >= self.patience:
                trainer.request_stop()


class TimeBudget(Callback):
    """Train for a wall-clock budget: stop after ``minutes``, optionally annealing the LR over it.

    A time-limited run with an epoch-based schedule never reaches the schedule's decay (the
    cosine is spread over all ``epochs``). With ``anneal=True`` the learning rate the Trainer's
    schedule sets at each step is multiplied by a cosine of the elapsed fraction of the budget,
    ``m + (1 - m) (1 + cos(pi min(1, elapsed / budget))) / 2`` (``m = min_factor``), so the run
    ends annealed however many steps the machine manages. Use it with
    ``TrainConfig(schedule=Constant(), warmup_steps=...)`` (the warm-up still applies) and enough
    ``epochs`` to outlast the budget.

    The budget counts training time: the clock runs from :meth:`Callback.on_fit_start` to the
    end of the fit, and the time elapsed is saved in every checkpoint, so a resumed run stops when
    the time before and after the resume adds up to the budget (as Lightning's ``Timer`` does;
    the time between the last checkpoint and a crash is not counted). Resuming a run whose budget
    is spent trains no further step.

    Args:
        minutes: wall-clock budget (> 0).
        anneal: cosine-anneal the learning rate over the budget.
        min_factor: the LR multiplier reached at the end of the budget.
        clock: the time source (seconds); injectable for tests.
    """

    def __init__(
        self,
        minutes: float,
        *,
        anneal: bool = False,
        min_factor: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not _is_real(minutes) or not minutes > 0:
            error = ValueError if _is_real(minutes) else TypeError
            raise error(f"expected minutes > 0 (a number), got {minutes!r}")
        if not _is_real(min_factor) or not 0.0 <= min_factor <= 1.0:
            error = ValueError if _is_real(min_factor) else TypeError
            raise error(f"expected 0 <= min_factor <= 1 (a number), got {min_factor!r}")
        self.budget = 60.0 * minutes
        self.anneal = anneal
        self.min_factor = min_factor
        self.clock = clock
        self.start: float | None = None
        self._before = 0.0  # seconds trained before this fit (earlier fits, or before a resume)

    def elapsed(self) -> float:
        """Seconds of training so far, those before a resume included."""
        if self.start is None:
            return self._before
        return self._before + self.clock() - self.start

    def fraction(self) -> float:
        """Elapsed fraction of the budget, in ``[0, 1]`` (0 before a fresh run starts)."""
        return min(1.0, self.elapsed() / self.budget)

    def factor(self) -> float:
        """The LR multiplier now."""
        m = self.min_factor
        return m + (1.0 - m) * 0.5 * (1.0 + math.cos(math.pi * self.fraction()))

    def on_fit_start(self, trainer: Trainer) -> None:
        """Start the clock (a fresh run, ``trainer.step == 0``, forgets earlier time); request a
        stop at once if the budget is already spent."""
        if trainer.step == 0:
            self._before = 0.0  # a fresh run has spent nothing, whatever this object saw before
        self.start = self.clock()
        if self.fraction() >= 1.0:
            trainer.request_stop()

    def on_fit_end(self, trainer: Trainer, result: FitResult) -> None:
        """Stop the clock, keeping the time trained so far for a later ``fit``."""
        self._before, self.start = self.elapsed(), None

    def state_dict(self) -> dict[str, Any]:
        """``{"elapsed_s": seconds trained so far}``, stored in every checkpoint."""
        return {"elapsed_s": self.elapsed()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume the budget from a checkpoint's ``{"elapsed_s": ...}`` (the clock restarts at
        :meth:`on_fit_start`)."""
        self._before, self.start = float(state["elapsed_s"]), None

    def on_step_end(self, trainer: Trainer, loss: float) -> None:
        """Request a stop once the budget is spent; with ``anneal``, multiply the learning rate
        the schedule set for the next step by :meth:`factor`."""
        if self.fraction() >= 1.0:
            trainer.request_stop()
        if self.anneal:
            # the scheduler has just written the next step's lr; scale it by the time factor
            f = self.factor()
            for group in trainer.optimizer.param_groups:
                group["lr"] *= f


# (why) the hooks' annotations name Trainer and FitResult, which trainer.py defines, importing
# Callback from here: bound at the end (Callback is defined by then), so that
# typing.get_type_hints resolves them, where an import under TYPE_CHECKING left them undefined.
# It costs nothing: sciml.train's __init__ imports this module first and trainer.py anyway
from .trainer import FitResult, Trainer  # noqa: E402
