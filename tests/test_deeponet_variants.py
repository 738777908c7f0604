"""POD-DeepONet (basis vs. the SVD truncation error) and the physics-informed DeepONet loss
(zero for the exact solution of a manufactured problem, derivatives vs. finite differences)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import sciml
from sciml.data.generators import generate_antiderivative
from sciml.models import DeepONet, DeepONetConfig, PODDeepONet, PODDeepONetConfig
from sciml.models.deeponet import MLPSpec
from sciml.models.deeponet_pi import (
    DiffusionReaction,
    PhysicsInformedDiffusionReaction,
    diffusion_reaction_loss,
    interp1d,
    space_time_derivatives,
)


# ---------------------------------------------------------------------- POD-DeepONet
@pytest.mark.parametrize("channels", [1, 2])
def test_pod_basis_reproduces_training_outputs_to_the_truncation_error(channels):
    rng = np.random.default_rng(0)
    n, points, modes = 60, 25, 7
    grid = np.linspace(0, 1, points)
    # smooth outputs with a decaying spectrum plus a non-zero mean
    freqs = np.arange(1, 16)
    coef = rng.standard_normal((n, channels, len(freqs))) / freqs**2
    s = 0.7 + np.einsum("nck,kp->npc", coef, np.sin(np.pi * freqs[:, None] * grid[None]))
    outputs = torch.from_numpy(s)
    model = PODDeepONet(
        PODDeepONetConfig(sensors=5, points=points, out_channels=channels, modes=modes)
    ).double()
    sigma = model.fit_basis(outputs, torch.from_numpy(grid)[:, None])
    # independent: numpy's singular values of the centred data
    ref = np.linalg.svd((s - s.mean(0)).reshape(n, -1), compute_uv=False)
    np.testing.assert_allclose(sigma.numpy(), ref, rtol=1e-10, atol=1e-12)
    recon = model.reconstruct(model.project(outputs))
    err2 = ((recon - outputs) ** 2).sum().item()
    truncation = float(np.sum(ref[modes:] ** 2))
    assert truncation > 1e-6  # the test is not vacuous: the truncation error is not zero
    assert err2 == pytest.approx(truncation, rel=1e-9)
    # the data mean is explicit and the basis is orthonormal w.r.t. the mean over the grid
    np.testing.assert_allclose(model.pod_mean.numpy(), s.mean(0), atol=1e-14)
    phi = model.pod_basis.reshape(-1, modes)
    torch.testing.assert_close(phi.T @ phi / phi.shape[0], torch.eye(modes, dtype=phi.dtype))
    # all modes kept: exact reconstruction
    full = PODDeepONet(
        PODDeepONetConfig(sensors=5, points=points, out_channels=channels, modes=points * channels)
    ).double()
    # the data have rank 15 per channel: the modes past it are only unused, so a warning
    with pytest.warns(UserWarning, match=f"60 centred training outputs have rank {15 * channels} "):
        full.fit_basis(outputs, torch.from_numpy(grid)[:, None])
    torch.testing.assert_close(full.reconstruct(full.project(outputs)), outputs)


def test_pod_forward_refuses_a_model_without_a_basis_and_loads_a_fitted_one(tmp_path):
    """A fresh model's basis is zero, so its output was the bias alone and training fitted only
    the bias, without an error."""
    torch.manual_seed(0)
    cfg = PODDeepONetConfig(sensors=4, points=6, modes=2)
    model = PODDeepONet(cfg).double()
    u = torch.randn(3, 4, dtype=torch.float64)
    with pytest.raises(RuntimeError, match=r"no POD basis yet: call fit_basis"):
        model(u)
    grid = torch.linspace(0, 1, 6, dtype=torch.float64)[:, None]
    model.fit_basis(torch.randn(8, 6, dtype=torch.float64), grid)
    ref = model.pod_mean + torch.einsum("bi,pki->bpk", model.branch(u), model.pod_basis)
    torch.testing.assert_close(model(u), ref + model.bias)
    # a fitted basis loaded into a fresh model (load_state_dict, sciml.load) is usable
    fresh = PODDeepONet(cfg).double()
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(fresh(u), model(u), rtol=0, atol=0)
    model.save_pretrained(tmp_path / "pod")
    torch.testing.assert_close(sciml.load(tmp_path / "pod")(u), model(u), rtol=0, atol=0)
    # the weights of a model saved before fit_basis are still refused
    unfitted = PODDeepONet(cfg).double()
    unfitted.load_state_dict(PODDeepONet(cfg).double().state_dict())
    with pytest.raises(RuntimeError, match="no POD basis yet"):
        unfitted(u)


def test_pod_fit_basis_needs_modes_plus_one_outputs_and_warns_below_full_rank():
    """N outputs less their mean span N - 1 directions: with N == modes the last mode was
    arbitrary (its singular value ~1e-16) without a word."""
    torch.manual_seed(0)
    model = PODDeepONet(PODDeepONetConfig(sensors=3, points=6, modes=3))
    with pytest.raises(ValueError, match=r"3 POD modes need >= 4 training outputs .* got 3"):
        model.fit_basis(torch.randn(3, 6), torch.rand(6, 1))
    sigma = model.fit_basis(torch.randn(4, 6), torch.rand(6, 1))
    assert sigma[2] > 1e-3  # 4 random outputs: 3 real directions
    # rank-2 outputs (plus a mean) for 3 modes: warned, naming N, the rank and modes
    data = torch.randn(10, 2, dtype=torch.float64) @ torch.randn(2, 6, dtype=torch.float64) + 1
    with pytest.warns(UserWarning, match=r"the 10 centred training outputs have rank 2 < modes=3"):
        sigma = model.fit_basis(data, torch.rand(6, 1))
    assert sigma[2] < 1e-12 * sigma[0]  # independent of the warning: the third direction is empty


def test_pod_methods_refuse_data_of_another_dtype_or_type_naming_it():
    """project / reconstruct take data in the basis' dtype: float64 data for a float32 model
    failed in einsum ("expected scalar type Double but found Float"). fit_basis takes any real
    precision (its SVD runs in float64), but a complex outputs lost its imaginary part with
    only torch's warning, and a NumPy array failed with "has no attribute 'double'"."""
    torch.manual_seed(0)
    model = PODDeepONet(PODDeepONetConfig(sensors=5, points=9, out_channels=2, modes=3))
    outputs, grid = torch.randn(10, 9, 2), torch.linspace(0, 1, 9)[:, None]
    cases = (
        (lambda: model.fit_basis(outputs.to(torch.complex64), grid), r"fit_basis expected a real floating-point outputs, got dtype torch.complex64"),
        (lambda: model.fit_basis(outputs.numpy(), grid), r"fit_basis expected outputs as a torch.Tensor, got ndarray"),
        (lambda: model.fit_basis(outputs, grid.numpy()), r"fit_basis expected coords as a torch.Tensor, got ndarray"),
        (lambda: model.project(outputs.double()), r"project expected outputs of dtype torch.float32 .*got torch.float64"),
        (lambda: model.reconstruct(torch.randn(4, 3, dtype=torch.float64)), r"reconstruct expected coefficients of dtype torch.float32 .*got torch.float64"),
        (lambda: model.reconstruct(torch.ones(4, 3, dtype=torch.long)), r"reconstruct expected a real floating-point coefficients, got dtype torch.int64"),
    )  # fmt: skip
    for call, match in cases:
        with pytest.raises(TypeError, match=match):
            call()
    # float64 outputs still fit a float32 model; all 3 modes of rank-3 data reproduce it
    low_rank = torch.randn(10, 3, dtype=torch.float64) @ torch.randn(3, 18, dtype=torch.float64)
    data = (low_rank + 0.5).reshape(10, 9, 2)
    model.fit_basis(data, grid.double())
    recon = model.reconstruct(model.project(data.float()))
    torch.testing.assert_close(recon, data.float(), rtol=1e-4, atol=1e-4)


