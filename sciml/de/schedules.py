"""Weight schedules for regularisers: ``weight(iteration) -> float``.

Pal et al. (2021) decay the heuristic weights during training (the regulariser matters most
early, when the dynamics are still being shaped); all schedules here are frozen dataclasses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .._scalars import is_int, is_real

__all__ = [
    "WeightSchedule",
    "ConstantWeight",
    "LinearWeight",
    "ExponentialWeight",
    "as_schedule",
    "check_weights",
]


@runtime_checkable
class WeightSchedule(Protocol):
    def __call__(self, iteration: int) -> float: ...


def _finite(owner: str, name: str, value: Any, *, what: str = "") -> float:
    """``value`` as a float: a real number (not a bool), finite. (why) a bool passed as 1 and a
    NaN or inf weight made every penalty NaN or inf, found only in the training curves."""
    real = is_real(value)
    if not (real and math.isfinite(value)):
        error = ValueError if real else TypeError
        raise error(f"{owner}: expected {name} a finite real number{what}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class ConstantWeight:
    """``w(i) = value``.

    Args:
        value: the weight at every iteration.
    """

    value: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _finite("ConstantWeight", "value", self.value))

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
        for name in ("start", "end"):
            object.__setattr__(self, name, _finite("LinearWeight", name, getattr(self, name)))
        n = self.steps
        # (why) steps=nan passed a < 1 check and made every weight nan (min(i, nan) is i), True
        # ramped over 1 iteration and 2.5 over a fraction
        message = f"LinearWeight: expected steps an int >= 1, got {n!r} (the ramp's iterations)"
        if not is_int(n):
            raise TypeError(message)
        if n < 1:
            raise ValueError(message)
        object.__setattr__(self, "steps", int(n))

    def __call__(self, iteration: int) -> float:
        p = min(max(iteration, 0), self.steps) / self.steps
        return self.start + (self.end - self.start) * p


@dataclass(frozen=True)
class ExponentialWeight:
    """``w(i) = max(minimum, start * decay**max(i, 0))``.

    Args:
        start: the weight at iteration 0 (and before).
        decay: the factor per iteration, in ``(0, 1]``.
        minimum: the floor the weight decays to (default 0).
    """

    start: float
    decay: float
    minimum: float = 0.0

    def __post_init__(self) -> None:
        for name in ("start", "minimum"):
            object.__setattr__(self, name, _finite("ExponentialWeight", name, getattr(self, name)))
        decay = _finite("ExponentialWeight", "decay", self.decay, what=" in (0, 1]")
        if not 0 < decay <= 1:
            raise ValueError(f"expected 0 < decay <= 1, got {self.decay}")
        object.__setattr__(self, "decay", decay)

    def __call__(self, iteration: int) -> float:
        # (why) as LinearWeight: before iteration 0 the weight is ``start``, not start / decay**i
        return max(self.minimum, self.start * math.pow(self.decay, max(iteration, 0)))


def as_schedule(weight: float | WeightSchedule) -> WeightSchedule:
    """A number (finite, not a bool; NumPy's too) becomes :class:`ConstantWeight`; a schedule
    (any callable of the iteration) is returned unchanged."""
    return _schedule("", "a weight", weight)


def _schedule(owner: str, name: str, weight: Any) -> WeightSchedule:
    if callable(weight):
        return weight
    real = is_real(weight)
    if real and math.isfinite(weight):
        return ConstantWeight(float(weight))
    error = ValueError if real else TypeError
    raise error(
        f"{owner}expected {name} a finite real number or a weight schedule of the iteration, "
        f"got {weight!r}"
    )


def check_weights(owner: object, *names: str) -> None:
    """A TypeError or ValueError, when ``owner`` (a regulariser) is built, naming the first of
    its weights ``names`` that is neither a finite number nor a schedule. (why) checked only
    at the first training forward pass, a string failed there; a bool passed as 1 and a NaN
    weight made every penalty NaN."""
    for name in names:
        _schedule(f"{type(owner).__name__}: ", name, getattr(owner, name))
