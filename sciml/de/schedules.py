"""Weight schedules for regularisers: ``weight(iteration) -> float``.

Pal et al. (2021) decay the heuristic weights during training (the regulariser matters most
early, when the dynamics are still being shaped); all schedules here are frozen dataclasses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["WeightSchedule", "ConstantWeight", "LinearWeight", "ExponentialWeight", "as_schedule"]


@runtime_checkable
class WeightSchedule(Protocol):
    def __call__(self, iteration: int) -> float: ...


@dataclass(frozen=True)
class ConstantWeight:
    """``w(i) = value``.

    Args:
        value: the weight at every iteration.
    """

    value: float

    def __call__(self, iteration: int) -> float:
        return self.value


@dataclass(frozen=True)
class LinearWeight:
    """Linear from ``start`` to ``end`` over ``steps`` iterations, then ``end``.

    Args:
        start: the weight at iteration 0 (and before).
        end: the weight from iteration ``steps`` on.
        steps: the number of iterations the ramp takes (>= 1).
    """

    start: float
    end: float
    steps: int

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"expected steps >= 1, got {self.steps}")

    def __call__(self, iteration: int) -> float:
        p = min(max(iteration, 0), self.steps) / self.steps
        return self.start + (self.end - self.start) * p


@dataclass(frozen=True)
class ExponentialWeight:
    """``w(i) = max(minimum, start * decay**i)``.

    Args:
        start: the weight at iteration 0.
        decay: the factor per iteration, in ``(0, 1]``.
        minimum: the floor the weight decays to (default 0).
    """

    start: float
    decay: float
    minimum: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.decay <= 1:
            raise ValueError(f"expected 0 < decay <= 1, got {self.decay}")

    def __call__(self, iteration: int) -> float:
        return max(self.minimum, self.start * math.pow(self.decay, iteration))


def as_schedule(weight: float | WeightSchedule) -> WeightSchedule:
    """A number becomes :class:`ConstantWeight`; a schedule is returned unchanged."""
    if isinstance(weight, (int, float)):
        return ConstantWeight(float(weight))
    if callable(weight):
        return weight
    raise TypeError(f"expected a float or a weight schedule, got {type(weight).__name__}")
