"""The ODE operators of the DeepONet paper (Lu et al. 2021), forced by a Gaussian random field
``u(t)`` with the RBF kernel ``exp(-(s - t)^2 / (2 l^2))`` on ``t in [0, 1]``, zero initial values:

* nonlinear ODE:    ``s' = -s^2 + u(t)``;
* gravity pendulum: ``s1' = s2,  s2' = -k sin(s1) + u(t)``  (``k = 1``).

``u`` is drawn on a fine grid of ``(resolution - 1) * refine + 1`` points (``refine`` even) and the
ODE is integrated there by the classical fourth-order Runge-Kutta method with step
``H = 2 / ((resolution - 1) refine)``: the stage values ``u(t + H/2)`` and ``u(t + H)`` are fine
grid values, so no interpolation of ``u`` is needed (global error ``O(H^4)``). ``u`` and ``s`` are
stored at the ``resolution`` sensors ``t_j = j / (resolution - 1)`` as static fields on the axis
``t`` (read them for DeepONet with ``PointSamples(ds, inputs=["u"], targets=["s"])``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..._scalars import is_int, is_real
from .antiderivative import sample_rbf_grf

__all__ = [
    "solve_forced_ode",
    "nonlinear_ode_rhs",
    "pendulum_rhs",
    "generate_nonlinear_ode",
    "generate_pendulum",
]

Rhs = Callable[[np.ndarray, np.ndarray], np.ndarray]


def nonlinear_ode_rhs(s: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``f(s, u) = -s^2 + u`` for ``s`` ``(n, 1)``, ``u`` ``(n,)``."""
    return -(s**2) + u[:, None]


def pendulum_rhs(k: float = 1.0) -> Rhs:
    """``f(s, u) = (s2, -k sin(s1) + u)`` for ``s`` ``(n, 2)``, ``u`` ``(n,)``."""

    def rhs(s: np.ndarray, u: np.ndarray) -> np.ndarray:
        return np.stack([s[:, 1], -k * np.sin(s[:, 0]) + u], axis=1)

    return rhs


def solve_forced_ode(rhs: Rhs, u: np.ndarray, dt: float, s0: np.ndarray) -> np.ndarray:
    """RK4 for ``s' = rhs(s, u(t))`` with ``u`` given on a uniform grid of spacing ``dt``.

    Args:
        rhs: ``(s (n, dim), u (n,)) -> (n, dim)``.
        u: ``(n, 2 M + 1)`` forcing values at ``t_i = i dt``.
        dt: the fine grid spacing; the RK4 step is ``2 dt`` (midpoints are grid points).
        s0: ``(n, dim)`` initial values.

    Returns:
        ``(n, M + 1, dim)``: ``s`` at ``t = 0, 2 dt, 4 dt, ...``.
    """
    if u.ndim != 2 or u.shape[1] % 2 != 1:
        raise ValueError(f"expected u of shape (n, 2 M + 1) (odd length), got {u.shape}")
    h = 2 * dt
    s = np.array(s0, dtype=np.float64)
    out = [s]
    for i in range(0, u.shape[1] - 1, 2):
        u0, um, u1 = u[:, i], u[:, i + 1], u[:, i + 2]
        k1 = rhs(s, u0)
        k2 = rhs(s + 0.5 * h * k1, um)
        k3 = rhs(s + 0.5 * h * k2, um)
        k4 = rhs(s + h * k3, u1)
        s = s + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        out.append(s)
    return np.stack(out, axis=1)


def _forced(
    n: int, resolution: int, rhs: Rhs, dim: int, *, seed: int, length_scale: float, refine: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # (why) resolution 1 failed on 'index 1 is out of bounds for axis 0 with size 1' (the fine
    # grid's step), n = 0 wrote a data set of no samples, and n = True was numpy's bare
    # "an integer is required"
    if not (is_int(n) and n >= 1 and is_int(resolution) and resolution >= 2):
        raise ValueError(
            f"expected integers n >= 1 and resolution >= 2, got n={n}, resolution={resolution}"
        )
    if not (is_int(refine) and refine >= 2 and refine % 2 == 0):
        raise ValueError(f"refine must be an even integer >= 2, got {refine}")
    fine = np.linspace(0.0, 1.0, (resolution - 1) * refine + 1)
    u = sample_rbf_grf(n, fine, length_scale=length_scale, seed=seed)
    s = solve_forced_ode(rhs, u, fine[1] - fine[0], np.zeros((n, dim)))  # every 2nd fine point
    step = refine // 2
    return fine[::refine], u[:, ::refine], s[:, ::step]


def generate_nonlinear_ode(
    n: int, resolution: int, *, seed: int = 0, length_scale: float = 0.2, refine: int = 10
) -> dict[str, Any]:
    """``n`` pairs ``(u, s)`` of ``s' = -s^2 + u``, ``s(0) = 0`` on ``resolution`` points of
    ``[0, 1]``: static fields ``u`` and ``s``, ``(n, resolution)`` float32, axis ``t``."""
    t, u, s = _forced(
        n, resolution, nonlinear_ode_rhs, 1, seed=seed, length_scale=length_scale, refine=refine
    )
    return {
        "static_fields": {"u": u.astype(np.float32), "s": s[..., 0].astype(np.float32)},
        "coords": {"t": t},
        "boundary_conditions": {"t": "open"},
        "attrs": {
            "pde": "nonlinear_ode",
            "equation": "s'(t) = -s^2 + u(t), s(0) = 0, u ~ GP(0, exp(-(s-t)^2 / (2 l^2)))",
            "units": {"u": "dimensionless", "s": "dimensionless"},
        },
    }


def generate_pendulum(
    n: int,
    resolution: int,
    *,
    seed: int = 0,
    length_scale: float = 0.2,
    k: float = 1.0,
    refine: int = 10,
) -> dict[str, Any]:
    """``n`` forced pendulums ``s1' = s2, s2' = -k sin(s1) + u(t)``, ``s(0) = 0`` on
    ``resolution`` points of ``[0, 1]``: static fields ``u``, ``s1``, ``s2``, axis ``t``."""
    if not (is_real(k) and math.isfinite(k)):  # (why) a NaN k gave NaN trajectories
        raise ValueError(f"expected a finite k, got {k}")
    t, u, s = _forced(
        n, resolution, pendulum_rhs(k), 2, seed=seed, length_scale=length_scale, refine=refine
    )
    return {
        "static_fields": {
            "u": u.astype(np.float32),
            "s1": s[..., 0].astype(np.float32),
            "s2": s[..., 1].astype(np.float32),
        },
        "coords": {"t": t},
        "boundary_conditions": {"t": "open"},
        "attrs": {
            "pde": "gravity_pendulum",
            "equation": "s1' = s2, s2' = -k sin(s1) + u(t), s(0) = 0",
            "k": k,
            "units": {"u": "dimensionless", "s1": "dimensionless", "s2": "dimensionless"},
        },
    }
