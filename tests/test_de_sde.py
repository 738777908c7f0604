"""sciml.de NeuralSDE and the stable SDE classes of Oh et al. (2024)."""

import math

import pytest
import torch
from torch import nn

from sciml.de import EulerMaruyama, GlobalHeuristic, LocalHeuristic, NeuralSDE
from sciml.de.neural_sde import accepted_em_steps, step_doubling_error
from sciml.de.stable_sde import (
    GeometricSDE,
    LangevinSDE,
    LinearNoiseSDE,
    LinearPath,
    NaiveSDE,
    StableSDEConfig,
)

T, SHIFT, SIGMA_MAX = 5.0, 100.0, 0.1


def _run(cls, shift, seed):
    torch.manual_seed(seed)
    m = cls(StableSDEConfig(2, hidden=8, width=32), EulerMaruyama(dt=0.05))
    g = torch.Generator().manual_seed(100)
    t = torch.linspace(0, T, 26)
    x = torch.randn(16, 26, 2, generator=g) + shift
    with torch.no_grad():
        z = m.hidden_path(t, x)
    return z[0], z[-1]


def test_stable_classes_stay_bounded_where_naive_grows_with_the_shift():
    # |int sigma dW| <= 6 sd with sd <= SIGMA_MAX sqrt(T); drift |gamma| <= 1 (tanh)
    noise = 6 * SIGMA_MAX * math.sqrt(T)
    naive = {}
    for seed in range(3):
        for shift in (0.0, SHIFT):
            # Langevin: |z_T - z_0| <= T + noise whatever the input
            z0, zT = _run(LangevinSDE, shift, seed)
            assert float((zT - z0).abs().max()) <= T + noise
            # geometric: |log|z_T / z_0|| <= T (1 + sigma^2 / 2) + noise (+ Euler slack)
            z0, zT = _run(GeometricSDE, shift, seed)
            logr = (zT.abs().log() - z0.abs().log()).abs().max()
            assert float(logr) <= T * (1 + SIGMA_MAX**2 / 2) + noise + 0.5
            # linear noise: |z_T| <= e^{2 noise} (|z_0| + T)
            z0, zT = _run(LinearNoiseSDE, shift, seed)
            assert bool((zT.abs() <= math.exp(2 * noise) * (z0.abs() + T)).all())
            z0, zT = _run(NaiveSDE, shift, seed)
            naive[(seed, shift)] = float((zT - z0).abs().max())
    for seed in range(3):
        # the naive SDE's increment grows with the shift, far past the Langevin bound
        assert naive[(seed, SHIFT)] > 5 * naive[(seed, 0.0)]
        assert naive[(seed, SHIFT)] > 3 * (T + noise)


def test_linear_path_interpolates():
    t = torch.tensor([0.0, 1.0, 3.0])
    x = torch.tensor([[[0.0], [2.0], [6.0]]])
    p = LinearPath(t, x)
    assert float(p(torch.tensor(2.0))) == pytest.approx(4.0)
    assert float(p(torch.tensor(0.5))) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="increasing"):
        LinearPath(torch.tensor([0.0, 0.0, 1.0]), x)


class _Lin(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a, dtype=torch.float64))

    def forward(self, t, y):
        return self.a * y