def test_pod_forward_is_mean_plus_branch_times_modes_plus_trunk():
    torch.manual_seed(0)
    cfg = PODDeepONetConfig(
        sensors=6, points=9, modes=3, branch=MLPSpec((8,)), trunk=MLPSpec((5,)), trunk_basis=2
    )
    model = PODDeepONet(cfg).double()
    grid = torch.linspace(0, 1, 9, dtype=torch.float64)[:, None]
    model.fit_basis(torch.randn(20, 9, dtype=torch.float64), grid)
    with torch.no_grad():
        model.bias.fill_(0.25)
    u = torch.randn(4, 6, dtype=torch.float64)
    coef = model.branch(u)
    ref = (
        model.pod_mean[:, 0]
        + coef[:, :3] @ model.pod_basis[:, 0].T
        + coef[:, 3:] @ model.trunk(grid).T
        + 0.25
    )
    torch.testing.assert_close(model(u)[..., 0], ref)
    torch.testing.assert_close(model(u, x=grid), model(u))
    with pytest.raises(ValueError, match="only at its 9 training points"):
        model(u, x=grid + 0.1)
    with pytest.raises(ValueError, match="modes=30 exceeds"):
        PODDeepONetConfig(points=10, modes=30)


def test_pod_config_refuses_a_negative_trunk_basis():
    # -1 was accepted (ignored without a trunk) and saved into the checkpoint's config
    with pytest.raises(ValueError, match="trunk_basis must be >= 0, got -1"):
        PODDeepONetConfig(trunk_basis=-1)
    assert PODDeepONetConfig(trunk_basis=0).extra == 0
    with pytest.raises(ValueError, match="trunk_basis >= 1"):
        PODDeepONetConfig(trunk=MLPSpec((4,)), trunk_basis=0)


