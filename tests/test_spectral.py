"""SpectralConv: every backend against an explicit DFT reference, resolution consistency,
super-resolution / truncation, initialisation, errors."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest
import torch

from sciml.kernels import TritonSpectral
from sciml.layers import SpectralConv
from sciml.layers._spectral_fused import fused_spectral_conv
from sciml.layers.spectral_backends import FFT, Auto, DFTMatmul, FusedDFT

BACKENDS = [FFT(), DFTMatmul(), FusedDFT(), Auto()]


def _reference(layer: SpectralConv, u: torch.Tensor, out_shape) -> torch.Tensor:
    """Full ``rfftn``, explicit per-frequency channel mixing, full ``irfftn`` (float64)."""
    d = layer.ndim
    dims = tuple(range(-d, 0))
    c = torch.fft.rfftn(u, dim=dims, norm="forward")
    eff = layer.effective_modes(u.shape[2:], out_shape)
    w = layer.weight.detach().to(torch.complex128)  # (i, o, 2m_1, ..., m_d)
    out = torch.zeros(u.shape[0], layer.out_channels, *out_shape[:-1], out_shape[-1] // 2 + 1,
                      dtype=torch.complex128)  # fmt: skip
    for freqs in itertools.product(*[list(range(e)) + list(range(-e, 0)) for e in eff[:-1]]):
        # the output grid holds -(n // 2) .. (n - 1) // 2 on a non-last dim; anything else
        # would alias onto a held frequency
        if any(not -(n // 2) <= f <= (n - 1) // 2 for f, n in zip(freqs, out_shape[:-1])):
            continue
        src = tuple(f % n for f, n in zip(freqs, u.shape[2:-1]))
        dst = tuple(f % n for f, n in zip(freqs, out_shape[:-1]))
        widx = tuple(f % (2 * m) for f, m in zip(freqs, layer.modes[:-1]))
        for k in range(eff[-1]):
            coeff = c[(slice(None), slice(None), *src, k)]
            out[(slice(None), slice(None), *dst, k)] = (
                coeff @ w[(slice(None), slice(None), *widx, k)]
            )
    return torch.fft.irfftn(out, s=out_shape, dim=dims, norm="forward")


CASES = [
    ((5,), (20,), (33,)),  # 1D super-resolution
    ((5,), (20,), (7,)),  # 1D truncation: only 7 // 2 + 1 = 4 modes fit the output
    ((3, 4), (10, 12), (16, 9)),
    ((3, 4), (10, 12), (4, 5)),  # 2D truncation on both dims
    ((2, 3, 4), (8, 10, 9), (12, 6, 10)),
    ((4, 4), (15, 16), (7, 9)),  # odd input and odd coarser output on the non-last dim
    ((2, 3, 4), (8, 10, 9), (3, 5, 7)),  # 3D: odd coarser outputs keep -(n//2) .. n//2
]


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: type(b).__name__)
@pytest.mark.parametrize(("modes", "grid", "out_grid"), CASES)
def test_matches_explicit_reference_float64(backend, modes, grid, out_grid):
    layer = SpectralConv(3, 2, modes, backend=backend).double()
    u = torch.randn(2, 3, *grid, dtype=torch.float64)
    for shape in (grid, out_grid):
        got = layer(u, shape)
        assert got.shape == (2, 2, *shape)
        torch.testing.assert_close(got, _reference(layer, u, shape), rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "backend", [FFT(), DFTMatmul(), FusedDFT()], ids=lambda b: type(b).__name__
)
def test_gradients_agree_between_backends_and_gradcheck(backend):
    layer = SpectralConv(2, 2, (2, 3), backend=backend).double()
    u = torch.randn(1, 2, 6, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: layer(x, (8, 5)), (u,))
    # a coarser odd output (the aliased weight slot masked), input and weight together
    w = layer.weight.detach().clone().requires_grad_(True)

    def coarse(x, w):
        return torch.func.functional_call(layer, {"weight": w}, (x, (3, 5)))

    assert torch.autograd.gradcheck(coarse, (u, w))
    # weight gradient against the FFT formulation
    ref = SpectralConv(2, 2, (2, 3), backend=FFT()).double()
    ref.load_state_dict(layer.state_dict())
    g1 = torch.autograd.grad(layer(u).square().sum(), layer.weight)[0]
    g2 = torch.autograd.grad(ref(u).square().sum(), ref.weight)[0]
    torch.testing.assert_close(g1, g2, rtol=1e-10, atol=1e-12)


def _band_limited(n: int, channels: int = 2) -> torch.Tensor:
    """A fixed trigonometric polynomial with |k| <= 3 sampled on an n x n periodic grid."""
    x = torch.arange(n, dtype=torch.float64) / n
    X, Y = torch.meshgrid(x, x, indexing="ij")
    f = [
        torch.sin(2 * math.pi * (X + 2 * Y)) + 0.5 * torch.cos(2 * math.pi * 3 * X),
        torch.cos(2 * math.pi * (2 * X - Y)) + 0.2,
    ]
    return torch.stack(f[:channels]).unsqueeze(0)


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: type(b).__name__)
def test_band_limited_input_gives_the_same_function_at_two_resolutions(backend):
    layer = SpectralConv(2, 3, (4, 4), backend=backend).double()
    coarse, fine = layer(_band_limited(16)), layer(_band_limited(48))
    # the fine output sampled at the coarse points equals the coarse output
    torch.testing.assert_close(fine[..., ::3, ::3], coarse, rtol=0, atol=1e-12)
    # super-resolution: coarse input, fine output grid = fine input's output
    torch.testing.assert_close(layer(_band_limited(16), (48, 48)), fine, rtol=0, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: type(b).__name__)
@pytest.mark.parametrize("out_grid", [(7, 7), (5, 16), (9, 7), (3, 5)])
def test_coarser_odd_output_is_the_resampled_full_output(backend, out_grid):
    """A coarser odd output grid n = 2p + 1 represents frequencies -p .. p: the layer's output
    there is its full-grid output resampled by truncating the DFT (numpy's FFT, independent of
    every backend). It used to drop +p on non-last dims (max error 0.5 on (7, 7))."""
    layer = SpectralConv(2, 3, (4, 4), backend=backend).double()
    u = torch.randn(2, 2, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        full = layer(u).numpy()
        got = layer(u, out_grid)
    spec = np.fft.fftn(full, axes=(-2, -1), norm="forward")
    keep = [np.r_[0 : (n + 1) // 2, -(n // 2) : 0] % 16 for n in out_grid]  # -(n//2)..n//2
    coarse = spec[..., keep[0][:, None], keep[1][None, :]]
    ref = np.fft.ifftn(coarse, axes=(-2, -1), norm="forward")
    assert np.abs(ref.imag).max() < 1e-12  # a Hermitian set: the resampled field is real
    np.testing.assert_allclose(got.numpy(), ref.real, rtol=0, atol=1e-12)
    # and the weight slot that aliases onto +p gets no gradient
    y = layer(u, out_grid)
    (g,) = torch.autograd.grad(y.square().sum(), layer.weight)
    if out_grid[0] < 8 and out_grid[0] % 2:
        p = out_grid[0] // 2
        assert g[:, :, 8 - (p + 1)].abs().max() == 0
        assert g[:, :, p].abs().max() > 0


@pytest.mark.parametrize("backend", [FFT(), DFTMatmul()], ids=lambda b: type(b).__name__)
@pytest.mark.parametrize("out_shape", [(7, 6), (5, 9), (3, 4)])
def test_inverse_modes_onto_a_grid_smaller_than_the_block_aliases_like_the_dft(backend, out_shape):
    """inverse_modes called directly with a block of 2e = 8 frequencies on a non-last dim of
    m < 8 points: each frequency adds onto its alias f mod m, the inverse DFT of the block
    (numpy's irfftn of the accumulated half-spectrum). The FFT backend dropped the -e slot
    (before the odd-output change it overwrote +(e - 1) with it), so the backends disagreed."""
    e, ed, m0 = 4, 3, out_shape[0]
    block = torch.randn(2 * e, ed, 2, 3, dtype=torch.complex128)  # (2e, e_d, b, c)
    spec = np.zeros((2, 3, m0, out_shape[1] // 2 + 1), dtype=np.complex128)
    for j, f in enumerate(list(range(e)) + list(range(-e, 0))):
        spec[:, :, f % m0, :ed] += block[j].permute(1, 2, 0).numpy()
    ref = np.fft.irfftn(spec, s=out_shape, axes=(-2, -1), norm="forward")
    got = backend.inverse_modes(block, out_shape)
    np.testing.assert_allclose(got.numpy(), ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "backend", [*BACKENDS, TritonSpectral(impl="torch")], ids=lambda b: type(b).__name__
)
@pytest.mark.parametrize(
    ("modes", "grid", "out_grid"),
    [((5,), (8,), (16,)), ((5,), (8,), (13,)), ((3, 4), (7, 6), (7, 10)),
     ((2, 2, 4), (5, 4, 6), (5, 4, 9))],
)  # fmt: skip
def test_super_resolution_with_the_last_dim_nyquist_bin_kept_is_the_resampled_output(
    backend, modes, grid, out_grid
):
    """modes[-1] = n / 2 + 1 on an even last dim keeps its Nyquist bin, which irfft reads once
    (as Re(Y) cos(pi j)) on n points but twice, imaginary part included, on a finer grid: the
    super-resolved output disagreed with the layer's own output even at the input's points
    (1D (5,) on 8 -> 16: max 0.055). Now it is that output band-limited-resampled by
    scipy.signal.resample (which splits the Nyquist bin), a computation independent of sciml."""
    from scipy.signal import resample

    layer = SpectralConv(2, 3, modes, backend=backend).double()
    u = torch.randn(1, 2, *grid, dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        ref = resample(layer(u).numpy(), out_grid[-1], axis=-1)
        got = layer(u, out_grid).numpy()
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
    w = layer.weight.detach().clone().requires_grad_(True)

    def fine(x, w):
        return torch.func.functional_call(layer, {"weight": w}, (x, out_grid))

    assert torch.autograd.gradcheck(fine, (u, w))


def test_a_layer_runs_on_the_meta_device_and_gives_the_cpu_shapes():
    """A model on the meta device (shapes only, no data) ran SpectralConv until 18c6fe8 wrapped
    the backend in torch.autocast(u.device.type, enabled=False), which raises for "meta"
    ("unsupported scalarType"); the same layers on the meta device give the CPU's output
    shapes and dtypes again, also for a finer output grid and the FNO around them."""
    from sciml.models import FNO, FNOConfig

    for make, shape, out_shape in [
        (lambda: SpectralConv(2, 3, (4, 5)), (2, 2, 8, 8), None),
        (lambda: SpectralConv(2, 3, (4, 5)), (2, 2, 8, 8), (12, 16)),
        (lambda: FNO(FNOConfig(modes=(3, 3), width=4, n_layers=1)), (2, 1, 8, 8), None),
    ]:
        torch.manual_seed(0)
        cpu = make()
        with torch.device("meta"):
            meta = make()
        args = () if out_shape is None else (out_shape,)
        want = cpu(torch.randn(*shape), *args)
        got = meta(torch.empty(*shape, device="meta"), *args)
        assert (got.device.type, got.shape, got.dtype) == ("meta", want.shape, want.dtype)


@pytest.mark.parametrize(
    "backend", [*BACKENDS, TritonSpectral(impl="torch")], ids=lambda b: type(b).__name__
)
def test_under_autocast_every_backend_computes_in_float32(backend):
    """The documented rule (half precision is computed in float32, kept float32 under
    torch.autocast) held for FFT and FusedDFT only: CPU autocast ran DFTMatmul's (and so Auto's)
    real GEMMs in bfloat16 (a bfloat16 output, 1e-2 off) and TritonSpectral's reference ops
    raised "Expected both inputs to be Half, Float or Double tensors"."""
    layer = SpectralConv(3, 2, (4, 3), backend=FFT(), bias=True)
    with torch.no_grad():
        layer.bias.normal_()
    u = torch.randn(2, 3, 9, 8)
    ref = layer(u, (12, 8))  # float32, no autocast, the FFT backend
    layer.backend = backend
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = layer(u, (12, 8))
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, ref, rtol=0, atol=2e-6)


@pytest.mark.parametrize(
    "backend", [*BACKENDS, TritonSpectral(impl="torch")], ids=lambda b: type(b).__name__
)
@pytest.mark.parametrize(
    ("modes", "grid", "out_grid"),
    [((3, 2), (6, 5), (12, 5)), ((3, 2), (6, 5), (9, 5)), ((3, 4), (6, 6), (12, 12)),
     ((2, 3, 2), (4, 6, 5), (8, 12, 5)), ((2, 2, 4), (4, 5, 6), (7, 5, 10))],
)  # fmt: skip
def test_super_resolution_with_a_non_last_dim_nyquist_bin_kept_is_the_resampled_output(
    backend, modes, grid, out_grid
):
    """2 modes[a] = n on an even non-last dim keeps its Nyquist bin as the block's frequency
    -n/2. Zero-padding put it at -n/2 of the finer grid, a one-sided wave exp(-i pi n j / m)
    whose sine part vanishes on the input's points (so the subsampled output agreed) but not
    between them: 2D (3, 2) on (6, 5) -> (12, 5) was 0.38 off scipy.signal.resample of the
    layer's own output. Now the bin is split between +-n/2 as on the last dim, along every
    finer dim that holds one (tensor product where several do)."""
    from scipy.signal import resample

    layer = SpectralConv(2, 3, modes, backend=backend).double()
    u = torch.randn(1, 2, *grid, dtype=torch.float64)
    with torch.no_grad():
        coarse = layer(u)
        ref = coarse.numpy()
        for a, (n, m) in enumerate(zip(grid, out_grid)):
            if m != n:
                ref = resample(ref, m, axis=2 + a)
        got = layer(u, out_grid)
    np.testing.assert_allclose(got.numpy(), ref, rtol=0, atol=1e-12)
    # where the finer grid holds the input's points, they carry the layer's own output
    sub = tuple(slice(None, None, m // n) for n, m in zip(grid, out_grid))
    if all(m % n == 0 for n, m in zip(grid, out_grid)):
        np.testing.assert_allclose(got[(..., *sub)].numpy(), coarse.numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("backend", [FFT(), FusedDFT()], ids=lambda b: type(b).__name__)
def test_the_non_last_dim_nyquist_split_has_the_gradient_of_its_finite_differences(backend):
    """gradcheck (float64) of input and weight through the split of the test above: dim -2 and
    the last dim both hold their Nyquist bin and both are finer (four convolutions summed)."""
    layer = SpectralConv(1, 1, (2, 3), backend=backend).double()
    u = torch.randn(1, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    w = layer.weight.detach().clone().requires_grad_(True)

    def fine(x, w):
        return torch.func.functional_call(layer, {"weight": w}, (x, (6, 7)))

    assert torch.autograd.gradcheck(fine, (u, w))


def test_initialisation_variance_matches_the_stated_law():
    layer = SpectralConv(40, 24, (6, 5))
    w = layer.weight.detach()
    var = 1.0 / (40 + 24)
    assert abs(w.real.var().item() / var - 1) < 0.05
    assert abs(w.imag.var().item() / var - 1) < 0.05
    assert abs(w.real.mean().item()) < 4 * math.sqrt(var / w.numel())


def test_weight_is_stored_mode_major_and_survives_casts():
    layer = SpectralConv(3, 4, (2, 5)).double()
    assert layer.weight.dtype == torch.complex128
    assert layer.weight.shape == (3, 4, 4, 5)
    assert layer.mode_weight().is_contiguous()


def test_bad_inputs_are_named():
    layer = SpectralConv(2, 2, (3, 3))
    with pytest.raises(ValueError, match=r"expected u with 2 spatial dims \(batch, 2, n0, n1\)"):
        layer(torch.randn(2, 2, 8))
    with pytest.raises(ValueError, match="keep 6 frequencies along a dim of size 4"):
        layer(torch.randn(1, 2, 4, 8))
    with pytest.raises(ValueError, match="out_shape must have 2 entries"):
        layer(torch.randn(1, 2, 8, 8), (8,))
    with pytest.raises(TypeError, match="backend must be a"):
        SpectralConv(2, 2, (3,), backend="fft")


@pytest.mark.parametrize(
    ("modes", "shape"), [((3,), (1, 2, 0)), ((4, 4), (1, 2, 0, 8)), ((2, 2, 2), (2, 2, 4, 4, 0))]
)
def test_an_empty_grid_is_refused_as_fno_refuses_it(modes, shape):
    """A grid with no point along a spatial dim gets layers._checks.check_grid's message, as FNO,
    SwinV2Block and ConvNeXtBlock give it. (why) it said "modes=(4, 4) keep 8 frequencies along
    a dim of size 0; at most 0 fit", which reads as too many modes. A non-empty grid too small
    for the modes keeps that message."""
    layer = SpectralConv(2, 3, modes)
    shown = re.escape(str(shape))
    with pytest.raises(
        ValueError,
        match=rf"^SpectralConv expected u on a non-empty grid \(at least one point along each "
        rf"spatial dim\), got shape {shown}$",
    ):
        layer(torch.randn(*shape))
    with pytest.raises(
        ValueError, match=r"^modes=\(4, 4\) keep 8 frequencies along a dim of size 2"
    ):
        SpectralConv(2, 3, (4, 4))(torch.randn(1, 2, 2, 8))


def test_a_one_point_grid_and_an_empty_batch_still_run():
    """The smallest grid is not refused: one point keeps only the mean mode, so the layer is
    the real part of the k = 0 weight as a channel matrix plus the bias (float64, 1e-12); an
    empty batch gives an empty answer."""
    torch.manual_seed(0)
    layer = SpectralConv(2, 3, (1,), bias=True).double()
    with torch.no_grad():
        layer.bias.normal_()
    u = torch.randn(4, 2, 1, dtype=torch.float64)
    want = torch.einsum("bi,io->bo", u[:, :, 0], layer.weight.real[:, :, 0].detach())
    torch.testing.assert_close(layer(u), (want + layer.bias)[:, :, None], rtol=1e-12, atol=1e-12)
    assert layer(torch.randn(0, 2, 8, dtype=torch.float64)).shape == (0, 3, 8)


@pytest.mark.parametrize("dynamic", [False, True])
def test_the_grid_check_is_no_graph_break(dynamic):
    """check_grid compares the spatial sizes in Python; dynamo traces SpectralConv as one graph
    with static sizes and with a dynamic grid (a dynamic size is assumed >= 2: no guard)."""
    layer = SpectralConv(2, 3, (4, 4))
    u = torch.randn(2, 2, 16, 12)
    if dynamic:
        torch._dynamo.mark_dynamic(u, 2)
        torch._dynamo.mark_dynamic(u, 3)
    torch._dynamo.reset()
    explained = torch._dynamo.explain(layer)(u)
    torch._dynamo.reset()
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons


# ---------------------------------------------------------------------------- FusedDFT


GRAD_CASES = [
    ((3,), (8,), (11,)),
    ((2, 3), (6, 7), (8, 5)),
    ((1, 2, 2), (4, 5, 4), (6, 3, 5)),
]


@pytest.mark.parametrize(("modes", "grid", "out_grid"), GRAD_CASES)
def test_fused_function_gradcheck_input_and_weight(modes, grid, out_grid):
    """float64 gradcheck of the hand-written backward, input and complex weight together, on
    the same grid and on a super-resolution / truncated output grid."""
    layer = SpectralConv(2, 3, modes).double()
    u = torch.randn(2, 2, *grid, dtype=torch.float64, requires_grad=True)
    for shape in (grid, out_grid):
        eff = layer.effective_modes(grid, shape)
        d = layer.ndim
        w = layer.mode_weight(eff).permute(d, d + 1, *range(d)).detach().clone()
        w.requires_grad_(True)
        assert torch.autograd.gradcheck(
            lambda x, w, s=shape, e=eff: fused_spectral_conv(x, w, e, s), (u, w)
        )


def test_fused_second_derivatives():
    """The backward is built from differentiable ops, so double backward works (PINN losses
    on FNO outputs): gradgradcheck in float64."""
    layer = SpectralConv(2, 2, (2, 3)).double()
    u = torch.randn(1, 2, 6, 7, dtype=torch.float64, requires_grad=True)
    w = layer.weight.detach().clone().requires_grad_(True)
    f = lambda x, w: fused_spectral_conv(x, w, (2, 3), (8, 5))  # noqa: E731
    assert torch.autograd.gradgradcheck(f, (u, w))


@pytest.mark.parametrize(("modes", "grid", "out_grid"), CASES)
def test_fused_matches_dft_matmul_values_and_gradients(modes, grid, out_grid):
    """Same function as DFTMatmul (rtol 1e-10, float64): outputs, input and weight gradients,
    including a bias and a super-resolved / truncated output grid."""
    ref = SpectralConv(3, 4, modes, bias=True, backend=DFTMatmul()).double()
    fused = SpectralConv(3, 4, modes, bias=True, backend=FusedDFT()).double()
    with torch.no_grad():
        ref.bias.normal_()
    fused.load_state_dict(ref.state_dict())
    u = torch.randn(2, 3, *grid, dtype=torch.float64, requires_grad=True)
    for shape in (grid, out_grid):
        probe = torch.randn(2, 4, *shape, dtype=torch.float64)
        outs = []
        for layer in (ref, fused):
            y = layer(u, shape)
            grads = torch.autograd.grad((y * probe).sum(), (u, layer.weight, layer.bias))
            outs.append((y, *grads))
        for a, b in zip(*outs):
            torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12)


def test_fused_ignores_imaginary_parts_of_dc_and_nyquist_bins():
    """irfft's rule along the last dim: a weight that only adds an imaginary part to the DC
    and Nyquist output bins leaves the output unchanged (any other bin does change it)."""
    n = 8  # 5 modes on 8 points keep the Nyquist bin k = 4
    layer = SpectralConv(1, 1, (5,), backend=FusedDFT()).double()
    u = torch.randn(1, 1, n, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[0, 0, 0] = 1.0 + 3.0j
        layer.weight[0, 0, 4] = 1.0 - 2.0j
    y = layer(u)
    c = torch.fft.rfft(u, norm="forward")[0, 0]
    expected = c[0].real * layer.weight[0, 0, 0].real - c[0].imag * 3.0  # Re(W c) at k = 0
    nyq = (c[4] * (1.0 - 2.0j)).real * torch.cos(torch.pi * torch.arange(n, dtype=torch.float64))
    torch.testing.assert_close(y[0, 0], (expected + nyq).to(torch.float64), rtol=0, atol=1e-13)
    with torch.no_grad():
        layer.weight[0, 0, 1] = 0.5j
    assert (layer(u) - y).abs().max() > 1e-3


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_float32_and_float64_against_fft(dtype):
    """Both precisions, against the FFT backend; float32 to its rounding."""
    torch.manual_seed(3)
    ref = SpectralConv(4, 4, (3, 5), backend=FFT())
    fused = SpectralConv(4, 4, (3, 5), backend=FusedDFT())
    fused.load_state_dict(ref.state_dict())
    if dtype == torch.float64:
        ref, fused = ref.double(), fused.double()
    u = torch.randn(2, 4, 12, 16, dtype=dtype)
    y = fused(u, (20, 24))
    assert y.dtype == dtype
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(y, ref(u, (20, 24)), rtol=tol, atol=tol)


def test_fused_under_autocast_keeps_float32():
    """Inside ``torch.autocast`` the fused node still computes in float32 (its bases are float32),
    so it matches the float32 result outside autocast."""
    layer = SpectralConv(3, 3, (4, 5), backend=FusedDFT())
    u = torch.randn(2, 3, 16, 12, requires_grad=True)
    y0 = layer(u)
    (g0,) = torch.autograd.grad(y0.square().sum(), u)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y1 = layer(u)
        (g1,) = torch.autograd.grad(y1.float().square().sum(), u)
    assert y1.dtype == torch.float32
    torch.testing.assert_close(y1, y0, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(g1, g0, rtol=1e-6, atol=1e-6)


def test_fused_is_one_autograd_node():
    """Overhead proxy: the whole layer is one autograd node (plus AccumulateGrad), where
    DFTMatmul records a chain of matmul / reshape / permute nodes."""

    def nodes(layer):
        u = torch.randn(2, 3, 16, 12, requires_grad=True)
        # (why) the output is kept while the graph is walked: it owns the graph, and once it
        # was freed the fused layer's node (a custom autograd.Function) was left as a Python
        # object whose next_functions raised "Attribute 'next_functions' is invalid for this
        # instance of _C._FunctionBase" (torch 2.11, H100 machine; torch 2.13 still answers)
        out = layer(u)
        seen, stack = set(), [out.grad_fn]
        while stack:
            fn = stack.pop()
            if fn is None or fn in seen:
                continue
            seen.add(fn)
            stack.extend(f for f, _ in fn.next_functions)
        return len(seen)

    fused, matmul = (
        nodes(SpectralConv(3, 3, (4, 4), backend=FusedDFT())),
        nodes(SpectralConv(3, 3, (4, 4), backend=DFTMatmul())),
    )
    assert fused == 3  # the Function and the two AccumulateGrad leaves
    assert matmul >= 3 * fused


def test_auto_picks_fused_on_cuda_where_it_picks_dft_matmul():
    auto = Auto()
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    # small grid, few modes: GEMMs win; on the CPU the unfused DFTMatmul
    for grid, modes in (((1024,), (16,)), ((128, 128), (16, 16)), ((32,) * 3, (8, 8, 7))):
        assert type(auto.resolve(grid, modes, cpu)) is DFTMatmul
    assert isinstance(auto.resolve((64,), (60,), cpu), FFT)
    # on CUDA (resolve does not touch the device unless sciml.kernels has a Triton entry)
    import sciml.kernels as kernels

    if not kernels.DISPATCH_TABLE or not torch.cuda.is_available():
        assert isinstance(auto.resolve((128, 128), (16, 16), cuda), FusedDFT)
        assert isinstance(auto.resolve((64,), (60,), cuda), FFT)


@pytest.mark.parametrize("backend", [Auto, FusedDFT])
def test_compiled_fno_training_loss_is_one_graph_equal_to_eager(backend):
    """``torch.compile`` traces an FNO forward and its loss as one graph. ``SpectralConv``
    called ``dtype.to_real()``, which dynamo cannot trace: the break sat inside FNO's loop over
    its layers, so dynamo skipped the whole forward and a "compiled" FNO ran eagerly (on an H100
    its compiled training step was 1.1-1.5x slower than the eager one). The compiled loss and
    gradients equal the eager ones."""
    from sciml.models import FNO, FNOConfig
    from sciml.train import LpLoss

    torch.manual_seed(0)
    model = FNO(FNOConfig(modes=(4, 4), width=8, n_layers=2, projection_channels=16))
    for layer in model.modules():
        if isinstance(layer, SpectralConv):
            layer.backend = backend()
    loss = LpLoss()
    u, y = torch.randn(2, 1, 16, 16), torch.randn(2, 1, 16, 16)

    def step(u, y):
        return loss(model(u), y)

    torch._dynamo.reset()
    explained = torch._dynamo.explain(step)(u, y)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons
    torch._dynamo.reset()
    params = list(model.parameters())
    got = torch.compile(step, backend="aot_eager")(u, y)
    grads_got = torch.autograd.grad(got, params)
    want = step(u, y)
    grads_want = torch.autograd.grad(want, params)
    torch._dynamo.reset()
    torch.testing.assert_close(got, want, rtol=1e-6, atol=0)
    for g_got, g_want in zip(grads_got, grads_want):
        torch.testing.assert_close(g_got, g_want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "backend", [*BACKENDS, TritonSpectral(impl="torch")], ids=lambda b: type(b).__name__
)
def test_bins_past_the_output_grids_last_dim_nyquist_are_dropped_as_irfft_drops_them(backend):
    # a block with more last-dim modes than an m-point output holds (k > m // 2): DFTMatmul's
    # inverse (so FusedDFT, TritonSpectral and Auto too) folded bin k onto m - k with weight 2,
    # where irfft, and so the FFT backend, drops it. SpectralConv truncates its modes first;
    # a direct convolve / inverse_modes call got backend-dependent numbers (1.6 off at 10 -> 4)
    rng = np.random.default_rng(0)
    cases = [((10,), (5,), (4,)), ((10,), (6,), (7,)), ((6, 10), (2, 5), (8, 6)),
             ((4, 6, 9), (1, 2, 5), (5, 8, 5))]  # fmt: skip
    for spatial, modes, out in cases:
        axes = tuple(range(2, len(modes) + 2))
        block = (*(2 * m for m in modes[:-1]), modes[-1])
        u = rng.standard_normal((2, 3, *spatial))
        w = rng.standard_normal((3, 2, *block)) + 1j * rng.standard_normal((3, 2, *block))
        x = rng.standard_normal((*block, 2, 2)) + 1j * rng.standard_normal((*block, 2, 2))
        keep = min(modes[-1], out[-1] // 2 + 1)
        # NumPy: the kept coefficients, mixed per mode, placed on the output grid where it
        # holds them (non-last: f mod n_out; last: k <= m // 2), then irfftn
        c = np.fft.rfftn(u, axes=axes, norm="forward")
        y_conv = np.zeros((2, 2, *out[:-1], out[-1] // 2 + 1), dtype=complex)
        y_inv = np.zeros_like(y_conv)
        for freqs in itertools.product(*[range(-m, m) for m in modes[:-1]]):
            src = tuple(f % n for f, n in zip(freqs, spatial))
            dst = (slice(None), slice(None), *(f % n for f, n in zip(freqs, out)), slice(keep))
            slot = tuple(f % (2 * m) for f, m in zip(freqs, modes))
            coeff = c[(slice(None), slice(None), *src, slice(keep))]
            y_conv[dst] = np.einsum(
                "bik,iok->bok", coeff, w[(slice(None), slice(None), *slot)][..., :keep]
            )
            y_inv[dst] = x[(*slot, slice(keep))].transpose(1, 2, 0)
        got = backend.convolve(torch.from_numpy(u), torch.from_numpy(w), modes, out)
        want = np.fft.irfftn(y_conv, s=out, axes=axes, norm="forward")
        np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-12)
        got = backend.inverse_modes(torch.from_numpy(x), out)
        want = np.fft.irfftn(y_inv, s=out, axes=axes, norm="forward")
        np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-12)


def test_mode_weight_and_effective_modes_refuse_what_the_layer_does_not_hold():
    # mode_weight((5, 3)) of modes (3, 3) returned the whole block (6 rows, not 10), (0, 3) an
    # empty one, (2,) of a 2D layer a (4, 2) block; effective_modes((8,), (8,)) of a 2D layer
    # answered (3,) (zip stopped at the shorter)
    layer = SpectralConv(2, 3, (3, 4))
    w = layer.weight.detach()  # (i, o, 6, 4): rows 0, 1, 2 are frequencies 0..2, 3, 4, 5 -3..-1
    got = layer.mode_weight((2, 3))  # frequencies -2..1 and 0..2
    want = w[:, :, [0, 1, 4, 5], :3].permute(2, 3, 0, 1)
    assert torch.equal(got, want)
    assert torch.equal(layer.mode_weight(np.array([3, 1])), w[:, :, :, :1].permute(2, 3, 0, 1))
    message = "expected modes with 2 ints in 1 .. (3, 4) (at most the layer's), got "
    for bad in [(5, 3), (3, 5), (0, 3), (2,), (1, 2, 3), (2.0, 3), (True, 3)]:
        with pytest.raises(ValueError, match=re.escape(message + str(tuple(bad)))):
            layer.mode_weight(bad)
    assert layer.effective_modes((8, 9), (5, 3)) == (3, 2)
    for spatial, out in [((8,), (8,)), ((8, 8), (8, 8, 8)), ((8, 8, 8), (8, 8))]:
        with pytest.raises(ValueError, match=r"expected spatial and out_shape with 2 entries"):
            layer.effective_modes(spatial, out)


@pytest.mark.parametrize(
    "backend", [*BACKENDS, TritonSpectral(impl="torch")], ids=lambda b: type(b).__name__
)
def test_kept_frequencies_past_the_input_grid_are_the_dfts_at_f_mod_n(backend):
    # the FFT backend's forward_modes raised "start (0) + length (4) exceeds dimension size (3)"
    # for more last-dim modes than the rfft holds (n // 2 + 1), and a narrow error for 2 e > 2 n
    # on another dim; the DFT bases give the DFT at f mod n there (SpectralConv never asks)
    rng = np.random.default_rng(0)
    for shape, modes in [((5,), (4,)), ((5,), (8,)), ((4, 5), (3, 5)), ((2, 5), (3, 4)),
                         ((2, 3, 4), (3, 1, 7))]:  # fmt: skip
        u = rng.standard_normal((2, 3, *shape))
        x = np.fft.fftn(u, axes=tuple(range(2, 2 + len(shape)))) / math.prod(shape)
        rows = [np.r_[0:e, -e:0] % n for e, n in zip(modes[:-1], shape[:-1])]
        want = x[np.ix_([0, 1], [0, 1, 2], *rows, np.arange(modes[-1]) % shape[-1])]
        got = backend.forward_modes(torch.from_numpy(u), modes)
        np.testing.assert_allclose(got.numpy(), np.moveaxis(want, (0, 1), (-2, -1)), atol=1e-14)
        # the whole layer then agrees with the DFT-matmul one (bins past the output's Nyquist
        # dropped, as irfft drops them)
        w = torch.from_numpy(rng.standard_normal((3, 2, *got.shape[:-2])) * (1 + 1j))
        out = tuple(2 * n + 1 for n in shape)
        torch.testing.assert_close(
            backend.convolve(torch.from_numpy(u), w, modes, out),
            DFTMatmul().convolve(torch.from_numpy(u), w, modes, out),
            rtol=0,
            atol=1e-12,
        )
