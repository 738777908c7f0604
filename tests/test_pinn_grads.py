"""``grads``: several first derivatives of one output from one backward pass, and the PINN /
LPINN residuals that use it, against the two-call computation they replaced."""

import math

import pytest
import torch

from sciml.pinn import (
    PINN,
    Burgers,
    Convection,
    ConvectionDiffusion,
    LagrangianPINN,
    grad,
    grads,
)

TWO_PI = 2 * math.pi


def _d(u, v, create_graph=True):
    # the old way, written out: one torch.autograd.grad (one backward pass) per input
    (g,) = torch.autograd.grad(u, v, torch.ones_like(u), create_graph=create_graph)
    return g


def _param_grads(loss, params):
    # the last bias drops out of a residual made of derivatives: its gradient is zero
    gs = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, gs, strict=True)]


class _Count(torch.autograd.Function):
    """Identity whose backward counts the backward passes that run through it."""

    calls = 0

    @staticmethod
    def forward(ctx, h):
        return h.view_as(h)

    @staticmethod
    def backward(ctx, g):
        _Count.calls += 1
        return g


def _count_passes(module):
    return module.register_forward_hook(lambda m, i, out: _Count.apply(out))


def test_grads_match_the_analytic_derivatives_of_a_known_function():
    # u = sin(x) exp(-t) + x^2 t + 3 y: u_x = cos(x) exp(-t) + 2 x t, u_t = -sin(x) exp(-t) + x^2,
    # u_y = 3 (u does not depend on z: zero), u_xx = -sin(x) exp(-t) + 2 t
    g = torch.Generator().manual_seed(0)
    x, t, y, z = (torch.rand(50, 1, generator=g, dtype=torch.float64) * 3 for _ in range(4))
    for v in (x, t, y, z):
        v.requires_grad_()
    u = torch.sin(x) * torch.exp(-t) + x**2 * t + 3 * y
    u_x, u_t, u_y, u_z = grads(u, x, t, y, z)
    xd, td = x.detach(), t.detach()
    torch.testing.assert_close(
        u_x, torch.cos(xd) * torch.exp(-td) + 2 * xd * td, rtol=1e-13, atol=0
    )
    torch.testing.assert_close(u_t, -torch.sin(xd) * torch.exp(-td) + xd**2, rtol=1e-13, atol=0)
    torch.testing.assert_close(u_y, torch.full_like(y, 3.0), rtol=0, atol=0)
    assert torch.equal(u_z, torch.zeros_like(z))
    # create_graph=True (the default) keeps the graph, as grad does: u_xx from u_x
    u_xx = grad(u_x, x)
    torch.testing.assert_close(
        u_xx, -torch.sin(xd) * torch.exp(-td) + 2 * td, rtol=1e-13, atol=1e-15
    )
    # on one (n, 2) point set the two columns are the gradient; create_graph=False: plain values
    p = torch.rand(30, 2, generator=g, dtype=torch.float64).requires_grad_()
    w = torch.sin(p[:, :1]) * torch.exp(-p[:, 1:])
    (gp,) = grads(w, p, create_graph=False)
    pd = p.detach()
    e = torch.exp(-pd[:, 1:])
    want = torch.cat([torch.cos(pd[:, :1]) * e, -torch.sin(pd[:, :1]) * e], dim=-1)
    torch.testing.assert_close(gp, want, rtol=1e-13, atol=0)
    assert not gp.requires_grad


def test_grads_takes_one_backward_pass_where_two_grad_calls_took_two():
    torch.manual_seed(0)
    m = PINN(width=8, depth=2).double()
    x = (torch.rand(10, 1, dtype=torch.float64) * TWO_PI).requires_grad_()
    t = torch.rand(10, 1, dtype=torch.float64).requires_grad_()
    hook = _count_passes(m.net)
    try:
        _Count.calls = 0
        u = m(x, t)
        u_x, u_t = grads(u, x, t)
        assert _Count.calls == 1
        torch.testing.assert_close(u_x, _d(u, x), rtol=0, atol=0)
        torch.testing.assert_close(u_t, _d(u, t), rtol=0, atol=0)
        # the Eulerian residual without diffusion takes exactly the first derivatives:
        # one pass (it took two with grad(u, x) and grad(u, t))
        _Count.calls = 0
        Convection(beta=3.0).residual(m(x, t), x, t)
        assert _Count.calls == 1
    finally:
        hook.remove()


