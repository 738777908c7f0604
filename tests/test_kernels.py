"""Triton spectral kernels against the PyTorch reference, in Triton's interpreter on the CPU,
and gradcheck (float64) of every custom autograd function on both implementations."""

from __future__ import annotations

import os

os.environ["TRITON_INTERPRET"] = "1"  # must precede the first import of triton

import pytest  # noqa: E402
import torch  # noqa: E402

from sciml.kernels import DISPATCH_TABLE, TritonSpectral, backend_for  # noqa: E402
from sciml.kernels import autograd as K  # noqa: E402
from sciml.kernels.reference import irfft_weights  # noqa: E402
from sciml.layers import SpectralConv  # noqa: E402
from sciml.layers.spectral_backends import FFT, Auto  # noqa: E402

triton = pytest.importorskip("triton")

IMPLS = ["torch", "triton"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_triton_forward_matches_reference_and_fft(dtype):
    ctype = torch.complex64 if dtype == torch.float32 else torch.complex128
    tol = 2e-5 if dtype == torch.float32 else 1e-12
    a, b = torch.randn(3, 20, 37, dtype=ctype), torch.randn(3, 37, 18, dtype=ctype)
    torch.testing.assert_close(K.cbmm(a, b, impl="triton"), a @ b, rtol=tol, atol=tol * 10)
    # transposed + conjugated operands through strides (the backward products)
    at = a.transpose(1, 2)
    torch.testing.assert_close(
        K.cbmm(at.conj(), a, impl="triton"), at.conj() @ a, rtol=tol, atol=tol * 10
    )
    x = torch.randn(40, 50, dtype=dtype)
    scale = torch.full((9,), 1 / 50, dtype=dtype)
    ref = torch.fft.rfft(x, norm="forward")[:, :9]
    torch.testing.assert_close(K.rdft(x, 9, scale, impl="triton"), ref, rtol=tol, atol=tol)
    z = torch.randn(40, 9, dtype=ctype)
    w = irfft_weights(9, 16, dtype, z.device)  # 9 = 16 // 2 + 1: includes the Nyquist bin
    ref = torch.fft.irfft(z, n=16, norm="forward")
    torch.testing.assert_close(K.irdft(z, 16, w, impl="triton"), ref, rtol=tol, atol=tol * 10)


@pytest.mark.parametrize(
    "impl",
    ["torch", pytest.param("triton", marks=pytest.mark.slow)],  # ~70 s interpreted
)
def test_gradcheck_every_autograd_function(impl):
    d = torch.float64
    a = torch.randn(2, 5, 4, dtype=torch.complex128, requires_grad=True)
    b = torch.randn(2, 4, 3, dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: K.cbmm(a, b, impl=impl), (a, b))
    x = torch.randn(3, 10, dtype=d, requires_grad=True)
    s = torch.rand(4, dtype=d)
    assert torch.autograd.gradcheck(lambda x: K.rdft(x, 4, s, impl=impl), (x,))
    z = torch.randn(3, 4, dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z: K.irdft(z, 10, s, impl=impl), (z,))


@pytest.mark.parametrize(
    "impl",
    ["torch", pytest.param("triton", marks=pytest.mark.slow)],  # ~25 s interpreted
)
def test_gradgradcheck_every_autograd_function(impl):
    """Second derivatives (physics-informed losses on an input derivative, their weight
    gradients): the kernels' complex GEMM backward used raw launches that record no graph, so
    with create_graph=True its products were constants and second derivatives silently wrong."""
    a = torch.randn(1, 2, 1, dtype=torch.complex128, requires_grad=True)
    b = torch.randn(1, 1, 2, dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda a, b: K.cbmm(a, b, impl=impl), (a, b))
    x = torch.randn(1, 4, dtype=torch.float64, requires_grad=True)
    s = torch.rand(2, dtype=torch.float64)
    # the squares make the second derivatives of these linear maps non-zero
    assert torch.autograd.gradgradcheck(lambda x: K.rdft(x, 2, s, impl=impl).abs().square(), (x,))
    z = torch.randn(1, 2, dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda z: K.irdft(z, 4, s, impl=impl).square(), (z,))


@pytest.mark.parametrize("impl", IMPLS)
def test_triton_backend_spectral_conv_matches_fft_backend_with_gradients(impl):
    layer = SpectralConv(2, 3, (2, 3), backend=FFT()).double()
    u = torch.randn(2, 2, 8, 10, dtype=torch.float64, requires_grad=True)
    ref = layer(u, (12, 6))
    g_ref = torch.autograd.grad(ref.square().sum(), (u, layer.weight))
    layer.backend = TritonSpectral(impl=impl)
    got = layer(u, (12, 6))
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)
    g = torch.autograd.grad(got.square().sum(), (u, layer.weight))
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("impl", IMPLS)
def test_triton_backend_on_a_coarser_odd_output_is_the_resampled_full_output(impl):
    """A coarser odd output n = 2p + 1 keeps -p .. p on non-last dims: SpectralConv masks the
    kept block's -(p + 1) slot (which the inverse DFT would add onto +p) before any backend
    runs, so the Triton backend, which Auto may pick on CUDA, computes the resampled full
    output too (numpy's truncated DFT of the full-grid output, independent of every backend)."""
    np = pytest.importorskip("numpy")
    layer = SpectralConv(2, 3, (4, 3), backend=TritonSpectral(impl=impl)).double()
    u = torch.randn(2, 2, 16, 10, dtype=torch.float64)
    with torch.no_grad():
        full = layer(u).numpy()
        for out in [(7, 5), (3, 6)]:
            spec = np.fft.fftn(full, axes=(-2, -1), norm="forward")
            keep = [np.r_[0 : (n + 1) // 2, -(n // 2) : 0] for n in out]
            coarse = spec[..., (keep[0] % 16)[:, None], (keep[1] % 10)[None, :]]
            ref = np.fft.ifftn(coarse, axes=(-2, -1), norm="forward")
            assert np.abs(ref.imag).max() < 1e-12
            np.testing.assert_allclose(layer(u, out).numpy(), ref.real, rtol=0, atol=1e-12)


def test_dispatch_never_picks_kernels_on_cpu_or_unmeasured_devices():
    assert backend_for((64, 64), (8, 8), torch.device("cpu")) is None
    assert DISPATCH_TABLE == {}  # nothing measured yet: PyTorch everywhere
    picked = Auto().resolve((64, 64), (8, 8), torch.device("cpu"))
    assert not isinstance(picked, TritonSpectral)


def test_compiled_kernels_on_a_cpu_tensor_say_so(monkeypatch):
    """Compiled (not interpreted) kernels launch on CUDA only: on a CPU tensor the layer raised
    Triton's own "0 active drivers ([]). There should only be one."; now an error naming the
    device and the ways out, while impl="torch" gives the FFT backend's numbers."""
    import sys

    import sciml.kernels

    monkeypatch.setenv("TRITON_INTERPRET", "0")  # the kernels are compiled at import
    monkeypatch.delitem(sys.modules, "sciml.kernels.triton_kernels", raising=False)
    monkeypatch.delattr(sciml.kernels, "triton_kernels", raising=False)
    layer = SpectralConv(2, 3, (3,), backend=FFT()).double()
    u = torch.randn(2, 2, 10, dtype=torch.float64)
    ref = layer(u)
    layer.backend = TritonSpectral(impl="triton")
    with pytest.raises(ValueError, match=r"run on CUDA tensors, got one on cpu: use "):
        layer(u)
    layer.backend = TritonSpectral(impl="torch")
    torch.testing.assert_close(layer(u), ref, rtol=0, atol=1e-12)


def test_type_hints_of_every_public_triton_kernel_resolve():
    """``typing.get_type_hints`` on the Triton module's public callables resolves every
    annotation (no name left to TYPE_CHECKING): tensors in, a tensor out, the flags bool."""
    import typing

    from sciml.kernels import triton_kernels

    hints = {
        name: typing.get_type_hints(getattr(triton_kernels, name))
        for name in triton_kernels.__all__
    }
    assert all(h["return"] is torch.Tensor for h in hints.values()), hints
    assert hints["cbmm"] == {
        "a": torch.Tensor, "b": torch.Tensor, "conj_a": bool, "conj_b": bool, "return": torch.Tensor
    }  # fmt: skip
    assert hints["rdft"] == {
        "x": torch.Tensor,
        "e": int,
        "scale": torch.Tensor,
        "return": torch.Tensor,
    }


def test_torch_impl_compiles_without_a_graph_break_and_matches_the_fft_backend():
    """The autograd Functions define jvp (forward mode, torch.func.jacfwd), which dynamo refuses
    ("Unsupported custom jvp"): a TritonSpectral layer broke the graph at each of its ops and
    failed under fullgraph=True. Compiled, it now is one graph with the FFT backend's values and
    gradients, and gradcheck holds through the compiled function."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    layer = SpectralConv(2, 3, (3, 2), backend=FFT()).double()
    u = torch.randn(2, 2, 8, 6, dtype=torch.float64, requires_grad=True)
    ref = layer(u, (8, 6))
    g_ref = torch.autograd.grad(ref.square().sum(), (u, layer.weight))
    layer.backend = TritonSpectral(impl="torch")
    explained = torch._dynamo.explain(lambda u: layer(u, (8, 6)))(u)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0)
    torch._dynamo.reset()
    f = torch.compile(lambda u: layer(u, (8, 6)), fullgraph=True, backend="aot_eager")
    got = f(u)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)
    g = torch.autograd.grad(got.square().sum(), (u, layer.weight))
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    small = torch.randn(1, 2, 8, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(f, (small,))
    torch._dynamo.reset()
