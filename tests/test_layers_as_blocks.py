"""``sciml.layers`` (and the ``sciml.kernels`` backend) as building blocks inside a user's own
model: higher-order derivatives (physics-informed losses), ``torch.func`` transforms, module
hygiene (copies, casts after a forward pass, nesting, freezing) and odd inputs.

Every number is held to something independent: a closed-form derivative of a band-limited
input, central finite differences, a NumPy implementation, the row-by-row autograd Jacobian, a
loop over samples or ensemble members, or the layer's own linearity.

Regressions: the Triton backend's complex GEMM recorded no graph in its backward, so second
derivatives and the weight gradient of a loss on an input derivative were silently wrong, and
its kernels ran on the engine's batched tensors in vectorized Jacobians (an error), and
carried no tangent in forward-over-reverse Hessian products (a silent zero);
``FusedDFT`` raised NotImplementedError under ``torch.autograd.forward_ad``; ``WindowAttention``
kept a stale position bias after an in-place ``p.data`` update, a bfloat16 autocast pass or a
pruning step, and baked it into ``torch.jit.trace``; the transformer blocks met
integer or float32-into-float64 input with a bare matmul dtype error; an empty batch raised in
the FFT backend, ``FusedDFT``, the transforms and ``fourier_resample``, and half precision in
the transforms and ``fourier_resample``.
"""

from __future__ import annotations

import os

os.environ["TRITON_INTERPRET"] = "1"  # must precede the first import of triton (CPU runs)

import copy  # noqa: E402
import importlib.util  # noqa: E402
import math  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.autograd.forward_ad as fwAD  # noqa: E402
import torch.nn.utils.prune  # noqa: E402
from test_func_transforms import _rowwise_jacobian  # noqa: E402
from torch import nn  # noqa: E402
from torch.func import functional_call, grad, jacfwd, jacrev, stack_module_state, vmap  # noqa: E402

from sciml.kernels import TritonSpectral  # noqa: E402
from sciml.layers import (  # noqa: E402
    DCT,
    DST,
    RFFT,
    ConditionalLayerNorm,
    ConvNeXtBlock,
    DropPath,
    LayerNorm,
    PatchEmbed,
    PatchMerging,
    PatchRecovery,
    PatchUnmerging,
    SpectralConv,
    SwinV2Block,
    VCycle,
    WindowAttention,
    dct,
    dst,
    fourier_resample,
    idct,
    idst,
    pointwise,
)
from sciml.layers.spectral_backends import FFT, DFTMatmul, FusedDFT  # noqa: E402

F64 = torch.float64
HAS_TRITON = importlib.util.find_spec("triton") is not None

BACKENDS = {
    "fft": FFT,
    "dft_matmul": DFTMatmul,
    "fused": FusedDFT,
    "triton-torch": lambda: TritonSpectral(impl="torch"),
    # the kernels themselves, in Triton's CPU interpreter (as tests/test_kernels.py runs them)
    "triton": lambda: TritonSpectral(impl="triton"),
}


def _backend(name: str):
    if name == "triton" and not HAS_TRITON:
        pytest.skip("triton is not installed")
    return BACKENDS[name]()


# --------------------------------------------------------------------- 1. higher-order autograd
#
# A band-limited input shifted by s, one Fourier mode k_c per channel:
#     u_c(x; s) = cos(2 pi k_c . (x - s e)),   x on the periodic unit grid.
# With k_c on the positive side of the last (rfft) dim, rfft(norm="forward") holds 1/2 at k_c and
# irfft doubles it back, so the layer's output is in closed form,
#     y_o(x; s) = sum_c Re(W[c, o, k_c] exp(2 pi i k_c . (x - s e))),
# and so are its s-derivatives (each brings a factor -2 pi i k_c . e). The loss
#     L(s) = sum p * tanh(y(s))
# is nonlinear in y, so d2L/ds2 by autograd runs the layer's backward backwards (double backward),
# and so does the weight gradient of the physics-style loss R = (dL/ds)^2.

SHIFT_CASES = {
    # d: (modes, grid, k per channel, shift direction e)
    1: ((5,), (12,), [(1,), (3,)], (1.0,)),
    2: ((3, 3), (8, 9), [(1, 2), (-2, 1)], (0.3, 1.0)),
}


def _mode_index(k: tuple[int, ...], modes: tuple[int, ...]) -> tuple[int, ...]:
    """Index of frequency ``k`` in SpectralConv's weight block (``j - m`` at ``m + j``)."""
    return tuple(
        f if (i == len(k) - 1 or f >= 0) else 2 * m + f for i, (f, m) in enumerate(zip(k, modes))
    )


def _shift_setup(d: int, backend: str):
    modes, grid, ks, e = SHIFT_CASES[d]
    torch.manual_seed(0)
    layer = SpectralConv(len(ks), 2, modes, backend=_backend(backend)).double()
    axes = torch.meshgrid(*[torch.arange(n, dtype=F64) / n for n in grid], indexing="ij")
    x = torch.stack(axes)  # (d, *grid)
    k = torch.tensor(ks, dtype=F64)  # (c, d)
    e = torch.tensor(e, dtype=F64)
    probe = torch.randn(1, 2, *grid, dtype=F64)
    return layer, x, k, e, probe


def _shifted_input(x, k, e, s):
    phase = torch.einsum("cd,d...->c...", k, x - s * e.view(-1, *([1] * (x.ndim - 1))))
    return torch.cos(2 * math.pi * phase)[None]  # (1, c, *grid)


