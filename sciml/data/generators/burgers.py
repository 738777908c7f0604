"""Viscous Burgers' equation in 1D, pseudo-spectral in space, ETDRK4 in time.

PDE on the periodic interval ``[0, 1)``::

    u_t + (u^2 / 2)_x = nu u_xx,    u(x, 0) = u0(x).

Discretisation: Fourier collocation on ``N`` equispaced points ``x_j = j / N``; the nonlinear flux
``u^2 / 2`` is formed on the grid and its spectrum truncated by the 2/3 rule (modes with
``|k| > N/3`` are zeroed) before differentiation. Time stepping is the exponential time
differencing fourth-order Runge-Kutta scheme of Cox & Matthews (2002) with the phi-function
coefficients evaluated by contour integrals (Kassam & Trefethen, 2005): the stiff diffusion
``-nu (2 pi k)^2`` is integrated exactly, so the step is limited only by advection.

FNO paper settings: ``u0 ~ N(0, 625 (-Laplacian + 25 I)^(-2))``, ``nu = 0.1``, ``T = 1``, solved
on 8192 points and subsampled.
"""

from __future__ import annotations

import math
from typing import Any, overload

import numpy as np
import torch

from ..._etdrk4 import etdrk4_coefficients, etdrk4_step
from ..._scalars import is_int, is_real
from .grf import sample_grf

__all__ = ["solve_burgers", "generate_burgers"]


# (why) overloads: the result has the type of u0; with only the union, a caller's type checker
# rejected `solve_burgers(u0_tensor, ...).to(device)` and `solve_burgers(u0_array, ...).astype`
@overload
def solve_burgers(
    u0: torch.Tensor,
    nu: float,
    T: float,
    n_steps: int,
    *,
    dt: float | None = ...,
    dealias: bool = ...,
) -> torch.Tensor: ...
@overload
def solve_burgers(
    u0: np.ndarray,
    nu: float,
    T: float,
    n_steps: int,
    *,
    dt: float | None = ...,
    dealias: bool = ...,
) -> np.ndarray: ...
def solve_burgers(
    u0: np.ndarray | torch.Tensor,
    nu: float,
    T: float,
    n_steps: int,
    *,
    dt: float | None = None,
    dealias: bool = True,
) -> np.ndarray | torch.Tensor:
    """Solve ``u_t + (u^2/2)_x = nu u_xx`` on ``[0, 1)`` (periodic) from ``u0`` to time ``T``.

    Args:
        u0: initial condition(s), shape ``(N,)`` or ``(batch, N)`` on ``x_j = j / N``.
        nu: viscosity (> 0).
        T: final time.
        n_steps: number of recorded times after ``t = 0``, equally spaced: ``t_m = m T / n_steps``.
        dt: ETDRK4 step; ``None`` picks ``min(T / n_steps, 0.2 / (max|u0| k_*))`` with
            ``k_* = min(2 pi N / 3, max|u0| / nu)`` the largest wavenumber at which advection is
            not dominated by diffusion. It is rounded down so that it divides ``T / n_steps``.
        dealias: apply the 2/3 rule to the nonlinear term.

    Returns:
        ``u`` of shape ``(n_steps + 1, N)`` or ``(batch, n_steps + 1, N)``, including ``t = 0``;
        the same type (numpy or torch) as ``u0``, float64.
    """
    # (why) written as `not x > 0` with isfinite: NaN fails no comparison and inf ran into
    # 'cannot convert float infinity to integer' when the substeps were counted
    # (why) is_int: n_steps = 1.5 was range()'s "'float' object cannot be interpreted as an
    # integer" and True ran as 1
    finite = all(is_real(v) and math.isfinite(v) and v > 0 for v in (nu, T))
    if not (finite and is_int(n_steps) and n_steps >= 1):
        raise ValueError(
            f"expected finite nu > 0, T > 0 and an integer n_steps >= 1, got nu={nu}, T={T}, "
            f"n_steps={n_steps}"
        )
    # (why) dt = 0 divided by zero below, and a negative dt counted as 'no substeps': one
    # ETDRK4 step of the whole record interval, far above the stable step, without a word
    if dt is not None and not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"expected dt > 0 or None, got dt={dt}")
    is_numpy = not isinstance(u0, torch.Tensor)
    u = torch.as_tensor(np.asarray(u0) if is_numpy else u0).to(torch.float64)
    batched = u.ndim == 2
    if u.ndim not in (1, 2):
        raise ValueError(f"expected u0 of shape (N,) or (batch, N), got {tuple(u.shape)}")
    # (why) a NaN in u0 made the default dt min(record, NaN) = record, one step per record
    # interval, and came back as an all-NaN trajectory without a word
    if not bool(torch.isfinite(u).all()):
        raise ValueError("expected a finite u0, got NaN or inf values")
    u = u if batched else u[None]
    n = u.shape[-1]
    # (why) at N = 2 the flux was dropped (the heat equation came back) and at N = 3 its k = 2
    # part aliased onto k = 1: 7.5e-3 off the |k| <= 1 Galerkin solution that N = 4 gives to 1e-7
    if n < 4:
        raise ValueError(
            f"expected u0 on N >= 4 grid points, got N={n}: the 2/3 rule keeps the flux's "
            f"wavenumbers |k| <= N/3, none but 0 at N = 2 and an aliased k = 1 at N = 3"
        )
    k = torch.fft.rfftfreq(n, d=1.0 / n, dtype=torch.float64, device=u.device)
    ik = 2j * math.pi * k
    if n % 2 == 0:
        ik[-1] = 0.0  # the Nyquist mode's derivative is not resolved
    mask = (k <= n / 3) if dealias else torch.ones_like(k, dtype=torch.bool)
    record = T / n_steps
    if dt is None:
        umax = float(u.abs().max()) + 1e-12
        k_star = min(2 * math.pi * n / 3, umax / nu)
        dt = min(record, 0.2 / (umax * k_star))
    sub = max(1, math.ceil(record / dt - 1e-9))
    h = record / sub
    coeffs = etdrk4_coefficients(-nu * (2 * math.pi * k) ** 2, h)

    def nonlinear(v: torch.Tensor) -> torch.Tensor:
        w = torch.fft.irfft(v, n=n)
        return -0.5 * ik * torch.fft.rfft(w * w) * mask

    v = torch.fft.rfft(u)  # (batch, N//2+1)
    out = [u]
    norm0 = torch.linalg.vector_norm(u, dim=-1)
    for m in range(1, n_steps + 1):
        for _ in range(sub):
            v = etdrk4_step(v, nonlinear, coeffs)
        out.append(torch.fft.irfft(v, n=n))
        # (why) the L2 norm of a Burgers solution never grows (d/dt |u|^2 = -2 nu |u_x|^2); a
        # given dt past the stable step returned NaN (dt=0.2) or values of 1e14 (dt=0.5) as
        # data (N=128, nu=0.01). Under-resolved but stable runs stay within 1.03 of |u0|.
        grown = torch.linalg.vector_norm(out[-1], dim=-1) > 2.0 * norm0
        if not bool(torch.isfinite(out[-1]).all()) or bool(grown.any()):
            raise RuntimeError(
                f"solve_burgers: the solution's L2 norm grew past twice that of u0 (or became "
                f"NaN) by t={m * record:g}, which Burgers' equation cannot do: the step "
                f"dt={h:g} is unstable here; give a smaller dt or dt=None"
            )
    traj = torch.stack(out, dim=1)  # (batch, n_steps + 1, N)
    traj = traj if batched else traj[0]
    return traj.numpy() if is_numpy else traj


