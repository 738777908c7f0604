"""Fit the constants of a symbolic ODE system to an observed trajectory (system identification).

Given right-hand sides ``f(u)`` as sympy expressions (decoded by PROSE, or written by hand) and
a noisy trajectory ``u(t_i)``, :func:`fit_system` treats every floating-point constant of the
expressions (each occurrence on its own, as the skeleton's ``<C>`` placeholders are) and the
initial state as unknowns, starting from their given values, and minimises the squared misfit
of the integrated trajectory (:func:`scipy.optimize.least_squares`, trust region, finite-difference
Jacobian). Integer coefficients and exponents stay fixed, so the fit keeps the system's
structure. :meth:`ParametricSystem.solve` then forecasts from the fitted state.

A short window seldom pins down every constant of a chaotic system on its own: with one free
constant per occurrence, several combinations fit the window to the noise and forecast apart.
``prior=sigma`` adds a Gaussian prior centred on the given constants with relative standard
deviation ``sigma`` (a maximum a posteriori fit: data residuals are divided by the noise level,
constant ``c_j`` contributes ``(c_j - c0_j) / (sigma |c0_j|)``). The noise level is
:func:`estimate_noise` of the observations unless given. :attr:`FitResult.misfit` is the fit's
root-mean-square residual in units of that noise level: about 1 for a fit down to the noise,
much larger for wrong equations or a fit stuck in a wrong basin.

Trajectories come from SciPy's LSODA (stiff-capable); a solve that fails, leaves ``|u| <= 1e4``
or needs more than ``max_evals`` evaluations of ``f`` returns None (a trial constant can make a
system stiff or blow up; the search treats that as a bad trial). Needs scipy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import sympy as sp

from .._scalars import is_int, is_real
from .prefix import Decoded, state_symbols

__all__ = ["FitResult", "ParametricSystem", "estimate_noise", "fit_system", "free_constants"]

_NOISE_ORDER = 6  # estimate_noise's default: needs at least _NOISE_ORDER + 2 times


def estimate_noise(observed: np.ndarray, order: int = _NOISE_ORDER) -> float:
    """Standard deviation of white noise on uniformly sampled observations ``(T, d)``.

    The ``order``-th differences of independent noise of standard deviation ``s`` have standard
    deviation ``s sqrt(C(2 order, order))``, while those of a smooth signal shrink like
    ``dt^order``; the estimate is the median absolute difference (scaled to a standard deviation
    for Gaussian noise, 1.4826) over all components, so a few sharp turns of the signal do not
    inflate it. Assumes one noise level for every component. On the ``prose-ode`` development
    set (300 samples, 64 points each) its ratio to the true noise level had median 1.01, 90th
    percentile 1.20 and maximum 3.3; a Savitzky-Golay residual estimate (window 9, cubic) had
    90th percentile 2.5 and maximum 44 (fast systems: Chen-Lee, Lorenz).
    """
    from math import comb

    if not is_int(order) or order < 1:
        # (why) order 0 returned the median |value| itself, True ran as order 1, 2.5 and -1
        # failed inside np.diff
        raise ValueError(f"expected order to be an int >= 1, got {order!r}")
    observed = np.asarray(observed, dtype=np.float64)
    if observed.ndim == 1:
        observed = observed[:, None]
    if observed.ndim != 2 or observed.shape[0] < order + 2:
        raise ValueError(
            f"expected observations of shape (T, d) with T >= {order + 2}, got {observed.shape}"
        )
    diffs = np.diff(observed, order, axis=0) / np.sqrt(comb(2 * order, order))
    return float(1.4826 * np.median(np.abs(diffs)))


def free_constants(exprs: list[sp.Expr]) -> tuple[list[sp.Expr], list[sp.Symbol], np.ndarray]:
    """Replace each floating-point constant of ``exprs`` (each occurrence) by its own symbol.

    Returns ``(rewritten expressions, symbols c0, c1, ..., their values)``; substituting the
    values back gives the original expressions. A whole-number float exponent of ``Abs``
    (``Abs(u)**1.0``, how :func:`~sciml.symbolic.decode` writes ``|u|``; ``**-1.0`` and
    ``**3.0`` of its ``inv`` / ``pow3``) stays fixed, as :func:`~sciml.symbolic.encode` reads it.
    """
    symbols: list[sp.Symbol] = []
    values: list[float] = []

    def walk(e: sp.Expr) -> sp.Expr:
        if isinstance(e, sp.Float):
            symbols.append(sp.Symbol(f"c{len(symbols)}"))
            values.append(float(e))
            return symbols[-1]
        if not e.args:
            return e
        base, exp = e.args if e.is_Pow else (None, None)
        if isinstance(base, sp.Abs) and exp.is_Float and float(exp).is_integer():
            # (why) the 1.0 of Abs(u)**1.0 is an artefact of |u| = (u^2)^0.5, not a constant
            # of the system: fitted, it drifted (to 0.9999999 on a |u| drag) and cost a solve
            return sp.Pow(walk(base), exp)
        return e.func(*[walk(a) for a in e.args])

    return [walk(sp.sympify(e)) for e in exprs], symbols, np.asarray(values, dtype=np.float64)


class _TooCostly(Exception):
    pass


class ParametricSystem:
    """``du/dt = f(u; c)`` for the expressions ``exprs`` in the state symbols ``u_0 ... u_{d-1}``
    (:func:`sciml.symbolic.state_symbols`) and the constants ``coeffs``; ``solve`` integrates it."""

    def __init__(
        self,
        exprs: list[sp.Expr],
        coeffs: list[sp.Symbol],
        dim: int,
        *,
        rtol: float = 1e-8,
        atol: float = 1e-8,
        max_evals: int = 50_000,
    ) -> None:
        if len(exprs) != dim:
            raise ValueError(f"expected {dim} right-hand sides, got {len(exprs)}")
        known = {s.name for s in state_symbols(dim)} | {c.name for c in coeffs}
        for f in exprs:
            unknown = sorted(s.name for s in sp.sympify(f).free_symbols if s.name not in known)
            if unknown:
                # (why) lambdify left them as free names: every solve raised NameError, out of
                # fit_system ('u_3' in a 2-d system, a skeleton's 'C_0')
                raise ValueError(
                    f"expected right-hand sides in u_0 ... u_{dim - 1} and the constants, got "
                    f"symbols {unknown} in {f}; substitute values for them first"
                )
        self.dim, self.rtol, self.atol, self.max_evals = dim, rtol, atol, max_evals
        self._fn = sp.lambdify([state_symbols(dim), list(coeffs)], list(exprs), modules="numpy")

    def solve(self, c: np.ndarray, u0: np.ndarray, t: np.ndarray) -> np.ndarray | None:
        """``u(t)`` ``(len(t), dim)`` from ``u(t[0]) = u0`` with constants ``c``, or None."""
        from scipy.integrate import solve_ivp

        count, ones = [0], np.ones(self.dim)

        def rhs(_t: float, y: np.ndarray) -> np.ndarray:
            count[0] += 1
            if count[0] > self.max_evals:
                raise _TooCostly
            return np.array(self._fn(y, c), dtype=np.float64) * ones

        with np.errstate(all="ignore"):
            try:
                sol = solve_ivp(
                    rhs, (t[0], t[-1]), np.asarray(u0, np.float64), "LSODA", t,
                    rtol=self.rtol, atol=self.atol,
                )  # fmt: skip
            except (ValueError, ArithmeticError, TypeError, _TooCostly):
                return None
        if sol.status != 0 or sol.y.shape[1] != len(t) or not np.all(np.isfinite(sol.y)):
            return None
        if np.max(np.abs(sol.y)) > 1e4:
            return None
        return sol.y.T


@dataclass(frozen=True)
class FitResult:
    """What :func:`fit_system` found.

    Attributes:
        ok: the fitted system integrates over the observed times.
        expressions: the right-hand sides with the fitted constants.
        u0: the fitted initial state.
        constants: the fitted constants, in the order of :func:`free_constants`.
        rms: root-mean-square misfit of the fitted trajectory on the observed times.
        system: the :class:`ParametricSystem` (``system.solve(constants, u0, t)`` forecasts).
        noise: the noise level the residuals were measured against (given or estimated).
    """

    ok: bool
    expressions: tuple[sp.Expr, ...]
    u0: np.ndarray
    constants: np.ndarray
    rms: float
    system: ParametricSystem
    noise: float

    @property
    def misfit(self) -> float:
        """``rms / noise``: about 1 when the fit reaches the noise level (``inf`` if not ok, nan
        when the noise level is unknown)."""
        return self.rms / self.noise


def fit_system(
    exprs: list[sp.Expr] | Decoded,
    t: np.ndarray,
    observed: np.ndarray,
    *,
    u0: np.ndarray | None = None,
    fit_constants: bool = True,
    prior: float | None = None,
    noise: float | None = None,
    max_iterations: int = 50,
    max_evals: int = 50_000,
    stages: int = 1,
) -> FitResult:
    """Fit the constants of ``exprs`` (unless ``fit_constants=False``) and the initial state to
    ``observed`` ``(len(t), d)`` at the times ``t``, by least squares of the integrated trajectory.

    ``exprs`` may be a valid :class:`~sciml.symbolic.Decoded` (its expressions; an invalid one
    raises with its error). ``u0`` is the starting guess of the initial state (default:
    ``observed[0]``); the constants start at their values in ``exprs``. ``prior`` (relative
    standard deviation, e.g. 0.1) pulls the constants towards those values (module docstring);
    ``noise`` is the observations' noise standard deviation (default :func:`estimate_noise`,
    floored at ``1e-9`` of their RMS; with fewer than 8 times and no prior it stays unknown:
    ``FitResult.noise`` and ``misfit`` are nan).
    ``max_iterations`` bounds the trust-region iterations (each costs ``1 + #unknowns``
    solves), ``max_evals`` the evaluations of ``f`` per solve. Never raises for a system that
    cannot be integrated: the result has ``ok=False``. Raises ``ValueError`` for bad input: ``t``
    not 1-d, not finite or not strictly monotonic, ``observed`` not finite or not ``(len(t), d)``,
    ``u0`` not finite ``(d,)``, counts that are not ints >= 1, ``prior`` / ``noise`` not finite > 0.
    """
    if isinstance(exprs, Decoded):
        # (why) fit_system(decode(tokens), ...) raised "'Decoded' object is not iterable"
        if not exprs.valid:
            raise ValueError(f"cannot fit an invalid system: {exprs.error}")
        exprs = list(exprs.expressions)
    observed = np.asarray(observed, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 1:
        raise ValueError(f"expected t of shape (T,), got {t.shape}")
    if observed.ndim != 2 or observed.shape[0] != len(t) or len(t) < 2:
        raise ValueError(
            f"expected observed of shape (len(t), dim) with len(t) >= 2, got {observed.shape} "
            f"for {len(t)} times"
        )
    # (why) a NaN reached scipy's "Residuals are not finite in the initial point", and unsorted
    # or repeated times made every solve fail, returned as ok=False with the start's constants
    for name, a in (("t", t), ("observed", observed)):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"expected finite {name}, got {np.sum(~np.isfinite(a))} NaN/inf")
    steps = np.diff(t)
    if not (np.all(steps > 0) or np.all(steps < 0)):
        raise ValueError(f"expected strictly increasing (or decreasing) times t, got {t}")
    if u0 is not None:
        u0 = np.asarray(u0, dtype=np.float64)
        if u0.shape != observed.shape[1:] or not np.all(np.isfinite(u0)):
            raise ValueError(
                f"expected a finite u0 of shape ({observed.shape[1]},) (one value per state "
                f"variable), got {u0.tolist()}"
            )
    for name, value in (
        ("stages", stages),
        ("max_iterations", max_iterations),
        ("max_evals", max_evals),
    ):
        if not is_int(value) or value < 1:
            raise ValueError(f"expected {name} >= 1 (an int), got {value!r}")
    if prior is not None and not (is_real(prior) and 0 < prior < math.inf):
        raise ValueError(
            f"expected prior > 0 (a relative standard deviation, finite) or None, got {prior!r}"
        )
    if noise is not None and not (is_real(noise) and 0 < noise < math.inf):
        raise ValueError(f"expected noise > 0 (finite) or None, got {noise!r}")
    if noise is None and len(t) >= _NOISE_ORDER + 2:
        floor = 1e-9 * float(np.sqrt(np.mean(observed**2))) + 1e-300
        noise = max(estimate_noise(observed), floor)
    if noise is None and prior is not None:
        raise ValueError(
            f"a prior needs the noise level: pass noise= (it is estimated from >= "
            f"{_NOISE_ORDER + 2} observed times, got {len(t)})"
        )
    # too few points to estimate it and no prior: plain least squares, misfit unknown (nan)
    unit = 1.0 if noise is None else noise
    noise = float("nan") if noise is None else noise
    from scipy.optimize import least_squares

    dim = observed.shape[1]
    rewritten, coeffs, c0 = free_constants(list(exprs))
    system = ParametricSystem(rewritten, coeffs, dim, max_evals=max_evals)
    nc = len(c0) if fit_constants else 0
    guess = observed[0] if u0 is None else u0
    bad = np.full(observed.size, 1e3 / unit)
    use_prior = prior is not None and nc > 0
    prior_scale = prior * np.maximum(np.abs(c0[:nc]), 1e-3) if use_prior else None

    def split(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (z[:nc] if fit_constants else c0), z[nc:]

    z = np.concatenate([c0[:nc], guess])
    if system.solve(*split(z), t) is None:  # no usable start: nothing to search from
        return FitResult(False, tuple(exprs), guess, c0, float("inf"), system, noise)

    def residual(z: np.ndarray, m: int) -> np.ndarray:
        sol = system.solve(*split(z), t[:m])
        r = bad[: m * dim] if sol is None else (sol - observed[:m]).ravel() / unit
        return np.concatenate([r, (z[:nc] - c0[:nc]) / prior_scale]) if use_prior else r

    # (why) over a long window the misfit of a chaotic system has many local minima; fitting
    # a growing prefix of the window (stages > 1) walks the start into the right basin
    for stage in range(1, stages + 1):
        m = max(2, round(len(t) * stage / stages))
        fit = least_squares(
            residual, z, method="trf", x_scale="jac", max_nfev=max_iterations, args=(m,)
        )
        z = fit.x
    c, u = split(z)
    sol = system.solve(c, u, t)
    ok = sol is not None
    rms = float(np.sqrt(np.mean((sol - observed) ** 2))) if ok else float("inf")
    fitted = tuple(e.xreplace(dict(zip(coeffs, map(sp.Float, c)))) for e in rewritten)
    return FitResult(ok, fitted, u, np.asarray(c), rms, system, noise)
