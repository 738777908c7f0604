"""Krylov solvers for SPD systems A x = b: CG, preconditioned CG, flexible CG.

All methods share one stopping rule and one result record:

* converged when the relative residual ``||b - A x_k|| / ||b|| <= rtol``: the recursively
  updated residual first, then the true residual ``b - A x_k`` recomputed (one matvec). When the
  two disagree the iteration continues from the true residual (residual replacement), and where
  rounding keeps the true residual above rtol (float32 with a small rtol) it ends ``STAGNATED``
  with the residual it reached, never ``CONVERGED``; after a breakdown the iterate with the
  smallest true residual seen is returned (see :func:`_fallback`), after maxiter the last;
* ``maxiter`` iterations, a stagnation window (the best residual did not improve by 1% over
  ``max(stagnation_window, k // 2)`` iterations at iteration k, and the A-norm error did not
  fall by 0.1% of its fall so far there, or fell 10x faster in the window's second half than
  in its first: see ``_Monitor._energy_stalled``), a non-positive curvature
  ``p^T A p <= 0`` (A or the preconditioner is not SPD; ``STAGNATED`` where it is rounding
  noise, ``|p^T A p| <= 1e3 eps ||p|| ||A p||`` or, A's diagonal known, ``<= 1e3 eps max_i
  |A_ii| ||p||^2``) and non-finite numbers each end the iteration with their own
  :class:`Status`, never with a silently wrong answer; the window, ``p^T A p <= 0`` and PCG's
  ``r^T M r <= 0`` only where the true residual is not over 2x the updated one, else they are a
  residual replacement point too (see :func:`_restart`).

Inner products and norms are accumulated in ``dot_dtype`` (float64 by default) even when the
vectors are float32, and so is every true residual ``b - A x`` (x, b and A's entries cast to
float64, see :meth:`LinearOperator.apply64`): computed in float32 it was off by up to 20% near
float32's rounding floor, enough to call a residual above rtol converged.

Methods are objects: ``CG()``, ``PCG(Jacobi())``, ``PCG(AMG())``,
``FlexibleCG(preconditioner, k=...)``; run them through :func:`sciml.linalg.solve`.

This file holds the methods and :func:`run`; the stopping rule above is in ``_stopping.py``
(``_fallback``, ``_restart``, ...), the problem a method iterates on and the float64 dot
products in ``_problem.py``, the preconditioners in ``preconditioners.py``, the result record
in ``result.py``. Every name this module exported before that split it still exports.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from .._scalars import is_int
from ._operator import LinearOperator
from ._problem import _dot, _norm, _Problem
from ._stopping import (
    _BREAKDOWNS,
    _confirm,
    _curvature_stop,
    _fallback,
    _Monitor,
    _preconditioner_breakdown,
    _restart,
    _step_status,
    _vanished,
    _wider,
)
from .deflation import Deflation
from .poisson import Poisson
from .preconditioners import AMG, Jacobi, Preconditioner, SymmetricGaussSeidel
from .result import SolveResult, Status

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

    def __post_init__(self) -> None:
        _check_fields(self)

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

    def __post_init__(self) -> None:
        _check_fields(self)

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
                status, replaced = _step_status(p, x, r, dt, alpha * rz)
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
        object.__setattr__(self, "k", _check_k(self.k))
        _check_fields(self)

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
            if (kept or D is not None) and _norm(d, dt) <= _vanish_level(d.dtype) * _norm(z, dt):
                # (why) a direction wholly in the span of the kept ones or the coarse space
                # leaves rounding, not 0 (measured, M(r) a constant on an 8x8 grid with one
                # aggregate: ||d|| / ||M(r)|| = 1e-7 in float32, which ended "p.Ap = 0 ... is
                # rounding noise ... use float64", and 1e-12 in float64, the shift of Z^T A Z,
                # which took a step along it and then blamed "the last 1 directions")
                d, Ad = torch.zeros_like(d), torch.zeros_like(Ad)
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
                dr = _dot(d, r, dt)
                alpha = dr / dAd
                x = x + alpha * d
                r = r - alpha * Ad
                kept.append((d, Ad, dAd))
                if p.keep_iterates:
                    iterates.append(x.clone())
                status, replaced = _step_status(p, x, r, dt, alpha * dr)
            if replaced is not None:
                r = replaced
                if D is not None:
                    # (why) the true residual has a coarse part (rounding), which the deflated
                    # directions cannot reduce: correct it as at the start (one coarse solve,
                    # one matvec; measured, float32 64^2 Neumann at rtol 1e-7: a true residual
                    # of 9.4e-7 in 95 iterations, was 6.5e-6 in 163)
                    x, r = D.start(x, r)
        return x, status, iterates


def _vanish_level(dtype: torch.dtype) -> float:
    """``||p|| / ||M(r)||`` at or below which the direction ``p`` left of ``M(r)`` after the
    A-orthogonalisation (and deflation) is rounding: 16 eps of the vectors' dtype, and at least
    1e-10, above the 1e-12 by which the shifted coarse matrix of a deflation leaves a coarse
    direction (directions of DCDM's shipped network and of Jacobi keep 0.6 or more of it)."""
    return max(16 * float(torch.finfo(dtype).eps), 1e-10)


def _check_fields(method: Method) -> None:
    """A TypeError naming the first of ``method``'s fields ``preconditioner``, ``dot_dtype``
    and ``deflation`` (those it has) that is not what the solve needs.

    (why) they failed only in the solve, with messages that named none of them: PCG(Jacobi)
    "Jacobi.setup() missing 1 required positional argument: 'A'", FlexibleCG(3) (meant: k=3)
    "'int' object has no attribute 'setup'", CG('float32') "Invalid device string: 'float32'"
    """
    M = getattr(method, "preconditioner", None)
    if M is not None and (isinstance(M, type) or not callable(getattr(M, "setup", None))):
        got = f"the class {M.__name__}" if isinstance(M, type) else f"{M!r} ({type(M).__name__})"
        hint = f": build one, {M.__name__}()" if isinstance(M, type) else ""
        if type(M) is int and isinstance(method, FlexibleCG):
            hint = f": the directions kept are k=, FlexibleCG(k={M})"
        raise TypeError(
            "preconditioner: expected a Preconditioner such as Jacobi() or AMG() (an object "
            f"with a setup(A) method), or None, got {got}{hint}"
        )
    dt = getattr(method, "dot_dtype", torch.float64)
    if not isinstance(dt, torch.dtype) or not dt.is_floating_point:
        raise TypeError(
            f"dot_dtype: expected a torch floating dtype such as torch.float64, got {dt!r}"
        )
    deflation = getattr(method, "deflation", None)
    if deflation is not None and not isinstance(deflation, Deflation):
        raise TypeError(
            f"deflation: expected a Deflation such as Deflation(8), or None, got {deflation!r} "
            f"({type(deflation).__name__})"
        )


def _check_k(k: Any) -> int:
    """``k``, the directions kept, as an int >= 1 (FlexibleCG's and DCDM's).

    (why) k=2.5 failed mid-solve in the deque ('an integer is required'), k=True ran as 1; a
    numpy int is taken, as a Python int (the deque refuses one too)
    """
    if not is_int(k):
        raise TypeError(f"k (directions kept): expected an int >= 1, got {k!r}")
    if k < 1:
        raise ValueError(f"k (directions kept) must be >= 1, got {k}")
    return int(k)


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
    """Run ``method`` on a checked problem (see :func:`sciml.linalg.solve`); ``b64``: b in
    float64, when ``b`` is its rounding to A's dtype (the true residuals are measured against
    it): as given to ``solve`` for a nonsingular A, less its null-space part ``Z^T Z b`` for a
    singular one."""
    dt = getattr(method, "dot_dtype", torch.float64)
    bnorm = _norm(b if b64 is None or dt != torch.float64 else b64, dt)
    t0 = time.perf_counter()
    if bnorm == 0.0:
        x = torch.zeros_like(b)
        if callback is not None:  # (why) k = 0 .. iterations: it was never called for b = 0
            callback(0, 0.0)
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
            f"{true:.3e}: rounding errors dominate (use {_wider(x.dtype)}a looser rtol)"
        )
    last = mon.residuals[-1]
    if status in (Status.STAGNATED, Status.MAXITER) and not mon.explained and true > 2 * last:
        # (why) the window's message quotes updated residuals; where rounding has carried them
        # below the true one (float32, deflation: 1.2e-7 updated against 2.0e-6 true), a
        # plateau is the precision's floor, not an inconsistent b or a badly scaled A
        message += (
            f"; the true relative residual ||b - A x|| / ||b|| is {true:.3e}, above the "
            f"updated one ({last:.3e}): rounding in {str(x.dtype).removeprefix('torch.')} "
            f"limits this solve (use {_wider(x.dtype)}an rtol >= {true:.1e})"
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
