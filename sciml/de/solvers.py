"""ODE and SDE solver choices as objects: method, tolerances and step sizes in one place.

``NeuralODE(field, solver=Dopri5(rtol=1e-4, atol=1e-6))`` instead of string/option dicts; the
object knows how to call torchdiffeq / torchsde and, for embedded RK pairs, its tableau.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torchdiffeq._impl.bosh3 import Bosh3Solver as _TorchdiffeqBosh3
from torchdiffeq._impl.fixed_grid import RK4 as _TorchdiffeqRK4
from torchdiffeq._impl.fixed_grid import Euler as _TorchdiffeqEuler
from torchdiffeq._impl.odeint import SOLVERS as _TORCHDIFFEQ_SOLVERS

from .._scalars import is_int, is_real
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


def _finite_positive(value: Any) -> bool:
    """A real number (not a bool), finite and > 0."""
    return is_real(value) and 0 < value < math.inf


def _check_tol(rtol: float, atol: float) -> None:
    # (why) a bool passed as 1; inf passed a > 0 check, and rtol=inf made the error scale
    # atol + inf * |y| nan at a zero entry of y, every such solve then failing as a "stiff
    # field"; a string or None was a bare TypeError from the comparison
    if not (_finite_positive(rtol) and _finite_positive(atol)):
        raise ValueError(
            f"expected rtol > 0 and atol > 0, got rtol={rtol!r}, atol={atol!r}; each a finite "
            "real number (not a bool)"
        )


def _check_fixed_step(step_size: Any, name: str = "step_size") -> float:
    """A fixed step is a real number, finite and > 0: the one rule for :class:`RK4`,
    :class:`Euler`, ``NODEConfig(step_size=...)``, whose error quotes this message, and
    :class:`EulerMaruyama`'s ``dt``. Returns it as a Python float."""
    real = is_real(step_size)
    # (why) inf passed a > 0 check: torchdiffeq's grid, arange(n) * step + t0, is then nan
    # (0 * inf) and every solve failed with a bare AssertionError; torchsde's adaptive
    # Euler-Maruyama never returned from a first step of inf
    if not (real and 0 < step_size < math.inf):
        raise ValueError(f"expected a finite {name} > 0, got {step_size!r}")
    # (why) numbers.Real admits numpy scalars and Fractions: a NODEConfig holding np.float32
    # could not be saved (not JSON), and a Fraction failed in torchdiffeq's grid (Tensor / it)
    return float(step_size)


class ODESolver:
    """Base class: ``method`` (torchdiffeq name), ``rtol``, ``atol``, ``options`` and ``tableau``."""

    method: str
    rtol: float = 1e-7
    atol: float = 1e-9
    tableau: ButcherTableau | None = None
    adaptive: bool = False

    def options(self) -> dict[str, Any]:
        """The ``options`` dict torchdiffeq's ``odeint`` gets for this solver."""
        return {}

    def odeint_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``torchdiffeq.odeint``: ``method``, ``rtol``, ``atol`` and
        ``options``."""
        return {
            "method": self.method,
            "rtol": self.rtol,
            "atol": self.atol,
            "options": self.options(),
        }


@dataclass(frozen=True)
class _Adaptive(ODESolver):
    """An embedded RK pair with step-size control; subclasses name the method and tableau.
    ``max_num_steps`` bounds the accepted and rejected steps between two output times."""

    rtol: float = 1e-3
    atol: float = 1e-4
    max_num_steps: int = 10_000
    adaptive = True
    """True: the solver picks its own steps from an embedded error estimate. NeuralODE then
    follows torchdiffeq's accept / reject decisions: ``steps_rejected`` counts the rejected
    attempts, ``steps_accepted`` the accepted steps (those the step regularisers read; a
    fixed-step solve counts every step). It also refuses ``torch.func`` transforms, under which
    torchdiffeq cannot run an adaptive solve."""

    def __post_init__(self) -> None:
        _check_tol(self.rtol, self.atol)
        n = self.max_num_steps
        # (why) unchecked, 0 or -1 failed every solve as a step cap "reached" by a stiff field,
        # True capped at 1 step, 2.5 at 2, and None or inf failed inside torchdiffeq
        if not is_int(n) or n < 1:
            raise ValueError(
                "expected max_num_steps an int >= 1 (the cap on the steps between two output "
                f"times), got {n!r}"
            )
        object.__setattr__(self, "max_num_steps", int(n))

    def options(self) -> dict[str, Any]:
        """``{"max_num_steps": ...}`` for torchdiffeq's step control."""
        return {"max_num_steps": self.max_num_steps}