def test_pod_deeponet_learns_the_antiderivative(tmp_path):
    """m = 40, 300 functions, 12 POD modes, 1000 full-batch Adam steps: test rel L2 < 8%."""
    m = 40
    train = generate_antiderivative(300, m, seed=0)["static_fields"]
    test = generate_antiderivative(100, m, seed=1)["static_fields"]
    v, u = torch.from_numpy(train["v"]), torch.from_numpy(train["u"])
    torch.manual_seed(0)
    model = PODDeepONet(
        PODDeepONetConfig(sensors=m, points=m, modes=12, branch=MLPSpec((), activation="relu"))
    )  # the operator is linear: a linear branch suffices
    model.fit_basis(u, torch.linspace(0, 1, m)[:, None])
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)
    for _ in range(1000):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(v)[..., 0], u)
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred = model(torch.from_numpy(test["v"]))[..., 0]
    target = torch.from_numpy(test["u"])
    rel = ((pred - target).norm(dim=1) / target.norm(dim=1)).mean().item()
    assert rel < 0.08, rel  # measured 4.1%
    model.save_pretrained(tmp_path / "pod")
    loaded = sciml.load(tmp_path / "pod")  # the basis and mean travel with the weights
    torch.testing.assert_close(
        loaded(torch.from_numpy(test["v"])), model(torch.from_numpy(test["v"]))
    )


# ---------------------------------------------------------------------- physics-informed
class _Manufactured(nn.Module):
    """``s(x, t) = a(u) t sin(pi x) + b(u) t^2 x (1 - x)``: zero initial and boundary values;
    the amplitudes depend on the branch input so the batch dimension is exercised."""

    def forward(self, u, *, x):
        a, b = u[:, :1, None], u[:, 1:2, None]  # (B, 1, 1)
        xx, t = x[..., :1], x[..., 1:]
        return a * t * torch.sin(math.pi * xx) + b * t**2 * xx * (1 - xx)


def _manufactured_source(u, y, problem):
    a, b = u[:, :1], u[:, 1:2]
    x, t = y[..., 0], y[..., 1]
    s = a * t * torch.sin(math.pi * x) + b * t**2 * x * (1 - x)
    s_t = a * torch.sin(math.pi * x) + 2 * b * t * x * (1 - x)
    s_xx = -(math.pi**2) * a * t * torch.sin(math.pi * x) - 2 * b * t**2
    return s_t - problem.diffusion * s_xx - problem.reaction * s**2


def _points(batch, n, generator):
    y_r = torch.rand(batch, n, 2, dtype=torch.float64, generator=generator)
    y_i = torch.stack([y_r[..., 0], torch.zeros_like(y_r[..., 0])], -1)
    y_b = torch.stack([(y_r[..., 0] > 0.5).double(), y_r[..., 1]], -1)
    return y_r, y_i, y_b


