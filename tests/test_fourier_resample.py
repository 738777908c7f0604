"""fourier_resample against scipy.signal.resample, and its Nyquist convention where they differ."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from sciml.layers import fourier_resample

ss = pytest.importorskip("scipy.signal")


def _scipy(u: np.ndarray, size) -> np.ndarray:
    for a, m in zip(range(u.ndim - len(size), u.ndim), size):
        u = ss.resample(u, m, axis=a)
    return u


def _kept_once(u: np.ndarray, size) -> np.ndarray:
    """The module docstring's rule in NumPy: per axis keep -(s // 2) .. (s - 1) // 2 of the
    forward-normalised DFT, s = min(n, m), each at its own place on the m-point grid (so an
    even s keeps its Nyquist bin once, at -s/2); the real part of the inverse DFT."""
    axes = tuple(range(u.ndim - len(size), u.ndim))
    spec = np.fft.fftn(u, axes=axes) / np.prod([u.shape[a] for a in axes])
    for a, m in zip(axes, size):
        n = spec.shape[a]
        s = min(n, m)
        freqs = np.r_[0 : (s - 1) // 2 + 1, -(s // 2) : 0].astype(int)
        shape = list(spec.shape)
        shape[a] = m
        out = np.zeros(shape, dtype=complex)
        idx = [slice(None)] * u.ndim
        src = list(idx)
        for f in freqs:
            idx[a], src[a] = f % m, f % n
            out[tuple(idx)] = spec[tuple(src)]
        spec = out
    return (np.fft.ifftn(spec, axes=axes) * np.prod(size)).real


def test_fourier_resample_is_scipys_resample_where_no_even_size_is_kept():
    # odd s = min(n, m) per axis: no Nyquist bin, the two agree; so do upsampling axes of even
    # n when only one axis has a Nyquist bin (a real u's Nyquist coefficient is real, and
    # Re(X exp(-i pi n j / m)) = X cos(pi n j / m) is scipy's split)
    rng = np.random.default_rng(0)
    cases = [((2, 9), (5,)), ((2, 9), (20,)), ((7,), (7,)), ((3, 1), (4,)), ((2, 5, 7), (9, 3)),
             ((5, 7, 3), (11, 5, 7)), ((2, 6, 7), (12, 13)), ((2, 7, 8), (5, 16)),
             ((2, 10), (15,))]  # fmt: skip
    for shape, size in cases:
        u = rng.standard_normal(shape)
        want = _scipy(u, size)
        np.testing.assert_allclose(fourier_resample(torch.from_numpy(u), size), want, atol=1e-12)
        # a strided view and float32 give the same numbers
        big = torch.from_numpy(np.repeat(u, 2, axis=-1))[..., ::2]
        assert not big.is_contiguous()
        np.testing.assert_allclose(fourier_resample(big, size), want, atol=1e-12)
        got32 = fourier_resample(torch.from_numpy(u).float(), size)
        assert got32.dtype == torch.float32
        np.testing.assert_allclose(got32, want, atol=1e-5)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_an_even_kept_size_keeps_its_nyquist_bin_once_where_scipy_splits_it(d):
    # the documented (Poseidon) convention, against the NumPy rule for every size pair; where
    # it differs from scipy.signal.resample: a downsampled even m gets Re(X_{m/2}) (-1)^j less
    # (scipy sums X_{m/2} and X_{-m/2}), and two upsampled even axes n_a, n_b get the Nyquist
    # corner as cos(t_a + t_b), not scipy's band-limited cos(t_a) cos(t_b)
    rng = np.random.default_rng(d)
    sizes = [3, 4, 5, 6] if d < 3 else [3, 4]
    for shape in itertools.product(sizes, repeat=d):
        u = rng.standard_normal((2, *shape))
        for size in itertools.product(*[(n - 1, n, 2 * n, 2 * n + 1) for n in shape]):
            got = fourier_resample(torch.from_numpy(u), size).numpy()
            np.testing.assert_allclose(got, _kept_once(u, size), atol=1e-12)
    n, m = 10, 4
    u = rng.standard_normal((2, n))
    x = np.fft.fft(u, axis=-1) / n
    diff = _scipy(u, (m,)) - fourier_resample(torch.from_numpy(u), m).numpy()
    np.testing.assert_allclose(
        diff, x[:, m // 2].real[:, None] * (-1.0) ** np.arange(m), atol=1e-12
    )
    u = rng.standard_normal((6, 8))
    x = np.fft.fft2(u) / u.size
    ta = np.pi * 6 * np.arange(12)[:, None] / 12
    tb = np.pi * 8 * np.arange(16)[None, :] / 16
    diff = fourier_resample(torch.from_numpy(u), (12, 16)).numpy() - _scipy(u, (12, 16))
    corner = x[3, 4].real * (np.cos(ta + tb) - np.cos(ta) * np.cos(tb))
    np.testing.assert_allclose(diff, corner, atol=1e-12)
    assert np.abs(corner).max() > 0.05
