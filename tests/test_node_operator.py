"""The ``node`` operator family and the ``lotka_volterra`` generator."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sciml
from sciml.data.generators import GENERATORS, generate
from sciml.data.generators.lotka_volterra import (
    generate_lotka_volterra,
    lotka_volterra_invariant,
    lotka_volterra_rhs,
)
from sciml.models import NODE, NODEConfig

RATES = (1.5, 1.0, 3.0, 1.0)


def _linear_node(a: torch.Tensor, **config) -> NODE:
    """A NODE whose field is exactly ``dy/dt = a y`` (no hidden layer, zero bias)."""
    model = NODE(NODEConfig(state_dim=a.shape[0], hidden=(), **config)).double()
    lin = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(lin) == 1
    with torch.no_grad():
        lin[0].weight.copy_(a)
        lin[0].bias.zero_()
    return model.eval()


def test_linear_field_matches_matrix_exponential():
    a = torch.tensor([[-0.3, 2.0], [-2.0, -0.1]], dtype=torch.float64)
    model = _linear_node(a, rtol=1e-8, atol=1e-10)
    y0 = torch.tensor([[1.0, 0.5], [-0.2, 2.0]], dtype=torch.float64)
    t = torch.linspace(0.0, 3.0, 7, dtype=torch.float64)
    with torch.no_grad():
        pred = model(y0, t=t)  # (batch, time, state)
    exact = torch.stack([y0 @ torch.linalg.matrix_exp(a * s).T for s in t], dim=1)
    assert pred.shape == (2, 7, 2)
    torch.testing.assert_close(pred, exact, rtol=1e-6, atol=1e-7)
    assert model.nfe > 0


def test_normalisation_is_a_change_of_variables():
    # dy/dt = s * W((y - c) / s) with W = a: z = (y - c) / s solves dz/dt = a z
    a = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    c, s = (3.0, 1.5), (2.0, 0.5)
    model = _linear_node(a, rtol=1e-8, atol=1e-10, center=c, scale=s)
    z0 = torch.tensor([[0.3, -0.4]], dtype=torch.float64)
    ct, st = torch.tensor(c, dtype=torch.float64), torch.tensor(s, dtype=torch.float64)
    t = torch.linspace(0.0, 2.0, 5, dtype=torch.float64)
    with torch.no_grad():
        pred = model(ct + st * z0, t=t)
    exact = torch.stack([ct + st * (z0 @ torch.linalg.matrix_exp(a * k).T) for k in t], dim=1)
    torch.testing.assert_close(pred, exact, rtol=1e-6, atol=1e-7)


def test_float64_model_takes_the_configs_constants_in_float64():
    """``model.double()`` with ``center = (0.1, 0.7)``, ``scale = (0.3, 1.1)``: the buffers are
    the config's numbers in float64 and the prediction meets the closed form to 1e-10 (measured
    5.8e-12 at rtol = atol = 1e-12). The buffers were float32 and converted, 0.1 became
    0.10000000149, and the prediction was off by 1.0e-7."""
    a = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    c, s = (0.1, 0.7), (0.3, 1.1)
    model = _linear_node(a, rtol=1e-12, atol=1e-12, center=c, scale=s)
    ct, st = torch.tensor(c, dtype=torch.float64), torch.tensor(s, dtype=torch.float64)
    field = model.ode.field.net
    assert torch.equal(field.center, ct) and torch.equal(field.scale, st)
    y0 = torch.tensor([[0.3, -0.4], [1.7, 0.2]], dtype=torch.float64)
    t = torch.linspace(0.0, 2.0, 5, dtype=torch.float64)
    with torch.no_grad():
        pred = model(y0, t=t)
    z0 = (y0 - ct) / st
    exact = torch.stack([ct + st * (z0 @ torch.linalg.matrix_exp(a * k).T) for k in t], dim=1)
    torch.testing.assert_close(pred, exact, rtol=0, atol=1e-10)
    back = model.float()  # and back: float32 buffers rounded once from the config
    assert (
        torch.equal(field.center, torch.tensor(c))
        and back.ode.field.net.scale.dtype == torch.float32
    )


def test_save_load_keeps_normalisation_and_outputs(tmp_path):
    torch.manual_seed(0)
    model = NODE(NODEConfig(hidden=(8,), center=(3.0, 1.5), scale=(1.2, 0.8))).eval()
    model.save_pretrained(tmp_path)
    loaded = sciml.load(tmp_path)
    y0, t = torch.rand(3, 2) + 1, torch.linspace(0, 1, 4)
    assert isinstance(loaded, NODE) and loaded.config == model.config
    with torch.no_grad():
        assert torch.equal(model(y0, t=t), loaded(y0, t=t))


def test_bad_inputs_say_what_was_expected():
    model = NODE(NODEConfig(hidden=(4,)))
    with pytest.raises(ValueError, match=r"expected u of shape \(batch, 2\)"):
        model(torch.rand(3, 5), t=torch.linspace(0, 1, 3))
    with pytest.raises(ValueError, match="needs the output times"):
        model(torch.rand(3, 2))
    with pytest.raises(ValueError, match="scale: expected 2 values"):
        NODEConfig(scale=(1.0,))


def test_regularised_training_step_has_a_penalty_and_gradients():
    from sciml.de import LocalHeuristic

    torch.manual_seed(0)
    model = NODE(NODEConfig(hidden=(8,)), regulariser=LocalHeuristic(error_weight=1.0)).train()
    pred = model(torch.rand(4, 2), t=torch.linspace(0, 1, 3))
    assert float(model.regularisation.detach()) > 0
    (pred.pow(2).mean() + model.regularisation).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_lotka_volterra_conserves_its_invariant_and_matches_rk4():
    out = generate_lotka_volterra(6, 41, seed=3, t_final=4.0)
    traj = np.stack([out["fields"]["prey"], out["fields"]["predator"]], -1).astype(np.float64)
    v = lotka_volterra_invariant(traj, *RATES)
    # float32 storage: relative rounding ~6e-8 of V ~ 3
    assert np.abs(v - v[:, :1]).max() < 2e-6
    np.testing.assert_allclose(traj[:, 0], out["params"]["initial_state"], rtol=1e-7)
    # an independent fixed-step RK4 in float64 (200 steps per output interval of 0.1)
    y, h = out["params"]["initial_state"].copy(), 0.1 / 200
    for _ in range(200 * 40):
        k1 = lotka_volterra_rhs(y, *RATES)
        k2 = lotka_volterra_rhs(y + h / 2 * k1, *RATES)
        k3 = lotka_volterra_rhs(y + h / 2 * k2, *RATES)
        k4 = lotka_volterra_rhs(y + h * k3, *RATES)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    np.testing.assert_allclose(traj[:, -1], y, rtol=1e-6)


def test_lotka_volterra_generator_writes_the_sciml_layout(tmp_path):
    assert "lotka_volterra" in GENERATORS
    path = generate("lotka_volterra", n=5, resolution=11, out=tmp_path / "lv.h5", seed=1)
    ds = sciml.data.open(path)
    data = ds.read(slice(None), None, ["prey", "predator"])
    assert data.shape == (5, 11, 2)
    assert ds.attrs["generator_settings"]["seed"] == 1
    np.testing.assert_allclose(ds.time, np.linspace(0, 5, 11))
    with pytest.raises(ValueError, match="ic_low <= ic_high"):
        generate_lotka_volterra(2, 5, ic_low=2.0, ic_high=1.0)
