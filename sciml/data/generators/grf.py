"""Gaussian random fields on the periodic box, sampled spectrally.

The field ``u`` on the torus ``[0, L)^d`` (``d`` = 1 or 2) is a centred Gaussian with covariance
operator

    C = sigma^2 (-Laplacian + tau^2 I)^(-alpha)

on ``L^2([0, L)^d)``, restricted to functions of zero mean (the constant Fourier mode is set to
zero, as in the FNO reference samplers). On an ``N^d`` grid the field is the truncated
Karhunen-Loeve expansion in the orthonormal eigenfunctions ``L^(-d/2) e^{2 pi i k.x/L}`` of C,

    u(x) = L^(-d/2) sum_{k != 0, |k_i| <= N/2} sigma (4 pi^2 |k|^2 / L^2 + tau^2)^(-alpha/2) xi_k e^{2 pi i k.x/L}

with ``xi_k`` complex standard normals, Hermitian-symmetric (so ``u`` is real) and
``E |xi_k|^2 = 1``. It is drawn by filtering real white noise: the discrete Fourier transform of
``N^d`` i.i.d. N(0, 1) values, divided by ``N^(d/2)``, has exactly that law, Nyquist modes included.
The pointwise variance is therefore ``L^(-d) sum_{k != 0} sigma^2 (4 pi^2 |k|^2 / L^2 + tau^2)^(-alpha)``
(see :func:`grf_variance`). The factor ``L^(-d)`` makes the local law independent of the box: as
``L`` grows the variance tends to that of the stationary field on the whole space,
``sigma^2 int (|k|^2 + tau^2)^(-alpha) dk / (2 pi)^d`` (``1/4`` for ``d = 1``, ``1/(4 pi)`` for
``d = 2`` with ``alpha = 2`` and the default ``sigma``). ``L = 1``, the FNO box, has no factor.

Note on the FNO reference code: its ``GaussianRF`` takes the real part of a complex field with an
extra ``sqrt(2)``, which doubles this covariance; pass ``sigma * sqrt(2)`` to reproduce its amplitude.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Literal, overload

import numpy as np
import torch

from ..._scalars import is_int, is_real

__all__ = ["sample_grf", "grf_spectrum", "grf_variance", "generate_grf"]

Backend = Literal["numpy", "torch"]


def _wavenumbers(resolution: int, dim: int) -> np.ndarray:
    """Squared integer wavenumbers ``|k|^2`` on the rfft grid, shape ``(N,)*(dim-1) + (N//2+1,)``."""
    k_full = np.fft.fftfreq(resolution, d=1.0 / resolution)
    k_half = np.fft.rfftfreq(resolution, d=1.0 / resolution)
    if dim == 1:
        return k_half**2
    kx, ky = np.meshgrid(k_full, k_half, indexing="ij")
    return kx**2 + ky**2


def grf_spectrum(
    resolution: int,
    *,
    dim: int = 1,
    alpha: float = 2.0,
    tau: float = 3.0,
    sigma: float | None = None,
    length: float = 1.0,
) -> np.ndarray:
    """Covariance eigenvalues ``sigma^2 (4 pi^2 |k|^2 / L^2 + tau^2)^(-alpha)`` on the rfft grid.

    ``sigma=None`` is :func:`sample_grf`'s default, ``tau^(alpha - dim/2)``. Returns an array of
    shape ``(N//2+1,)`` for ``dim=1`` or ``(N, N//2+1)`` for ``dim=2`` (``N = resolution``),
    with the constant mode set to zero.
    """
    # (why) a NaN alpha, tau or sigma passed every check and every sample came back NaN
    shape = {"alpha": alpha, "tau": tau, "sigma": 1.0 if sigma is None else sigma}
    if not all(is_real(v) and math.isfinite(v) for v in shape.values()):
        raise ValueError(
            f"expected finite alpha, tau and sigma (or sigma None), got alpha={alpha}, "
            f"tau={tau}, sigma={sigma}"
        )
    # (why) tau is an inverse length: tau < 0 made the default amplitude tau^(alpha - d/2) a
    # complex or negative number (tau = -7, alpha = 2.5, d = 2 drew another law than tau = 7),
    # and tau = 0 made it 0, so every sample was exactly zero without a word
    # (why) C is trace class only for alpha > dim/2: below, the variance grew without bound
    # with the grid (alpha = 0.5, 1D: 749, 1025, 1301 at N = 64, 256, 1024) and Burgers from
    # such a draw (alpha = -2) stepped at an ever smaller dt for minutes
    if not alpha > dim / 2.0:
        raise ValueError(
            f"expected alpha > dim/2 = {dim / 2.0:g} (a field of finite variance; at smaller "
            f"alpha it grows without bound with the resolution), got alpha={alpha}"
        )
    if tau < 0 or (tau == 0 and sigma is None):
        raise ValueError(
            f"expected tau > 0 (an inverse length scale), or tau = 0 with an explicit sigma "
            f"(sigma=None means tau^(alpha - dim/2), zero at tau = 0), got tau={tau}, sigma={sigma}"
        )
    if not (math.isfinite(length) and length > 0):
        # (why) 0 divided by zero in the draw's scale; a negative box stored a decreasing grid
        raise ValueError(f"expected a box length > 0, got length={length}")
    if sigma is None:
        # (why) sample_grf's default: with sigma = 1 here the two disagreed for the same
        # arguments (grf_variance(64, tau=5) was 0.0020, sample_grf's field's variance 0.25)
        sigma = tau ** (alpha - dim / 2.0)
    k2 = _wavenumbers(resolution, dim)
    with np.errstate(divide="ignore", invalid="ignore"):  # (why) the k = 0 mode at tau = 0
        lam = sigma**2 * (4.0 * math.pi**2 * k2 / length**2 + tau**2) ** (-alpha)
    lam.flat[0] = 0.0
    return lam


def grf_variance(
    resolution: int,
    *,
    dim: int = 1,
    alpha: float = 2.0,
    tau: float = 3.0,
    sigma: float | None = None,
    length: float = 1.0,
) -> float:
    """Pointwise variance ``E u(x)^2`` of the discrete field :func:`sample_grf` draws with the
    same arguments (``sigma=None``: its default ``tau^(alpha - dim/2)``): ``L^(-d)`` times the
    sum of :func:`grf_spectrum` over all modes."""
    lam = grf_spectrum(resolution, dim=dim, alpha=alpha, tau=tau, sigma=sigma, length=length)
    # Hermitian weights: rfft columns other than 0 and Nyquist stand for two modes each.
    weight = np.full(lam.shape[-1], 2.0)
    weight[0] = 1.0
    if resolution % 2 == 0:
        weight[-1] = 1.0
    return float((lam * weight).sum()) / length**dim


# (why) overloads: the result type follows `backend`; with only the union, a caller's type
# checker rejected `sample_grf(..., backend="torch").to(device)` and numpy's `.astype`
@overload
def sample_grf(
    n: int,
    resolution: int,
    *,
    dim: int = ...,
    alpha: float = ...,
    tau: float = ...,
    sigma: float | None = ...,
    length: float = ...,
    seed: int | None = ...,
    backend: Literal["numpy"] = ...,
    dtype: torch.dtype | np.dtype | type = ...,
    device: torch.device | str | None = ...,
) -> np.ndarray: ...
@overload
def sample_grf(
    n: int,
    resolution: int,
    *,
    dim: int = ...,
    alpha: float = ...,
    tau: float = ...,
    sigma: float | None = ...,
    length: float = ...,
    seed: int | None = ...,
    backend: Literal["torch"],
    dtype: torch.dtype | np.dtype | type = ...,
    device: torch.device | str | None = ...,
) -> torch.Tensor: ...
def sample_grf(
    n: int,
    resolution: int,
    *,
    dim: int = 1,
    alpha: float = 2.0,
    tau: float = 3.0,
    sigma: float | None = None,
    length: float = 1.0,
    seed: int | None = 0,
    backend: Backend = "numpy",
    dtype: torch.dtype | np.dtype | type = np.float64,
    device: torch.device | str | None = None,
) -> np.ndarray | torch.Tensor:
    """Draw ``n`` samples of the periodic Gaussian random field ``N(0, sigma^2 (-Lap + tau^2)^-alpha)``.

    Args:
        n: number of samples.
        resolution: grid points per axis ``N``; the grid is ``x_j = j L / N``, ``j = 0..N-1``.
        dim: spatial dimension, 1 or 2.
        alpha: smoothness exponent of the covariance, ``> dim/2`` (finite variance).
        tau: inverse length scale of the covariance.
        sigma: amplitude; ``None`` gives ``tau^(alpha - dim/2)`` (the FNO convention, which makes
            the field's variance roughly independent of ``tau``).
        length: period ``L`` of the box; the modes are normalised on it (``L^(-d/2)``), so a
            larger box gives a longer stretch of the same field, not a larger variance.
        seed: seed of the backend's generator (``numpy.random.default_rng`` or
            ``torch.Generator``); the two backends draw different samples for the same seed.
        backend: ``"numpy"`` returns an ``np.ndarray``, ``"torch"`` a ``torch.Tensor``.
        dtype: dtype of the result.
        device: torch device of the result (``backend="torch"``).

    Returns:
        samples of shape ``(n, N)`` (``dim=1``) or ``(n, N, N)`` (``dim=2``).
    """
    # (why) is_int: n = True was numpy's bare "an integer is required", dim = True ran as 1
    if not (is_int(dim) and dim in (1, 2)):
        raise ValueError(f"expected dim 1 or 2, got {dim}")
    if not (is_int(n) and n >= 1 and is_int(resolution) and resolution >= 2):
        raise ValueError(f"expected n >= 1 and resolution >= 2, got n={n}, resolution={resolution}")
    if backend == "numpy":
        (u,) = _numpy_grf_chunks(
            n, resolution, chunk=n, dim=dim, alpha=alpha, tau=tau, sigma=sigma, length=length,
            seed=seed,
        )  # fmt: skip
        return u.astype(dtype, copy=False)
    sqrt_lam, scale = _filter(resolution, dim, alpha, tau, sigma, length)
    shape = (n,) + (resolution,) * dim
    axes = tuple(range(-dim, 0))
    if backend == "torch":
        gen = torch.Generator(device=device or "cpu")
        if seed is not None:
            gen.manual_seed(seed)
        else:
            gen.seed()
        noise = torch.randn(shape, generator=gen, dtype=torch.float64, device=device)
        filt = torch.as_tensor(sqrt_lam, device=device)
        u = torch.fft.irfftn(torch.fft.rfftn(noise, dim=axes) * filt, s=shape[1:], dim=axes)
        tdtype = dtype if isinstance(dtype, torch.dtype) else getattr(torch, np.dtype(dtype).name)
        return (u * scale).to(tdtype)
    raise ValueError(f"expected backend 'numpy' or 'torch', got {backend!r}")


def _filter(
    resolution: int, dim: int, alpha: float, tau: float, sigma: float | None, length: float
) -> tuple[np.ndarray, float]:
    """The spectral filter ``sqrt(lambda_k)`` and the scale of :func:`sample_grf`'s draws."""
    sqrt_lam = np.sqrt(
        grf_spectrum(resolution, dim=dim, alpha=alpha, tau=tau, sigma=sigma, length=length)
    )
    # sqrt(N^d) turns the DFT of white noise into standard normal xi_k; L^(-d/2) normalises the
    # eigenfunctions e^{2 pi i k.x/L} on the box, as the covariance operator C requires.
    return sqrt_lam, math.sqrt(resolution**dim) / length ** (dim / 2.0)


def _numpy_grf_chunks(
    n: int,
    resolution: int,
    *,
    chunk: int,
    dim: int = 1,
    alpha: float = 2.0,
    tau: float = 3.0,
    sigma: float | None = None,
    length: float = 1.0,
    seed: int | None = 0,
) -> Iterator[np.ndarray]:
    """:func:`sample_grf`'s numpy draws (float64), ``chunk`` samples at a time: the same numbers
    (one generator drawn in order, a transform per sample), in the memory of ``chunk`` samples.

    (why) the Darcy coefficient of the FNO 421-grid is drawn on an 840^2 box: all 1000 training
    samples at once held 5.6 GB of noise and about 4 times that in transforms (peak 22 GB).
    """
    sqrt_lam, scale = _filter(resolution, dim, alpha, tau, sigma, length)
    rng = np.random.default_rng(seed)
    axes = tuple(range(-dim, 0))
    for start in range(0, n, chunk):
        shape = (min(chunk, n - start),) + (resolution,) * dim
        noise = rng.standard_normal(shape)
        u = np.fft.irfftn(np.fft.rfftn(noise, axes=axes) * sqrt_lam, s=shape[1:], axes=axes)
        yield u * scale


def generate_grf(
    n: int,
    resolution: int,
    *,
    seed: int = 0,
    dim: int = 2,
    alpha: float = 2.0,
    tau: float = 3.0,
    sigma: float | None = None,
    length: float = 1.0,
) -> dict[str, Any]:
    """Data set of ``n`` GRF samples ``u ~ N(0, sigma^2 (-Laplacian + tau^2 I)^(-alpha))``.

    Returns the keyword arguments of :func:`sciml.data.write`: static field ``u`` of shape
    ``(n, N)`` or ``(n, N, N)`` (float32) on the periodic grid ``x_j = j L / N``.
    """
    u = sample_grf(
        n, resolution, dim=dim, alpha=alpha, tau=tau, sigma=sigma, length=length, seed=seed
    )
    grid = np.arange(resolution) * (length / resolution)
    axes = ("x", "y")[:dim]
    return {
        "static_fields": {"u": u.astype(np.float32)},
        "coords": {a: grid for a in axes},
        "boundary_conditions": {a: "periodic" for a in axes},
        "attrs": {"pde": "gaussian_random_field", "units": {"u": "dimensionless"}},
    }