@dataclass(frozen=True)
class _FixedStep(ODESolver):
    """A fixed-step method; subclasses name the method and the default ``interp``.

    ``interp`` says how torchdiffeq reads an output time off the step that contains it:
    ``"linear"`` between the step's ends, or ``"cubic"``, the Hermite cubic through the ends and
    the field there (fourth order; the field at a step's end is the next step's first stage, so
    it costs one evaluation only for outputs inside the last step).
    """

    step_size: float = 0.1
    interp: str = "linear"

    def __post_init__(self) -> None:
        object.__setattr__(self, "step_size", _check_fixed_step(self.step_size))
        if self.interp not in ("linear", "cubic"):
            raise ValueError(f"expected interp 'linear' or 'cubic', got {self.interp!r}")

    def options(self) -> dict[str, Any]:
        """``{"step_size": ..., "interp": ...}`` for torchdiffeq's fixed-grid solvers."""
        return {"step_size": self.step_size, "interp": self.interp}


@dataclass(frozen=True)
class Dopri5(_Adaptive):
    """Dormand-Prince 5(4), adaptive; 6 new evaluations per attempted step (FSAL).

    Args:
        rtol: relative tolerance (> 0): a step is accepted when
            ``||err / (atol + rtol max(|y|, |y_1|))||_rms <= 1``.
        atol: absolute tolerance (> 0), in that test.
        max_num_steps: bound on the accepted and rejected steps between two output times;
            torchdiffeq stops the solve with an error past it.
    """

    method = "dopri5"
    tableau = DOPRI5


class _Bosh3Hermite(_TorchdiffeqBosh3):
    """torchdiffeq's ``bosh3`` with the cubic Hermite interpolant as its dense output.

    torchdiffeq reads every output time off a quartic through ``y0, y1, f0, f1`` and a midpoint
    ``y0 + h sum_i mid_i k_i``; its ``bosh3`` takes ``mid = (0, 1/2, 0, 0)``, an estimate of
    ``y(t + h/2)`` with an ``O(h^2)`` local error, so the outputs were far less accurate than
    the steps (``y' = A y`` of ``tests/test_de_ode.py`` at rtol = atol = 1e-10: 5.1e-7 against
    7.7e-10 with torchdiffeq stepping onto the outputs; 7.8e-10 with this interpolant). The
    Hermite cubic's midpoint ``(y0 + y1) / 2 + h (f0 - f1) / 8``, with
    ``y1 = y0 + h sum_i b_i k_i`` and ``f1 = k_4`` (FSAL), is
    ``mid = b / 2 + (e_1 - e_4) / 8 = (17/72, 1/6, 2/9, -1/8)``; the quartic through it is that
    cubic, third order like the method, at no extra evaluation.
    """

    mid = torch.tensor([17 / 72, 1 / 6, 2 / 9, -1 / 8], dtype=torch.float64)


# (why) torchdiffeq takes solvers by name only; the name is ours, its own "bosh3" is untouched
_TORCHDIFFEQ_SOLVERS.setdefault("sciml_bosh3", _Bosh3Hermite)


@dataclass(frozen=True)
class Bosh3(_Adaptive):
    """Bogacki-Shampine 3(2), adaptive; 3 new evaluations per attempted step (FSAL).

    Runs torchdiffeq's ``bosh3`` steps with a cubic Hermite dense output at the requested times
    (torchdiffeq's own interpolant there is only second order).

    Args:
        rtol: relative tolerance (> 0): a step is accepted when
            ``||err / (atol + rtol max(|y|, |y_1|))||_rms <= 1``.
        atol: absolute tolerance (> 0), in that test.
        max_num_steps: bound on the accepted and rejected steps between two output times;
            torchdiffeq stops the solve with an error past it.
    """

    method = "sciml_bosh3"
    tableau = BOSH3


