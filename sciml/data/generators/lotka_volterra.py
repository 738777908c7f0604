"""Lotka-Volterra predator-prey trajectories from random initial states: ``lotka_volterra``.

    x' = alpha x - beta x y,    y' = delta x y - gamma y        (x prey, y predator)

The orbits are closed curves around the equilibrium ``(gamma / delta, alpha / beta)``, on which
``V(x, y) = delta x - gamma log x + beta y - alpha log y`` is constant (see
:func:`lotka_volterra_invariant`; the tests check the generated data against it). Each sample draws
``(x0, y0) = (gamma / delta, alpha / beta) * U[ic_low, ic_high]^2`` and is integrated on
``resolution`` uniform times of ``[0, t_final]`` by SciPy's DOP853 (``rtol = 1e-10``,
``atol = 1e-12``, all samples as one system). Stored (sciml layout, no spatial axes): fields
``prey`` and ``predator`` ``(n, resolution)`` float32 and the float64 ``initial_state``
``(n, 2)`` as a parameter. The default rates are the classic ``(1.5, 1, 3, 1)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..._scalars import is_int, is_real

__all__ = ["generate_lotka_volterra", "lotka_volterra_rhs", "lotka_volterra_invariant"]


def lotka_volterra_rhs(
    state: np.ndarray, alpha: float, beta: float, gamma: float, delta: float
) -> np.ndarray:
    """``(x', y')`` for ``state`` ``(..., 2)`` = ``(x, y)``."""
    x, y = state[..., 0], state[..., 1]
    return np.stack([alpha * x - beta * x * y, delta * x * y - gamma * y], axis=-1)


def lotka_volterra_invariant(
    state: np.ndarray, alpha: float, beta: float, gamma: float, delta: float
) -> np.ndarray:
    """The first integral ``V = delta x - gamma log x + beta y - alpha log y`` of ``(..., 2)``."""
    x, y = state[..., 0], state[..., 1]
    return delta * x - gamma * np.log(x) + beta * y - alpha * np.log(y)


def generate_lotka_volterra(
    n: int,
    resolution: int,
    *,
    seed: int = 0,
    alpha: float = 1.5,
    beta: float = 1.0,
    gamma: float = 3.0,
    delta: float = 1.0,
    t_final: float = 5.0,
    ic_low: float = 0.5,
    ic_high: float = 1.5,
) -> dict[str, Any]:
    """``n`` trajectories on ``resolution`` times of ``[0, t_final]`` (see the module doc)."""
    try:
        from scipy.integrate import solve_ivp
    except ImportError as err:  # pragma: no cover - scipy is a runtime dependency
        raise ImportError("the lotka_volterra generator needs scipy: pip install scipy") from err
    # (why) n = 0 wrote a data set of no samples and resolution 0 was solve_ivp's "'list' object
    # has no attribute 'reshape'"; a NaN passed `<= 0` (min() of a tuple with a NaN depends on
    # its place) and reached SciPy's "All components of the initial state `y0` must be finite"
    if not (is_int(n) and n >= 1 and is_int(resolution) and resolution >= 2):
        raise ValueError(
            f"expected integers n >= 1 and resolution >= 2, got n={n}, resolution={resolution}"
        )
    rates = (alpha, beta, gamma, delta)
    if not all(is_real(r) and math.isfinite(r) and r > 0 for r in rates):
        raise ValueError(f"expected finite positive rates alpha, beta, gamma, delta, got {rates}")
    if not (
        all(is_real(v) and math.isfinite(v) for v in (ic_low, ic_high)) and 0 < ic_low <= ic_high
    ):
        raise ValueError(f"expected finite 0 < ic_low <= ic_high, got {ic_low=}, {ic_high=}")
    if not (is_real(t_final) and math.isfinite(t_final) and t_final > 0):
        raise ValueError(f"expected a finite t_final > 0, got {t_final}")
    rng = np.random.default_rng(seed)
    equilibrium = np.array([gamma / delta, alpha / beta])
    y0 = equilibrium * rng.uniform(ic_low, ic_high, size=(n, 2))
    t = np.linspace(0.0, t_final, resolution)

    def rhs(_t: float, flat: np.ndarray) -> np.ndarray:
        return lotka_volterra_rhs(flat.reshape(n, 2), *rates).reshape(-1)

    sol = solve_ivp(
        rhs, (0.0, t_final), y0.reshape(-1), method="DOP853", t_eval=t, rtol=1e-10, atol=1e-12
    )
    if sol.status != 0:  # pragma: no cover - smooth, bounded orbits
        raise RuntimeError(f"lotka_volterra: the reference solve failed ({sol.message})")
    traj = sol.y.reshape(n, 2, resolution).transpose(0, 2, 1)  # (n, time, 2)
    return {
        "fields": {
            "prey": traj[..., 0].astype(np.float32),
            "predator": traj[..., 1].astype(np.float32),
        },
        "time": t,
        "params": {"initial_state": y0},
        "attrs": {
            "pde": "lotka_volterra",
            "equation": "x' = alpha x - beta x y, y' = delta x y - gamma y",
            "rates": {"alpha": alpha, "beta": beta, "gamma": gamma, "delta": delta},
            "units": {"prey": "dimensionless", "predator": "dimensionless"},
        },
    }
