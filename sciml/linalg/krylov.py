"""Krylov solvers for SPD systems A x = b: CG, preconditioned CG, flexible CG.

All methods share one stopping rule and one result record:

* converged when the relative residual ``||b - A x_k|| / ||b|| <= rtol``: the recursively
  updated residual first, then the true residual ``b - A x_k`` recomputed (one matvec). When the
  two disagree the iteration continues from the true residual (residual replacement), and where
  rounding keeps the true residual above rtol (float32 with a small rtol) it ends ``STAGNATED``
  with the residual it reached, never ``CONVERGED``; after a breakdown the iterate with the
  smallest true residual seen is returned (see :func:`_fallback`), after maxiter the last;
* ``maxiter`` iterations, a stagnation window (the best residual did not improve by 1% over
  ``max(stagnation_window, k // 2)`` iterations at iteration k), a non-positive curvature
  ``p^T A p <= 0`` (A or the preconditioner is not SPD; ``STAGNATED`` where it is rounding
  noise, ``|p^T A p| <= 1e3 eps ||p|| ||A p||``) and non-finite numbers each end the iteration
  with their own :class:`Status`, never with a silently wrong answer; the window, ``p^T A p
  <= 0`` and PCG's ``r^T M r <= 0`` only where the true residual is not over 2x the updated one,
  else they are a residual replacement point too (see :func:`_restart`).

Inner products and norms are accumulated in ``dot_dtype`` (float64 by default) even when the
vectors are float32, and so is every true residual ``b - A x`` (x, b and A's entries cast to
float64, see :meth:`LinearOperator.apply64`): computed in float32 it was off by up to 20% near
float32's rounding floor, enough to call a residual above rtol converged.

Methods are objects: ``CG()``, ``PCG(Jacobi())``, ``PCG(AMG())``,
``FlexibleCG(preconditioner, k=...)``; run them through :func:`sciml.linalg.solve`.
"""

from __future__ import annotations

import enum
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from ._operator import LinearOperator, null_basis, project_out
from .deflation import Deflation
from .poisson import Poisson

__all__ = [
    "Status",
    "SolveResult",
    "Preconditioner",
    "Jacobi",
    "SymmetricGaussSeidel",
    "AMG",
    "CG",
    "PCG",
    "FlexibleCG",
]


# appended to breakdown messages: the usual cause on a Poisson problem is a singular A (all-Neumann
# walls) given as a bare matrix, so b keeps its null-space component
_SINGULAR_HINT = (
    " (or A is singular and b is not in its range: pass the null space, null_space= or the "
    "Poisson problem, so that it is removed from b)"
)


class Status(enum.Enum):
    """Why an iteration stopped."""

    CONVERGED = "converged"
    MAXITER = "maxiter"
    STAGNATED = "stagnated"
    NOT_SPD = "breakdown-not-spd"
    NAN_INPUT = "nan-input"
    NONFINITE = "nonfinite"


@dataclass
class SolveResult:
    """The record of one solve.

    Attributes:
        status: why the iteration stopped; ``converged`` is ``status is Status.CONVERGED``.
        iterations: number of iterations (one matvec each, two with a deflation; each true-
            residual check of residual replacement adds one, in float64, two at a stagnation
            stop with a kept iterate, a replacement at a ``p^T A p <= 0`` stop one more (the
            ``A p`` it discards), and with a deflation each replacement one more).
        residuals: relative residuals ``||r_k|| / ||b||``, k = 0 .. iterations.
        true_residual: ``||b - A x|| / ||b||`` recomputed from the returned x (accumulated in
            the method's ``dot_dtype``, float64 by default, with b as given to
            :func:`~sciml.linalg.solve`); ``<= rtol`` whenever ``status`` is ``CONVERGED``.
        message: a sentence for a human.
        time_s: wall time of the iteration (setup of preconditioners included).
        setup_s: the part of ``time_s`` spent setting up the preconditioner.
        null_space_component: ``||P_null b|| / ||b||`` removed from b before solving (0 when A is
            nonsingular or b was consistent).
        iterates: the iterates x_k when ``keep_iterates=True`` was asked for, else empty.
        returned_iteration: the k of the iterate x_k returned: ``iterations`` (the last),
            except after a breakdown (``STAGNATED``, ``NOT_SPD``, ``NONFINITE``), which returns
            the iterate with the smallest true residual among the last, those checked by
            residual replacement and one kept within 2x of the smallest updated residual.
    """

    status: Status
    iterations: int
    residuals: list[float]
    true_residual: float = math.nan
    message: str = ""
    time_s: float = 0.0
    null_space_component: float = 0.0
    setup_s: float = 0.0
    iterates: list[torch.Tensor] = field(default_factory=list, repr=False)
    returned_iteration: int = 0

    @property
    def converged(self) -> bool:
        """``status is Status.CONVERGED``."""
        return self.status is Status.CONVERGED