def _output_schedule(
    grid: torch.Tensor, t: torch.Tensor, interp: str
) -> list[list[tuple[int, str]]]:
    """Which output times each fixed step of ``grid`` gives, and how: ``schedule[i]`` lists
    ``(j, how)`` for the outputs ``t[j]`` (``j >= 1``, in order) read off the step from
    ``grid[i]`` to ``grid[i + 1]``, ``how`` being ``"end"`` (the step's end ``y1``),
    ``"line"`` (the line between its ends) or ``"cubic"`` (the Hermite cubic, whose end slope
    is the next step's first stage). ``t`` ``(time,)`` strictly increasing, ``grid`` from the
    solver's ``grid_constructor``.

    ``interp="cubic"`` (:class:`_ReusedEndSlope`): an output within 8 ulp of the span's largest
    time past a step's end belongs to that step, where its end slope is free (the grid is
    ``arange(n) * step + t0`` and a user's times are rounded on their own, each within a few
    ulp of the exact grid point); the last time, the grid's end, is the last step's ``y1``.
    ``interp="linear"``: torchdiffeq's ``FixedGridODESolver.integrate``, the first step whose
    end is ``>= t[j]``; ``"end"`` where ``t[j]`` equals that end (its ``_linear_interp``
    returns ``y1`` there, not the line's rounding of it).
    """
    t, grid = t.detach(), grid.detach()
    steps, last = len(grid) - 1, len(t) - 1
    schedule: list[list[tuple[int, str]]] = [[] for _ in range(steps)]
    j = 1
    if interp == "cubic":
        scale = float(torch.maximum(t[0].abs(), t[-1].abs()))
        tol = 8 * torch.finfo(t.dtype).eps * scale
        for i in range(steps):
            while j < last and float(t[j] - grid[i + 1]) <= tol:
                schedule[i].append((j, "cubic"))
                j += 1
        if steps:
            schedule[-1].append((last, "end"))
    else:  # (why) no output is a step's start (torchdiffeq's y0 branch): t[0] is grid[0], and
        # step i > 0 first meets the output step i - 1 stopped on, past grid[i]
        for i in range(steps):
            t1 = grid[i + 1]
            while j <= last and bool(t1 >= t[j]):
                schedule[i].append((j, "end" if bool(t[j] == t1) else "line"))
                j += 1
    return schedule


class _ReusedEndSlope:
    """torchdiffeq's fixed-grid ``integrate`` with the cubic Hermite dense output read off the
    field at a step's end that the next step evaluates anyway.

    torchdiffeq evaluates ``f1 = f(t1, y1)`` once for every output time in a step, also when
    the output is the step's end, so an RK4 solve with every output on the grid cost 5 instead
    of 4 evaluations per step. ``f(t1, y1)`` is the next step's first stage ``f0`` (same ``t1``
    tensor, same ``y1``), so outputs wait for it; only outputs strictly inside the last step
    still cost one evaluation (for them all together), and the last time, the grid's end, is
    ``y1`` (the Hermite cubic at ``h = 1``, with no derivative in ``t`` through ``f1`` there).
    An output within rounding of a step's end (float32 ``linspace`` against the solver's
    ``arange`` grid) belongs to the step it ends, where ``f1`` is free. The values are
    torchdiffeq's (the same formula on the same tensors), up to that rounding-level
    reassignment.
    """

    def integrate(self, t):
        if self.interp != "cubic" or self.perturb:  # perturb shifts f0's time: not f(t1, y1)
            return super().integrate(t)
        grid = self.grid_constructor(self.func, self.y0, t)
        assert grid[0] == t[0] and grid[-1] == t[-1]
        solution = torch.empty(len(t), *self.y0.shape, dtype=self.y0.dtype, device=self.y0.device)
        solution[0] = self.y0
        schedule = _output_schedule(grid, t, "cubic")
        _step_through(
            self,
            self.func,
            self.y0,
            grid,
            t,
            schedule,
            solution.__setitem__,
            self.func.callback_step,
        )
        return solution