def generate_burgers(
    n: int,
    resolution: int,
    *,
    seed: int = 0,
    nu: float = 0.1,
    T: float = 1.0,
    n_steps: int = 1,
    dt: float | None = None,
    alpha: float = 2.0,
    tau: float = 5.0,
    sigma: float = 25.0,
    subsample: int = 1,
) -> dict[str, Any]:
    """Burgers data set: GRF initial conditions and their trajectories.

    ``u0 ~ N(0, sigma^2 (-Laplacian + tau^2 I)^(-alpha))`` (FNO: 625 (-Lap + 25 I)^-2), solved on
    ``resolution`` points to time ``T`` and recorded at ``n_steps`` equally spaced times after
    ``t = 0``. Stored grid: every ``subsample``-th point. Small default: ``n = 8, N = 256``.

    Returns the keyword arguments of :func:`sciml.data.write`: field ``u`` of shape
    ``(n, n_steps + 1, N')`` (float32, ``u[:, 0]`` is the initial condition), ``time``,
    coordinate ``x``, parameter ``nu`` of shape ``(n,)``, periodic boundary condition.
    """
    # checked before solving: a negative step would store the grid reversed, 0 divides by zero
    # (why) is_int: subsample=2.0 passed and failed after the solve in numpy's slicing
    if not (is_int(subsample) and subsample >= 1) or resolution % subsample:
        raise ValueError(
            f"expected subsample >= 1 dividing resolution {resolution}, got {subsample}"
        )
    u0 = sample_grf(n, resolution, dim=1, alpha=alpha, tau=tau, sigma=sigma, seed=seed)
    u = solve_burgers(u0, nu, T, n_steps, dt=dt)
    return {
        "fields": {"u": u[..., ::subsample].astype(np.float32)},
        "coords": {"x": (np.arange(resolution) / resolution)[::subsample]},
        "time": np.linspace(0.0, T, n_steps + 1),
        "params": {"nu": np.full(n, nu)},
        "boundary_conditions": {"x": "periodic"},
        "attrs": {"pde": "burgers_1d_viscous", "units": {"u": "dimensionless"}},
    }
