"""Incompressible Navier-Stokes in 2D, vorticity form on the unit torus, pseudo-spectral.

PDE on ``[0, 1)^2`` (periodic)::

    w_t + u . grad w = nu Laplacian w + f,    -Laplacian psi = w,    u = (psi_y, -psi_x),

with ``w`` the vorticity, ``psi`` the stream function (zero mean) and ``u`` the divergence-free
velocity. The FNO paper's solver, with one change in time stepping:

* Fourier collocation on ``N x N`` points ``(x_i, y_j) = (i / N, j / N)``; derivatives and the
  Poisson solve are exact in Fourier space; the advection term ``u . grad w`` is formed on the grid
  and its spectrum truncated by the 2/3 rule (``|k_x|, |k_y| <= N/3``), as in the FNO code.
* Time stepping: Crank-Nicolson for diffusion, Heun's method (explicit trapezoidal
  predictor-corrector) for advection and forcing; second order in ``dt``. The FNO reference code
  advances advection and forcing by explicit Euler instead (first order): Heun costs a second
  advection evaluation per step; at the FNO ``dt = 1e-4`` the max errors against Heun at
  ``dt / 4`` at ``T = 1``, ``nu = 1e-3``, ``N = 64`` are 3.8e-6 (Euler) and 2.4e-10 (Heun), from
  the FNO initial law's draw with seed 0 (``max |w0| = 0.56``); ``docs/generators.md`` has the
  code that measures them.
* Initial vorticity ``w0 ~ N(0, sigma^2 (-Laplacian + 49 I)^(-2.5))`` and forcing
  ``f(x, y) = 0.1 (sin(2 pi (x + y)) + cos(2 pi (x + y)))``; ``dt = 1e-4``; the state is recorded
  every time unit up to ``T = 50 / 30 / 20`` for ``nu = 1e-3 / 1e-4 / 1e-5``.

Computation is batched over samples in torch (any device, float32 or float64).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Literal, overload

import numpy as np
import torch

from ..._scalars import is_int, is_real
from ..symmetry import GridSymmetry, generate_group
from .grf import sample_grf

__all__ = [
    "solve_navier_stokes",
    "fno_forcing",
    "fno_forcing_symmetries",
    "generate_navier_stokes",
]


def fno_forcing(resolution: int, amplitude: float = 0.1) -> np.ndarray:
    """The FNO forcing ``amplitude (sin(2 pi (x + y)) + cos(2 pi (x + y)))``, shape ``(N, N)``."""
    x = np.arange(resolution) / resolution
    s = 2.0 * math.pi * (x[:, None] + x[None, :])
    return amplitude * (np.sin(s) + np.cos(s))


def fno_forcing_symmetries() -> tuple[list[GridSymmetry], tuple[tuple[int, int]]]:
    """The exact symmetries of 2-D vorticity dynamics under :func:`fno_forcing`.

    With ``f = a (sin 2 pi (x + y) + cos 2 pi (x + y))`` the map ``w(0) -> w(T)`` of
    :func:`solve_navier_stokes` commutes with

    * ``S w (x, y) = -w(y + 1/4, x + 1/4)``: the diagonal reflection flips the sign of vorticity (a
      pseudo-scalar) and the quarter shift turns ``f(y, x) = f`` into ``-f``, which the sign flips
      back;
    * ``R w (x, y) = w(1/4 - x, -y)``: the rotation by pi with the shift that maps ``f`` to itself;
    * every shift along ``(1, -1)`` (``f`` depends on ``x + y`` only).

    ``S`` and ``R`` generate a group of 16 elements, 8 up to shifts along ``(1, -1)`` (``S^2`` is
    the half-period shift along ``(1, 1)``); the Gaussian random initial field of :func:`generate_navier_stokes` is isotropic
    and even, so each element also maps the data distribution onto itself. The quarter shifts
    are exact on grids whose size is a multiple of 4 (other sizes raise when a map is applied).

    Returns:
        ``(elements, shift_directions)`` for :class:`sciml.data.symmetry.RandomSymmetry`
        (elements from :func:`~sciml.data.symmetry.generate_group`, identity first).
    """
    q = Fraction(1, 4)
    s = GridSymmetry((2, 1), (q, q), sign=-1)
    r = GridSymmetry((-1, -2), (q, Fraction(0)))
    return generate_group([s, r]), ((1, -1),)


# (why) overloads: the result has the type of w0 (see solve_burgers)
@overload
def solve_navier_stokes(
    w0: torch.Tensor,
    f: np.ndarray | torch.Tensor | float,
    nu: float,
    T: float,
    dt: float,
    record_steps: int,
    *,
    dealias: bool = ...,
) -> torch.Tensor: ...
@overload
def solve_navier_stokes(
    w0: np.ndarray,
    f: np.ndarray | torch.Tensor | float,
    nu: float,
    T: float,
    dt: float,
    record_steps: int,
    *,
    dealias: bool = ...,
) -> np.ndarray: ...
def solve_navier_stokes(
    w0: np.ndarray | torch.Tensor,
    f: np.ndarray | torch.Tensor | float,
    nu: float,
    T: float,
    dt: float,
    record_steps: int,
    *,
    dealias: bool = True,
) -> np.ndarray | torch.Tensor:
    """Integrate the 2D vorticity equation on the unit torus from ``w0`` to time ``T``.

    Args:
        w0: initial vorticity, shape ``(N, N)`` or ``(batch, N, N)``, axes ``(x, y)``; its
            dtype and device (float32 / float64) are those of the computation.
        f: forcing, a scalar, ``(N, N)`` (shared by the batch) or ``(batch, N, N)``.
        nu: viscosity (> 0).
        T: final time.
        dt: time step; ``T / record_steps`` must be a multiple of it (to 1e-6 relative).
        record_steps: number of recorded states after ``t = 0``, at ``t_m = m T / record_steps``.
        dealias: apply the 2/3 rule to the advection term.

    Returns:
        ``w`` of shape ``(record_steps + 1, N, N)`` or ``(batch, record_steps + 1, N, N)``
        including ``t = 0``; numpy if ``w0`` is numpy, else a tensor on ``w0``'s device.
    """
    # (why) written as `not x > 0` with isfinite (as in solve_burgers): nu = NaN passed
    # `nu <= 0` and returned an all-NaN trajectory; T = inf or dt = NaN reached round()
    # ('cannot convert float infinity to integer'); a bool or 1.5 record_steps ran or hit range()
    finite = all(is_real(v) and math.isfinite(v) and v > 0 for v in (nu, T, dt))
    if not (finite and is_int(record_steps) and record_steps >= 1):
        raise ValueError(
            f"expected finite nu, T, dt > 0 and an integer record_steps >= 1, got nu={nu}, T={T}, dt={dt}, "
            f"record_steps={record_steps}"
        )
    is_numpy = not isinstance(w0, torch.Tensor)
    w = torch.as_tensor(np.asarray(w0)) if is_numpy else w0
    if not w.is_floating_point():
        w = w.to(torch.float64)
    # (why) N = 2: the 2/3 rule (|k| <= N/3) kept only the mean of the advection term, so the
    # data were the forced heat equation, and the FNO forcing's k = (1, 1) was the Nyquist mode;
    # N = 4 is the smallest even grid whose kept |k| <= 1 modes are alias-free
    if w.ndim not in (2, 3) or w.shape[-1] != w.shape[-2] or w.shape[-1] % 2 or w.shape[-1] < 4:
        raise ValueError(
            f"expected w0 of shape (N, N) or (batch, N, N) with N even and >= 4 (the 2/3 rule "
            f"keeps |k| <= N/3 of the advection term), got {tuple(w.shape)}"
        )
    batched = w.ndim == 3
    w = w if batched else w[None]
    n = w.shape[-1]
    record = T / record_steps
    sub = round(record / dt)
    if sub < 1 or abs(sub * dt - record) > 1e-6 * record:
        raise ValueError(
            f"expected dt to divide the record interval T / record_steps = {record}, got dt={dt}"
        )
    h = record / sub
    rdt, dev = w.dtype, w.device
    kx = torch.fft.fftfreq(n, d=1.0 / n, dtype=rdt, device=dev)[:, None]  # (N, 1)
    ky = torch.fft.rfftfreq(n, d=1.0 / n, dtype=rdt, device=dev)[None, :]  # (1, N//2+1)
    lap = 4.0 * math.pi**2 * (kx**2 + ky**2)  # symbol of -Laplacian
    inv_lap = torch.where(lap > 0, 1.0 / torch.where(lap > 0, lap, 1.0), 0.0)
    dx, dy = 2j * math.pi * kx, 2j * math.pi * ky
    cut = n / 3.0 if dealias else float(n)
    mask = ((kx.abs() <= cut) & (ky.abs() <= cut)).to(rdt)
    f_t = torch.as_tensor(np.asarray(f) if not torch.is_tensor(f) else f, dtype=rdt, device=dev)
    # (why) a mismatched f reached torch's 'The expanded size of the tensor (8) must match the
    # existing size (4)', and a NaN / inf in f or w0 came back as an all-NaN trajectory
    if f_t.shape not in ((), (n, n), (w.shape[0], n, n)):
        raise ValueError(
            f"expected f a scalar or of shape {(n, n)} or {(w.shape[0], n, n)} (batch, N, N), "
            f"got shape {tuple(f_t.shape)}"
        )
    if not (bool(torch.isfinite(f_t).all()) and bool(torch.isfinite(w).all())):
        raise ValueError("expected finite w0 and f, got NaN or inf values")
    f_h = torch.fft.rfft2(f_t if f_t.ndim == 3 else f_t.expand(n, n))
    explicit = 1.0 - 0.5 * h * nu * lap
    implicit = 1.0 / (1.0 + 0.5 * h * nu * lap)

    def advection(w_h: torch.Tensor) -> torch.Tensor:
        psi_h = w_h * inv_lap
        spec = torch.stack((dy * psi_h, -dx * psi_h, dx * w_h, dy * w_h))  # (4, b, N, N//2+1)
        u, v, w_x, w_y = torch.fft.irfft2(spec, s=(n, n))
        return torch.fft.rfft2(u * w_x + v * w_y) * mask

    w_h = torch.fft.rfft2(w)
    out = [w]
    norm0 = torch.linalg.vector_norm(w, dim=(-2, -1))
    norm_f = torch.linalg.vector_norm(f_t.expand(w.shape), dim=(-2, -1))
    for m in range(1, record_steps + 1):
        for _ in range(sub):
            adv = advection(w_h)
            rest = h * f_h + explicit * w_h
            w_pred = (rest - h * adv) * implicit
            w_h = (rest - 0.5 * h * (adv + advection(w_pred))) * implicit
        out.append(torch.fft.irfft2(w_h, s=(n, n)))
        # (why) the advection term does no work on the enstrophy, so |w(t)| <= |w0| + t |f| in
        # L2; an unstable step (dt too large for |u| / nu) returned NaN, or finite garbage (100
        # times the FNO draw on 32^2 at dt = 0.002: max |w| 1562 where dt = 0.001 gives 70)
        bound = 2.0 * (norm0 + m * record * norm_f)
        grown = torch.linalg.vector_norm(out[-1], dim=(-2, -1)) > bound
        if not bool(torch.isfinite(out[-1]).all()) or bool(grown.any()):
            raise RuntimeError(
                f"solve_navier_stokes: the vorticity's L2 norm grew past twice |w0| + t |f| (or "
                f"became NaN) by t={m * record:g}, which the equation cannot do: the step "
                f"dt={h:g} is unstable for this w0 and nu; give a smaller dt"
            )
    traj = torch.stack(out, dim=1)  # (batch, record_steps + 1, N, N)
    traj = traj if batched else traj[0]
    return traj.cpu().numpy() if is_numpy else traj


def generate_navier_stokes(
    n: int,
    resolution: int,
    *,
    seed: int = 0,
    nu: float = 1e-3,
    T: float = 2.0,
    dt: float = 1e-3,
    record_steps: int | None = None,
    alpha: float = 2.5,
    tau: float = 7.0,
    sigma: float = math.sqrt(2.0) * 7.0**1.5,
    forcing_amplitude: float = 0.1,
    precision: Literal["float32", "float64"] = "float32",
    batch_size: int = 64,
    device: str = "cpu",
    subsample: int = 1,
) -> dict[str, Any]:
    """Navier-Stokes data set: GRF initial vorticities and their trajectories.

    Small default: ``T = 2``, ``dt = 1e-3`` (stable for ``nu = 1e-3`` at ``N <= 64``); the FNO
    data use ``dt = 1e-4`` and ``T = 50 / 30 / 20`` (see ``datasets/``). ``record_steps`` defaults
    to one state per time unit, at ``t = 1, 2, ..., T``: ``T`` must then be a whole number
    (a ``T`` such as 2.5 or 0.5 raises; give ``record_steps`` for it). ``sigma`` defaults to ``sqrt(2) 7^(3/2)``, the
    amplitude of the FNO reference sampler (its code uses ``sigma = tau^(alpha - 1) = 7^(3/2)``
    with a complex draw that doubles the variance). Samples are solved ``batch_size`` at a time.

    Returns the keyword arguments of :func:`sciml.data.write`: field ``w`` of shape
    ``(n, record_steps + 1, N', N')`` (float32) including ``t = 0``, static field ``f`` (the
    forcing, ``(n, N', N')``), ``time``, coordinates ``x, y``, parameter ``nu``, periodic BCs.
    """
    # checked before solving: a step < 1 would fail (or divide by zero) only after the solve
    sub_ok = is_int(subsample) and subsample >= 1
    if not (sub_ok and resolution % 2 == 0 and resolution >= 4 and resolution % subsample == 0):
        raise ValueError(
            f"expected an even resolution >= 4 and a subsample >= 1 dividing it, got "
            f"resolution={resolution}, subsample={subsample}"
        )
    if precision not in ("float32", "float64"):
        raise ValueError(f"expected precision 'float32' or 'float64', got {precision!r}")
    # (why) is_int: batch_size=True ran as 1 and 1.5 reached range()'s TypeError
    if not is_int(batch_size) or batch_size < 1:
        raise ValueError(
            f"expected an integer batch_size >= 1 samples solved at a time, got {batch_size!r}"
        )
    if record_steps is None:
        # (why) round(T) recorded 2 states for T = 2.5 (round half to even), at t = 1.25, 2.5,
        # and 1 for T = 0.5: neither is "one state per time unit"
        whole = is_real(T) and math.isfinite(T) and T >= 1 and float(T).is_integer()
        if not whole:
            raise ValueError(
                f"record_steps=None records one state per time unit (t = 1, 2, ..., T), so T "
                f"must be a whole number >= 1, got T={T!r}; give record_steps for this T"
            )
        record_steps = int(T)
    w0 = sample_grf(n, resolution, dim=2, alpha=alpha, tau=tau, sigma=sigma, seed=seed)
    f = fno_forcing(resolution, forcing_amplitude)
    tdtype = getattr(torch, precision)
    f_t = torch.as_tensor(f, dtype=tdtype, device=device)
    chunks = []
    for start in range(0, n, batch_size):
        w_t = torch.as_tensor(w0[start : start + batch_size], dtype=tdtype, device=device)
        traj = solve_navier_stokes(w_t, f_t, nu, T, dt, record_steps)
        chunks.append(traj[..., ::subsample, ::subsample].float().cpu().numpy())
    s = slice(None, None, subsample)
    grid = (np.arange(resolution) / resolution)[s]
    return {
        "fields": {"w": np.concatenate(chunks)},
        "static_fields": {"f": np.broadcast_to(f[s, s], (n,) + f[s, s].shape).astype(np.float32)},
        "coords": {"x": grid, "y": grid},
        "time": np.linspace(0.0, T, record_steps + 1),
        "params": {"nu": np.full(n, nu)},
        "resolved": {"record_steps": record_steps},
        "boundary_conditions": {"x": "periodic", "y": "periodic"},
        "attrs": {
            "pde": "navier_stokes_2d_vorticity",
            "units": {"w": "dimensionless", "f": "dimensionless"},
            "forcing": f"{forcing_amplitude} * (sin(2 pi (x + y)) + cos(2 pi (x + y)))",
        },
    }
