"""The stopping rule every Krylov method shares: the monitor of the residuals, the
true-residual checks of residual replacement (:func:`_confirm`, :func:`_restart`), the
statuses and messages of a breakdown, and the iterate returned after one (:func:`_fallback`).
See :mod:`sciml.linalg.krylov` for the rule itself.
The problem they act on (:class:`_Problem`) and the float64 dot products are in
``_problem.py``."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from ._operator import LinearOperator, null_basis, project_out
from ._problem import _norm, _Problem
from .result import Status

# appended to breakdown messages: the usual cause on a Poisson problem is a singular A (all-Neumann
# walls) given as a bare matrix, so b keeps its null-space component
_SINGULAR_HINT = (
    " (or A is singular and b is not in its range: pass the null space, null_space= or the "
    "Poisson problem, so that it is removed from b)"
)


class _Monitor:
    """Stopping rule shared by every method."""

    def __init__(
        self,
        bnorm: float,
        rtol: float,
        maxiter: int,
        window: int | None,
        callback: Callable[[int, float], Any] | None,
        on_iterate: Callable[[torch.Tensor], Any] | None = None,
    ) -> None:
        self.bnorm = bnorm
        self.rtol = rtol
        self.maxiter = maxiter
        self.window = window
        self.callback = callback
        self.on_iterate = on_iterate
        self.residuals: list[float] = []
        self.message = ""
        self.setup_s = 0.0
        #: true relative residuals of the residual replacements: where the updated one met rtol
        #: but they did not (_confirm), or at a stagnation stop that was drift (_restart)
        self.replaced: list[float] = []
        #: the true relative residual of the returned x when the method confirmed convergence
        self.confirmed: float | None = None
        self._since_replacement: list[float] = []
        #: ``(iteration, true relative residual, x)`` of the best iterate checked by _confirm
        self.best_checked: tuple[int, float, torch.Tensor] | None = None
        #: ``(iteration, x)`` of an iterate within 2x of the smallest updated residual seen
        self.kept: tuple[int, torch.Tensor] | None = None
        self.kept_rel = math.inf
        #: the message already compares the true residual with rtol (set by _confirm)
        self.explained = False
        #: ``energy[k]``: the fall of the energy ``||x - x*||_A^2`` from x0 to iterate k, summed
        #: from the steps (see __call__); 0 throughout for a caller that gives no ``decrease``
        self.energy: list[float] = []

    def replace(self, true: float) -> None:
        """The residual of the last iterate was replaced by its true value ``true``."""
        self._since_replacement = [true]

    def __call__(
        self, rnorm: float, x: torch.Tensor | None = None, decrease: float = 0.0
    ) -> Status | None:
        """Record ``||r_k||`` of the iterate ``x_k`` and decide whether to stop; ``decrease``:
        the fall of ``||x - x*||_A^2`` in the step to ``x_k``, ``alpha (p . r)`` for an exact line
        search along p (as every method here takes)."""
        rel = rnorm / self.bnorm
        self.residuals.append(rel)
        self.energy.append((self.energy[-1] if self.energy else 0.0) + decrease)
        self._since_replacement.append(rel)
        it = len(self.residuals) - 1
        if self.callback is not None:
            self.callback(it, rel)
        if self.on_iterate is not None and it > 0:  # SciPy's callback(xk): k >= 1
            self.on_iterate(x)
        if not math.isfinite(rel):
            self.message = f"non-finite residual at iteration {it}"
            return Status.NONFINITE
        if rel <= self.rtol:
            self.message = f"relative residual {rel:.3e} <= rtol {self.rtol:.1e} in {it} iterations"
            return Status.CONVERGED
        if x is not None and rel <= 0.5 * self.kept_rel:
            # a fallback for a breakdown (see _fallback): a copy each time the residual halves, not
            # at every improvement, so about log2(1 / rtol) copies per solve and no matvec
            self.kept_rel = rel
            self.kept = (it, x.detach().clone())
        if it >= self.maxiter:
            self.message = f"relative residual {rel:.3e} > rtol {self.rtol:.1e} after maxiter={it}"
            return Status.MAXITER
        # the window grows with the run (half the iterations so far): CG's residual can sit on
        # a plateau for a long stretch before converging (measured: 120 iterations from
        # iteration 293 on a 96^3 Neumann problem with an obstacle), a plateau longer than the
        # whole run before it is what stagnation looks like
        w = None if self.window is None else max(self.window, it // 2)
        # measured from the last residual replacement on: the updated residuals before it had
        # drifted below the true ones, and no true residual improves on them
        hist = self._since_replacement
        if w is not None and len(hist) > w:
            before = min(hist[: len(hist) - w])
            recent = min(hist[len(hist) - w :])
            if recent > 0.99 * before and (energy := self._energy_stalled(it, w)) is not None:
                self.message = (
                    f"stagnated: best relative residual {before:.3e} did not improve by 1% in the "
                    f"last {w} iterations{energy} (is b in the range of A? is A SPD and well "
                    "scaled?)"
                )
                return Status.STAGNATED
        return None

    def _energy_stalled(self, it: int, w: int) -> str | None:
        """None where the error's A-norm still falls over the last ``w`` iterations: its fall
        there is over ``_ENERGY_PROGRESS`` of its fall since x0, and the second half of them
        did not take over ``_ENERGY_GROWTH`` times the first's. Else the window's stop stands,
        and the clause its message adds ("" where no method gave the steps' decrease).

        (why) the residual of CG is not monotone, the A-norm error is (exact line searches):
        on an ill-conditioned A the residual can rise for hundreds of iterations while the
        error falls, and the window alone stopped solves that SciPy's cg finishes (measured:
        PCG(Jacobi()) on D^1/2 L D^1/2, L the 1-D Laplacian of 200-1000 unknowns and D from
        1e-6 to 1e6, random b, rose up to 500x its start and ended STAGNATED at iterations
        105-121, x0 returned; plain CG on L alone, 4 of 6 solves at 500-2000 unknowns, at
        101-367; all converge in n iterations, as SciPy's cg, and the error's fall over the
        window where the residual alone stopped them was 7-100% of its fall so far). A b
        outside the range of a singular A makes the fall grow without bound instead (x runs
        along the null space: the second half of the window took 1e11-1e13 times the first's,
        12^2 Neumann, seeds 4 and 8), the stall that the window is for.
        """
        e = self.energy
        total = e[it]
        if total <= 0.0:  # no decrease given (or none made): the residual alone decides
            return ""
        fall = e[it] - e[it - w]
        first, second = e[it - w // 2] - e[it - w], e[it] - e[it - w // 2]
        if second > _ENERGY_GROWTH * first:
            return (
                f", and the A-norm error's fall grew {second / max(first, 1e-300):.1e}x from "
                "the first half of them to the second (x runs along a null space of A?)"
            )
        if fall < _ENERGY_PROGRESS * total:
            return (
                f", nor did the A-norm error (its fall there is {fall / total:.1e} of its fall "
                "since x0)"
            )
        return None


#: the fall of ``||x - x*||_A^2`` over a stagnation window, as a fraction of its fall since x0,
#: below which the error stalled too (see _Monitor._energy_stalled)
_ENERGY_PROGRESS = 1e-3
#: how many times the first half's fall of ``||x - x*||_A^2`` the second half of a window may
#: take before it is divergence, not progress (see _Monitor._energy_stalled)
_ENERGY_GROWTH = 10.0


#: residual replacements (r = b - A x where the updated residual met rtol but the true one
#: did not) before a solve gives up; MATLAB's pcg allows at most 5 such extra rounds
_MAX_REPLACEMENTS = 5


def _wider(dtype: torch.dtype) -> str:
    """``"float64, or "`` where the solve runs in a narrower dtype, else ``""``.

    (why) the rounding-floor messages advised float64 to a solve already in float64."""
    return "" if torch.finfo(dtype).eps <= torch.finfo(torch.float64).eps else "float64, or "


def _confirm(p: _Problem, x: torch.Tensor, dt: torch.dtype) -> tuple[Status | None, Any]:
    """The updated residual of ``x`` met rtol: recompute the true residual ``b - A x`` (one
    matvec) and decide.

    Returns ``(CONVERGED, None)`` when the true residual meets rtol too, ``(None, r)`` to go on
    from the true residual ``r`` (residual replacement: the updated residual had drifted from
    it by rounding), or ``(STAGNATED or MAXITER, None)`` with ``mon.message`` set where going
    on cannot help: the true residual did not decrease since the last replacement (it sits on
    the rounding floor of the dtype), ``_MAX_REPLACEMENTS`` were spent, or maxiter.

    For a singular A, ``x`` is first replaced (in place) by x as :func:`solve` returns it, less
    its null-space component, so that the residual checked is the returned x's.
    """
    mon = p.monitor
    if p.A.null_space is not None:
        # (why) rounding the projected x to float32 moved the residual by up to 17% (measured:
        # PCG(Jacobi()) on a 24^2 Neumann problem, 2.97e-7 checked, 3.49e-7 returned at rtol
        # 3e-7: Jacobi's directions give x a 2% constant part)
        x.copy_(p.returned(x))
    r = p.residual(x, dt)
    true = _norm(r, dt) / mon.bnorm
    if true <= mon.rtol:
        mon.confirmed = true
        # the monitor's message quoted the updated residual, which may be far below this one
        mon.message = (
            f"true relative residual ||b - A x|| / ||b|| = {true:.3e} <= rtol {mon.rtol:.1e} in "
            f"{len(mon.residuals) - 1} iterations"
        )
        return Status.CONVERGED, None
    it = len(mon.residuals) - 1
    best = min(mon.replaced, default=math.inf)
    mon.replaced.append(true)
    if true < best:  # a copy at each check only (at most _MAX_REPLACEMENTS + 1 of them)
        mon.best_checked = (it, true, x.detach().clone())
    if len(mon.replaced) > _MAX_REPLACEMENTS or true >= best:
        mon.explained = True
        dtype = str(x.dtype).removeprefix("torch.")
        mon.message = (
            f"stagnated: the updated residual met rtol {mon.rtol:.1e} at iteration {it} but the "
            f"true relative residual ||b - A x|| / ||b|| is {true:.3e} (at each check: "
            f"{', '.join(f'{t:.2e}' for t in mon.replaced)}; residual replaced by the true one "
            f"in between): rounding in {dtype} keeps it above rtol on this problem; use "
            f"{_wider(x.dtype)}an rtol >= {min(true, best):.1e}"
        )
        if p.A.null_space is None:
            # (why) a b outside the range of a bare singular A ends here too, its x running along
            # the null space until rounding carries the updated residual below rtol (PCG(AMG())
            # on a bare 10x11 Neumann matrix, true residual 3.8), and the message blamed rounding
            mon.message += _SINGULAR_HINT
        return Status.STAGNATED, None
    if it >= mon.maxiter:
        mon.explained = True
        mon.message = (
            f"the updated residual met rtol {mon.rtol:.1e} at maxiter={it} but the true "
            f"relative residual ||b - A x|| / ||b|| is {true:.3e}"
        )
        return Status.MAXITER, None
    mon.replace(true)
    if p.A.null_space is not None:
        # b is in the range of A, b - A x only by rounding: its null-space part would be
        # iterated on, growing x along the null space and the rounding of A x with it (measured:
        # float32, 24^2 Neumann, the true residual rose from 2.2e-6 to 5.3e-6 after a restart)
        basis = null_basis(p.A.null_space, r.device)
        r = project_out(r.to(torch.float64), basis)
    return None, r.to(x.dtype)


#: a stagnation stop whose true residual is over this many times the updated one is the
#: updated residual's drift (rounding), not the problem's plateau: see _restart
_DRIFT = 2.0


def _restart(p: _Problem, x: torch.Tensor, dt: torch.dtype) -> torch.Tensor | None:
    """The iteration stagnated (the window, or ``p.Ap`` at rounding level) short of rtol: go on
    from the true residual (residual replacement) where the updated one had drifted below it,
    or stop (None).

    Returns the true residual to go on from, with ``x`` (changed in place) the iterate it
    belongs to: the last one or the one ``mon`` kept near the smallest updated residual,
    whichever has the smaller true residual (one matvec each).

    (why) Below the dtype's floor the updated residual can level off far under the true one
    without ever meeting rtol, so :func:`_confirm` never replaced it (measured, float32 deflated
    CG on 64^2 at rtol 1e-12: 2.8e-8 updated against 4.1e-6 true, 7x float32's floor, where
    rtol 1e-7 reached the floor); or the updated residual climbs again after its minimum (a
    singular A in float32), and the last iterate is far worse than the kept one. Going on is the
    replacement :func:`_confirm` makes, under its rules: only where the true residual is over
    ``_DRIFT`` times the updated one of the same iterate (where it is not, as for an
    inconsistent b, the plateau is the problem's), smaller than at every earlier check, and at
    most ``_MAX_REPLACEMENTS`` checks.
    """
    mon = p.monitor
    it = len(mon.residuals) - 1
    if len(mon.replaced) >= _MAX_REPLACEMENTS or it >= mon.maxiter:
        return None
    candidates = [(it, mon.residuals[-1], x)]
    if mon.kept is not None and mon.kept[0] != it:
        candidates.append((mon.kept[0], mon.kept_rel, mon.kept[1]))
    best = None
    for k, updated, xk in candidates:
        xk = p.returned(xk)  # the residual of the x that solve returns
        r = p.residual(xk, dt)
        true = _norm(r, dt) / mon.bnorm
        if best is None or true < best[2]:
            best = (k, updated, true, xk, r)
    k, updated, true, xk, r = best
    if not true > _DRIFT * updated or not true < min(mon.replaced, default=math.inf):
        return None
    x.copy_(xk)
    mon.replaced.append(true)
    mon.best_checked = (k, true, xk.detach().clone())
    mon.replace(true)
    # the updated residuals before this had drifted below the true ones: a later iterate is
    # kept again when its updated residual halves from here, not from theirs
    mon.kept, mon.kept_rel = None, math.inf
    if p.A.null_space is not None:  # see _confirm
        r = project_out(r.to(torch.float64), null_basis(p.A.null_space, r.device))
    return r.to(x.dtype)


#: ``|p.Ap| / (||p|| ||Ap||)`` below this many eps of the vectors' dtype is rounding noise
_ROUNDING_CURVATURE = 1e3


def _diagonal_scale(A: LinearOperator | None) -> float:
    """``max_i |A_ii|`` where A's diagonal is known and finite, else 0: a lower bound of
    ``||A||_2`` that costs no matvec (a sparse matrix's or a stencil's diagonal)."""
    if A is None:
        return 0.0
    try:
        diag = A.diagonal()
    except (TypeError, NotImplementedError):  # a bare matvec, or a diagonal it cannot give
        return 0.0
    scale = float(diag.detach().abs().max().to(torch.float64)) if diag.numel() else 0.0
    # (why) an inf would make every p.Ap "rounding": the first measure alone then decides
    return scale if math.isfinite(scale) else 0.0


def _curvature_breakdown(
    mon: _Monitor,
    dAd: float,
    d: torch.Tensor,
    Ad: torch.Tensor,
    dt: torch.dtype,
    A: LinearOperator | None = None,
) -> Status:
    """The status (and ``mon.message``) for ``p.Ap <= 0`` or NaN: non-finite numbers, a
    curvature at rounding level (p numerically in A's null space: precision lost, not an
    indefinite A), or an A that is not SPD.

    Rounding level: ``|p.Ap| <= 1e3 eps ||p|| ||Ap||``, or ``<= 1e3 eps max_i |A_ii| ||p||^2``
    where A's diagonal is known. (why) the second: the rounding of ``A p`` is ``eps |A| |p|``,
    so that of ``p.Ap`` is of order ``eps ||A|| ||p||^2``; where p is nearly a null vector,
    ``||Ap||`` is itself small and the first measure reads a cosine, not rounding (measured, CG
    on a 12^2 all-Neumann matrix with an inconsistent b, seeds 4-11 with no stagnation window:
    all 8 ended NOT_SPD at ``|p.Ap| / (||p|| ||Ap||)`` of 6e-11 to 1e-8, where
    ``|p.Ap| / (||A||_2 ||p||^2)`` was 4e-20 to 2e-18, below float64's eps; with a window of 50
    seed 4 ended STAGNATED here and NOT_SPD at iteration 48 on an H100 machine's CPU, torch
    2.11, whichever stop the rounding brought first)."""
    it = len(mon.residuals) - 1
    if not math.isfinite(dAd):
        mon.message = f"non-finite p.Ap at iteration {it}"
        return Status.NONFINITE
    dnorm = _norm(d, dt)
    level = abs(dAd) / max(dnorm * _norm(Ad, dt), 1e-300)
    measure = "||p|| ||Ap||"
    scale = _diagonal_scale(A) * dnorm * dnorm
    if scale > 0.0 and abs(dAd) / scale < level:
        level, measure = abs(dAd) / scale, "max|A_ii| ||p||^2"
    if level <= _ROUNDING_CURVATURE * _eps(d.dtype):
        mon.message = (
            f"stagnated: p.Ap = {dAd:.3e} at iteration {it} is rounding noise (|p.Ap| / "
            f"({measure}) = {level:.1e}): the directions lost their precision, as when rtol is "
            f"below what {str(d.dtype).removeprefix('torch.')} reaches on a singular A (use "
            f"{_wider(d.dtype)}a looser rtol){_SINGULAR_HINT}"
        )
        return Status.STAGNATED
    mon.message = (
        f"breakdown: p.Ap = {dAd:.3e} <= 0 at iteration {it}; "
        f"A is not symmetric positive definite{_SINGULAR_HINT}"
    )
    return Status.NOT_SPD


def _step_status(
    p: _Problem, x: torch.Tensor, r: torch.Tensor, dt: torch.dtype, decrease: float
) -> tuple[Status | None, torch.Tensor | None]:
    """After a step to ``x`` with updated residual ``r``, which took ``decrease`` off the
    energy ``||x - x*||_A^2`` (see :class:`_Monitor`): the monitor's status, and the true
    residual to go on from where the iteration continues from a residual replacement (a
    convergence :func:`_confirm` did not confirm, or a stagnation :func:`_restart` found to be
    drift), else None."""
    status = p.monitor(_norm(r, dt), x, decrease)
    if status is Status.CONVERGED:
        return _confirm(p, x, dt)
    if status is Status.STAGNATED and (replaced := _restart(p, x, dt)) is not None:
        return None, replaced
    return status, None


def _curvature_stop(
    p: _Problem, x: torch.Tensor, d: torch.Tensor, Ad: torch.Tensor, dAd: float, dt: torch.dtype
) -> tuple[Status, torch.Tensor | None]:
    """``p.Ap <= 0``: the status (:func:`_curvature_breakdown`), and the true residual to go on
    from where :func:`_restart` finds the updated residual had drifted (else None: stop)."""
    status = _curvature_breakdown(p.monitor, dAd, d, Ad, dt, p.A)
    if status in (Status.STAGNATED, Status.NOT_SPD):
        return status, _restart(p, x, dt)
    return status, None


def _preconditioner_breakdown(mon: _Monitor, rz: float) -> Status:
    """The status (and ``mon.message``) for ``r.Mr <= 0`` or NaN."""
    it = len(mon.residuals) - 1
    if not math.isfinite(rz):
        # (why) a NaN r.Mr fails 'r.Mr > 0' too; it was reported as an indefinite
        # preconditioner (NOT_SPD, SciPy-style info -1) where the preconditioner gave NaN
        mon.message = (
            f"non-finite r.Mr = {rz} at iteration {it}: the preconditioner returned NaN or inf"
        )
        return Status.NONFINITE
    mon.message = f"r.Mr = {rz:.3e} <= 0: the preconditioner is not SPD{_SINGULAR_HINT}"
    return Status.NOT_SPD


def _vanished(
    z: torch.Tensor, dt: torch.dtype, it: int, kept: int, *, network: bool, deflated: bool
) -> str:
    """The message for a direction that is exactly 0: ``M(r)`` returned 0 (``z``, as it
    returned it), or a combination of the directions it is made A-orthogonal to (and of the
    coarse space where ``deflated``); ``network``: ``M`` is DCDM's network."""
    if _norm(z, dt) == 0.0:
        what = (
            "the network returned 0, or only a part in A's null space (such as a constant on "
            "an all-Neumann grid), which DCDM removes"
            if network
            else "the preconditioner returned 0"
        )
        return (
            f"the direction vanished at iteration {it}: {what}, so no step can be taken "
            f"(stagnated): check the {'model' if network else 'preconditioner'}"
        )
    who = "the network" if network else "the preconditioner"
    if kept == 0 and deflated:
        return (
            f"the direction vanished after deflation at iteration {it}: {who} returned a "
            "vector of the deflation's coarse space, which the deflated iteration has already "
            "solved for (stagnated)"
        )
    coarse = " and the deflation's coarse space" if deflated else ""
    return (
        f"the direction vanished after A-orthogonalisation at iteration {it}: "
        f"{who} returned a combination of the last {kept} directions{coarse}, which adds nothing "
        "new (stagnated)"
    )


#: statuses that say the iteration went wrong (rounding, an inconsistent b, an indefinite A, a
#: non-finite direction): the last iterate is then not necessarily the best one, see _fallback
_BREAKDOWNS = (Status.STAGNATED, Status.NOT_SPD, Status.NONFINITE)


def _fallback(
    p: _Problem,
    dt: torch.dtype,
    last: int,
    true: float,
    x: torch.Tensor,
) -> tuple[int, float, torch.Tensor, str]:
    """After a breakdown, the iterate with the smallest true residual among the last one, the
    best one whose true residual ``_confirm`` checked, the one ``mon`` kept near the smallest
    updated residual and the start x0 (at most two matvecs, for the kept one and x0).

    (why) x0 too: where the updated residual drifts below the true one from the start (CG on a
    bare singular A with b outside its range diverges), the kept iterate is chosen by updated
    residuals that mean nothing, and x0 is the best iterate there is (measured, 12^2 Neumann,
    seed 4, no window: the iterate of iteration 524 was returned, true residual 393, where
    x0 = 0 has 1).

    MAXITER keeps the last iterate, as SciPy: every method here takes exact line searches, so
    the energy-norm error ``||x - x*||_A`` decreases at every step and the last iterate is the
    best in that norm even where the residual norm is not monotone. A breakdown is where that
    stops holding: past the rounding floor (measured: float32 PCG(Jacobi()) on a 24^2 Neumann
    problem at rtol 1e-8 went from a true residual of 2.1e-6 at iteration 91 to 7.8e-4 at the
    breakdown at 155), or with an inconsistent b.
    """
    mon = p.monitor
    best = (last, true, x)
    checked = mon.best_checked
    if checked is not None and not best[1] <= checked[1]:
        best = checked
    if mon.kept is not None and mon.kept[0] not in (last, best[0]):
        k, xk = mon.kept
        xk = p.returned(xk)
        tk = _norm(p.residual(xk, dt), dt) / mon.bnorm
        if not best[1] <= tk:
            best = (k, tk, xk)
    if best[0] != 0 and last != 0:
        x0 = p.returned(p.x0)
        t0 = _norm(p.residual(x0, dt), dt) / mon.bnorm
        if not best[1] <= t0:
            best = (0, t0, x0.clone())
    if best[0] == last:
        return last, true, x, ""
    note = (
        f"; returned the iterate of iteration {best[0]} (true relative residual {best[1]:.3e}), "
        f"not the last one ({true:.3e})"
    )
    return best[0], best[1], best[2], note


def _eps(dtype: torch.dtype) -> float:
    return float(torch.finfo(dtype).eps)
