"""Learning-rate schedules: small frozen dataclasses that give the LR multiplier at each step.

A schedule maps the optimiser step ``s`` (0-based: the LR used by the ``s``-th update) and the
total number of updates ``T`` to a multiplier of the base learning rate ``lr``. For
:class:`Constant` and :class:`Cosine` an optional linear warm-up of ``W`` steps comes first, and
the schedule then runs over the remaining ``T - W`` steps; ``i = s - W`` counts those steps and
``n = T - W`` is their number:

* warm-up, ``s < W``:  ``f(s) = (s + 1) / (W + 1)``  (ramps up to, but never reaches, 1; torch's
  ``LinearLR(start_factor=1 / (W + 1), total_iters=W)``),
* :class:`Constant`:   ``f = 1``,
* :class:`Cosine`:     ``f(i) = m + (1 - m) (1 + cos(pi i / n)) / 2`` with ``m = min_factor``;
  torch's ``CosineAnnealingLR(T_max=n, eta_min=m)``: the last update (``i = n - 1``) still has
  ``f > m``, and ``f = m`` would be the LR of an update after the run,
* :class:`OneCycle`:   its rise is its warm-up, so it spans all ``T`` steps (``i = s``,
  ``n = T``) and ``W`` is the length of that rise: with ``a = pct_start * n - 1`` (``a = W`` when
  ``W > 0``), a cosine ramp from ``1/div_factor`` up to 1 for ``i <= a`` (``q = i / a``), then
  cosine decay to ``1/(div_factor * final_div_factor)`` (``q = (i - a) / (n - 1 - a)``); the same
  numbers as ``torch.optim.lr_scheduler.OneCycleLR`` with ``anneal_strategy="cos"`` (and
  ``pct_start = (W + 1) / T`` when ``W > 0``), which does end at its final LR on the last update.
  As with the linear warm-up, the ``W`` steps ``s < W`` run below ``lr`` and step ``W`` at ``lr``.
  (A linear warm-up followed by the one-cycle would ramp twice: up to ``W / (W + 1)``, down to
  ``1/div_factor`` and up again.)

Each schedule carries a ``name`` literal so that :class:`~sciml.train.TrainConfig` round-trips
through JSON; the choice itself is the object (``TrainConfig(schedule=Cosine(min_factor=0.01))``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

import torch

from .._scalars import is_real as _is_real

__all__ = [
    "Constant",
    "Cosine",
    "OneCycle",
    "Schedule",
    "SCHEDULES",
    "schedule_from_name",
    "lr_factor",
    "build_scheduler",
]


@dataclass(frozen=True)
class Constant:
    """Constant learning rate (after the optional warm-up).

    Args:
        name: the schedule's tag in a saved :class:`~sciml.train.TrainConfig` (``"constant"``),
            which lets the config round-trip through JSON; leave it at its default.
    """

    name: Literal["constant"] = "constant"

    def factor(self, i: int, n: int) -> float:
        """The LR multiplier ``1.0`` at every step (``i`` and ``n`` are unused)."""
        return 1.0


@dataclass(frozen=True)
class Cosine:
    """Cosine decay from ``lr`` over the training run, towards ``min_factor * lr``: the LR one
    update past the last, as ``CosineAnnealingLR(T_max=n)`` (no update is spent at the floor).

    Args:
        min_factor: ``m``, the floor as a fraction of ``lr`` (0 by default).
        name: the schedule's tag in a saved :class:`~sciml.train.TrainConfig` (``"cosine"``),
            which lets the config round-trip through JSON; leave it at its default.
    """

    min_factor: float = 0.0
    name: Literal["cosine"] = "cosine"

    def __post_init__(self) -> None:
        # (why) a negative floor ran the end of the run at a negative lr (gradient ascent),
        # nan gave a nan lr at every step
        if not (_is_real(self.min_factor) and 0.0 <= self.min_factor <= 1.0):
            raise ValueError(f"expected min_factor in [0, 1], got {self.min_factor!r}")

    def factor(self, i: int, n: int) -> float:
        """The LR multiplier ``m + (1 - m) (1 + cos(pi min(1, i / n))) / 2``, ``m = min_factor``.

        Args:
            i: the update index after the warm-up (0-based).
            n: the number of updates after the warm-up (``>= 1``).
        """
        p = min(1.0, i / n)
        return self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * p))


@dataclass(frozen=True)
class OneCycle:
    """One-cycle policy: cosine warm-up to ``lr`` then cosine annealing far below it.

    Args:
        pct_start: the fraction of the run's updates spent rising: the factor reaches 1 at
            ``a = pct_start * n - 1`` (update 29 of 100; between two updates where ``a`` is not
            whole; ``warmup_steps > 0`` sets ``a`` instead).
        div_factor: the first update's LR is ``lr / div_factor`` where the rise spans an
            update (``a > 0``); a shorter run (``pct_start * n <= 1``: 3 updates or fewer at the
            default 0.3) starts in the decay, as ``OneCycleLR`` does.
        final_div_factor: the last update's LR is ``lr / (div_factor * final_div_factor)``.
        name: the schedule's tag in a saved :class:`~sciml.train.TrainConfig` (``"one_cycle"``),
            which lets the config round-trip through JSON; leave it at its default.
    """

    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    name: Literal["one_cycle"] = "one_cycle"

    def __post_init__(self) -> None:
        # (why) as torch's OneCycleLR: pct_start=nan gave an lr of 0 at every step, a
        # div_factor of 0 a ZeroDivisionError when the Trainer built the schedule
        if not (_is_real(self.pct_start) and 0.0 <= self.pct_start <= 1.0):
            raise ValueError(f"expected pct_start in [0, 1], got {self.pct_start!r}")
        for name in ("div_factor", "final_div_factor"):
            value = getattr(self, name)
            if not (_is_real(value) and 0.0 < value < math.inf):
                raise ValueError(f"expected {name} as a finite number > 0, got {value!r}")

    def factor(self, i: int, n: int, *, rise: int | None = None) -> float:
        """The LR multiplier at update ``i`` of ``n``: a cosine ramp from ``1 / div_factor`` to 1
        at update ``a = pct_start * n - 1`` (or ``a = rise``), then a cosine decay to
        ``1 / (div_factor * final_div_factor)`` at ``i = n - 1`` (held after it); see the module
        docstring.

        Args:
            i: the update index (0-based).
            n: the number of updates in the run (``>= 1``).
            rise: the number of updates before the peak, replacing ``pct_start`` (what
                :func:`lr_factor` passes for ``warmup_steps > 0``); None: ``pct_start * n - 1``.
        """
        lo, hi = 1.0 / self.div_factor, 1.0
        end = lo / self.final_div_factor
        a = self.pct_start * n - 1 if rise is None else float(rise)
        # (why) updates past the run hold its last value; with rise >= n the factor otherwise
        # kept rising past the end (T = 5, W = 10: 0.52 at step 5, 0.67 at 6) and then fell
        i = min(i, n - 1)
        if i <= a:
            q = i / a if a > 0 else 1.0
            return _cos_interp(lo, hi, q)
        q = min(1.0, (i - a) / max(1e-12, n - 1 - a))
        return _cos_interp(hi, end, q)


def _cos_interp(start: float, end: float, q: float) -> float:
    """Cosine interpolation from ``start`` (q = 0) to ``end`` (q = 1)."""
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * q))


Schedule = Constant | Cosine | OneCycle

#: Read-only string aliases (for experiment files and the CLI) -> the schedule class.
SCHEDULES: Mapping[str, type] = MappingProxyType(
    {"cosine": Cosine, "one_cycle": OneCycle, "onecycle": OneCycle, "constant": Constant}
)


def schedule_from_name(name: str) -> Schedule:
    """The default-parameter schedule for a string alias in :data:`SCHEDULES`."""
    try:
        return SCHEDULES[name.lower().replace("-", "_")]()
    except KeyError:
        raise ValueError(
            f"unknown schedule {name!r}; expected one of {sorted(SCHEDULES)} or a schedule "
            "object such as Cosine(min_factor=0.01)"
        ) from None


def lr_factor(schedule: Schedule, step: int, total_steps: int, warmup_steps: int = 0) -> float:
    """Multiplier of the base learning rate for optimiser step ``step`` (0-based).

    Args:
        schedule: the schedule object.
        step: the update index ``s``; steps past ``total_steps`` keep the final value.
        total_steps: ``T``, the number of updates in the run.
        warmup_steps: ``W``, length of the linear warm-up (0 for none); for :class:`OneCycle`
            the length of its own rise, which takes the place of ``pct_start``.
    """
    if isinstance(schedule, OneCycle):
        # (why) the one-cycle's rise is a warm-up (torch's pct_start); a linear warm-up before
        # it ramped twice, dropping from W / (W + 1) to 1 / div_factor at step W
        return schedule.factor(step, max(1, total_steps), rise=warmup_steps or None)
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    return schedule.factor(step - warmup_steps, max(1, total_steps - warmup_steps))


def build_scheduler(
    optimizer: torch.optim.Optimizer, schedule: Schedule, total_steps: int, warmup_steps: int = 0
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` applying :func:`lr_factor`; step it once after every optimiser step.

    Its ``state_dict`` holds only numbers (the lambda is a closure, which ``LambdaLR`` does not
    store), so it goes into a pickle-free checkpoint as is.
    """

    if warmup_steps >= total_steps > 0:
        warnings.warn(
            f"warmup_steps={warmup_steps} >= the run's {total_steps} updates: the learning rate "
            f"only warms up and never reaches the {type(schedule).__name__} schedule's decay; "
            "use fewer warm-up steps or a longer run",
            stacklevel=2,
        )

    def fn(step: int) -> float:
        return lr_factor(schedule, step, total_steps, warmup_steps)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, fn)