def _closed_form(layer, x, k, e, s: float, ks):
    """``y, dy/ds, d2y/ds2`` from the closed form above (NumPy-free, no layer call)."""
    modes = layer.modes
    w = layer.weight.detach()
    y = dy = d2y = 0
    for c, kc in enumerate(ks):
        wk = w[(c, slice(None), *_mode_index(kc, modes))]  # (o,)
        kt = torch.tensor(kc, dtype=F64)
        phase = torch.einsum("d,d...->...", kt, x - s * e.view(-1, *([1] * (x.ndim - 1))))
        z = torch.exp(2j * math.pi * phase)  # (*grid)
        a = -2j * math.pi * float(kt @ e)  # d/ds of the exponent
        shape = (-1,) + (1,) * (x.ndim - 1)
        y = y + (wk.view(shape) * z).real
        dy = dy + (wk.view(shape) * a * z).real
        d2y = d2y + (wk.view(shape) * a * a * z).real
    return y[None], dy[None], d2y[None]


def _dl_ds(layer, x, k, e, probe, s, *, create_graph=True):
    s = torch.as_tensor(s, dtype=F64).requires_grad_(True)
    loss = (probe * torch.tanh(layer(_shifted_input(x, k, e, s)))).sum()
    (g,) = torch.autograd.grad(loss, s, create_graph=create_graph)
    return g, s


