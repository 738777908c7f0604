"""Darcy flow on the unit square, solved by finite differences.

PDE::

    -div(a(x) grad u(x)) = f(x),   x in (0, 1)^2,     u = 0 on the boundary.

Discretisation: the grid has ``R`` nodes per axis *including* the boundary, ``x_i = i h``,
``h = 1 / (R - 1)`` (the FNO layout: 421 nodes, subsampled by 5 to 85 or by 3 to 141). At every
interior node the 5-point flux form

    -[a_{i+1/2,j}(u_{i+1,j} - u_{ij}) - a_{i-1/2,j}(u_{ij} - u_{i-1,j})
      + a_{i,j+1/2}(u_{i,j+1} - u_{ij}) - a_{i,j-1/2}(u_{ij} - u_{i,j-1})] / h^2 = f_{ij}

is imposed, with face values ``a_{i+1/2,j}`` the **harmonic** mean of the two nodal values by
default (exact flux continuity for a coefficient that jumps between nodes; second order for smooth
``a``) or the arithmetic mean, the FNO MATLAB solver's choice (``solve_gwf.m``, which first
spline-interpolates its cell-centred coefficient to the nodes). The ``(R-2)^2`` unknowns form a
sparse SPD system that is solved by SciPy's sparse direct solver
(``scipy.sparse.linalg.spsolve``, SuperLU).

Coefficients (FNO paper): a GRF ``g ~ N(0, 9 (-Laplacian + 9 I)^-2)`` (``alpha = 2, tau = 3`` and
the MATLAB script's factor ``tau^(2 alpha - 2) = 9``) and either the piecewise-constant threshold
``a = 12`` where ``g >= 0`` and ``3`` otherwise, or the log-normal ``a = exp(g)``. The Laplacian is
periodic on ``[0, 2)^2`` (restricted to the unit square) where the FNO script's is the Neumann
one on ``[0, 1]^2``: the same operator with other boundary conditions, so the laws differ:
``Var g`` is 0.0546 on every node here, and 0.026 (centre) to 0.22 (corners), 0.085 on average,
in the script's field (see ``docs/generators.md``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np

from ..._scalars import is_real
from .grf import _numpy_grf_chunks

__all__ = ["solve_darcy", "sample_darcy_coefficient", "generate_darcy"]

FaceAverage = Literal["harmonic", "arithmetic"]


def _scipy() -> tuple[Any, Any]:
    try:
        import scipy.sparse as sp
        import scipy.sparse.linalg as spla
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the Darcy solver needs SciPy's sparse direct solver (a dependency of sciml, "
            "missing or broken here): pip install scipy"
        ) from err
    return sp, spla


def _face(a0: np.ndarray, a1: np.ndarray, face_average: FaceAverage) -> np.ndarray:
    if face_average == "harmonic":
        return 2.0 * a0 * a1 / (a0 + a1)
    if face_average == "arithmetic":
        return 0.5 * (a0 + a1)
    raise ValueError(f"expected face_average 'harmonic' or 'arithmetic', got {face_average!r}")


def _solve_one(a: np.ndarray, f: np.ndarray, face_average: FaceAverage) -> np.ndarray:
    sp, spla = _scipy()
    r = a.shape[0]
    m = r - 2  # interior nodes per axis
    h2 = 1.0 / (r - 1) ** 2
    ax = _face(a[:-1, :], a[1:, :], face_average)  # (r-1, r): faces between x-neighbours
    ay = _face(a[:, :-1], a[:, 1:], face_average)  # (r, r-1): faces between y-neighbours
    west, east = ax[:-1, 1:-1], ax[1:, 1:-1]  # (m, m): faces i-1/2 and i+1/2 of interior nodes
    south, north = ay[1:-1, :-1], ay[1:-1, 1:]
    diag = (west + east + south + north).ravel()
    idx = np.arange(m * m).reshape(m, m)
    rows = [idx.ravel()]
    cols = [idx.ravel()]
    vals = [diag]
    # Couplings to interior neighbours only; boundary neighbours carry u = 0.
    for coef, (di, dj) in ((west, (-1, 0)), (east, (1, 0)), (south, (0, -1)), (north, (0, 1))):
        i0, i1 = max(0, -di), m - max(0, di)
        j0, j1 = max(0, -dj), m - max(0, dj)
        rows.append(idx[i0:i1, j0:j1].ravel())
        cols.append(idx[i0 + di : i1 + di, j0 + dj : j1 + dj].ravel())
        vals.append(-coef[i0:i1, j0:j1].ravel())
    mat = sp.csc_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(m * m, m * m)
    )
    u = np.zeros_like(a)
    u[1:-1, 1:-1] = spla.spsolve(mat, f[1:-1, 1:-1].ravel() * h2).reshape(m, m)
    return u


def solve_darcy(
    a: np.ndarray, f: float | np.ndarray = 1.0, *, face_average: FaceAverage = "harmonic"
) -> np.ndarray:
    """Solve ``-div(a grad u) = f`` on the unit square with ``u = 0`` on the boundary.

    Args:
        a: positive nodal coefficient, shape ``(R, R)`` or ``(n, R, R)``, on the grid
            ``x_i = i / (R - 1)`` that includes the boundary nodes.
        f: right-hand side, a scalar or an array of shape ``(R, R)`` (shared) or ``(n, R, R)``.
        face_average: ``"harmonic"`` (default) or ``"arithmetic"`` mean of ``a`` on cell faces.

    Returns:
        ``u`` with the shape of ``a``, zero on the boundary nodes (float64).
    """
    a = np.asarray(a, dtype=np.float64)
    batched = a.ndim == 3
    if a.ndim not in (2, 3) or a.shape[-1] != a.shape[-2] or a.shape[-1] < 3:
        raise ValueError(f"expected a of shape (R, R) or (n, R, R) with R >= 3, got {a.shape}")
    if np.any(a <= 0) or not np.all(np.isfinite(a)):
        raise ValueError("expected a strictly positive, finite coefficient a")
    a3 = a if batched else a[None]
    f = np.asarray(f, dtype=np.float64)
    # (why) a mismatched f reached numpy's 'operands could not be broadcast together with
    # remapped shapes', and a NaN or inf in f came back as an all-NaN solution without a word
    if f.shape not in ((), a.shape[-2:], a3.shape) or not np.all(np.isfinite(f)):
        raise ValueError(
            f"expected a finite f: a scalar or of shape {a.shape[-2:]} or {a3.shape}, got "
            f"shape {f.shape}" + ("" if np.all(np.isfinite(f)) else " with non-finite values")
        )
    f3 = np.broadcast_to(f, a3.shape)
    u = np.stack([_solve_one(ai, fi, face_average) for ai, fi in zip(a3, f3)])
    return u if batched else u[0]


def sample_darcy_coefficient(
    n: int,
    resolution: int,
    *,
    coefficient: Literal["piecewise_constant", "lognormal"] = "piecewise_constant",
    alpha: float = 2.0,
    tau: float = 3.0,
    sigma: float | None = None,
    a_high: float = 12.0,
    a_low: float = 3.0,
    seed: int | None = 0,
) -> np.ndarray:
    """Random Darcy coefficients of shape ``(n, R, R)`` on the node grid of :func:`solve_darcy`.

    The GRF ``N(0, sigma^2 (-Laplacian + tau^2 I)^-alpha)`` is sampled on the periodic box
    ``[0, 2)^2`` and restricted to ``[0, 1]^2`` so that the coefficient is not artificially
    periodic across the unit square. With the defaults ``Var log a = 0.0546`` on every node
    (:func:`~sciml.data.generators.grf_variance` of that box); ``sigma=3.75`` matches the FNO
    MATLAB field's variance averaged over the square.
    """
    (a,) = _coefficient_chunks(  # one chunk: all n samples
        n, resolution, chunk=n, coefficient=coefficient, alpha=alpha, tau=tau, sigma=sigma,
        a_high=a_high, a_low=a_low, seed=seed,
    )  # fmt: skip
    return a


# samples drawn and solved at a time: the R = 421 grid's draw (on the 840^2 box) and solve take
# tens of MB per sample, and the whole set at once took 22 GB for 1000 samples
_CHUNK = 8


def _coefficient_chunks(
    n: int,
    resolution: int,
    *,
    chunk: int,
    coefficient: str,
    alpha: float,
    tau: float,
    sigma: float | None,
    a_high: float,
    a_low: float,
    seed: int | None,
) -> Iterator[np.ndarray]:
    """:func:`sample_darcy_coefficient`'s ``(n, R, R)`` coefficients, ``chunk`` samples at a time
    (the same numbers in every chunking)."""
    if n < 1:  # (no chunk at all: sample_darcy_coefficient unpacks exactly one)
        raise ValueError(f"expected n >= 1 samples, got {n}")
    if resolution < 2:  # the GRF box 2 (R - 1) needs 2 points at least
        raise ValueError(f"expected resolution >= 2 nodes per axis, got {resolution}")
    if coefficient not in ("piecewise_constant", "lognormal"):
        raise ValueError(
            f"expected coefficient 'piecewise_constant' or 'lognormal', got {coefficient!r}"
        )
    # (why) sample_darcy_coefficient returned a_low = -3 where g < 0 without a word, and
    # generate_darcy drew it and then failed naming neither option ("expected a strictly
    # positive, finite coefficient a")
    levels = (a_high, a_low)
    if coefficient == "piecewise_constant" and not all(
        is_real(v) and math.isfinite(v) and v > 0 for v in levels
    ):
        raise ValueError(
            f"expected finite a_high > 0 and a_low > 0 (the piecewise-constant coefficient's "
            f"values), got a_high={a_high}, a_low={a_low}"
        )
    for g in _numpy_grf_chunks(
        n, 2 * (resolution - 1), chunk=chunk, dim=2, alpha=alpha, tau=tau, sigma=sigma,
        length=2.0, seed=seed,
    ):  # fmt: skip
        g = g[:, :resolution, :resolution]
        yield (
            np.where(g >= 0.0, a_high, a_low) if coefficient == "piecewise_constant" else np.exp(g)
        )


def generate_darcy(
    n: int,
    resolution: int,
    *,
    seed: int = 0,
    coefficient: Literal["piecewise_constant", "lognormal"] = "piecewise_constant",
    alpha: float = 2.0,
    tau: float = 3.0,
    sigma: float | None = None,
    a_high: float = 12.0,
    a_low: float = 3.0,
    f: float = 1.0,
    face_average: FaceAverage = "harmonic",
    subsample: int = 1,
) -> dict[str, Any]:
    """Darcy data set: ``n`` coefficients ``a`` and solutions ``u`` on an ``R x R`` node grid.

    ``resolution`` is the solver grid ``R`` (nodes including the boundary); the stored grid keeps
    every ``subsample``-th node, so ``(R - 1)`` should be divisible by ``subsample``
    (``R = 421, subsample = 5`` gives the FNO 85-grid). Small default: ``n = 4, R = 33``.

    Returns the keyword arguments of :func:`sciml.data.write`: static fields ``a`` and ``u`` of
    shape ``(n, R', R')`` (float32), coordinates ``x, y``, Dirichlet boundary conditions.
    """
    if resolution < 3:
        raise ValueError(f"expected resolution >= 3 for the Darcy grid, got {resolution}")
    if subsample < 1 or (resolution - 1) % subsample:
        raise ValueError(
            f"expected subsample >= 1 dividing resolution - 1 = {resolution - 1}, got {subsample}"
        )
    s = slice(None, None, subsample)
    kept = len(range(0, resolution, subsample))  # nodes per axis stored
    # subsampled into place as they come: the solver grid is never held whole, and the stored
    # fields only once (a list of chunks and its concatenation held them twice: 3.4 GB, not
    # 1.7, for the 1200-sample 421-grid recipe); n < 1 is refused by the first chunk
    a_out = np.empty((max(n, 0), kept, kept), dtype=np.float32)
    u_out = np.empty_like(a_out)
    start = 0
    for a in _coefficient_chunks(
        n, resolution, chunk=_CHUNK, coefficient=coefficient, alpha=alpha, tau=tau, sigma=sigma,
        a_high=a_high, a_low=a_low, seed=seed,
    ):  # fmt: skip
        u = solve_darcy(a, f, face_average=face_average)
        a_out[start : start + len(a)] = a[:, s, s]  # float64 -> float32, as astype rounds
        u_out[start : start + len(a)] = u[:, s, s]
        start += len(a)
    grid = np.linspace(0.0, 1.0, resolution)[s]
    return {
        "static_fields": {"a": a_out, "u": u_out},
        "coords": {"x": grid, "y": grid},
        "boundary_conditions": {"x": "dirichlet", "y": "dirichlet"},
        "attrs": {"pde": "darcy_2d", "units": {"a": "dimensionless", "u": "dimensionless"}},
    }