def test_sde_nfe_and_ornstein_uhlenbeck_mean():
    """Fixed-step EM: one drift evaluation per step; OU mean E y(T) = y0 e^{-T}."""
    sde = NeuralSDE(_Lin(-1.0), _Const(0.3), EulerMaruyama(dt=0.01))
    y0 = torch.ones(4000, 1, dtype=torch.float64)
    with torch.no_grad():
        ys = sde(y0, torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert sde.nfe_forward == 100 + 1  # + torchsde's one-off shape check of f and g
    # EM mean is (1 - dt)^N exactly; Monte Carlo sd = 0.3 sqrt((1 - e^{-2})/2) / sqrt(4000)
    assert float(ys[-1].mean()) == pytest.approx(0.99**100, abs=4 * 0.3 * 0.66 / math.sqrt(4000))


# torchsde warns about adaptive Euler-Maruyama for any noise NeuralSDE declares as diagonal; the
# noise here is constant (additive), where adaptive steps do converge
@pytest.mark.filterwarnings("ignore:Numerical solution is not guaranteed to converge")
def test_default_brownian_path_follows_torch_seed():
    """The default Brownian path (and so an adaptive solve's NFE) is fixed by torch.manual_seed
    alone; torchsde by itself would draw its entropy from numpy's global generator."""
    import numpy as np

    sde = NeuralSDE(_Lin(-1.0), _Const(0.5), EulerMaruyama(dt=0.1, adaptive=True, rtol=1e-3))
    y0, t = torch.ones(8, 1), torch.tensor([0.0, 2.0])

    def solve(torch_seed, numpy_seed):
        np.random.seed(numpy_seed)
        torch.manual_seed(torch_seed)
        with torch.no_grad():
            return sde(y0, t)[-1], sde.nfe_forward

    (a, na), (b, nb), (c, _) = solve(0, 1), solve(0, 2), solve(1, 1)
    assert torch.equal(a, b) and na == nb
    assert not torch.allclose(a, c)


class _Const(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.s = s

    def forward(self, t, y):
        return torch.full_like(y, self.s)


def test_step_doubling_error_of_linear_drift_is_exact():
    """For dy = a y dt (no noise) the step-doubling difference is y a^2 h^2 / 4."""
    sde = NeuralSDE(_Lin(-0.7), _Const(0.0))
    y = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    h, a = 0.3, -0.7
    e = step_doubling_error(sde.sde, 0.0, y, h, rtol=0.0, atol=1.0)
    exact = (y * a * a * h * h / 4).pow(2).mean().sqrt()
    assert float(e.detach()) == pytest.approx(float(exact), rel=1e-12)


@pytest.mark.parametrize("reg", [LocalHeuristic(1.0), GlobalHeuristic(1.0)])
def test_sde_regulariser_gradient_matches_finite_differences(reg):
    """d R / d a for dy = a y dt + 0 dW, same Brownian draws: autograd vs central differences."""

    def run(a):
        sde = NeuralSDE(_Lin(a), _Const(0.0), EulerMaruyama(dt=0.1), regulariser=reg)
        torch.manual_seed(4)
        sde(
            torch.tensor([[1.0, 0.5]], dtype=torch.float64),
            torch.tensor([0.0, 1.0], dtype=torch.float64),
        )
        return sde

    sde = run(-0.9)
    sde.regularisation.backward()
    g = float(sde.sde.drift.a.grad)
    fd = (run(-0.9 + 1e-6).regularisation - run(-0.9 - 1e-6).regularisation).item() / 2e-6
    assert g == pytest.approx(fd, rel=1e-5)


class _Sin(nn.Module):
    def forward(self, t, y):
        return 2.0 * torch.sin(3.0 * y)


@pytest.mark.filterwarnings("ignore:Numerical solution is not guaranteed")
@pytest.mark.parametrize("adaptive", [True, False])
def test_accepted_em_steps_are_the_solvers_steps(adaptive):
    """Regression: the SDE regularisers used the spacing of the drift-evaluation times as the step
    size, which for adaptive EM is half the accepted step (and mixes in rejected attempts).
    With zero noise, the state at each recovered step start must be what two EM half steps of
    the recovered size give from the previous start, and the steps must tile [t0, t_end]."""
    solver = EulerMaruyama(dt=0.1, adaptive=adaptive, rtol=1e-2, atol=1e-2)
    sde = NeuralSDE(_Sin(), _Const(0.0), solver)
    y0 = torch.tensor([[1.0, -0.4], [0.3, 2.0]], dtype=torch.float64)
    with torch.no_grad():
        ys = sde(y0, torch.tensor([0.0, 1.0], dtype=torch.float64))
    steps = accepted_em_steps(sde.sde.calls, 1.0, adaptive)
    assert steps[0][0] == 0.0 and len(steps) >= 5
    assert steps[-1][0] + steps[-1][1] == pytest.approx(1.0, abs=1e-12)
    f = _Sin()
    for (s0, h0, y_s), (s1, _, y_next) in zip(steps[:-1], steps[1:]):
        assert s1 == pytest.approx(s0 + h0, abs=1e-12)
        if adaptive:  # torchsde propagates the two-half-step solution
            y_m = y_s + f(None, y_s) * (h0 / 2)
            y_pred = y_m + f(None, y_m) * (h0 / 2)
        else:
            y_pred = y_s + f(None, y_s) * h0
        torch.testing.assert_close(y_next, y_pred, rtol=1e-12, atol=1e-12)
    s_last, h_last, y_last = steps[-1]
    if adaptive:
        y_m = y_last + f(None, y_last) * (h_last / 2)
        torch.testing.assert_close(ys[-1], y_m + f(None, y_m) * (h_last / 2))
    else:
        torch.testing.assert_close(ys[-1], y_last + f(None, y_last) * h_last)