@pytest.mark.parametrize(
    ("backend", "d"),
    [
        # the interpreted kernels in 2D take ~6 s; 1D covers them in the default run
        pytest.param(b, d, marks=pytest.mark.slow) if (b, d) == ("triton", 2) else (b, d)
        for b in sorted(BACKENDS)
        for d in sorted(SHIFT_CASES)
    ],
)
def test_second_derivatives_match_the_closed_form_of_a_shifted_band_limited_input(backend, d):
    layer, x, k, e, probe = _shift_setup(d, backend)
    ks = SHIFT_CASES[d][2]
    s0 = 0.37
    y, dy, d2y = _closed_form(layer, x, k, e, s0, ks)
    with torch.no_grad():  # the closed form itself is right (so it can judge the rest)
        torch.testing.assert_close(
            layer(_shifted_input(x, k, e, torch.tensor(s0, dtype=F64))), y, rtol=0, atol=1e-12
        )
    sech2 = 1 - torch.tanh(y) ** 2
    want_1 = (probe * sech2 * dy).sum()
    want_2 = (probe * (sech2 * d2y - 2 * torch.tanh(y) * sech2 * dy**2)).sum()
    g, s = _dl_ds(layer, x, k, e, probe, s0)
    (g2,) = torch.autograd.grad(g, s)  # through the layer's backward: a double backward
    torch.testing.assert_close(g.detach(), want_1, rtol=1e-11, atol=1e-11)
    torch.testing.assert_close(g2, want_2, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_weight_gradient_of_a_loss_on_an_input_derivative_matches_finite_differences(backend):
    """``R = (dL/ds)^2`` (a residual built from an input derivative, as in physics-informed
    operator training); ``dR/dW`` by double backward against central differences of ``R`` along
    a random complex direction ``V``: ``Re <dR/dW, V>`` for PyTorch's complex gradient."""
    layer, x, k, e, probe = _shift_setup(1, backend)

    def residual() -> torch.Tensor:
        return _dl_ds(layer, x, k, e, probe, 0.37)[0] ** 2

    (gw,) = torch.autograd.grad(residual(), layer.weight)
    v = torch.randn_like(layer.weight)
    h = 1e-5
    with torch.no_grad():
        layer.weight.add_(h * v)
    r_plus = residual().detach()
    with torch.no_grad():
        layer.weight.sub_(2 * h * v)
    r_minus = residual().detach()
    fd = (r_plus - r_minus) / (2 * h)  # O(h^2) ~ 1e-10 relative
    directional = (gw.real * v.real + gw.imag * v.imag).sum()
    assert abs(fd) > 1e-3  # the direction does move R, so the comparison can fail
    torch.testing.assert_close(directional, fd, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("backend", ["fft", "dft_matmul", "fused", "triton-torch"])
def test_torch_func_second_derivative_matches_the_closed_form(backend):
    """``grad(grad(L))`` and ``jacfwd(jacrev(L))`` (``torch.func``: the fused node and the
    kernels switch to plain ops there) give the closed-form ``d2L/ds2``."""
    layer, x, k, e, probe = _shift_setup(2, backend)
    y, dy, d2y = _closed_form(layer, x, k, e, 0.37, SHIFT_CASES[2][2])
    sech2 = 1 - torch.tanh(y) ** 2
    want = (probe * (sech2 * d2y - 2 * torch.tanh(y) * sech2 * dy**2)).sum()

    def loss(s):
        return (probe * torch.tanh(layer(_shifted_input(x, k, e, s)))).sum()

    s = torch.tensor(0.37, dtype=F64)
    torch.testing.assert_close(grad(grad(loss))(s), want, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(jacfwd(jacrev(loss))(s), want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_forward_mode_ad_gives_the_layer_on_the_tangent(backend):
    """``torch.autograd.forward_ad`` (outside ``torch.func``): the layer is linear in ``u`` and in
    ``W``, so the tangent along ``(du, dW)`` is ``K_W du + K_dW u`` exactly (bias excluded).
    The fused node has no ``jvp``: it raised NotImplementedError before falling back."""
    torch.manual_seed(1)
    layer = SpectralConv(2, 3, (2, 3), bias=True, backend=_backend(backend)).double()
    u, du = torch.randn(2, 2, 6, 7, dtype=F64), torch.randn(2, 2, 6, 7, dtype=F64)
    dw = torch.randn_like(layer.weight)
    with torch.no_grad():
        layer.bias.normal_()
        twin = SpectralConv(2, 3, (2, 3), backend=FFT()).double()  # no bias: the linear part
        twin.weight.copy_(layer.weight)
        want = twin(du)
        twin.weight.copy_(dw)
        want = want + twin(u)
    w = layer.weight.detach().clone()
    with fwAD.dual_level():
        out = functional_call(layer, {"weight": fwAD.make_dual(w, dw)}, (fwAD.make_dual(u, du),))
        tangent = fwAD.unpack_dual(out).tangent
    torch.testing.assert_close(tangent, want, rtol=1e-12, atol=1e-12)


def _tanh_hessian_reference(backend, seed):
    """A float64 layer on ``backend``, an input ``u``, the row-by-row Jacobian ``J`` of an FFT
    twin with the same weights, and ``H = J^T diag(tanh''(y)) J``, the Hessian of
    ``sum tanh(layer(u))`` (the layer is linear in ``u``)."""
    torch.manual_seed(seed)
    layer = SpectralConv(2, 2, (2, 3), backend=_backend(backend)).double()
    twin = copy.deepcopy(layer)
    twin.backend = FFT()
    u = torch.randn(1, 2, 4, 5, dtype=F64)
    jac = _rowwise_jacobian(twin, u).reshape(-1, u.numel())
    with torch.no_grad():
        th = torch.tanh(layer(u)).reshape(-1)
    return layer, u, jac, jac.T @ torch.diag(-2 * th * (1 - th**2)) @ jac


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_vectorized_jacobian_and_hessian_match_rowwise_autograd(backend):
    """``torch.autograd.functional.jacobian / hessian(vectorize=True)`` run the backward under
    the autograd engine's own vmap (``is_grads_batched``), where the Triton launches raised
    'Cannot access storage of BatchedTensorImpl'. Reference: the row-by-row Jacobian ``J`` of
    the FFT backend with the same weights (40 interpreted backward passes would take ~20 s) and
    ``H = J^T diag(tanh''(y)) J`` for ``sum tanh(y)`` (the layer is linear in ``u``)."""
    layer, u, jac, want = _tanh_hessian_reference(backend, seed=5)
    got = torch.autograd.functional.jacobian(layer, u, vectorize=True)
    torch.testing.assert_close(got.reshape(jac.shape), jac, rtol=1e-12, atol=1e-12)
    hess = torch.autograd.functional.hessian(
        lambda v: torch.tanh(layer(v)).sum(), u, vectorize=True
    )
    torch.testing.assert_close(hess.reshape(want.shape), want, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_forward_over_reverse_hessian_products_match_rowwise_autograd(backend):
    """Forward-mode AD through the backward (``torch.autograd.forward_ad`` dual input, a plain
    ``autograd.grad`` without ``create_graph``; and ``hessian(vectorize=True,
    outer_jacobian_strategy="forward-mode")``, the same under the engine's vmap). The Triton
    GEMM's first-order backward launched raw kernels, which carry no tangent, so ``H v`` came
    back without one (a silent zero); a ``conj()`` view of a dual tensor with a batched tangent
    tripped a PyTorch internal assert ('has_fw_view') on both impls. Reference: ``H = J^T
    diag(tanh''(y)) J`` with the row-by-row Jacobian of an FFT twin (the layer is linear)."""
    layer, u, _, want = _tanh_hessian_reference(backend, seed=7)
    v = torch.randn_like(u)
    with fwAD.dual_level():
        x = fwAD.make_dual(u.clone().requires_grad_(True), v)
        (g,) = torch.autograd.grad(torch.tanh(layer(x)).sum(), x)
        hv = fwAD.unpack_dual(g).tangent
    assert hv is not None
    torch.testing.assert_close(hv.reshape(-1), want @ v.reshape(-1), rtol=1e-12, atol=1e-12)
    hess = torch.autograd.functional.hessian(
        lambda w: torch.tanh(layer(w)).sum(),
        u,
        vectorize=True,
        outer_jacobian_strategy="forward-mode",
    )
    torch.testing.assert_close(hess.reshape(want.shape), want, rtol=1e-11, atol=1e-12)


def test_the_triton_complex_gemm_has_second_derivatives():
    """gradgradcheck (float64) of the kernels' complex GEMM in Triton's interpreter: its backward
    used raw kernel launches, which record no graph."""
    if not HAS_TRITON:
        pytest.skip("triton is not installed")
    from sciml.kernels import autograd as K

    a = torch.randn(1, 2, 1, dtype=torch.complex128, requires_grad=True)
    b = torch.randn(1, 1, 2, dtype=torch.complex128, requires_grad=True)
    ga = torch.randn(1, 2, 2, dtype=torch.complex128)
    # one hand-checked number first: d/da <g, a b> = g b^H, and its derivative in b
    out = K.cbmm(a, b, impl="triton")
    (da,) = torch.autograd.grad(out, a, ga, create_graph=True)
    torch.testing.assert_close(da.detach(), ga @ b.detach().mH, rtol=1e-12, atol=1e-12)
    assert da.requires_grad  # the graph reaches b: second derivatives exist
    (db,) = torch.autograd.grad(da.real.sum(), b)
    # da = g b^H, sum Re(da) = Re sum_ij g_ij conj(b_j): the gradient in b is sum_i g_ij
    torch.testing.assert_close(db, ga.sum(dim=1, keepdim=True), rtol=1e-12, atol=1e-12)


def _transform_cases():
    x = torch.randn(2, 6, 7, dtype=F64)
    cases = {
        "dct": (dct, x),
        "idct": (idct, x),
        "dst": (lambda v: dst(v, dim=-2), x),
        "idst": (idst, x),
        "resample-up": (lambda v: fourier_resample(v, (8, 11)), x),
        "resample-down": (lambda v: fourier_resample(v, (4, 5)), x),
    }
    for t in (DCT(), DST(), RFFT()):
        kept = (t.low_pass(6, 2, last=False), t.low_pass(7, 3, last=True))
        for method in ("fft", "matmul"):

            def fwd(v, t=t, kept=kept, method=method):
                z = t.forward(v, kept, method=method)
                return torch.view_as_real(z) if z.is_complex() else z

            cases[f"{t.name}-forward-{method}"] = (fwd, x)
            z = t.forward(x, kept)
            z = torch.view_as_real(z).contiguous() if z.is_complex() else z

            def inv(zz, t=t, kept=kept, method=method):
                zz = torch.view_as_complex(zz) if t.is_complex else zz
                return t.inverse(zz, kept, (6, 7), method=method)

            cases[f"{t.name}-inverse-{method}"] = (inv, z)
    return cases


TRANSFORM_CASES = sorted(_transform_cases())


@pytest.mark.parametrize("name", TRANSFORM_CASES)
def test_transforms_have_correct_first_and_second_derivatives(name):
    """The T1 transforms (full and truncated, both formulations) and Fourier resampling under a
    tanh, in float64: gradcheck and gradgradcheck (finite differences of the analytic first and
    second derivatives)."""
    f, x = _transform_cases()[name]
    x = x[:1, :, :].clone().requires_grad_(True)  # keep it small: ~100 perturbations

    def g(v):
        return torch.tanh(f(v))

    assert torch.autograd.gradcheck(g, (x,))
    assert torch.autograd.gradgradcheck(g, (x,))


# --------------------------------------------------------------------- 2. torch.func on blocks


def _blocks():
    """name -> (make, input, keyword arguments); every public layer with parameters."""
    return {
        "spectral": (lambda: SpectralConv(2, 3, (2, 3)), (2, 2, 6, 8), {}),
        "vcycle": (lambda: VCycle(2, 3, ((1, 1), (1, 0)), padding="reflect"), (2, 2, 7, 8), {}),
        "vcycle-norm": (
            lambda: VCycle(2, 2, ((1, 1), (1, 0)), padding="circular", level_norm=True),
            (2, 2, 8, 8),
            {},
        ),
        "window-attention": (lambda: WindowAttention(8, 2, 2), (3, 4, 8), {}),
        "swin": (
            lambda: SwinV2Block(8, 2, (4, 4), window=2, shift=1, conditional=True),
            (2, 4, 5, 8),
            {"t": 0.3},
        ),
        "convnext": (
            lambda: ConvNeXtBlock(4, conditional=True, layer_scale=0.5),
            (2, 5, 6, 4),
            {"t": 0.3},
        ),
        "patch-embed": (lambda: PatchEmbed(2, 4, 2), (2, 2, 5, 6), {}),
        "patch-merging": (lambda: PatchMerging(4), (2, 5, 6, 4), {}),
        "patch-unmerging": (lambda: PatchUnmerging(4), (2, 3, 3, 4), {"size": (5, 6)}),
        "patch-recovery": (lambda: PatchRecovery(4, 2, 2), (2, 3, 3, 4), {"size": (5, 6)}),
        "conditional-norm": (lambda: ConditionalLayerNorm(4), (2, 3, 4), {"t": 0.7}),
        "layer-norm": (lambda: LayerNorm(4), (2, 3, 4), {}),
        "pointwise": (lambda: pointwise(2, 3, 2), (2, 2, 4, 4), {}),
    }


BLOCKS = sorted(_blocks())


def _make(name, dtype=F64, seed=0):
    make, shape, kw = _blocks()[name]
    torch.manual_seed(seed)
    block = make().to(dtype).eval()
    with torch.no_grad():  # move every parameter off its init (zeros, ones), so nothing is trivial
        for p in block.parameters():
            p.add_(0.2 * torch.randn_like(p))
    gen = torch.Generator().manual_seed(seed + 100)
    return block, torch.randn(*shape, generator=gen, dtype=dtype), kw


@pytest.mark.parametrize("name", BLOCKS)
def test_jacobians_by_torch_func_match_rowwise_autograd_and_finite_differences(name):
    block, u, kw = _make(name)
    u = u[:1]

    def f(v):
        return block(v, **kw)

    want = _rowwise_jacobian(f, u)
    torch.testing.assert_close(jacrev(f)(u), want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(jacfwd(f)(u), want, rtol=1e-12, atol=1e-12)
    v, h = torch.randn_like(u), 1e-5
    with torch.no_grad():
        fd = (f(u + h * v) - f(u - h * v)) / (2 * h)
    jv = (want.reshape(-1, u.numel()) @ v.reshape(-1)).reshape(fd.shape)
    torch.testing.assert_close(jv, fd, rtol=1e-6, atol=1e-7)


SMALL = {  # inputs small enough for gradgradcheck (one perturbation per entry, twice)
    "spectral": (1, 2, 4, 5),
    "vcycle": (1, 2, 5, 4),
    "vcycle-norm": (1, 2, 4, 4),
    "window-attention": (1, 4, 8),
    "swin": (1, 2, 2, 8),
    "convnext": (1, 3, 3, 4),
    "patch-embed": (1, 2, 3, 4),
    "patch-merging": (1, 3, 2, 4),
    "patch-unmerging": (1, 2, 2, 4),
    "patch-recovery": (1, 2, 2, 4),
    "conditional-norm": (1, 2, 4),
    "layer-norm": (1, 2, 4),
    "pointwise": (1, 2, 2, 2),
}


@pytest.mark.parametrize("name", BLOCKS)
def test_every_block_has_correct_second_input_derivatives(name):
    """gradgradcheck (float64) of ``tanh(block(u))``: the Hessian-vector products a
    physics-informed loss needs, against finite differences of the first derivative."""
    block, _, kw = _make(name)
    if "size" in kw:
        kw = {"size": (3, 3)}
    u = torch.randn(*SMALL[name], dtype=F64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda v: torch.tanh(block(v, **kw)), (u,))


def test_time_conditioned_norm_derivative_in_the_lead_time_is_analytic():
    """``d/dt [gamma(t) LN(x) + beta(t)] = a_g LN(x) + a_b`` (both affine in t), by autograd
    through a lead time that requires grad, per sample."""
    norm = ConditionalLayerNorm(4).double()
    with torch.no_grad():
        for p in norm.parameters():
            p.normal_()
    x = torch.randn(3, 5, 4, dtype=F64)
    t = torch.tensor([0.1, 0.5, 2.0], dtype=F64, requires_grad=True)
    y = norm(x, t)
    (dt,) = torch.autograd.grad(y.sum(), t)
    ln = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-5)
    want = (ln * norm.scale.weight[:, 0] + norm.shift.weight[:, 0]).sum(dim=(1, 2))
    torch.testing.assert_close(dt, want.detach(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", BLOCKS)
def test_an_ensemble_by_vmap_over_parameter_sets_equals_each_copy(name):
    copies, u, kw = zip(*(_make(name, seed=s) for s in range(3)))
    u, kw = u[0], kw[0]
    params, buffers = stack_module_state(list(copies))
    base = copy.deepcopy(copies[0]).to("meta")

    def one(p, b):
        return functional_call(base, (p, b), (u,), kw)

    with torch.no_grad():
        got = vmap(one)(params, buffers)
        want = torch.stack([m(u, **kw) for m in copies])
    assert not torch.allclose(want[0], want[1])  # the copies differ, so this can fail
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------- 3. module hygiene


def _numpy_spectral_conv(layer: SpectralConv, u: np.ndarray) -> np.ndarray:
    """Independent reference: rfftn, the kept block times W per mode, zero-filled irfftn."""
    d = layer.ndim
    w = layer.weight.detach().cpu().to(torch.complex128).numpy()  # (i, o, 2m_1, ..., m_d)
    spec = np.fft.rfftn(u, axes=tuple(range(2, d + 2)), norm="forward")
    out = np.zeros((u.shape[0], w.shape[1], *spec.shape[2:]), dtype=np.complex128)
    for idx in np.ndindex(*w.shape[2:]):
        pos = tuple(
            j if (a == d - 1 or j < layer.modes[a]) else j - 2 * layer.modes[a]
            for a, j in enumerate(idx)
        )
        out[(slice(None), slice(None), *pos)] = (
            spec[(slice(None), slice(None), *pos)] @ w[(slice(None), slice(None), *idx)]
        )
    return np.fft.irfftn(out, s=u.shape[2:], axes=tuple(range(2, d + 2)), norm="forward")


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_casts_after_a_forward_pass_leave_no_stale_cached_basis(backend):
    """A float32 forward fills the basis / plan caches; after ``.double()`` the layer must give
    float64 numbers (1e-12 from NumPy, where a float32 basis would leave ~1e-7), and back after
    ``.float()``; a deep copy made after the forward pass gives the same numbers."""
    torch.manual_seed(2)
    layer = SpectralConv(2, 3, (2, 3), backend=_backend(backend))
    u = torch.randn(2, 2, 6, 7, dtype=F64)
    with torch.no_grad():
        y32 = layer(u.float())
        ref32 = _numpy_spectral_conv(layer, u.float().double().numpy())
        np.testing.assert_allclose(y32.double().numpy(), ref32, rtol=0, atol=2e-6)
        layer.double()
        assert layer.weight.dtype == torch.complex128
        ref = _numpy_spectral_conv(layer, u.numpy())
        np.testing.assert_allclose(layer(u).numpy(), ref, rtol=0, atol=1e-12)
        twin = copy.deepcopy(layer)
        assert torch.equal(twin(u), layer(u))
        layer.float()
        np.testing.assert_allclose(layer(u.float()).double().numpy(), ref, rtol=0, atol=2e-6)


@pytest.mark.parametrize("name", BLOCKS)
def test_every_block_cast_after_a_forward_pass_equals_one_cast_before(name):
    """float32 forward passes first (filling any mask / basis / bias cache), then ``.double()``:
    the numbers of a copy cast before it ever ran, bit for bit, and float64 ones (a stale
    float32 cache would leave them ~1e-7 from the float64 answer)."""
    block, u, kw = _make(name, dtype=torch.float32)
    fresh = copy.deepcopy(block).double()
    with torch.no_grad():
        block(u, **kw)
        block(u[:1], **kw)
        block.double()
        got = block(u.double(), **kw)
        assert got.dtype == F64
        assert torch.equal(got, fresh(u.double(), **kw))
        assert not torch.equal(got, got.float().double())  # really float64 numbers


def test_transform_bases_follow_a_cast_after_a_forward_pass():
    """The truncated DCT / RFFT bases are cached per dtype: float32 first, then float64 input,
    gives float64 accuracy against the explicit float64 basis."""
    x = torch.randn(3, 10, 12, dtype=F64)
    for t in (DCT(), RFFT()):
        kept = (t.low_pass(10, 3, last=False), t.low_pass(12, 4, last=True))
        t.forward(x.float(), kept, method="matmul")
        got = t.forward(x, kept, method="matmul")
        want = t.forward(x, kept, method="fft")  # the full transform and a gather
        torch.testing.assert_close(got, want, rtol=0, atol=1e-13)


def test_window_attention_sees_in_place_updates_through_data():
    """An in-place update through ``p.data`` (EMA / weight averaging) bumps no version counter; the
    position bias cached under ``no_grad`` (keyed on version counters) stayed at the old weights.
    The cache now compares parameter values."""
    torch.manual_seed(3)
    attn = WindowAttention(8, 2, 2).double().eval()
    x = torch.randn(3, 4, 8, dtype=F64)
    with torch.no_grad():
        before = attn(x)
        for p in attn.cpb.parameters():
            p.data.mul_(2.0)
        after = attn(x)
    fresh = WindowAttention(8, 2, 2).double().eval()
    fresh.load_state_dict(attn.state_dict())
    with torch.no_grad():
        want = fresh(x)
    assert (want - before).abs().max() > 1e-2  # the update does change the output
    torch.testing.assert_close(after, want, rtol=0, atol=1e-14)
    with torch.no_grad():  # one tensor alone, the last layer's weight, changed in place
        attn(x)
        attn.cpb[2].weight.data[0, 0] += 0.5
        again = attn(x)
        fresh.load_state_dict(attn.state_dict())
        torch.testing.assert_close(again, fresh(x), rtol=0, atol=1e-14)
        assert (again - after).abs().max() > 1e-6
    # the position bias itself against its definition, 16 sigmoid(MLP(table)) per token pair
    table = attn.cpb(attn.rel_table)
    bias = torch.stack([table[attn.rel_index[i, j]] for i in range(4) for j in range(4)]).T.reshape(
        2, 4, 4
    )
    torch.testing.assert_close(attn.position_bias(), 16 * torch.sigmoid(bias))


def _window_attention_twin(attn: WindowAttention) -> WindowAttention:
    """A fresh copy (empty cache) holding ``attn``'s effective weights."""
    twin = WindowAttention(attn.dim, attn.num_heads, attn.window).to(attn.qkv.weight.dtype)
    state = {k: v for k, v in attn.state_dict().items() if not k.endswith(("_orig", "_mask"))}
    state["cpb.0.weight"] = attn.cpb[0].weight.detach().clone()  # pruned: weight_orig * mask
    twin.load_state_dict(state)
    return twin.eval()


def test_window_attention_cache_follows_autocast_pruning_and_jit_tracing():
    """The CPU position-bias cache keyed on the bias MLP's parameter values alone handed a float32
    pass the bias a bfloat16 autocast pass had computed (outputs 7e-3 off), kept the bias after
    a second pruning step (the MLP's mask is a buffer, its parameters stay; 0.09 off) and baked
    it into a ``torch.jit.trace`` as a constant (0.46 off once the weights moved). Each case
    against a fresh copy with the same effective weights."""
    torch.manual_seed(6)
    attn = WindowAttention(16, 2, 4).eval()
    x = torch.randn(3, 16, 16)
    with torch.no_grad():
        want = _window_attention_twin(attn)(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = attn(x)
        assert (low.float() - want).abs().max() > 1e-3  # the bfloat16 bias does differ
        torch.testing.assert_close(attn(x), want, rtol=0, atol=0)
        with torch.autocast("cpu", dtype=torch.bfloat16):  # and the float32 bias is not reused
            torch.testing.assert_close(attn(x), _window_attention_twin(attn)(x), rtol=0, atol=0)

        # iterative pruning: the second step changes the mask buffer alone
        torch.nn.utils.prune.l1_unstructured(attn.cpb[0], "weight", amount=0.3)
        before = attn(x)
        torch.nn.utils.prune.l1_unstructured(attn.cpb[0], "weight", amount=0.3)
        pruned = _window_attention_twin(attn)(x)
        assert (pruned - before).abs().max() > 1e-3
        torch.testing.assert_close(attn(x), pruned, rtol=0, atol=0)

    attn = WindowAttention(16, 2, 4).eval()
    with torch.no_grad():
        attn(x)  # a cached bias, which the trace must not take as a constant
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit.trace is deprecated
            traced = torch.jit.trace(attn, (x,))
        for p in attn.cpb.parameters():
            p.data.mul_(2.0)
        want = _window_attention_twin(attn)(x)
        torch.testing.assert_close(traced(x), want, rtol=1e-6, atol=1e-6)


class _UserModel(nn.Module):
    """A user's model: the block inside a Sequential after a layer of its own."""

    def __init__(self, block: nn.Module, kw: dict) -> None:
        super().__init__()
        self.stem = nn.Identity()
        self.body = nn.Sequential(block)
        self.kw = kw

    def forward(self, u):
        return self.body[0](self.stem(u), **self.kw)


@pytest.mark.parametrize("name", BLOCKS)
def test_nested_state_dict_round_trip_freezing_and_modes(name):
    """Under a prefix (``body.0.``) the state dict loads strictly into a fresh copy, which then
    gives the same numbers; ``requires_grad_(False)`` freezes every parameter while the input
    gradient is unchanged; ``train()`` / ``eval()`` reach the block."""
    block, u, kw = _make(name)
    model = _UserModel(block, kw).eval()
    other, _, _ = _make(name, seed=5)
    twin = _UserModel(other, kw).eval()
    state = model.state_dict()
    assert all(k.startswith("body.0.") for k in state)
    twin.load_state_dict(state, strict=True)
    with torch.no_grad():
        assert torch.equal(twin(u), model(u))

    x = u.clone().requires_grad_(True)
    (g_live,) = torch.autograd.grad(model(x).square().sum(), x)
    model.requires_grad_(False)
    y = model(x)
    (g_frozen,) = torch.autograd.grad(y.square().sum(), x)
    assert all(p.grad is None for p in model.parameters())
    # (not bit-equal: attention takes SDPA's fused kernel once no bias needs a gradient)
    torch.testing.assert_close(g_frozen, g_live, rtol=1e-12, atol=1e-12)
    model.train()
    assert all(m.training for m in model.modules())
    model.eval()
    assert not any(m.training for m in model.modules())


def test_vcycle_drops_obsolete_weights_under_a_prefix():
    """Checkpoints from before the dead weights were removed load strictly under any prefix."""
    vc = VCycle(1, 1, ((0, 1), (1, 0)))  # u = 0 entering level 1: no Pi, no A in its first step
    assert vc.obsolete_state_keys
    model = nn.Sequential(nn.Identity(), vc)
    state = dict(model.state_dict())
    for key in vc.obsolete_state_keys:
        state[f"1.{key}"] = torch.zeros(1, 1, 3, 3)
    twin = nn.Sequential(nn.Identity(), VCycle(1, 1, ((0, 1), (1, 0))))
    twin.load_state_dict(state, strict=True)
    f = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(twin(f), model(f))


def test_drop_path_and_convnext_act_in_train_mode_only():
    """DropPath in train mode: each sample kept with probability 1 - p and rescaled by
    1 / (1 - p) (so the mean is kept; measured over 4000 samples), identity in eval mode."""
    torch.manual_seed(4)
    drop = DropPath(0.25)
    x = torch.ones(4000, 3)
    y = drop(x)
    kept = y[:, 0] != 0
    assert torch.equal(y[kept], torch.full_like(y[kept], 1 / 0.75))
    assert abs(kept.double().mean().item() - 0.75) < 0.03  # 4.4 sigma of Bernoulli(0.75)
    assert torch.equal(drop.eval()(x), x)
    block = ConvNeXtBlock(4, layer_scale=1.0, drop_path=0.5)
    u = torch.randn(64, 3, 3, 4)
    with torch.no_grad():
        y_eval = block.eval()(u)
        y_train = block.train()(u)
    branch_eval, branch_train = (y_eval - u).flatten(1), (y_train - u).flatten(1)
    dropped = branch_train.abs().amax(1) == 0
    assert dropped.any() and not dropped.all()
    torch.testing.assert_close(branch_train[~dropped], branch_eval[~dropped] / 0.5)


# --------------------------------------------------------------------- 4. inputs


@pytest.mark.parametrize("name", BLOCKS)
def test_odd_layouts_and_batch_sizes_give_the_contiguous_answer(name):
    """Transposed-and-back (non-contiguous), strided slices, channels_last, batch 1 and batch 0
    give what a contiguous batch gives (batch 1: its row of the batch)."""
    block, u, kw = _make(name)
    with torch.no_grad():
        want = block(u, **kw)
        layouts = {
            "transposed": u.transpose(-1, -2).contiguous().transpose(-1, -2),
            "strided": torch.repeat_interleave(u, 2, dim=0)[::2],
            "sliced": torch.cat([u, u], dim=-1)[..., : u.shape[-1]],
        }
        if u.ndim == 4:
            layouts["channels_last"] = u.contiguous(memory_format=torch.channels_last)
        for label, v in layouts.items():
            assert not v.is_contiguous() or label == "channels_last"
            torch.testing.assert_close(block(v, **kw), want, rtol=1e-13, atol=1e-13, msg=label)
        torch.testing.assert_close(block(u[1:2], **kw), want[1:2], rtol=1e-13, atol=1e-13)
        empty = block(u[:0], **kw)
    assert empty.shape == (0, *want.shape[1:])


FUNCTIONS = {
    "fourier_resample": lambda x: fourier_resample(x, (12, 5)),
    "dct": dct,
    "idct-dim-2": lambda x: idct(x, -2),
    "dst": dst,
    "idst": idst,
    "DCT-matmul": lambda x: DCT().forward(x, ((0, 1, 2), (0, 1, 2, 3)), method="matmul"),
    "RFFT-fft": lambda x: RFFT().forward(x, ((0, 1, -1), (0, 1, 2)), method="fft"),
    "DST-inverse": lambda x: DST().inverse(x[..., :3, :4], ((0, 1, 2), (0, 1, 2, 3)), (8, 10)),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_transforms_of_odd_layouts_give_the_contiguous_answer(name):
    f = FUNCTIONS[name]
    x = torch.randn(2, 3, 8, 10, dtype=F64)
    want = f(x)
    for v in (
        x.transpose(-1, -2).contiguous().transpose(-1, -2),
        x.contiguous(memory_format=torch.channels_last),
        torch.cat([x, x], dim=-1)[..., :10],
        torch.repeat_interleave(x, 2, dim=0)[::2],
    ):
        torch.testing.assert_close(f(v), want, rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(f(x[1:2]), want[1:2], rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("name", [b for b in BLOCKS if b != "pointwise"])  # a torch Conv
def test_integer_and_mixed_precision_inputs_are_refused_with_a_way_out(name):
    block, u, kw = _make(name)
    with pytest.raises(TypeError, match=r"floating-point .*torch\.int64.*\.float\(\)"):
        block(u.long(), **kw)
    with pytest.raises(TypeError, match=r"dtype torch\.float64.*got torch\.float32.*\.to\("):
        block(u.float(), **kw)


WRONG_CHANNELS = {
    # name -> (input of the wrong width, what the message must say was expected)
    "spectral": ((2, 5, 6, 8), r"\(batch, 2, n0, n1\), got shape \(2, 5, 6, 8\)"),
    "vcycle": ((2, 5, 7, 8), r"\(batch, 2, 2 spatial dims\), got \(2, 5, 7, 8\)"),
    "window-attention": ((3, 4, 5), r"\(batch \* n_windows, 4, 8\).*got \(3, 4, 5\)"),
    "swin": ((2, 4, 5, 5), r"\(batch, h, w, 8\), got \(2, 4, 5, 5\)"),
    "convnext": ((2, 5, 6, 3), r"\(batch, h, w, 4\), got \(2, 5, 6, 3\)"),
    "patch-embed": ((2, 3, 5, 6), r"\(batch, 2, h, w\), got \(2, 3, 5, 6\)"),
    "patch-merging": ((2, 5, 6, 3), r"\(batch, h, w, 4\), got \(2, 5, 6, 3\)"),
    "patch-recovery": ((2, 3, 3, 5), r"\(batch, h, w, 4\), got \(2, 3, 3, 5\)"),
}


@pytest.mark.parametrize("name", sorted(WRONG_CHANNELS))
def test_a_wrong_channel_count_names_the_expected_and_given_shapes(name):
    block, _, kw = _make(name)
    shape, pattern = WRONG_CHANNELS[name]
    with pytest.raises(ValueError, match=pattern):
        block(torch.randn(*shape, dtype=F64), **kw)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_an_empty_batch_gives_an_empty_answer_and_a_zero_weight_gradient(backend):
    """Batch 0 (a rank's empty shard, a fully masked batch): an empty output on the same and on
    another grid, and a zero weight gradient (an empty sum). The FFT backend (PocketFFT / MKL:
    'Inconsistent configuration parameters') and the fused plan ('cannot reshape tensor of 0
    elements') raised."""
    layer = SpectralConv(3, 2, (2, 3), bias=True, backend=_backend(backend))
    u = torch.randn(0, 3, 8, 10, requires_grad=True)
    for shape in ((8, 10), (12, 7)):
        y = layer(u, shape)
        assert y.shape == (0, 2, *shape)
        gu, gw, gb = torch.autograd.grad(y.sum(), (u, layer.weight, layer.bias))
        assert gu.shape == u.shape
        assert torch.equal(gw, torch.zeros_like(layer.weight))
        assert torch.equal(gb, torch.zeros_like(layer.bias))


def test_transforms_and_resampling_of_an_empty_batch_are_empty():
    """The FFT formulations raised on an empty batch (MKL); now every transform gives the empty
    answer of the right shape, with a graph back to the input."""
    x = torch.randn(0, 3, 8, 10, requires_grad=True)
    for f in (dct, idct, dst, idst):
        assert f(x).shape == x.shape
    for size in ((12, 5), (4, 4)):
        y = fourier_resample(x, size)
        assert y.shape == (0, 3, *size)
        assert torch.autograd.grad(y.sum(), x)[0].shape == x.shape
    for t in (DCT(), DST(), RFFT()):
        kept = (t.low_pass(8, 2, last=False), t.low_pass(10, 3, last=True))
        ctype = torch.complex64 if t.is_complex else torch.float32
        for method in ("fft", "matmul"):
            z = t.forward(x, kept, method=method)
            assert z.shape == (0, 3, len(kept[0]), len(kept[1])) and z.dtype == ctype
            back = t.inverse(torch.zeros(0, 3, *z.shape[2:], dtype=ctype), kept, (8, 10))
            assert back.shape == x.shape
    with pytest.raises(ValueError, match=r"cannot resample a tensor of shape \(2, 0, 5\)"):
        fourier_resample(torch.randn(2, 0, 5), (3, 3))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_transforms_and_resampling_compute_in_float32(dtype):
    """A ``.half()`` model meets these with half input: they raised 'Unsupported dtype Half' (no
    half FFT on the CPU; ScOT away from its native resolution failed so). Now: the float64
    answer for the same (rounded) input, to the output dtype's rounding, in the input's dtype
    (complex64 for the RFFT coefficients, as its matmul formulation gives)."""
    x = torch.randn(2, 3, 8, 10).to(dtype)
    x64 = x.double()
    eps = torch.finfo(dtype).eps  # measured: within 0.55 eps, the output's own rounding
    tol = {"rtol": eps, "atol": eps}
    for f in (dct, idct, dst, idst, lambda v: fourier_resample(v, (12, 7))):
        y = f(x)
        assert y.dtype == dtype
        torch.testing.assert_close(y.double(), f(x64), **tol)
    for t in (DCT(), RFFT()):
        kept = (t.low_pass(8, 3, last=False), t.low_pass(10, 5, last=True))
        z = t.forward(x, kept, method="fft")
        want = t.forward(x64, kept, method="fft")
        assert z.dtype == (torch.complex64 if t.is_complex else dtype)
        torch.testing.assert_close(z.to(want.dtype), want, **tol)
