"""Losses at the edges a batch can reach: a sample predicted exactly, the max norm, zero targets.

Gradients are checked against hand-derived formulas in NumPy (for H1, with the derivative as an
explicit matrix built from NumPy's FFT), values against ``numpy.linalg.norm``.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from sciml.train import H1Loss, LpLoss


def _batch_with_an_exact_sample(shape=(3, 2, 8)):
    rng = np.random.default_rng(1)
    y = rng.standard_normal(shape)
    pred = y + 0.1 * rng.standard_normal(shape)
    pred[1] = y[1]  # predicted exactly: e = 0
    return pred, y


@pytest.mark.parametrize("relative", [True, False])
@pytest.mark.parametrize("p", [1.5, 2.0, 3.0])
def test_lp_gradient_with_an_exactly_predicted_sample_is_the_hand_gradient(p, relative):
    """d/de_j of ||e||_p is sign(e_j) |e_j|^(p-1) / ||e||_p^(p-1); the exact sample's is 0. The
    root's infinite derivative at 0 made the whole batch's gradient nan (all but p = 2
    relative), so one exact sample turned every weight nan in the optimiser step."""
    pred, y = _batch_with_an_exact_sample()
    b, n = pred.shape[0], pred[0].size
    P = torch.tensor(pred, requires_grad=True)
    LpLoss(p, relative=relative)(P, torch.from_numpy(y)).backward()
    e, yy = (pred - y).reshape(b, -1), y.reshape(b, -1)
    want = np.zeros_like(e)
    for i in (0, 2):
        norm = np.linalg.norm(e[i], p)
        g = np.sign(e[i]) * np.abs(e[i]) ** (p - 1) / norm ** (p - 1)
        want[i] = g / np.linalg.norm(yy[i], p) if relative else g / n ** (1 / p)
    np.testing.assert_allclose(P.grad.numpy().reshape(b, -1), want / b, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("relative", [True, False])
def test_lp_max_norm_matches_numpy(relative):
    """p = inf is accepted (p >= 1) and was 1.0 whatever the data: |e|^inf summed, to the 0th
    power. It is the max norm."""
    rng = np.random.default_rng(2)
    pred, y = rng.standard_normal((4, 3, 5)), rng.standard_normal((4, 3, 5))
    e = np.linalg.norm((pred - y).reshape(4, -1), np.inf, axis=1)
    if relative:
        e = e / np.linalg.norm(y.reshape(4, -1), np.inf, axis=1)
    loss = LpLoss(np.inf, relative=relative, reduction="none")
    got = loss(torch.from_numpy(pred), torch.from_numpy(y)).numpy()
    np.testing.assert_allclose(got, e, rtol=1e-14)


def test_lp_with_zero_targets_absolute_is_the_grid_mean_and_relative_is_inf():
    rng = np.random.default_rng(3)
    pred, y = rng.standard_normal((2, 6)), np.zeros((2, 6))
    P, Y = torch.from_numpy(pred), torch.from_numpy(y)
    absolute = LpLoss(3, relative=False, reduction="none")(P, Y).numpy()
    np.testing.assert_allclose(absolute, (np.abs(pred) ** 3).mean(1) ** (1 / 3), rtol=1e-14)
    assert torch.isinf(LpLoss(3, reduction="none")(P, Y)).all()  # documented: undefined


def _derivative_matrix(n, length):
    """d/dx on a periodic grid of n points as an n x n matrix: NumPy FFT, Nyquist mode dropped."""
    k = 2 * np.pi * np.fft.fftfreq(n, d=length / n)
    if n % 2 == 0:
        k[n // 2] = 0.0
    return np.real(np.fft.ifft(1j * k[:, None] * np.fft.fft(np.eye(n), axis=0), axis=0))


@pytest.mark.parametrize("relative", [True, False])
def test_h1_gradient_with_an_exactly_predicted_sample_is_the_hand_gradient(relative):
    """|e|_H1 = sqrt(e^T (I + D^T D) e) per channel row, so its gradient is (I + D^T D) e / |e|_H1
    (0 for the exact sample); it was nan for the whole batch (sqrt at 0)."""
    pred, y = _batch_with_an_exact_sample((3, 2, 8))
    b, c, n = pred.shape
    length = 2.0
    D = _derivative_matrix(n, length)
    A = np.eye(n) + D.T @ D
    P = torch.tensor(pred, requires_grad=True)
    H1Loss(lengths=length, relative=relative)(P, torch.from_numpy(y)).backward()
    e = pred - y
    want = np.zeros_like(e)
    for i in (0, 2):
        norm_e = np.sqrt(sum(e[i, ch] @ A @ e[i, ch] for ch in range(c)))
        norm_y = np.sqrt(sum(y[i, ch] @ A @ y[i, ch] for ch in range(c)))
        scale = norm_e * (norm_y if relative else np.sqrt(c * n))
        want[i] = np.stack([A @ e[i, ch] for ch in range(c)]) / scale
    np.testing.assert_allclose(P.grad.numpy(), want / b, rtol=1e-10, atol=1e-15)
    # and the value through the same matrix
    value = H1Loss(lengths=length, relative=relative, reduction="none")(P, torch.from_numpy(y))
    assert value[1].item() == 0.0


def test_h1_spectral_derivative_is_exact_to_float64_round_off():
    """k was built in float32 (rfftfreq's default dtype), so float64 derivatives carried a
    ~1e-8 error (2.4e-8 for this sine, of amplitude 9.4); now round-off (8.7e-14 measured)."""
    n, length = 64, 2.0
    x = torch.arange(n, dtype=torch.float64) * (length / n)
    k = 2 * np.pi * 3 / length
    d = H1Loss(lengths=length).derivatives(torch.sin(k * x).reshape(1, 1, n))[0][0, 0]
    assert (d - k * torch.cos(k * x)).abs().max().item() < 1e-12


@pytest.mark.parametrize("periodic", [True, False])
def test_h1_on_a_non_square_box_is_the_hand_norm(periodic):
    """16 x 24 points on [0, 2] x [0, 3]: the absolute H1 error of u against 0 is the grid mean
    of u^2 + u_x^2 + u_y^2 with the derivatives by hand (a band-limited periodic u for the
    spectral derivative, a quadratic one, exact for second-order differences, otherwise)."""
    nx, ny, lx, ly = 16, 24, 2.0, 3.0
    if periodic:
        f64 = torch.float64
        x, y = torch.arange(nx, dtype=f64) * lx / nx, torch.arange(ny, dtype=f64) * ly / ny
    else:
        x = torch.linspace(0, lx, nx, dtype=torch.float64)
        y = torch.linspace(0, ly, ny, dtype=torch.float64)
    X, Y = torch.meshgrid(x, y, indexing="ij")
    if periodic:
        a, b = 2 * np.pi / lx, 4 * np.pi / ly
        u = torch.sin(a * X) * torch.cos(b * Y)
        ux, uy = a * torch.cos(a * X) * torch.cos(b * Y), -b * torch.sin(a * X) * torch.sin(b * Y)
    else:
        u, ux, uy = X**2 * Y, 2 * X * Y, X**2
    hand = torch.sqrt((u**2 + ux**2 + uy**2).mean()).item()
    loss = H1Loss(lengths=(lx, ly), periodic=periodic, relative=False, reduction="none")
    got = loss(u[None, None], torch.zeros(1, 1, nx, ny, dtype=torch.float64))
    assert got.shape == (1,) and got.item() == pytest.approx(hand, rel=1e-12)


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        (
            dict(lengths=0.0),
            "expected lengths as numbers > 0 (one, or one per spatial dim), got 0.0",
        ),
        (dict(lengths=-1.0), "got -1.0"),
        (dict(lengths=(1.0, float("nan"))), "got (1.0, nan)"),
        (dict(lengths=True), "got True"),
        (dict(spatial_dims=True), "expected spatial_dims as an int >= 1 or None, got True"),
    ],
)
def test_h1_refuses_lengths_that_are_not_positive_numbers(kwargs, expected):
    """lengths=0 gave a nan loss, lengths=-1 the loss of lengths=1 without a word."""
    with pytest.raises((TypeError, ValueError), match=re.escape(expected)):
        H1Loss(**kwargs)


@pytest.mark.parametrize("p", [True, "2", None])
def test_lp_refuses_an_exponent_that_is_not_a_number(p):
    """p=True ran as the L1 norm; p='2' and None failed with Python's bare comparison
    TypeError ("'>=' not supported between instances of 'str' and 'int')."""
    with pytest.raises(
        TypeError, match=re.escape(f"expected p >= 1 (or inf) for an Lp norm, got p={p!r}")
    ):
        LpLoss(p=p)