def test_grads_refuses_no_inputs_and_a_non_tensor_and_checks_each_input():
    x = torch.rand(4, 1).requires_grad_()
    u = x.square()
    with pytest.raises(ValueError, match="grads needs at least one input"):
        grads(u)
    with pytest.raises(TypeError, match="expected tensors to differentiate with respect to, got 3"):
        grads(u, x, 3)
    with pytest.raises(ValueError, match="requires_grad=True"):
        grads(u, x, torch.rand(4, 1))
    with pytest.raises(TypeError, match="create_graph"):
        grads(u, x, create_graph="yes")


@pytest.mark.parametrize(
    "problem",
    [Convection(beta=30.0), ConvectionDiffusion(beta=5.0, viscosity=0.1), Burgers(viscosity=0.05)],
    ids=["convection", "convection_diffusion", "burgers"],
)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_pinn_residual_and_loss_gradients_equal_the_two_call_computation(problem, dtype):
    # r = u_t + F(u) u_x - nu u_xx with u_x, u_t from separate backward passes (the code before
    # grads), and the gradient of mean(r^2) in every parameter
    torch.manual_seed(0)
    m = PINN(width=16, depth=3).to(dtype)
    x = (torch.rand(64, 1, dtype=dtype) * TWO_PI).requires_grad_()
    t = torch.rand(64, 1, dtype=dtype).requires_grad_()
    params = list(m.parameters())

    r_new = problem.residual(m(x, t), x, t)
    g_new = _param_grads(r_new.square().mean(), params)

    u = m(x, t)
    u_x = _d(u, x)
    r_old = _d(u, t) + problem.speed(u) * u_x
    if problem.nu:
        r_old = r_old - problem.nu * _d(u_x, x)
    g_old = _param_grads(r_old.square().mean(), params)

    tol = {"rtol": 1e-12, "atol": 1e-12} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-5}
    assert r_old.abs().max() > 0.1  # an untrained net: the comparison is not of zeros
    torch.testing.assert_close(r_new, r_old, **tol)
    for a, b in zip(g_new, g_old, strict=True):
        torch.testing.assert_close(a, b, **tol)


@pytest.mark.parametrize("exact_diffusion", [False, True])
@pytest.mark.parametrize("hard_u0", [False, True])
def test_lpinn_residuals_and_loss_gradients_equal_the_two_call_computation(
    exact_diffusion, hard_u0
):
    # R_x = x_t - F(u), R_u = u_t - nu u_xx (label derivative, or the chain rule), every first
    # derivative from its own backward pass as before grads
    torch.manual_seed(0)
    problem = Burgers(viscosity=0.05)
    lp = LagrangianPINN(
        width=12,
        state_depth=2,
        curve_depth=2,
        u0=problem.u0 if hard_u0 else None,
        curve_scale=3.0,
        exact_diffusion=exact_diffusion,
    ).double()
    x0 = (torch.rand(40, 1, dtype=torch.float64) * TWO_PI).requires_grad_()
    t = torch.rand(40, 1, dtype=torch.float64).requires_grad_()
    params = list(lp.parameters())

    hooks = [_count_passes(lp.state), _count_passes(lp.curve)]
    try:
        _Count.calls = 0
        r_x, r_u = lp.residuals(problem, x0, t)
        passes_new = _Count.calls
        g_new = _param_grads(r_x.square().mean() + r_u.square().mean(), params)

        _Count.calls = 0
        x, u = lp(x0, t)
        want_x = _d(x, t) - problem.speed(u)
        u_l = _d(u, x0)
        if exact_diffusion:
            jac = _d(x, x0)
            u_xx = _d(u_l / jac, x0) / jac
        else:
            u_xx = _d(u_l, x0)
        want_u = _d(u, t) - problem.nu * u_xx
        passes_old = _Count.calls
        g_old = _param_grads(want_x.square().mean() + want_u.square().mean(), params)
    finally:
        for h in hooks:
            h.remove()

    assert want_x.abs().max() > 0.1 and want_u.abs().max() > 0.1
    torch.testing.assert_close(r_x, want_x, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(r_u, want_u, rtol=1e-12, atol=1e-12)
    for a, b in zip(g_new, g_old, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # u_t with u_x0 saves a pass through the state branch; x_t with x_x0 one through the curve
    assert passes_new == passes_old - (2 if exact_diffusion else 1)