# --------------------------------------------------------------------------- helpers


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

    def replace(self, true: float) -> None:
        """The residual of the last iterate was replaced by its true value ``true``."""
        self._since_replacement = [true]

    def __call__(self, rnorm: float, x: torch.Tensor | None = None) -> Status | None:
        """Record ``||r_k||`` of the iterate ``x_k`` and decide whether to stop."""
        rel = rnorm / self.bnorm
        self.residuals.append(rel)
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
            # a fallback for a breakdown (see run): a copy each time the residual halves, not
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
            if recent > 0.99 * before:
                self.message = (
                    f"stagnated: best relative residual {before:.3e} did not improve by 1% in the "
                    f"last {w} iterations (is b in the range of A? is A SPD and well scaled?)"
                )
                return Status.STAGNATED
        return None


#: residual replacements (r = b - A x where the updated residual met rtol but the true one
#: did not) before a solve gives up; MATLAB's pcg allows at most 5 such extra rounds
_MAX_REPLACEMENTS = 5


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
            f"in between): rounding in {dtype} keeps it above rtol on this problem; use float64, "
            f"or an rtol >= {min(true, best):.1e}"
        )
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


def _dot(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype) -> float:
    return float(torch.dot(a.to(dtype), b.to(dtype)))


def _norm(a: torch.Tensor, dtype: torch.dtype) -> float:
    return float(torch.linalg.vector_norm(a.to(dtype)))


#: ``|p.Ap| / (||p|| ||Ap||)`` below this many eps of the vectors' dtype is rounding noise
_ROUNDING_CURVATURE = 1e3


def _curvature_breakdown(
    mon: _Monitor, dAd: float, d: torch.Tensor, Ad: torch.Tensor, dt: torch.dtype
) -> Status:
    """The status (and ``mon.message``) for ``p.Ap <= 0`` or NaN: non-finite numbers, a
    curvature at rounding level (p numerically in A's null space: precision lost, not an
    indefinite A), or an A that is not SPD."""
    it = len(mon.residuals) - 1
    if not math.isfinite(dAd):
        mon.message = f"non-finite p.Ap at iteration {it}"
        return Status.NONFINITE
    level = abs(dAd) / max(_norm(d, dt) * _norm(Ad, dt), 1e-300)
    if level <= _ROUNDING_CURVATURE * _eps(d.dtype):
        mon.message = (
            f"stagnated: p.Ap = {dAd:.3e} at iteration {it} is rounding noise (|p.Ap| / "
            f"(||p|| ||Ap||) = {level:.1e}): the directions lost their precision, as when rtol is "
            f"below what {str(d.dtype).removeprefix('torch.')} reaches on a singular A (use "
            f"float64 or a looser rtol){_SINGULAR_HINT}"
        )
        return Status.STAGNATED
    mon.message = (
        f"breakdown: p.Ap = {dAd:.3e} <= 0 at iteration {it}; "
        f"A is not symmetric positive definite{_SINGULAR_HINT}"
    )
    return Status.NOT_SPD