def test_pi_loss_is_zero_for_the_exact_solution_of_a_manufactured_problem():
    g = torch.Generator().manual_seed(0)
    problem = DiffusionReaction(diffusion=0.01, reaction=0.01)
    u = torch.randn(3, 5, dtype=torch.float64, generator=g) * 3
    y_r, y_i, y_b = _points(3, 50, g)
    f = _manufactured_source(u, y_r, problem)
    terms = diffusion_reaction_loss(
        _Manufactured(), u, y_residual=y_r, source=f, y_initial=y_i, y_boundary=y_b, problem=problem
    )
    assert terms["residual"].item() < 1e-28  # (float64 round-off)^2
    assert terms["initial"].item() == 0.0
    assert terms["boundary"].item() < 1e-28
    # a wrong diffusion coefficient is seen: residual D' - D times s_xx
    wrong = diffusion_reaction_loss(
        _Manufactured(),
        u,
        y_residual=y_r,
        source=f,
        y_initial=y_i,
        y_boundary=y_b,
        problem=DiffusionReaction(diffusion=0.02, reaction=0.01),
    )
    s_xx = (
        -(math.pi**2) * u[:, :1] * y_r[..., 1] * torch.sin(math.pi * y_r[..., 0])
        - 2 * u[:, 1:2] * y_r[..., 1] ** 2
    )
    expected = (0.01 * s_xx).square().mean().item()
    assert wrong["residual"].item() == pytest.approx(expected, rel=1e-10)


