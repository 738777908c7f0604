"""ODE and SDE solver choices as objects: method, tolerances and step sizes in one place.

``NeuralODE(field, solver=Dopri5(rtol=1e-4, atol=1e-6))`` instead of string/option dicts; the
object knows how to call torchdiffeq / torchsde and, for embedded RK pairs, its tableau.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torchdiffeq._impl.bosh3 import Bosh3Solver as _TorchdiffeqBosh3
from torchdiffeq._impl.odeint import SOLVERS as _TORCHDIFFEQ_SOLVERS

from .tableaus import BOSH3, DOPRI5, ButcherTableau

__all__ = [
    "ODESolver",
    "Dopri5",
    "Bosh3",
    "RK4",
    "Euler",
    "SDESolver",
    "EulerMaruyama",
]


def _check_tol(rtol: float, atol: float) -> None:
    if not (rtol > 0 and atol > 0):
        raise ValueError(f"expected rtol > 0 and atol > 0, got rtol={rtol}, atol={atol}")


def _check_step(step_size: float) -> None:
    if not step_size > 0:
        raise ValueError(f"expected step_size > 0, got {step_size}")


class ODESolver:
    """Base class: ``method`` (torchdiffeq name), ``rtol``, ``atol``, ``options`` and ``tableau``."""

    method: str
    rtol: float = 1e-7
    atol: float = 1e-9
    tableau: ButcherTableau | None = None
    adaptive: bool = False

    def options(self) -> dict[str, Any]:
        return {}

    def odeint_kwargs(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "rtol": self.rtol,
            "atol": self.atol,
            "options": self.options(),
        }


@dataclass(frozen=True)
class _Adaptive(ODESolver):
    """An embedded RK pair with step-size control; subclasses name the method and tableau."""

    rtol: float = 1e-3
    atol: float = 1e-4
    max_num_steps: int = 10_000
    adaptive = True

    def __post_init__(self) -> None:
        _check_tol(self.rtol, self.atol)

    def options(self) -> dict[str, Any]:
        return {"max_num_steps": self.max_num_steps}


@dataclass(frozen=True)
class _FixedStep(ODESolver):
    """A fixed-step method; subclasses name the method and the default ``interp``.

    ``interp`` says how torchdiffeq reads an output time off the step that contains it:
    ``"linear"`` between the step's ends, or ``"cubic"``, the Hermite cubic through the ends and
    the field there (fourth order, one more evaluation per output time).
    """

    step_size: float = 0.1
    interp: str = "linear"

    def __post_init__(self) -> None:
        _check_step(self.step_size)
        if self.interp not in ("linear", "cubic"):
            raise ValueError(f"expected interp 'linear' or 'cubic', got {self.interp!r}")

    def options(self) -> dict[str, Any]:
        return {"step_size": self.step_size, "interp": self.interp}


@dataclass(frozen=True)
class Dopri5(_Adaptive):
    """Dormand-Prince 5(4), adaptive; 6 new evaluations per attempted step (FSAL)."""

    method = "dopri5"
    tableau = DOPRI5


class _Bosh3Hermite(_TorchdiffeqBosh3):
    """torchdiffeq's ``bosh3`` with the cubic Hermite interpolant as its dense output.

    torchdiffeq reads every output time off a quartic through ``y0, y1, f0, f1`` and a midpoint
    ``y0 + h sum_i mid_i k_i``; its ``bosh3`` takes ``mid = (0, 1/2, 0, 0)``, an estimate of
    ``y(t + h/2)`` with an ``O(h^2)`` local error, so the outputs were far less accurate than
    the steps (2.8e-7 against 6.5e-10 at rtol = atol = 1e-10). The Hermite cubic's midpoint
    ``(y0 + y1) / 2 + h (f0 - f1) / 8``, with ``y1 = y0 + h sum_i b_i k_i`` and ``f1 = k_4``
    (FSAL), is ``mid = b / 2 + (e_1 - e_4) / 8 = (17/72, 1/6, 2/9, -1/8)``; the quartic through
    it is that cubic, third order like the method, at no extra evaluation.
    """

    mid = torch.tensor([17 / 72, 1 / 6, 2 / 9, -1 / 8], dtype=torch.float64)


# (why) torchdiffeq takes solvers by name only; the name is ours, its own "bosh3" is untouched
_TORCHDIFFEQ_SOLVERS.setdefault("sciml_bosh3", _Bosh3Hermite)


@dataclass(frozen=True)
class Bosh3(_Adaptive):
    """Bogacki-Shampine 3(2), adaptive; 3 new evaluations per attempted step (FSAL).

    Runs torchdiffeq's ``bosh3`` steps with a cubic Hermite dense output at the requested times
    (torchdiffeq's own interpolant there is only second order).
    """

    method = "sciml_bosh3"
    tableau = BOSH3


@dataclass(frozen=True)
class RK4(_FixedStep):
    """Fixed-step fourth-order Runge-Kutta (torchdiffeq's ``rk4``, Kutta's 3/8 rule): 4
    evaluations per step, and by default 1 per output time for the cubic Hermite interpolant
    that reads it off its step. With ``interp="linear"`` (torchdiffeq's default) an output time
    that is not a grid point is only second-order accurate (2e-3 against 1e-6 on the grid at
    ``step_size=0.1``), and the gradient with respect to an output time on the grid is 0.
    """

    interp: str = "cubic"
    method = "rk4"


@dataclass(frozen=True)
class Euler(_FixedStep):
    """Explicit Euler, fixed step: 1 evaluation per step.

    Outputs between grid points are read off the straight line between the step's ends, as
    accurate as the steps; ``interp="cubic"`` (1 more evaluation per output time) when
    differentiating with respect to the output times, whose gradient through the line is 0 at
    a grid point.
    """

    method = "euler"


class SDESolver:
    """Base class for torchsde solver choices."""

    method: str
    dt: float
    adaptive: bool
    rtol: float
    atol: float

    def sdeint_kwargs(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "dt": self.dt,
            "adaptive": self.adaptive,
            "rtol": self.rtol,
            "atol": self.atol,
        }


@dataclass(frozen=True)
class EulerMaruyama(SDESolver):
    """Euler-Maruyama (Ito); with ``adaptive=True`` torchsde controls ``dt`` by step doubling.

    One drift and one diffusion evaluation per step; an adaptive attempt costs three steps.
    """

    dt: float = 0.05
    adaptive: bool = False
    rtol: float = 1e-2
    atol: float = 1e-3
    method = "euler"

    def __post_init__(self) -> None:
        _check_step(self.dt)
        _check_tol(self.rtol, self.atol)
