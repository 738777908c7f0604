"""Reference solutions on a periodic interval ``[0, L)`` to measure PINNs against.

* :func:`convection_exact`: ``u(x, t) = u0(x - beta t)`` for ``u_t + beta u_x = 0``.
* :func:`convection_diffusion_fourier`: ``u_t + beta u_x = nu u_xx`` solved exactly mode by mode,
  ``u_k(t) = u_k(0) exp(-(i beta k + nu k^2) t)`` (exact in time; the only error is the grid
  sampling of ``u0``).
* :func:`burgers_spectral`: viscous Burgers ``u_t + (u^2 / 2)_x = nu u_xx`` by a Fourier
  pseudo-spectral method (2/3-rule dealiasing) with ETDRK4 time stepping (Cox & Matthews 2002;
  coefficients by the contour integrals of Kassam & Trefethen 2005): fourth order in time, the
  stiff diffusion integrated exactly.
* :func:`burgers_cole_hopf_sine`: the exact solution for ``u0 = sin(x)`` on ``[0, 2 pi)`` via the
  Cole-Hopf transform, an independent check of the spectral solver.

Everything is computed in float64 with ``torch.fft``; values come back as ``(nt, nx)`` tensors
(time first).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .._etdrk4 import etdrk4_coefficients, etdrk4_step
from ._checks import check_float_dtype, is_count, is_number

__all__ = [
    "convection_exact",
    "convection_diffusion_fourier",
    "burgers_spectral",
    "burgers_cole_hopf_sine",
    "periodic_grid",
]

TWO_PI = 2 * math.pi


def periodic_grid(
    n: int, length: float = TWO_PI, *, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """``n`` equispaced points ``x_j = j L / n`` of ``[0, L)``: ``(n,)`` of the floating
    ``dtype``."""
    # (why) an integer dtype was ignored: the points came back in the default float dtype
    check_float_dtype("periodic_grid", dtype)
    # (why) n = 4.5 gave arange(4.5): 5 points spaced L / 4.5, not a periodic grid; a length
    # <= 0 gave points in (-L, 0], an infinite one nan and inf
    if not is_count(n):
        raise TypeError(f"expected an int number of grid points n, got {n!r}")
    if n < 2:
        raise ValueError(f"expected at least 2 grid points, got {n}")
    if not is_number(length) or not 0 < length < math.inf:
        raise ValueError(f"expected a finite period length > 0, got {length!r}")
    return torch.arange(n, dtype=dtype) * (length / n)


def _check_settings(owner: str, *, length: float, beta: float, nu: float = 0.0) -> None:
    """Raise unless ``length`` is finite and > 0 and ``beta``, ``nu`` are finite real numbers.

    (why) a nan speed or viscosity, or a period of 0, gave nan solutions, and a negative period
    wrapped into ``(L, 0]``, silently; the sign checks on ``nu`` let nan through."""
    if not is_number(length) or not 0 < length < math.inf:
        raise ValueError(f"{owner} expected a finite period length > 0, got length={length!r}")
    for name, v in (("beta", beta), ("nu", nu)):
        if not is_number(v) or not math.isfinite(v):
            raise ValueError(f"{owner} expected a finite real number {name}, got {name}={v!r}")


def _wavenumbers(n: int, length: float) -> torch.Tensor:
    return torch.fft.rfftfreq(n, d=length / n, dtype=torch.float64) * TWO_PI  # (n//2+1,)


def _as_1d(name: str, v: torch.Tensor) -> torch.Tensor:
    v = torch.as_tensor(v, dtype=torch.float64)
    if v.ndim != 1:
        raise ValueError(f"expected {name} as a 1-d tensor, got shape {tuple(v.shape)}")
    return v


def convection_exact(
    u0: Callable[[torch.Tensor], torch.Tensor],
    beta: float,
    x: torch.Tensor,
    t: torch.Tensor,
    length: float = TWO_PI,
) -> torch.Tensor:
    """``u(x, t) = u0((x - beta t) mod L)``: ``x (nx,)``, ``t (nt,)`` -> ``(nt, nx)``."""
    x, t = _as_1d("x", x), _as_1d("t", t)
    _check_settings("convection_exact", length=length, beta=beta)
    return u0(torch.remainder(x[None, :] - beta * t[:, None], length))


def convection_diffusion_fourier(
    u0: torch.Tensor, t: torch.Tensor, *, beta: float, nu: float, length: float = TWO_PI
) -> torch.Tensor:
    """Exact Fourier solution of ``u_t + beta u_x = nu u_xx`` on ``[0, L)``.

    Args:
        u0: ``(nx,)`` initial values on :func:`periodic_grid` ``(nx, L)``.
        t: ``(nt,)`` finite output times, ``>= 0`` when ``nu > 0``.
        beta: the advection speed.
        nu: the viscosity, ``>= 0``.
        length: the period ``L``.

    Returns:
        ``(nt, nx)``.
    """
    u0, t = _as_1d("u0", u0), _as_1d("t", t)
    _check_settings("convection_diffusion_fourier", length=length, beta=beta, nu=nu)
    if nu < 0:
        raise ValueError(f"expected a non-negative viscosity, got nu={nu}")
    # (why) with nu > 0 a negative time amplifies mode k by exp(nu k^2 |t|): rounding noise
    # came back as values of 7e53 at t = -1
    if not torch.isfinite(t).all() or (nu > 0 and torch.any(t < 0)):
        raise ValueError(
            f"expected finite times, and times >= 0 with nu > 0 (diffusion backwards in time "
            f"is ill-posed), got t = {t.tolist() if t.numel() <= 8 else t} with nu={nu}"
        )
    k = _wavenumbers(u0.shape[0], length)
    decay = torch.exp(-(1j * beta * k + nu * k**2)[None, :] * t[:, None])  # (nt, nk)
    return torch.fft.irfft(torch.fft.rfft(u0)[None, :] * decay, n=u0.shape[0], dim=-1)


def burgers_spectral(
    u0: torch.Tensor,
    t: torch.Tensor,
    *,
    nu: float,
    length: float = TWO_PI,
    dt: float = 1e-3,
    beta: float = 0.0,
) -> torch.Tensor:
    """Viscous Burgers ``u_t + beta u_x + (u^2 / 2)_x = nu u_xx`` on ``[0, L)``.

    Fourier pseudo-spectral in space (the product ``u^2`` is dealiased by the 2/3 rule), ETDRK4
    in time with the linear part ``-i beta k - nu k^2`` integrated exactly. Steps of at most
    ``dt`` land exactly on every requested time.

    Args:
        u0: ``(nx,)`` initial values on :func:`periodic_grid` ``(nx, L)``.
        t: ``(nt,)`` finite, non-decreasing output times ``>= 0``.
        nu: viscosity ``> 0`` (the grid must resolve the viscous scale: ``nx`` of a few times
            ``L / nu`` points is safe for shocks).
        length: the period ``L``.
        dt: the largest time step.
        beta: the advection speed.

    Returns:
        ``(nt, nx)``.
    """
    u0, t = _as_1d("u0", u0), _as_1d("t", t)
    _check_settings("burgers_spectral", length=length, beta=beta, nu=nu)
    if nu <= 0:
        raise ValueError(f"expected a positive viscosity for Burgers, got nu={nu}")
    if not 0 < dt < math.inf:
        # (why) a negative dt made ceil(span / dt) negative and took one step over the whole
        # span without a word (0.07 off at t = 1 for nu = 0.1); dt = 0 divided by zero
        raise ValueError(f"expected a positive, finite time step dt, got dt={dt}")
    # (why) a nan passed the comparisons and got the previous time's row; inf overflowed ceil
    if not torch.isfinite(t).all() or torch.any(t < 0) or torch.any(t[1:] < t[:-1]):
        raise ValueError(
            f"expected finite, non-negative, non-decreasing output times, got t = "
            f"{t.tolist() if t.numel() <= 8 else t}"
        )
    n = u0.shape[0]
    k = _wavenumbers(n, length)
    dealias = (k.abs() < (2.0 / 3.0) * k.abs().max() + 1e-12).to(torch.float64)
    lin = (-1j * beta * k - nu * k**2).to(torch.complex128)
    g = -0.5j * k * dealias  # N(v) = -(1/2) i k F[u^2]

    def nonlinear(v: torch.Tensor) -> torch.Tensor:
        return g * torch.fft.rfft(torch.fft.irfft(v, n=n) ** 2)

    v = torch.fft.rfft(u0).to(torch.complex128)
    out = torch.empty(t.shape[0], n, dtype=torch.float64)
    now, cache = 0.0, {}
    for i, target in enumerate(t.tolist()):
        span = target - now
        if span > 0:
            steps = max(1, math.ceil(span / dt - 1e-9))
            h = span / steps
            key = round(h, 15)
            if key not in cache:
                cache[key] = etdrk4_coefficients(lin, h)
            for _ in range(steps):
                v = etdrk4_step(v, nonlinear, cache[key])
            now = target
        out[i] = torch.fft.irfft(v, n=n)
    return out


def burgers_cole_hopf_sine(
    x: torch.Tensor, t: torch.Tensor, *, nu: float, modes: int = 512
) -> torch.Tensor:
    """Exact viscous Burgers solution for ``u0 = sin(x)`` on ``[0, 2 pi)`` (Cole-Hopf).

    ``u = -2 nu phi_x / phi`` with ``phi_t = nu phi_xx`` and ``phi(x, 0) = exp((cos x - 1) / (2 nu))``;
    ``phi`` is summed as a Fourier series whose coefficients are computed from ``modes`` samples
    (spectrally accurate: ``phi(., 0)`` is entire). Rounding limits it through the
    ``exp(-1 / nu)`` dynamic range of ``phi``: measured against :func:`burgers_spectral` (2048
    points, itself consistent to 1e-12), the largest error is 1e-12 at ``nu = 0.2``, 6e-11 at
    ``nu = 0.1``, 2e-9 at ``nu = 0.07`` and 5e-7 at ``nu = 0.05`` (near ``t = 0``; 1e-8 from
    ``t = 0.5``), and grows as ``nu`` falls further.

    Args:
        x: ``(nx,)`` points.
        t: ``(nt,)`` times.
        nu: the viscosity, ``> 0``.
        modes: the number of samples of ``phi(., 0)`` the Fourier coefficients come from.

    Returns:
        ``(nt, nx)``.
    """
    x, t = _as_1d("x", x), _as_1d("t", t)
    _check_settings("burgers_cole_hopf_sine", length=TWO_PI, beta=0.0, nu=nu)
    if nu <= 0:
        raise ValueError(f"expected a positive viscosity, got nu={nu}")
    y = periodic_grid(modes)
    c = torch.fft.rfft(torch.exp((torch.cos(y) - 1) / (2 * nu))) / modes  # (nk,)
    k = torch.arange(c.shape[0], dtype=torch.float64)
    w = torch.where((k == 0) | (k == modes / 2), 1.0, 2.0)  # real series: count +-k once each
    amp = (w * c)[None, :] * torch.exp(-nu * k[None, :] ** 2 * t[:, None])  # (nt, nk)
    phase = torch.exp(1j * k[:, None] * x[None, :])  # (nk, nx)
    phi = (amp @ phase).real
    phi_x = ((amp * 1j * k[None, :]) @ phase).real
    return -2 * nu * phi_x / phi
