"""``torch.func`` transforms (jacrev, jacfwd, vmap, grad, functional_call) over sciml layers and
models, held to independent computations: Jacobians built row by row with ``torch.autograd.grad``
and by finite differences, loops over samples and over ensemble members, ``loss.backward()``.

Regressions: the fused spectral node (``FusedDFT``, the CUDA default) and the kernels' autograd
Functions raised "must override the setup_context staticmethod"; ScOT's attention failed under
jacrev / jacfwd and its cached position bias under vmap ("Cannot access data pointer"); the basis
caches kept functorch-wrapped tensors made inside a transform.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch.func import functional_call, grad, jacfwd, jacrev, stack_module_state, vmap

from sciml import SciMLError
from sciml.de import RK4, Autonomous, NeuralODE
from sciml.kernels import TritonSpectral
from sciml.kernels import autograd as K
from sciml.layers import SpectralConv
from sciml.layers import spectral_backends as sb
from sciml.layers import transforms as tf
from sciml.layers.spectral_backends import FFT, DFTMatmul, FusedDFT
from sciml.models import FNO, NODE, T1, FNOConfig, NODEConfig, ScOT, ScOTConfig, T1Config

F64 = torch.float64


def _rowwise_jacobian(f, x: torch.Tensor) -> torch.Tensor:
    """``d f(x) / d x`` as ``(*out, *in)``, one ``torch.autograd.grad`` per output entry."""
    x = x.detach().clone().requires_grad_(True)
    y = f(x)
    rows = [torch.autograd.grad(yi, x, retain_graph=True)[0] for yi in y.reshape(-1)]
    return torch.stack(rows).reshape(*y.shape, *x.shape)


def _single(model, **kw):
    """The model on one sample: ``(c, *spatial) -> (c_out, *spatial)``."""
    return lambda u: model(u[None], **kw)[0]


BACKENDS = {
    "fft": FFT,
    "dft_matmul": DFTMatmul,
    "fused": FusedDFT,
    "triton-torch": lambda: TritonSpectral(impl="torch"),
}
GRIDS = {1: ((3,), (8,)), 2: ((2, 3), (6, 7)), 3: ((1, 2, 2), (3, 4, 4))}


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("d", [1, 2, 3])
def test_spectral_conv_jacobians_match_rowwise_autograd_and_linearity(backend, d):
    """jacrev and jacfwd equal the row-by-row autograd Jacobian; the layer is linear in u, so
    also ``J u = y`` (an identity the transforms cannot fake)."""
    modes, grid = GRIDS[d]
    layer = SpectralConv(2, 3, modes, backend=BACKENDS[backend]()).double()
    u = torch.randn(2, *grid, dtype=F64)
    f = _single(layer)
    want = _rowwise_jacobian(f, u)
    for transform in (jacrev, jacfwd):
        got = transform(f)(u)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    y = f(u).detach()
    ju = (want.reshape(y.numel(), u.numel()) @ u.reshape(-1)).reshape(y.shape)
    torch.testing.assert_close(ju, y, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "make",
    [
        lambda: FNO(FNOConfig(modes=(3, 3), width=4, n_layers=2)),
        lambda: FNO(FNOConfig(modes=(3, 3), width=4, n_layers=2, padding=2)),
        lambda: T1(T1Config(modes=(3, 3), width=4, n_layers=2, transform="dct")),
        lambda: T1(T1Config(modes=(3, 3), width=4, n_layers=2, transform="rfft")),
    ],
    ids=["fno", "fno-padded", "t1-dct", "t1-rfft"],
)
def test_model_jacobians_match_rowwise_autograd_and_finite_differences(make):
    model = make().double().eval()
    u = torch.randn(1, 8, 8, dtype=F64)
    f = _single(model)
    want = _rowwise_jacobian(f, u)
    torch.testing.assert_close(jacrev(f)(u), want, rtol=1e-11, atol=1e-12)
    torch.testing.assert_close(jacfwd(f)(u), want, rtol=1e-11, atol=1e-12)
    # central differences along one direction: error O(h^2)
    v, h = torch.randn_like(u), 1e-4
    with torch.no_grad():
        fd = (f(u + h * v) - f(u - h * v)) / (2 * h)
    jv = (want.reshape(-1, u.numel()) @ v.reshape(-1)).reshape(fd.shape)
    torch.testing.assert_close(jv, fd, rtol=1e-6, atol=1e-7)


def _fno_fused():
    layer_backend = FusedDFT()
    model = FNO(FNOConfig(modes=(3, 3), width=4, n_layers=2))
    for m in model.modules():
        if isinstance(m, SpectralConv):
            m.backend = layer_backend  # the CUDA default path, forced on the CPU
    return model


def _scot():
    cfg = ScOTConfig(
        in_channels=1, out_channels=1, image_size=8, patch_size=2, embed_dim=8, depths=(1, 1),
        num_heads=(2, 2), window_size=2, skip_blocks=(1, 0),
    )  # fmt: skip
    return ScOT(cfg)


MODELS = {
    "fno-fused": (_fno_fused, {}),
    "t1-dst": (lambda: T1(T1Config(modes=(3, 3), width=4, n_layers=2, transform="dst")), {}),
    "scot": (_scot, {"t": 0.3}),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_vmap_over_samples_equals_the_loop_and_leaves_eager_outputs_unchanged(name):
    make, kw = MODELS[name]
    torch.manual_seed(0)
    model = make().double().eval()
    u = torch.randn(3, 1, 8, 8, dtype=F64)
    with torch.no_grad():
        before = model(u, **kw)
        got = vmap(_single(model, **kw))(u)
        loop = torch.stack([_single(model, **kw)(ui) for ui in u])
    torch.testing.assert_close(got, loop, rtol=1e-12, atol=1e-12)
    jacrev(_single(model, **kw))(u[0])  # a grad-level transform too, then eager again
    with torch.no_grad():
        assert torch.equal(model(u, **kw), before)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_an_ensemble_by_stack_module_state_equals_running_each_copy(name):
    make, kw = MODELS[name]
    torch.manual_seed(1)
    copies = [make().double().eval() for _ in range(3)]
    params, buffers = stack_module_state(copies)
    base = copy.deepcopy(copies[0]).to("meta")

    def one(p, b, u):
        return functional_call(base, (p, b), (u,), kw)

    u = torch.randn(2, 1, 8, 8, dtype=F64)
    with torch.no_grad():
        got = vmap(one, in_dims=(0, 0, None))(params, buffers, u)
        want = torch.stack([m(u, **kw) for m in copies])
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    assert not torch.equal(want[0], want[1])  # the copies differ, so the test can fail


@pytest.mark.parametrize("name", sorted(MODELS))
def test_func_grad_of_a_loss_equals_backward(name):
    make, kw = MODELS[name]
    model = make().double().eval()  # eval: no dropout draws to differ between the two
    u, target = torch.randn(2, 1, 8, 8, dtype=F64), torch.randn(2, 1, 8, 8, dtype=F64)
    params = {k: p.detach() for k, p in model.named_parameters()}

    def loss(p):
        return (functional_call(model, p, (u,), kw) - target).pow(2).mean()

    got = grad(loss)(params)
    model.zero_grad()
    (model(u, **kw) - target).pow(2).mean().backward()
    assert len(got) == len(params)
    for k, p in model.named_parameters():
        torch.testing.assert_close(got[k], p.grad, rtol=1e-10, atol=1e-13, msg=k)


def test_caches_are_neither_read_nor_written_inside_a_transform():
    """A shape first seen inside jacrev leaves no functorch wrapper in a process-wide cache."""
    sb._rdft_basis.cache_clear()
    sb._dft_basis.cache_clear()
    tf._DEVICE_CACHE.clear()
    layer = SpectralConv(1, 1, (2, 2), backend=DFTMatmul()).double()
    model = T1(T1Config(modes=(2, 2), width=2, n_layers=1, transform="dct")).double()
    u = torch.randn(1, 1, 9, 11, dtype=F64)
    jacrev(lambda x: layer(x) + model(x))(u)
    assert sb._rdft_basis.cache_info().currsize == 0
    assert sb._dft_basis.cache_info().currsize == 0
    assert not tf._DEVICE_CACHE
    layer(u), model(u)  # eager calls fill them, with plain tensors
    assert sb._rdft_basis.cache_info().currsize == 1 and tf._DEVICE_CACHE
    wrapped = torch._C._functorch.is_functorch_wrapped_tensor
    assert not any(wrapped(t) for t in tf._DEVICE_CACHE.values())


def test_kernel_functions_under_transforms_match_the_explicit_dft():
    """``rdft``'s Jacobian (jacrev and jacfwd) is the explicit DFT matrix; vmap of ``cbmm``
    over an extra batch dim equals the loop; jacfwd of ``irdft`` equals jacrev."""
    n, e = 8, 3
    x = torch.randn(2, n, dtype=F64)
    scale = torch.full((e,), 1.0 / n, dtype=F64)

    def f(v):
        return torch.view_as_real(K.rdft(v, e, scale))  # (2, e, 2)

    k, j = torch.arange(e, dtype=F64)[:, None], torch.arange(n, dtype=F64)
    ang = 2 * torch.pi * k * j / n
    dft = torch.stack([torch.cos(ang), -torch.sin(ang)], dim=1) / n  # (e, ri, n)
    want = torch.einsum("kcn,ab->akcbn", dft, torch.eye(2, dtype=F64))
    torch.testing.assert_close(jacrev(f)(x), want, rtol=1e-13, atol=1e-14)
    torch.testing.assert_close(jacfwd(f)(x), want, rtol=1e-13, atol=1e-14)

    z = torch.randn(2, e, dtype=torch.complex128)
    w = torch.tensor([1.0, 2.0, 2.0], dtype=F64)

    def g(zr):
        return K.irdft(torch.view_as_complex(zr), n, w)

    zr = torch.view_as_real(z).contiguous()
    torch.testing.assert_close(jacfwd(g)(zr), jacrev(g)(zr), rtol=1e-13, atol=1e-14)

    a = torch.randn(4, 2, 3, 5, dtype=torch.complex128)
    b = torch.randn(2, 5, 3, dtype=torch.complex128)
    got = vmap(lambda ai: K.cbmm(ai, b))(a)
    torch.testing.assert_close(got, torch.stack([ai @ b for ai in a]), rtol=1e-13, atol=1e-13)


def test_neural_odes_refuse_the_transforms_torchdiffeq_cannot_run_under():
    node = NODE(NODEConfig(hidden=(4,))).double().eval()
    u, t = torch.rand(2, 2, dtype=F64) + 1.0, torch.linspace(0.0, 1.0, 3, dtype=F64)
    with pytest.raises(SciMLError, match="adaptive solver Dopri5 chooses its steps"):
        jacrev(lambda y: node(y[None], t=t)[0])(u[0])
    with pytest.raises(SciMLError, match="adaptive solver Dopri5"):
        vmap(lambda y: node(y[None], t=t)[0])(u)
    net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    fixed = NeuralODE(Autonomous(net.double()), RK4(0.25))
    with pytest.raises(SciMLError, match="vmap .* torchdiffeq writes the solution in place"):
        vmap(lambda y: fixed(y[None], t)[:, 0])(u)
    with pytest.raises(SciMLError, match="odeint_adjoint"):
        ode = NeuralODE(Autonomous(net.double()), RK4(0.25), adjoint=True)
        jacrev(lambda y: ode(y[None], t)[-1, 0])(u[0])
    # a fixed-step solver without the adjoint works under jacrev and jacfwd
    ode = NeuralODE(Autonomous(net), RK4(0.25))

    def end(y):
        return ode(y[None], t)[-1, 0]

    want = _rowwise_jacobian(end, u[0])
    torch.testing.assert_close(jacrev(end)(u[0]), want, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(jacfwd(end)(u[0]), want, rtol=1e-12, atol=1e-13)


def _node_transforms(solver: str) -> dict[str, bool]:
    """Which of jacrev / jacfwd / vmap run on a NODE with ``solver``; where the Jacobians run
    they equal the row-by-row autograd Jacobian."""
    step = {"step_size": 0.25} if solver in ("rk4", "euler") else {}
    node = NODE(NODEConfig(hidden=(4,), solver=solver, **step)).double().eval()
    u, t = torch.rand(2, 2, dtype=F64) + 1.0, torch.linspace(0.0, 1.0, 3, dtype=F64)

    def end(y):
        return node(y[None], t=t)[0, -1]

    runs = {}
    for name, transform in (("jacrev", jacrev), ("jacfwd", jacfwd)):
        try:
            got = transform(end)(u[0])
        except SciMLError:
            runs[name] = False
            continue
        torch.testing.assert_close(got, _rowwise_jacobian(end, u[0]), rtol=1e-12, atol=1e-13)
        runs[name] = True
    try:
        vmap(end)(u)
        runs["vmap"] = True
    except SciMLError:
        runs["vmap"] = False
    return runs


def test_the_spectral_page_table_says_what_a_node_does_under_each_transform():
    """docs/spectral.md's table put `sciml.models.NODE` in the row of the adaptive solvers ("no"
    under every transform); a NODE built with a fixed step (``solver="rk4"`` / ``"euler"``)
    runs under jacrev and jacfwd like a fixed-step NeuralODE. Each row naming the NODE is held
    to what the NODEs its solvers name do (a row naming none of them: every solver)."""
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "spectral.md").read_text()
    rows = [r for r in page.splitlines() if r.startswith("|") and "`sciml.models.NODE`" in r]
    assert rows
    for row in rows:
        first, *cells = (c.strip() for c in row.strip("|").split("|"))
        node_part = first.split("`sciml.models.NODE`", 1)[1]
        solvers = [s for s in ("dopri5", "bosh3", "rk4", "euler") if f'"{s}"' in node_part]
        said = dict(zip(("jacrev", "jacfwd", "vmap"), (c.startswith("yes") for c in cells)))
        for solver in solvers or ["dopri5", "rk4"]:
            assert _node_transforms(solver) == said, (solver, row)
