"""Diffusion-reaction with a source (the PDE example of the DeepONet paper, Lu et al. 2021):

    s_t = D s_xx + k s^2 + u(x),   x in [0, 1],  t in [0, 1],
    s(x, 0) = 0,   s(0, t) = s(1, t) = 0,          D = k = 0.01,

with ``u`` a Gaussian random field with the RBF kernel (length scale ``l``) on ``[0, 1]``.

Finite differences: second-order central differences in ``x`` on ``resolution`` points, and
Crank-Nicolson in time for the whole right-hand side (diffusion, reaction and source),

    (s^{n+1} - s^n) / dt = 1/2 [D L s^{n+1} + k (s^{n+1})^2 + D L s^n + k (s^n)^2] + u,

a nonlinear tridiagonal system per step solved by Newton's method (Jacobian
``I - dt/2 (D L + 2 k diag(s^{n+1}))``, the Thomas algorithm vectorised over samples) to a
tolerance of ``1e-13``. The scheme is second order in ``x`` and ``t``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..._scalars import is_int, is_real
from .antiderivative import sample_rbf_grf

__all__ = ["solve_diffusion_reaction", "generate_diffusion_reaction"]


def _thomas(lower: float, diag: np.ndarray, upper: float, rhs: np.ndarray) -> np.ndarray:
    """Solve tridiagonal systems with constant off-diagonals, batched: ``diag``, ``rhs`` ``(n, m)``."""
    m = diag.shape[1]
    c = np.empty_like(diag)
    d = np.empty_like(rhs)
    c[:, 0] = upper / diag[:, 0]
    d[:, 0] = rhs[:, 0] / diag[:, 0]
    for i in range(1, m):
        denom = diag[:, i] - lower * c[:, i - 1]
        c[:, i] = upper / denom
        d[:, i] = (rhs[:, i] - lower * d[:, i - 1]) / denom
    x = np.empty_like(rhs)
    x[:, -1] = d[:, -1]
    for i in range(m - 2, -1, -1):
        x[:, i] = d[:, i] - c[:, i] * x[:, i + 1]
    return x


def solve_diffusion_reaction(
    u: np.ndarray,
    *,
    time_points: int,
    substeps: int = 1,
    diffusion: float = 0.01,
    reaction: float = 0.01,
    t_final: float = 1.0,
) -> np.ndarray:
    """Crank-Nicolson / central-difference solution of the diffusion-reaction problem.

    Args:
        u: ``(n, nx)`` the source at the grid ``x_i = i / (nx - 1)`` (endpoints included; the
            boundary values of ``s`` are zero whatever ``u`` is there).
        time_points: number of output times ``t_j = j t_final / (time_points - 1)``.
        substeps: Crank-Nicolson steps per output interval.

    Returns:
        ``(n, time_points, nx)`` float64, ``s`` at the output times (``s[:, 0] = 0``).
    """
    u = np.asarray(u, dtype=np.float64)
    # (why) n = 0 failed in Newton's stopping test on 'zero-size array to reduction operation
    # maximum which has no identity'
    if u.ndim != 2 or u.shape[0] < 1 or u.shape[1] < 3:
        raise ValueError(f"expected u of shape (n >= 1, nx >= 3), got {u.shape}")
    if not (is_int(time_points) and time_points >= 2 and is_int(substeps) and substeps >= 1):
        raise ValueError(
            f"expected integers time_points >= 2 and substeps >= 1, got {time_points}, {substeps}"
        )
    # (why) t_final < 0 was solved backward in time without a word (s(1) = -0.1 for u = 1 and
    # t_final = -0.1), and NaN / inf values or a negative diffusion (an ill-posed backward heat
    # equation) were reported as "Newton's method did not converge; reduce the time step"
    scalars = {"diffusion": diffusion, "reaction": reaction, "t_final": t_final}
    if not all(is_real(v) and math.isfinite(v) for v in scalars.values()) or not (
        diffusion >= 0 and t_final > 0
    ):
        raise ValueError(
            "expected finite diffusion >= 0, reaction and t_final > 0, got "
            + ", ".join(f"{k}={v}" for k, v in scalars.items())
        )
    if not np.all(np.isfinite(u)):
        raise ValueError("expected a finite source u, got NaN or inf values")
    n, nx = u.shape
    h = 1.0 / (nx - 1)
    dt = t_final / ((time_points - 1) * substeps)
    a = diffusion / h**2

    def lap(v: np.ndarray) -> np.ndarray:  # interior Laplacian with zero boundary values
        padded = np.pad(v, ((0, 0), (1, 1)))
        return a * (padded[:, 2:] - 2 * v + padded[:, :-2])

    src = u[:, 1:-1]
    s = np.zeros((n, nx - 2))
    out = np.zeros((n, time_points, nx))
    for j in range(1, time_points):
        for _ in range(substeps):
            explicit = s + 0.5 * dt * (lap(s) + reaction * s**2) + dt * src
            new = s.copy()
            for _ in range(20):
                resid = new - 0.5 * dt * (lap(new) + reaction * new**2) - explicit
                diag = 1.0 + dt * a - dt * reaction * new
                delta = _thomas(-0.5 * dt * a, diag, -0.5 * dt * a, -resid)
                new += delta
                if np.abs(delta).max() < 1e-13:
                    break
            else:
                raise RuntimeError("Newton's method did not converge; reduce the time step")
            s = new
        out[:, j, 1:-1] = s
    return out


def generate_diffusion_reaction(
    n: int,
    resolution: int,
    *,
    seed: int = 0,
    length_scale: float = 0.2,
    time_points: int = 0,
    substeps: int = 1,
    diffusion: float = 0.01,
    reaction: float = 0.01,
) -> dict[str, Any]:
    """``n`` solutions on ``resolution`` points in ``x`` and ``time_points`` (0: ``resolution``)
    times in ``[0, 1]``: static field ``u`` ``(n, resolution)`` (the source, the branch input)
    and field ``s`` ``(n, time_points, resolution)``, float32."""
    # (why) named here: the solver's check named only the source's shape (n, nx)
    if not (is_int(n) and n >= 1 and is_int(resolution) and resolution >= 3):
        raise ValueError(
            f"expected integers n >= 1 and resolution >= 3 (one interior node), got n={n}, "
            f"resolution={resolution}"
        )
    time_points = time_points or resolution
    x = np.linspace(0.0, 1.0, resolution)
    u = sample_rbf_grf(n, x, length_scale=length_scale, seed=seed)
    s = solve_diffusion_reaction(
        u, time_points=time_points, substeps=substeps, diffusion=diffusion, reaction=reaction
    )
    return {
        "static_fields": {"u": u.astype(np.float32)},
        "fields": {"s": s.astype(np.float32)},
        "coords": {"x": x},
        "time": np.linspace(0.0, 1.0, time_points),
        "boundary_conditions": {"x": "dirichlet"},
        "attrs": {
            "pde": "diffusion_reaction",
            "equation": "s_t = D s_xx + k s^2 + u(x), s(x,0) = 0, s(0,t) = s(1,t) = 0",
            "diffusion": diffusion,
            "reaction": reaction,
            "units": {"u": "dimensionless", "s": "dimensionless"},
        },
    }
