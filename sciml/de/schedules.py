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


def _non_negative(owner: str, name: str, value: Any) -> float:
    """``value`` as a float: a real number, finite and >= 0. (why) a negative weight was taken
    as it was: the penalty then rewarded the solver cost it is there to lower."""
    v = _finite(owner, name, value, what=" >= 0")
    if v < 0:
        raise ValueError(
            f"{owner}: expected {name} a finite real number >= 0, got {value!r}: a weight "
            "below 0 rewards the cost the penalty is there to lower"
        )
    return v


@dataclass(frozen=True)
class ConstantWeight:
    """``w(i) = value``.

    Args:
        value: the weight at every iteration.
    """

    value: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _non_negative("ConstantWeight", "value", self.value))

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
            object.__setattr__(self, name, _non_negative("LinearWeight", name, getattr(self, name)))
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
            value = _non_negative("ExponentialWeight", name, getattr(self, name))
            object.__setattr__(self, name, value)
        decay = _finite("ExponentialWeight", "decay", self.decay, what=" in (0, 1]")
        if not 0 < decay <= 1:
            raise ValueError(f"expected 0 < decay <= 1, got {self.decay}")
        object.__setattr__(self, "decay", decay)

    def __call__(self, iteration: int) -> float:
        # (why) as LinearWeight: before iteration 0 the weight is ``start``, not start / decay**i
        return max(self.minimum, self.start * math.pow(self.decay, max(iteration, 0)))


def as_schedule(weight: float | WeightSchedule) -> WeightSchedule:
    """A number (finite, >= 0, not a bool; NumPy's too) becomes :class:`ConstantWeight`; a
    schedule (any callable of the iteration) is returned unchanged."""
    return _schedule("", "a weight", weight)


def _schedule(owner: str, name: str, weight: Any) -> WeightSchedule:
    if callable(weight):
        return weight
    real = is_real(weight)
    if real and math.isfinite(weight) and weight >= 0:
        return ConstantWeight(float(weight))
    error = ValueError if real else TypeError
    raise error(
        f"{owner}expected {name} a finite real number >= 0 or a weight schedule of the "
        f"iteration, got {weight!r}"
    )


def weight_at(owner: object, name: str, weight: float | WeightSchedule, iteration: int) -> Any:
    """The weight ``name`` of the regulariser ``owner`` at the training ``iteration``: a number
    is itself, a schedule is evaluated there. A ValueError where a schedule gives a real number
    that is not finite or is below 0, naming the schedule and the iteration (the built-in ones
    are checked when built; a schedule of your own only when it is evaluated)."""
    w = as_schedule(weight)(iteration)
    if is_real(w) and not (math.isfinite(w) and w >= 0):
        raise ValueError(
            f"{type(owner).__name__}: expected {name} a finite weight >= 0 at every iteration, "
            f"got {w!r} at iteration {iteration} from {weight!r}"
        )
    return w


def check_weights(owner: object, *names: str) -> None:
    """A TypeError or ValueError, when ``owner`` (a regulariser) is built, naming the first of
    its weights ``names`` that is neither a finite number nor a schedule. (why) checked only
    at the first training forward pass, a string failed there; a bool passed as 1 and a NaN
    weight made every penalty NaN."""
    for name in names:
        _schedule(f"{type(owner).__name__}: ", name, getattr(owner, name))