def _step_status(
    p: _Problem, x: torch.Tensor, r: torch.Tensor, dt: torch.dtype
) -> tuple[Status | None, torch.Tensor | None]:
    """After a step to ``x`` with updated residual ``r``: the monitor's status, and the true
    residual to go on from where the iteration continues from a residual replacement (a
    convergence :func:`_confirm` did not confirm, or a stagnation :func:`_restart` found to be
    drift), else None."""
    status = p.monitor(_norm(r, dt), x)
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
    status = _curvature_breakdown(p.monitor, dAd, d, Ad, dt)
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


@dataclass
class _Problem:
    """What a method's ``_iterate`` gets: the operator, rhs, start, and the stopping rule."""

    A: LinearOperator
    b: torch.Tensor
    x0: torch.Tensor
    monitor: _Monitor
    keep_iterates: bool = False
    #: b as given, in float64, where the iteration runs on its rounding to A's dtype
    b64: torch.Tensor | None = None

    def returned(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as :func:`solve` returns it: for a singular A less its null-space component
        (projected in float64, rounded to x's dtype), giving the minimum-norm solution."""
        if self.A.null_space is None:
            return x
        basis = null_basis(self.A.null_space, x.device)
        return project_out(x.to(torch.float64), basis).to(x.dtype)

    def residual(self, x: torch.Tensor, dt: torch.dtype) -> torch.Tensor:
        """The true residual ``b - A x``: in float64 (x, b and A's entries cast, see
        :meth:`LinearOperator.apply64`) when ``dt``, the accumulation dtype, is float64, else
        in x's dtype."""
        if dt == torch.float64:
            b = self.b if self.b64 is None else self.b64
            return b.to(torch.float64) - self.A.apply64(x)
        return self.b - self.A(x)


# --------------------------------------------------------------------------- preconditioners


class Preconditioner:
    """A preconditioner: ``setup(A)`` returns ``z = M^{-1} r`` for ``r: (n,)``."""

    def setup(self, A: LinearOperator) -> Callable[[torch.Tensor], torch.Tensor]:
        """Prepare the preconditioner for ``A`` (called once per solve, timed as ``setup_s``).

        Args:
            A: the system matrix.

        Returns:
            The function ``r -> z = M^{-1} r`` for residuals ``r: (n,)``, giving ``z: (n,)`` in
            ``r``'s dtype and on its device.
        """
        raise NotImplementedError


def _check_diagonal(d: np.ndarray, name: str) -> None:
    """Refuse a diagonal entry that is not > 0 (both preconditioners divide by it: a zero gave
    inf, then NaN iterates), naming the first such row."""
    bad = np.flatnonzero(~(d > 0))
    if bad.size:
        i = int(bad[0])
        more = f" (and {bad.size - 1} more rows)" if bad.size > 1 else ""
        if d[i] == 0:
            what = (
                "a zero diagonal is an unknown that nothing couples to (e.g. a fluid cell "
                "enclosed by solid cells): remove it from the system, or use CG() or PCG(AMG()), "
                "which do not divide by the diagonal"
            )
        else:
            what = "A is not SPD (is its sign flipped, -A?); CG-type methods need an SPD A"
        raise ValueError(
            f"{name}: expected a positive diagonal (A symmetric positive definite), got "
            f"A[{i}, {i}] = {float(d[i]):.3g}{more}; {what}"
        )


@dataclass(frozen=True)
class Jacobi(Preconditioner):
    """``z = D^{-1} r`` with D the diagonal of A."""

    def setup(self, A: LinearOperator) -> Callable[[torch.Tensor], torch.Tensor]:
        """Invert the diagonal of ``A`` once; the returned ``r -> D^{-1} r`` maps ``(n,)`` to
        ``(n,)`` on ``A``'s device.

        Raises:
            TypeError: ``A`` does not expose its diagonal (see :meth:`LinearOperator.diagonal`).
            ValueError: a diagonal entry is not ``> 0``; the message names the first such row.
        """
        d = A.diagonal().to(device=A.device, dtype=A.dtype)
        _check_diagonal(d.cpu().numpy(), "Jacobi")
        inv = 1.0 / d
        return lambda r: inv.to(r.dtype) * r


@dataclass(frozen=True)
class SymmetricGaussSeidel(Preconditioner):
    """Symmetric Gauss-Seidel: ``M = (D + L) D^{-1} (D + U)``, one forward and one backward
    triangular sweep per application (SciPy, on the CPU)."""

    def setup(self, A: LinearOperator) -> Callable[[torch.Tensor], torch.Tensor]:
        """Split the assembled ``A`` into its triangles ``D + L`` and ``D + U``; the returned
        ``r -> M^{-1} r`` maps ``(n,)`` to ``(n,)`` by two SciPy triangular solves in float64 on
        the CPU, cast back to ``r``'s dtype and device.

        Raises:
            TypeError: the matrix of ``A`` is not available (see
                :meth:`LinearOperator.to_scipy`).
            ValueError: a diagonal entry is not ``> 0``; the message names the first such row.
        """
        import scipy.sparse as sp
        from scipy.sparse.linalg import spsolve_triangular

        a = A.to_scipy()
        lower = sp.tril(a, format="csr")
        upper = sp.triu(a, format="csr")
        d = a.diagonal()
        _check_diagonal(d, "SymmetricGaussSeidel")

        def apply(r: torch.Tensor) -> torch.Tensor:
            y = spsolve_triangular(lower, r.detach().cpu().double().numpy(), lower=True)
            z = spsolve_triangular(upper, d * y, lower=False)
            return torch.from_numpy(z).to(device=r.device, dtype=r.dtype)

        return apply


@dataclass(frozen=True)
class AMG(Preconditioner):
    """One V-cycle of smoothed-aggregation algebraic multigrid (pyamg, optional extra) with
    symmetric Gauss-Seidel smoothing, so the preconditioner is SPD. The hierarchy is built at
    the start of every solve (``SolveResult.setup_s`` reports the time).

    Args:
        cycle: pyamg's cycle type, one cycle per application: ``"V"`` (the default), ``"W"``,
            ``"F"`` or ``"AMLI"``.
    """

    cycle: str = "V"

    def setup(self, A: LinearOperator) -> Callable[[torch.Tensor], torch.Tensor]:
        """Build pyamg's smoothed-aggregation hierarchy of the assembled ``A`` (constant
        near-null-space vector); the returned ``r -> M^{-1} r`` maps ``(n,)`` to ``(n,)`` by one
        ``cycle`` in float64 on the CPU, cast back to ``r``'s dtype and device.

        Raises:
            ImportError: pyamg is not installed.
            TypeError: the matrix of ``A`` is not available (see
                :meth:`LinearOperator.to_scipy`).
        """
        try:
            import pyamg
        except ImportError:
            raise ImportError(
                "AMG needs pyamg: pip install 'sciml[amg]' (or pip install pyamg)"
            ) from None
        a = A.to_scipy()
        if a.dtype != np.float64:
            # (why) the cycle runs in float64 (below), and pyamg refuses a float32 hierarchy
            # with a float64 vector: a float32 SciPy matrix raised its TypeError ('arguments
            # A, x, and b must have the same dtype')
            a = a.astype(np.float64)
        ml = pyamg.smoothed_aggregation_solver(
            a,
            B=np.ones((a.shape[0], 1)),
            presmoother=("gauss_seidel", {"sweep": "symmetric"}),
            postsmoother=("gauss_seidel", {"sweep": "symmetric"}),
        )
        m = ml.aspreconditioner(cycle=self.cycle)
        null = None if A.null_space is None else null_basis(A.null_space, torch.device("cpu"))

        def apply(r: torch.Tensor) -> torch.Tensor:
            z = torch.from_numpy(np.ascontiguousarray(m.matvec(r.detach().cpu().double().numpy())))
            if null is not None:
                # (why) on a singular A the cycle amplifies the rounding-level null-space part
                # of r (the coarse solve of a singular coarse matrix): z's null-space part was
                # up to 1.4e8 times the rest for float32-rounded residuals (38 Neumann grids with
                # obstacles). Rounded to float32 with it, the rest was lost: float32 PCG(AMG())
                # ended NOT_SPD on 0-4 of those 38 grids per run (pyamg's setup is random), some
                # at iteration 1 with x = 0. In float64 too, r's rounding-level constant part
                # times it made r.Mr or p.Ap <= 0 once r was small (NOT_SPD on 4 of 30 random
                # Neumann grids at rtol 1e-10). Removed here in float64, before the cast (here,
                # not in PCG for every preconditioner: that cost 1.2x (float64) to 1.7x
                # (float32) per PCG(Jacobi()) iteration on the CPU, 384^2 and 64^3, for float32
                # Jacobi iteration counts within 1% at rtol 1e-4 to 1e-6)
                z = project_out(z, null)
            return z.to(device=r.device, dtype=r.dtype)

        return apply


# --------------------------------------------------------------------------- methods


class Method:
    """A Krylov method; run it with :func:`sciml.linalg.solve`."""

    dot_dtype: torch.dtype = torch.float64

    def _iterate(self, p: _Problem) -> tuple[torch.Tensor, Status, list[torch.Tensor]]:
        raise NotImplementedError


@dataclass(frozen=True)
class CG(Method):
    """Conjugate gradients (Hestenes-Stiefel):

    ``alpha = r.r / p.Ap,  x += alpha p,  r -= alpha Ap,  p = r + (r'.r' / r.r) p``.

    Args:
        dot_dtype: the dtype inner products, norms and true residuals are accumulated in
            (float64 by default, also for float32 vectors).
    """

    dot_dtype: torch.dtype = torch.float64

    def _iterate(self, p: _Problem) -> tuple[torch.Tensor, Status, list[torch.Tensor]]:
        return PCG(None, dot_dtype=self.dot_dtype)._iterate(p)


@dataclass(frozen=True)
class PCG(Method):
    """Preconditioned CG with an SPD preconditioner ``M``:

    ``z = M^{-1} r,  alpha = r.z / p.Ap,  beta = r'.z' / r.z,  p = z + beta p``.

    ``PCG(None)`` is plain CG. A preconditioner that is not linear and SPD (a network) needs
    :class:`FlexibleCG`.

    Args:
        preconditioner: the :class:`Preconditioner` ``M`` (``Jacobi()``, ``AMG()``, ...), set up
            on ``A`` at the start of each solve; ``None`` for plain CG.
        dot_dtype: the dtype inner products, norms and true residuals are accumulated in
            (float64 by default, also for float32 vectors).
    """

    preconditioner: Preconditioner | None = None
    dot_dtype: torch.dtype = torch.float64

    def _iterate(self, p: _Problem) -> tuple[torch.Tensor, Status, list[torch.Tensor]]:
        A, dt, mon = p.A, self.dot_dtype, p.monitor
        t0 = time.perf_counter()
        M = self.preconditioner.setup(A) if self.preconditioner is not None else None
        mon.setup_s = time.perf_counter() - t0
        x = p.x0.clone()
        r = p.residual(x, dt).to(x.dtype) if bool(x.any()) else p.b.clone()
        iterates = [x.clone()] if p.keep_iterates else []
        status = mon(_norm(r, dt), x)
        if status is not None:
            return x, status, iterates
        z = M(r) if M is not None else r
        rz = _dot(r, z, dt)
        if M is not None and not rz > 0:
            return x, _preconditioner_breakdown(mon, rz), iterates
        d = z.clone()
        while True:
            Ad = A(d)
            dAd = _dot(d, Ad, dt)
            if not dAd > 0:
                status, replaced = _curvature_stop(p, x, d, Ad, dAd, dt)
                if replaced is None:
                    return x, status, iterates
                r = replaced
            else:
                alpha = rz / dAd
                x.add_(d, alpha=alpha)
                r.sub_(Ad, alpha=alpha)
                if p.keep_iterates:
                    iterates.append(x.clone())
                status, replaced = _step_status(p, x, r, dt)
                r = r if replaced is None else replaced
                if status is not None:
                    return x, status, iterates
            z = M(r) if M is not None else r
            rz_new = _dot(r, z, dt)
            if M is not None and not rz_new > 0:
                status = _preconditioner_breakdown(mon, rz_new)
                # an r.Mr <= 0 where r has drifted from the true residual is rounding (float32
                # Jacobi on 24^2 Neumann at rtol 1e-12: r.Mr = -1.6e-23 on a residual of 1e-9)
                again = _restart(p, x, dt) if status is Status.NOT_SPD else None
                if again is None:
                    return x, status, iterates
                r, replaced = again, again
                z = M(r)
                rz_new = _dot(r, z, dt)
                if not rz_new > 0:
                    return x, _preconditioner_breakdown(mon, rz_new), iterates
            if replaced is None:
                d = z + (rz_new / rz) * d
            else:
                # restart from the true residual: beta assumes the updated r, which it no longer
                # is (measured, float32 CG on a 24^2 Neumann problem: keeping d took 92
                # iterations at rtol 1e-6 and ran 1184 to a true residual of 2.2e-6 at rtol
                # 1e-7; restarting, 85 and 111 to 3.3e-7)
                d = z.clone()
            rz = rz_new


@dataclass(frozen=True)
class FlexibleCG(Method):
    """Flexible (truncated) CG for a preconditioner that changes between iterations or is
    non-linear (Notay 2000): the new direction ``z = M(r)`` is made A-orthogonal to the last
    ``k`` directions and the step is the exact line search,

    ``p = z - sum_i (z.Ap_i / p_i.Ap_i) p_i,  alpha = p.r / p.Ap,  x += alpha p``.

    One matvec per iteration: the coefficients use the stored ``A p_i`` (modified Gram-Schmidt),
    and ``A p`` is computed once ``p`` is known. With ``M = identity`` and ``k = 1`` this is CG
    in exact arithmetic.

    Args:
        preconditioner: the :class:`Preconditioner` whose setup on ``A`` gives ``M`` (it may be
            non-linear or change between iterations); ``None`` for the identity.
        k: the number of past directions each new one is made A-orthogonal to (>= 1).
        dot_dtype: the dtype inner products, norms and true residuals are accumulated in
            (float64 by default, also for float32 vectors).
        deflation: a :class:`sciml.linalg.Deflation` coarse space (a sciml extension): the
            iteration starts from the coarse solution and every direction is made A-orthogonal
            to the coarse space too (one more matvec per iteration). With ``M = identity`` and
            ``k = 1`` this is deflated CG.
    """

    preconditioner: Preconditioner | None = None
    k: int = 1
    dot_dtype: torch.dtype = torch.float64
    deflation: Deflation | None = None

    #: whether the directions are a network's output, with A's null-space part removed
    #: (DeepConjugateDirection, which borrows _iterate); the message of a vanished direction says
    #: which it was
    _network_directions: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k (directions kept) must be >= 1, got {self.k}")

    def _directions(self, A: LinearOperator) -> Callable[[torch.Tensor], torch.Tensor]:
        return self.preconditioner.setup(A) if self.preconditioner is not None else (lambda r: r)

    def _grid(self) -> Poisson | None:
        """The grid of the unknowns the method was given, if any (for block aggregates)."""
        return None

    def _iterate(self, p: _Problem) -> tuple[torch.Tensor, Status, list[torch.Tensor]]:
        A, dt, mon = p.A, self.dot_dtype, p.monitor
        t0 = time.perf_counter()
        M = self._directions(A)
        D = None
        if self.deflation is not None:
            D = self.deflation.setup(A, self._grid())
        mon.setup_s = time.perf_counter() - t0
        x = p.x0.clone()
        r = p.residual(x, dt).to(x.dtype) if bool(x.any()) else p.b.clone()
        if D is not None:
            x, r = D.start(x, r)
        iterates = [x.clone()] if p.keep_iterates else []
        kept: deque[tuple[torch.Tensor, torch.Tensor, float]] = deque(maxlen=self.k)
        status = mon(_norm(r, dt), x)
        if status is Status.CONVERGED and D is not None:  # the coarse start updated r
            status, replaced = _confirm(p, x, dt)
            r = r if replaced is None else replaced
        while status is None:
            d = M(r).to(dtype=x.dtype)
            if not bool(torch.isfinite(d).all()):
                mon.message = f"the direction is not finite at iteration {len(mon.residuals) - 1}"
                return x, Status.NONFINITE, iterates
            z = d
            for q, Aq, qAq in kept:  # modified Gram-Schmidt in the A inner product
                d = d - (_dot(d, Aq, dt) / qAq) * q
            # (why) A d of the orthogonalised direction, not A z - sum_i c_i A p_i (the same
            # matvec count): where z is nearly a combination of the kept directions, that
            # difference of large terms is inexact, r drifts from b - A x and p.Ap can even come
            # out <= 0 (measured, z = r + 1e3 x the previous z, every direction kept, 720
            # unknowns: float32 ended "not SPD" at iteration 84 at a true residual of 7.4e-5, now
            # CG's 49 iterations; float64 with 1e6: 121 iterations, now 79, CG 78)
            Ad = A(d)
            if D is not None:
                # after the k-term orthogonalisation: the kept directions are deflated
                # (Z^T A p_i = 0), so the coefficients and the projection commute, as in
                # exact arithmetic
                d, Ad = D.project(d, Ad)
            dAd = _dot(d, Ad, dt)
            if not dAd > 0:
                if _norm(d, dt) == 0.0:
                    mon.message = _vanished(
                        z,
                        dt,
                        len(mon.residuals) - 1,
                        len(kept),
                        network=self._network_directions,
                        deflated=D is not None,
                    )
                    return x, Status.STAGNATED, iterates
                status, replaced = _curvature_stop(p, x, d, Ad, dAd, dt)
                if replaced is None:
                    return x, status, iterates
                status = None
            else:
                alpha = _dot(d, r, dt) / dAd
                x = x + alpha * d
                r = r - alpha * Ad
                kept.append((d, Ad, dAd))
                if p.keep_iterates:
                    iterates.append(x.clone())
                status, replaced = _step_status(p, x, r, dt)
            if replaced is not None:
                r = replaced
                if D is not None:
                    # (why) the true residual has a coarse part (rounding), which the deflated
                    # directions cannot reduce: correct it as at the start (one coarse solve,
                    # one matvec; measured, float32 64^2 Neumann at rtol 1e-7: a true residual
                    # of 9.4e-7 in 95 iterations, was 6.5e-6 in 163)
                    x, r = D.start(x, r)
        return x, status, iterates


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
    coarse = " and the deflation's coarse space" if deflated else ""
    return (
        f"the direction vanished after A-orthogonalisation at iteration {it}: "
        f"{'the network' if network else 'the preconditioner'} returned a combination of the "
        f"last {kept} directions{coarse}, which adds nothing new (stagnated)"
    )


def run(
    method: Method,
    A: LinearOperator,
    b: torch.Tensor,
    x0: torch.Tensor,
    *,
    rtol: float,
    maxiter: int,
    stagnation_window: int | None,
    callback: Callable[[int, float], Any] | None,
    keep_iterates: bool,
    on_iterate: Callable[[torch.Tensor], Any] | None = None,
    b64: torch.Tensor | None = None,
) -> tuple[torch.Tensor, SolveResult]:
    """Run ``method`` on a checked problem (see :func:`sciml.linalg.solve`); ``b64``: b as
    given in float64 (the true residuals are measured against it), when ``b`` is its rounding
    to A's dtype."""
    dt = getattr(method, "dot_dtype", torch.float64)
    bnorm = _norm(b if b64 is None or dt != torch.float64 else b64, dt)
    t0 = time.perf_counter()
    if bnorm == 0.0:
        x = torch.zeros_like(b)
        done = SolveResult(Status.CONVERGED, 0, [0.0], 0.0, "b = 0, so x = 0")
        done.iterates = [x.clone()] if keep_iterates else []
        return x, done
    mon = _Monitor(bnorm, rtol, maxiter, stagnation_window, callback, on_iterate)
    p = _Problem(A, b, x0, mon, keep_iterates, b64)
    x, status, iterates = method._iterate(p)
    elapsed = time.perf_counter() - t0
    if status is Status.CONVERGED and mon.confirmed is not None:
        true = mon.confirmed  # _confirm measured this x (null space already projected out)
    else:
        x = p.returned(x)
        true = _norm(p.residual(x, dt), dt) / bnorm
    message = mon.message
    returned = len(mon.residuals) - 1
    if status is Status.CONVERGED and not true <= rtol:  # a method that skipped _confirm
        status = Status.STAGNATED
        message = (
            f"the updated residual met rtol {rtol:.1e} but the true relative residual is "
            f"{true:.3e}: rounding errors dominate (use float64, or a looser rtol)"
        )
    last = mon.residuals[-1]
    if status in (Status.STAGNATED, Status.MAXITER) and not mon.explained and true > 2 * last:
        # (why) the window's message quotes updated residuals; where rounding has carried them
        # below the true one (float32, deflation: 1.2e-7 updated against 2.0e-6 true), a
        # plateau is the precision's floor, not an inconsistent b or a badly scaled A
        message += (
            f"; the true relative residual ||b - A x|| / ||b|| is {true:.3e}, above the "
            f"updated one ({last:.3e}): rounding in {str(x.dtype).removeprefix('torch.')} "
            f"limits this solve (use float64, or an rtol >= {true:.1e})"
        )
    if status in _BREAKDOWNS:
        returned, true, x, note = _fallback(p, dt, returned, true, x)
        message += note
    if dt == torch.float64 and A.rounded_check is not None:
        low = str(A.rounded_check).removeprefix("torch.")
        # (why) the true residual is then no better than A's rounding of A x, which near
        # float32's floor is up to 8% of it (measured, aslinearoperator of a float32 matrix
        # before it was given float64 vectors: 0.92-1.08x the float64 residual on 48^2)
        message += (
            f"; the true residual was computed from A x in {low}, as this operator returns it "
            f"(not in float64), so it carries {low} rounding: give a float64 matvec as "
            "LinearOperator(..., matvec64=) or a SciPy operator that returns float64 products "
            "for float64 vectors"
        )
    return x, SolveResult(
        status,
        len(mon.residuals) - 1,
        mon.residuals,
        true,
        message,
        elapsed,
        setup_s=mon.setup_s,
        iterates=iterates,
        returned_iteration=returned,
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
    best one whose true residual ``_confirm`` checked and the one ``mon`` kept near the smallest
    updated residual (at most one matvec, for the kept one).

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
    if best[0] == last:
        return last, true, x, ""
    note = (
        f"; returned the iterate of iteration {best[0]} (true relative residual {best[1]:.3e}), "
        f"not the last one ({true:.3e})"
    )
    return best[0], best[1], best[2], note


def _eps(dtype: torch.dtype) -> float:
    return float(torch.finfo(dtype).eps)
