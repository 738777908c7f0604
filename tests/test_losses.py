"""LpLoss, H1Loss and MSE against hand-computed numpy values and analytic derivatives."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sciml.train import MSE, H1Loss, LpLoss


def _pair(shape=(4, 2, 16, 12)):
    rng = np.random.default_rng(0)
    return rng.standard_normal(shape), rng.standard_normal(shape)


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
def test_lp_relative_and_absolute_match_numpy(p):
    pred, y = _pair()
    e = (pred - y).reshape(4, -1)
    rel = (np.abs(e) ** p).sum(1) ** (1 / p) / (np.abs(y.reshape(4, -1)) ** p).sum(1) ** (1 / p)
    ab = (np.abs(e) ** p).mean(1) ** (1 / p)
    P, Y = torch.from_numpy(pred), torch.from_numpy(y)
    np.testing.assert_allclose(LpLoss(p)(P, Y).item(), rel.mean(), rtol=1e-12)
    np.testing.assert_allclose(LpLoss(p, reduction="sum")(P, Y).item(), rel.sum(), rtol=1e-12)
    np.testing.assert_allclose(LpLoss(p, reduction="none")(P, Y).numpy(), rel, rtol=1e-12)
    np.testing.assert_allclose(LpLoss(p, relative=False)(P, Y).item(), ab.mean(), rtol=1e-12)


def test_relative_l2_of_scaled_target_and_point_layout():
    # pred = 1.1 y: relative L2 error is exactly 0.1 for any sample, in any layout
    y = torch.randn(3, 50, 2, dtype=torch.float64)  # (batch, points, channels)
    assert LpLoss()(1.1 * y, y).item() == pytest.approx(0.1, rel=1e-12)


def test_mse_matches_numpy():
    pred, y = _pair((5, 3, 7))
    P, Y = torch.from_numpy(pred), torch.from_numpy(y)
    per = ((pred - y) ** 2).reshape(5, -1).mean(1)
    np.testing.assert_allclose(MSE(reduction="none")(P, Y).numpy(), per, rtol=1e-12)
    np.testing.assert_allclose(MSE()(P, Y).item(), per.mean(), rtol=1e-12)


def test_shape_mismatch_and_bad_arguments_raise():
    with pytest.raises(ValueError, match=r"same shape, got \(2, 3\) and \(2, 4\)"):
        LpLoss()(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="p >= 1"):
        LpLoss(0.5)
    with pytest.raises(ValueError, match="reduction"):
        H1Loss(reduction="avg")


def _grid(n, length=2 * math.pi):
    return torch.arange(n, dtype=torch.float64) * (length / n)


def test_h1_spectral_on_sines_matches_analytic_norms():
    # target y = sin(2x) + 0.3 cos(5x), pred = sin(2x) on [0, 2 pi): the error is -0.3 cos(5x).
    # |f|^2_H1 = sum f^2 + (f')^2 over the grid = n/2 * sum_k a_k^2 (1 + k^2)
    n = 64
    x = _grid(n)
    y = (torch.sin(2 * x) + 0.3 * torch.cos(5 * x)).reshape(1, 1, n)
    pred = torch.sin(2 * x).reshape(1, 1, n)
    loss = H1Loss(lengths=2 * math.pi)
    err2 = n / 2 * 0.09 * (1 + 25)
    y2 = n / 2 * (1 * (1 + 4) + 0.09 * (1 + 25))
    assert loss(pred, y).item() == pytest.approx(math.sqrt(err2 / y2), rel=1e-12)
    absolute = H1Loss(lengths=2 * math.pi, relative=False)(pred, y).item()
    assert absolute == pytest.approx(math.sqrt(err2 / n), rel=1e-12)


def test_spectral_derivative_is_exact_in_2d_and_scales_with_length():
    n, m, L = 32, 24, 3.0
    x = _grid(n, L).reshape(n, 1)
    yy = _grid(m, 2 * L).reshape(1, m)
    kx, ky = 2 * math.pi * 3 / L, 2 * math.pi * 2 / (2 * L)
    u = torch.sin(kx * x) * torch.cos(ky * yy)
    du = H1Loss(lengths=(L, 2 * L)).derivatives(u.reshape(1, 1, n, m))
    torch.testing.assert_close(du[0][0, 0], kx * torch.cos(kx * x) * torch.cos(ky * yy))
    torch.testing.assert_close(du[1][0, 0], -ky * torch.sin(kx * x) * torch.sin(ky * yy))


def test_h1_finite_differences_match_numpy_gradient_and_converge_at_order_two():
    pred, y = _pair((2, 1, 20, 9))
    P, Y = torch.from_numpy(pred), torch.from_numpy(y)
    L = (1.5, 0.8)

    def h1sq(f):
        gx = np.gradient(f, L[0] / 19, axis=2, edge_order=2)
        gy = np.gradient(f, L[1] / 8, axis=3, edge_order=2)
        return (f**2 + gx**2 + gy**2).reshape(2, -1).sum(1)

    expected = np.sqrt(h1sq(pred - y) / h1sq(y)).mean()
    got = H1Loss(lengths=L, periodic=False)(P, Y).item()
    assert got == pytest.approx(expected, rel=1e-12)

    # the derivative of sin(3x) on [0, 1] (endpoints included) converges at second order
    errors = []
    for n in (33, 65, 129):
        x = torch.linspace(0, 1, n, dtype=torch.float64)
        d = H1Loss(periodic=False).derivatives(torch.sin(3 * x).reshape(1, 1, n))[0]
        errors.append((d[0, 0] - 3 * torch.cos(3 * x)).abs().max().item())
    orders = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    assert min(orders) > 1.8, orders