def test_pi_derivatives_of_a_deeponet_match_finite_differences():
    torch.manual_seed(0)
    spec = MLPSpec((16,), activation="tanh")
    model = DeepONet(DeepONetConfig(sensors=7, coord_dim=2, basis=6, branch=spec, trunk=spec))
    model = model.double()
    u = torch.randn(2, 7, dtype=torch.float64)
    y = torch.rand(2, 5, 2, dtype=torch.float64)
    s, s_t, s_xx = space_time_derivatives(model, u, y)
    h = 1e-4
    ex, et = (
        torch.tensor([h, 0.0], dtype=torch.float64),
        torch.tensor([0.0, h], dtype=torch.float64),
    )
    with torch.no_grad():
        f = lambda z: model(u, x=z)[..., 0]  # noqa: E731
        fd_t = (f(y + et) - f(y - et)) / (2 * h)
        fd_xx = (f(y + ex) - 2 * f(y) + f(y - ex)) / h**2
    torch.testing.assert_close(s_t, fd_t, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(s_xx, fd_xx, rtol=1e-4, atol=1e-5)
    # the loss is differentiable w.r.t. the parameters (it trains)
    g = torch.Generator().manual_seed(1)
    y_r, y_i, y_b = _points(2, 5, g)
    terms = diffusion_reaction_loss(
        model,
        u,
        y_residual=y_r,
        source=torch.ones(2, 5, dtype=torch.float64),
        y_initial=y_i,
        y_boundary=y_b,
    )
    terms["loss"].backward()
    assert all(p.grad is not None for p in model.parameters())


def test_interp1d_is_exact_for_linear_functions():
    grid = torch.linspace(0, 1, 11, dtype=torch.float64)
    values = torch.stack([2 * grid + 1, -grid])
    x = torch.rand(2, 7, dtype=torch.float64)
    torch.testing.assert_close(interp1d(values, grid, x), torch.stack([2 * x[0] + 1, -x[1]]))


def test_interp1d_matches_numpy_interp_and_refuses_an_unsorted_grid():
    g = torch.Generator().manual_seed(0)
    grid = torch.sort(torch.rand(9, generator=g, dtype=torch.float64)).values
    values = torch.randn(3, 9, generator=g, dtype=torch.float64)
    x = torch.rand(3, 20, generator=g, dtype=torch.float64) * 1.4 - 0.2  # some outside: clamped
    ref = np.stack([np.interp(x[i].numpy(), grid.numpy(), values[i].numpy()) for i in range(3)])
    np.testing.assert_allclose(interp1d(values, grid, x).numpy(), ref, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="strictly increasing grid, got grid\\[0\\] = 1"):
        interp1d(values[:, :3], torch.tensor([1.0, 0.5, 0.0], dtype=torch.float64), x)
    with pytest.raises(ValueError, match="grid\\[1\\] = 0.5 followed by grid\\[2\\] = 0.5"):
        interp1d(values[:, :4], torch.tensor([0.0, 0.5, 0.5, 1.0], dtype=torch.float64), x)
    with pytest.raises(ValueError, match="n >= 2 points, got \\(1,\\)"):
        interp1d(values[:, :1], torch.zeros(1, dtype=torch.float64), x)


@pytest.mark.parametrize(
    "points, error", [(0, ValueError), (-1, ValueError), (2.5, TypeError), (True, TypeError)]
)
def test_pi_wrapper_refuses_a_bad_number_of_points_when_built(points, error):
    # each was accepted and failed (or, for True, trained on 1 point) at the first training step
    net = DeepONet(DeepONetConfig(sensors=5, coord_dim=2))
    with pytest.raises(error, match=rf"expected points (to be an int )?>= 1, got {points}"):
        PhysicsInformedDiffusionReaction(net, torch.linspace(0, 1, 5), points=points)


def test_pi_wrapper_refuses_sensor_locations_that_do_not_fit_the_input_values():
    net = DeepONet(DeepONetConfig(sensors=10, coord_dim=2))
    # built against a DeepONet: its config says how many sensors it reads
    with pytest.raises(ValueError, match="sensor_x holds 5 locations, the model's 10 sensors"):
        PhysicsInformedDiffusionReaction(net, torch.linspace(0, 1, 5))

    class Plain(torch.nn.Module):  # a model without a config: checked at the first batch
        def forward(self, u, *, x):
            return net(u, x=x)

    torch.manual_seed(0)
    model = PhysicsInformedDiffusionReaction(Plain(), torch.linspace(0, 1, 5), points=7)
    # (why) 10 values per function against 5 locations: each source value was u at another
    # sensor than its collocation point's x (u[j] for x_j of a 5-point grid), and it trained
    with pytest.raises(ValueError, match=r"sensor_x holds 5 locations, u of shape \(3, 10\)"):
        model.training_loss({"input": torch.randn(3, 10)})
    # fewer values than locations: was gather's "index out of bounds"
    wide = PhysicsInformedDiffusionReaction(Plain(), torch.linspace(0, 1, 20), points=7)
    with pytest.raises(ValueError, match=r"sensor_x holds 20 locations, u of shape \(3, 10\)"):
        wide.training_loss({"input": torch.randn(3, 10)})
    # the right count: the source is u at the sensor whose x the point has
    fits = PhysicsInformedDiffusionReaction(net, torch.linspace(0, 0.9, 10), points=7)
    u = torch.randn(3, 1, 10)
    pts = fits.collocation(u)
    index = torch.round(pts["y_residual"][..., 0] / 0.1).long()
    torch.testing.assert_close(pts["source"], u[:, 0].gather(1, index))


@pytest.mark.parametrize(
    "weights", [(1.0, -1.0, 1.0), (1.0, float("nan"), 1.0), (1.0, 1.0, float("inf")), (1.0, 1.0),
                (1.0, "2", 1.0), (True, 1.0, 1.0)],
)  # fmt: skip
def test_pi_loss_refuses_weights_that_are_not_three_finite_numbers_at_least_0(weights):
    net = DeepONet(DeepONetConfig(sensors=5, coord_dim=2, basis=4)).double()
    match = r"expected weights \(w_residual, w_initial, w_boundary\): three finite numbers >= 0"
    # (why) -1 made the optimiser ascend the initial-value term and NaN made the loss NaN, both
    # silently; two weights failed in the unpacking, "2" in the product with a tensor
    with pytest.raises(ValueError, match=match):
        PhysicsInformedDiffusionReaction(net, torch.linspace(0, 1, 5), weights=weights)
    g = torch.Generator().manual_seed(0)
    u = torch.randn(2, 5, dtype=torch.float64, generator=g)
    y_r, y_i, y_b = _points(2, 4, g)
    points = dict(y_residual=y_r, source=torch.ones(2, 4, dtype=torch.float64), y_initial=y_i,
                  y_boundary=y_b)  # fmt: skip
    with pytest.raises(ValueError, match=match):
        diffusion_reaction_loss(net, u, **points, weights=weights)
    # a learned (tensor) weight still works, and the loss is the weighted sum of the terms
    w = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    terms = diffusion_reaction_loss(net, u, **points, weights=(2.0, w, 0))
    expected = 2.0 * terms["residual"] + 0.5 * terms["initial"]
    torch.testing.assert_close(terms["loss"], expected, rtol=1e-15, atol=0)
    terms["loss"].backward()
    assert w.grad is not None
    for bad in (float("nan"), "0.01"):
        with pytest.raises(ValueError, match=r"DiffusionReaction.diffusion: expected a finite"):
            DiffusionReaction(diffusion=bad)