def _step_through(solver, func, y0, grid, t, schedule, put, callback=None) -> None:
    """The fixed steps of ``grid`` from ``y0``, giving each output time ``t[j]`` (``j >= 1``) to
    ``put(j, y)`` as ``schedule`` (:func:`_output_schedule`) says: the step's end ``y1``, the
    line between its ends, or the cubic Hermite interpolant, whose end slope ``f(t1, y1)`` is
    the next step's first stage ``f0`` (same ``t1`` tensor, same ``y1``), so those outputs wait
    for it; only outputs strictly inside the last step cost one more evaluation. ``solver``:
    the torchdiffeq fixed-grid solver whose ``_step_func`` and ``_cubic_hermite_interp`` are
    used; ``callback(t0, y0, dt)`` before each step, as torchdiffeq calls ``callback_step``.

    (why) one loop for :class:`_ReusedEndSlope` (eager) and ``sciml.export``'s unrolled NODE:
    the loop branches on the schedule alone, never on tensor values, so ``torch.export`` traces
    it, and the program is the eager solve by construction.
    """
    waiting = None  # (t0, y0, f0, t1, y1, output indices) waiting for f(t1, y1)
    # (why) zip over the grid: indexing grid[i], grid[i + 1] made the eager RK4 solve 2% slower
    for t0, t1, todo in zip(grid[:-1], grid[1:], schedule):
        dt = t1 - t0
        if callback is not None:
            callback(t0, y0, dt)
        dy, f0 = solver._step_func(func, t0, dt, t1, y0)
        if waiting is not None:
            _hermite(solver, put, t, waiting, f0)
            waiting = None
        y1 = y0 + dy
        inside = []
        for j, how in todo:
            if how == "end":  # a step's end; the last time, the grid's end (its gradient flows
                put(j, y1)  # through dt)
            elif how == "line":  # torchdiffeq's _linear_interp off the step's ends
                put(j, y0 + (t[j] - t0) / (t1 - t0) * (y1 - y0))
            else:
                inside.append(j)
        if inside:
            waiting = (t0, y0, f0, t1, y1, inside)
        y0 = y1
    if waiting is not None:
        _hermite(solver, put, t, waiting, func(waiting[3], waiting[4]))


def _hermite(solver, put, t, waiting, f1) -> None:
    t0, y0, f0, t1, y1, indices = waiting
    for j in indices:
        put(j, solver._cubic_hermite_interp(t0, y0, f0, t1, y1, f1, t[j]))


class _RK4Reused(_ReusedEndSlope, _TorchdiffeqRK4):
    pass


class _EulerReused(_ReusedEndSlope, _TorchdiffeqEuler):
    pass


_TORCHDIFFEQ_SOLVERS.setdefault("sciml_rk4", _RK4Reused)
_TORCHDIFFEQ_SOLVERS.setdefault("sciml_euler", _EulerReused)


@dataclass(frozen=True)
class RK4(_FixedStep):
    """Fixed-step fourth-order Runge-Kutta (torchdiffeq's ``rk4``, Kutta's 3/8 rule): 4
    evaluations per step. Output times are read off their step by the cubic Hermite interpolant,
    whose end slope is the next step's first stage (1 more evaluation in all when outputs lie
    inside the last step; none with every output on the grid). With ``interp="linear"``
    (torchdiffeq's default) an output time that is not a grid point is only second-order
    accurate (2e-3 against 1e-6 on the grid at ``step_size=0.1``), and the gradient with respect
    to an output time on the grid is 0.

    Args:
        step_size: the step ``h`` (finite, > 0); the grid runs from the first output time in
            steps of ``h`` and ends on the last.
        interp: how an output time inside a step is read off it: ``"linear"`` between the
            step's ends, or ``"cubic"``, the Hermite cubic through the ends and the field there
            (default ``"cubic"``).
    """

    interp: str = "cubic"
    method = "sciml_rk4"


@dataclass(frozen=True)
class Euler(_FixedStep):
    """Explicit Euler, fixed step: 1 evaluation per step.

    Outputs between grid points are read off the straight line between the step's ends, as
    accurate as the steps; ``interp="cubic"`` (costed as for RK4) when differentiating with
    respect to the output times, whose gradient through the line is 0 at a grid point.

    Args:
        step_size: the step ``h`` (finite, > 0); the grid runs from the first output time in
            steps of ``h`` and ends on the last.
        interp: how an output time inside a step is read off it: ``"linear"`` between the
            step's ends, or ``"cubic"``, the Hermite cubic through the ends and the field there
            (default ``"linear"``).
    """

    method = "sciml_euler"


class SDESolver:
    """Base class for torchsde solver choices."""

    method: str
    dt: float
    adaptive: bool
    rtol: float
    atol: float

    def sdeint_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``torchsde.sdeint``: ``method``, ``dt``, ``adaptive``,
        ``rtol`` and ``atol``."""
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

    Args:
        dt: the step (finite, > 0); with ``adaptive=True``, the first step's size.
        adaptive: let torchsde adapt the step by step doubling.
        rtol: relative tolerance of the adaptive step control (ignored when ``adaptive`` is
            False).
        atol: absolute tolerance of the adaptive step control (ignored when ``adaptive`` is
            False).
    """

    dt: float = 0.05
    adaptive: bool = False
    rtol: float = 1e-2
    atol: float = 1e-3
    method = "euler"

    def __post_init__(self) -> None:
        object.__setattr__(self, "dt", _check_fixed_step(self.dt, "dt"))
        _check_tol(self.rtol, self.atol)
