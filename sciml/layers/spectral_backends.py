"""How :class:`~sciml.layers.SpectralConv` computes its truncated transforms.

Every backend maps a real grid function to the *kept* Fourier coefficients and back, and nothing
else: the full spectrum is never materialised. Both directions use the conventions of
``torch.fft.rfftn(norm="forward")`` / ``irfftn(norm="forward")`` and give the same numbers as
them (to rounding), so backends are interchangeable.

Kept-mode block ("mode-major" layout, shared by all backends and by the channel mixing): for
effective modes ``e = (e_1, ..., e_d)`` a tensor of shape ``(2 e_1, ..., 2 e_{d-1}, e_d, batch,
channels)``; along a non-last dim, index ``j < e`` is frequency ``j`` and index ``e + j`` is
frequency ``j - e`` (the ``e`` lowest negative ones); along the last dim index ``k`` is frequency
``k >= 0``. Putting the modes first makes the per-mode channel mixing one batched GEMM on
contiguous memory.

Backends:

* :class:`FFT`: pruned separable FFTs. ``rfft`` along the last dim, then the complex FFT along
  each other dim only on the kept columns; the inverse mirrors it.
* :class:`DFTMatmul`: products with truncated DFT matrices (``N x 2e`` per dim), which computes
  only the kept modes. Wins when few modes are kept of a short axis, where GEMMs beat FFTs.
* :class:`FusedDFT`: the same truncated-DFT products as :class:`DFTMatmul`, but the whole layer
  (transforms, channel mixing, inverse) is one autograd node with a hand-written backward and
  real GEMMs on planar complex data (:mod:`sciml.layers._spectral_fused`): about ``4 d + 7``
  kernels for forward + backward instead of dozens of ops and autograd nodes. It wins where
  the layer is bound by host overhead, i.e. on GPUs at common FNO sizes.
* :class:`Auto` (default): picks one of the two per call from the sizes, by a rule fitted to
  measurements (see ``docs/spectral.md``); on CUDA it asks :mod:`sciml.kernels` whether a
  Triton kernel was measured faster for the shape, and otherwise takes :class:`FusedDFT`
  wherever the rule says :class:`DFTMatmul`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ._cache import cache_unless_tracing

__all__ = ["SpectralBackend", "FFT", "DFTMatmul", "FusedDFT", "Auto"]


class SpectralBackend:
    """Interface: truncated forward / inverse real Fourier transforms in mode-major layout,
    and the per-mode channel mixing between them."""

    def resolve(
        self, spatial: Sequence[int], modes: Sequence[int], device: torch.device
    ) -> SpectralBackend:
        """The concrete backend for this call (itself; :class:`Auto` picks one)."""
        return self

    def convolve(
        self,
        u: torch.Tensor,
        weight: torch.Tensor,
        modes: Sequence[int],
        out_shape: Sequence[int],
    ) -> torch.Tensor:
        """The whole layer: ``u (b, i, *spatial)`` real, ``weight (i, o, 2e_1, ..., e_d)``
        complex (truncated to the effective ``modes``) -> ``(b, o, *out_shape)``. Default:
        :meth:`forward_modes`, then :meth:`mix`, then :meth:`inverse_modes`; a backend may
        fuse them."""
        d = len(modes)
        block = self.forward_modes(u, modes)  # (2e_1, ..., e_d, b, i)
        w = weight.permute(*range(2, d + 2), 0, 1).to(block.dtype)  # (2e_1, ..., e_d, i, o)
        k = math.prod(block.shape[:d])
        b, i, o = u.shape[0], u.shape[1], weight.shape[1]
        # one batched complex GEMM over every kept mode: (K, b, i) @ (K, i, o)
        mixed = self.mix(block.view(k, b, i), w.reshape(k, i, o))
        return self.inverse_modes(mixed.view(*block.shape[:d], b, o), out_shape)

    def mix(self, block: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``(K, b, i) @ (K, i, o) -> (K, b, o)``: one complex GEMM per kept mode."""
        return torch.bmm(block, weight)

    def forward_modes(self, u: torch.Tensor, modes: Sequence[int]) -> torch.Tensor:
        """``u: (b, c, n_1, ..., n_d)`` real -> kept coefficients ``(2e_1, ..., e_d, b, c)``."""
        raise NotImplementedError

    def inverse_modes(self, block: torch.Tensor, out_shape: Sequence[int]) -> torch.Tensor:
        """Kept coefficients ``(2e_1, ..., e_d, b, c)`` -> real ``(b, c, *out_shape)``, every
        other frequency zero."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class FFT(SpectralBackend):
    """Pruned separable FFTs: only the kept columns go through the non-last-dim FFTs."""

    def forward_modes(self, u: torch.Tensor, modes: Sequence[int]) -> torch.Tensor:
        """``u: (b, c, n_1, ..., n_d)`` real -> kept coefficients ``(2e_1, ..., e_d, b, c)``, by
        ``rfft`` along the last dim and ``fft`` of the kept columns along the others."""
        if u.numel() == 0:  # (why) see _EMPTY
            return _EMPTY.forward_modes(u, modes)
        d = len(modes)
        n = u.shape[-1]
        if modes[-1] <= n // 2 + 1:
            x = torch.fft.rfft(u, dim=-1, norm="forward").narrow(-1, 0, modes[-1])
        else:
            # (why) bins past the grid's Nyquist are the DFT's at k mod n, as DFTMatmul's bases
            # give them; narrowing the rfft raised "start (0) + length (4) exceeds dimension
            # size (3)" (SpectralConv never asks: its modes fit the grid)
            k = torch.arange(modes[-1], device=u.device) % n
            x = torch.fft.fft(u, dim=-1, norm="forward").index_select(-1, k)
        # innermost non-last dim first, so each FFT runs on data already truncated elsewhere
        for axis in range(d, 1, -1):  # tensor axes d .. 2 are the non-last spatial dims
            e = modes[axis - 2]
            x = torch.fft.fft(x, dim=axis, norm="forward")
            n = x.shape[axis]
            if e <= n:
                x = torch.cat([x.narrow(axis, 0, e), x.narrow(axis, n - e, e)], dim=axis)
            else:  # (why) as above: frequency f at f mod n (a narrow of n - e < 0 raised)
                f = torch.tensor(_freqs(e), device=x.device) % n
                x = x.index_select(axis, f)
        return x.movedim((0, 1), (-2, -1)).contiguous()

    def inverse_modes(self, block: torch.Tensor, out_shape: Sequence[int]) -> torch.Tensor:
        """Kept coefficients ``(2e_1, ..., e_d, b, c)`` -> real ``(b, c, *out_shape)``, by
        zero-filled ``ifft`` along the non-last dims and ``irfft`` along the last."""
        if block.numel() == 0:  # (why) see _EMPTY
            return _EMPTY.inverse_modes(block, out_shape)
        d = len(out_shape)
        y = block.movedim((-2, -1), (0, 1))  # (b, c, 2e_1, ..., e_d) view
        for axis in range(2, d + 1):
            e2, m = y.shape[axis], out_shape[axis - 2]
            e = e2 // 2
            shape = list(y.shape)
            shape[axis] = m
            z = y.new_zeros(shape)
            if m >= 2 * e:
                z.narrow(axis, 0, e).copy_(y.narrow(axis, 0, e))
                z.narrow(axis, m - e, e).copy_(y.narrow(axis, e, e))
            else:
                # a grid too small for the block (an odd m = 2e - 1 in SpectralConv, whose weight
                # is zero at the slot concerned): each frequency lands on its alias f mod m and
                # adds there, as in the inverse DFT (DFTMatmul), rather than overwriting it
                idx = torch.tensor([f % m for f in _freqs(e)], device=y.device)
                z.index_add_(axis, idx, y)
            y = torch.fft.ifft(z, dim=axis, norm="forward")
        if y.is_cuda:
            y = _real_edge_bins(y, out_shape[-1])
        return torch.fft.irfft(y, n=out_shape[-1], dim=-1, norm="forward")


class DFTMatmul(SpectralBackend):
    """Truncated DFT matrices: ``O(n e)`` work per dim, done by GEMMs.

    Forward, last dim: ``u @ B`` with ``B[n, 2k] = cos(2 pi k n / N) / N`` and
    ``B[n, 2k+1] = -sin(2 pi k n / N) / N`` (real and imaginary parts interleaved, so the result
    is a complex tensor by a view). Other dims: ``F^T @ x`` with
    ``F[n, j] = exp(-2 pi i f_j n / N) / N`` over the kept frequencies ``f_j``.
    Inverse: the conjugate bases without ``1/N``, and along the last dim
    ``y[n] = sum_k c_k Re(Y_k exp(2 pi i k n / M))`` with ``c_0 = c_{M/2} = 1``, else 2: exactly
    what ``irfft`` does (it ignores the imaginary parts of the DC and Nyquist bins).
    """

    def forward_modes(self, u: torch.Tensor, modes: Sequence[int]) -> torch.Tensor:
        """``u: (b, c, n_1, ..., n_d)`` real -> kept coefficients ``(2e_1, ..., e_d, b, c)``, by
        products with the truncated DFT bases (see the class docstring)."""
        d = len(modes)
        b, c, *spatial = u.shape
        ctype = _complex_of(u.dtype)
        x = self._rdft(u.reshape(-1, spatial[-1]), modes[-1])  # (rows, e_d) complex
        x = x.view(*u.shape[:-1], modes[-1])  # (b, c, n_1, ..., n_{d-1}, e_d)
        x = x.movedim((0, 1), (-2, -1)).contiguous()  # (n_1, ..., e_d, b, c)
        for axis in range(d - 1):
            f = _dft_basis(spatial[axis], modes[axis], ctype, u.device, inverse=False)  # (2e, N)
            x = self._left(f, x, axis)
        return x

    def inverse_modes(self, block: torch.Tensor, out_shape: Sequence[int]) -> torch.Tensor:
        """Kept coefficients ``(2e_1, ..., e_d, b, c)`` -> real ``(b, c, *out_shape)``, by
        products with the conjugate bases (``irfft``'s rule along the last dim)."""
        d = len(out_shape)
        y = block
        keep = out_shape[-1] // 2 + 1
        if y.shape[d - 1] > keep:
            # (why) irfft drops the bins past the grid's Nyquist k = m // 2 (the FFT backend
            # did); the bases folded them onto m - k with weight 2 (a block of 5 bins onto 4
            # points was 1.6 off), so backends given such a block disagreed
            y = y.narrow(d - 1, 0, keep)
        for axis in range(d - 1):
            g = _dft_basis(out_shape[axis], y.shape[axis] // 2, y.dtype, y.device, inverse=True)
            y = self._left(g, y, axis)  # (.., M_axis, ..)
        e = y.shape[d - 1]
        y = y.movedim((-2, -1), (0, 1)).contiguous()  # (b, c, M_1, ..., e_d)
        out = self._irdft(y.reshape(-1, e), out_shape[-1])
        return out.view(*y.shape[:-1], out_shape[-1])

    # The three primitives below are what a subclass (the Triton backend) replaces.

    def _rdft(self, u: torch.Tensor, e: int) -> torch.Tensor:
        """Truncated real DFT of the rows of ``u (R, N)`` real -> ``(R, e)`` complex."""
        basis = _rdft_basis(u.shape[-1], e, u.dtype, u.device)  # (N, 2e)
        return torch.view_as_complex((u @ basis).view(-1, e, 2))

    def _irdft(self, y: torch.Tensor, m: int) -> torch.Tensor:
        """``irfft`` of the rows of contiguous ``y (R, e)`` complex -> ``(R, m)`` real."""
        e = y.shape[-1]
        h = _irdft_basis(m, e, _real_of(y.dtype), y.device)  # (2e, M)
        return torch.view_as_real(y).reshape(-1, 2 * e) @ h

    def _left(self, mat: torch.Tensor, x: torch.Tensor, axis: int) -> torch.Tensor:
        """``mat (p, q)`` applied to dim ``axis`` (size q) of mode-major ``x``."""
        return _left_matmul(mat, x, axis)


class FusedDFT(DFTMatmul):
    """:class:`DFTMatmul`'s function (same bases, same ``irfft`` edge-bin rule) computed as one
    ``torch.autograd.Function`` per layer call: real GEMMs on planar complex data with cached
    ``2 x 2``-block DFT bases, one complex batched GEMM for the channel mixing, a hand-written
    backward (the transposed chain plus the weight gradient). Forward + backward is
    ``2 d + 3`` plus ``2 d + 4`` kernels. ``forward_modes`` / ``inverse_modes`` alone are
    :class:`DFTMatmul`'s.
    """

    def convolve(
        self,
        u: torch.Tensor,
        weight: torch.Tensor,
        modes: Sequence[int],
        out_shape: Sequence[int],
    ) -> torch.Tensor:
        """The whole layer as one autograd node: ``u (b, i, *spatial)`` real (float32 or
        float64; other dtypes are cast to float32), ``weight (i, o, 2e_1, ..., e_d)`` complex
        -> ``(b, o, *out_shape)``."""
        from ._spectral_fused import fused_spectral_conv

        if u.numel() == 0:  # (why) see _EMPTY; the fused plan's views assume a non-empty batch
            return _EMPTY.convolve(u, weight, modes, out_shape)
        if u.dtype not in (torch.float32, torch.float64):
            u = u.float()
        ctype = _complex_of(u.dtype)
        w = weight if weight.dtype == ctype else weight.to(ctype)
        return fused_spectral_conv(u, w, modes, out_shape)


class Auto(SpectralBackend):
    """Chooses :class:`FFT` or :class:`DFTMatmul` per call (and a Triton kernel on CUDA where
    :mod:`sciml.kernels` has measured one faster).

    Rule (CPU, fitted to ``benchmarks/spectral.py --crossover`` runs): a truncated-DFT GEMM along
    a dim of ``n`` points keeping ``k`` columns costs about ``n k / r`` against an FFT's
    ``n log2 n`` with ``r`` the measured GEMM/FFT throughput ratio; the matmul backend is taken
    when that holds on every spatial dim, as :class:`FusedDFT` on CUDA (see
    ``benchmarks/spectral.py --backends auto,dft_matmul,fused``; on the CPU it was not
    consistently as fast as :class:`DFTMatmul`).
    """

    #: measured ratio of GEMM to FFT throughput per flop-like unit on CPU.
    gemm_advantage: float = 8.0

    def __init__(self) -> None:
        self._fft, self._mm, self._fused = FFT(), DFTMatmul(), FusedDFT()

    def resolve(
        self, spatial: Sequence[int], modes: Sequence[int], device: torch.device
    ) -> SpectralBackend:
        """The backend used for a grid ``spatial`` keeping ``modes`` (effective) per dim."""
        if device.type == "cuda":
            from .. import kernels

            chosen = kernels.backend_for(spatial, modes, device)
            if chosen is not None:
                return chosen
        for i, (n, m) in enumerate(zip(spatial, modes)):
            kept = m if i == len(modes) - 1 else 2 * m
            if n * kept > self.gemm_advantage * n * max(math.log2(n), 1.0):
                return self._fft
        # FusedDFT: fewer ops and autograd nodes, which is what GPU timings at these sizes are
        # dominated by. Not on the CPU: there its batched GEMMs over many small slices were
        # not consistently as fast as DFTMatmul (slower in an FNO training step, 1D and 3D).
        return self._fused if device.type == "cuda" else self._mm

    def forward_modes(self, u: torch.Tensor, modes: Sequence[int]) -> torch.Tensor:
        """:meth:`SpectralBackend.forward_modes` of the backend :meth:`resolve` picks."""
        return self.resolve(u.shape[2:], modes, u.device).forward_modes(u, modes)

    def inverse_modes(self, block: torch.Tensor, out_shape: Sequence[int]) -> torch.Tensor:
        """:meth:`SpectralBackend.inverse_modes` of the backend :meth:`resolve` picks for
        ``out_shape`` and the modes ``block`` holds."""
        d = len(out_shape)
        modes = [s // 2 for s in block.shape[: d - 1]] + [block.shape[d - 1]]
        return self.resolve(out_shape, modes, block.device).inverse_modes(block, out_shape)


# ---------------------------------------------------------------------------- helpers

#: An empty batch goes through the matmul backend: PocketFFT / MKL raise on empty tensors
#: ("Inconsistent configuration parameters"), where a GEMM with an empty side gives the empty
#: answer (and a zero weight gradient).
_EMPTY = DFTMatmul()


def _complex_of(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype in (torch.float64, torch.complex128) else torch.complex64


def _real_of(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype in (torch.float64, torch.complex128) else torch.float32


def _real_edge_bins(y: torch.Tensor, m: int) -> torch.Tensor:
    """Zero the imaginary parts of the DC (and kept Nyquist) bins of the last dim.

    ``irfft`` is defined to ignore them (and so are :class:`DFTMatmul` and the Triton kernels),
    which PocketFFT on the CPU does; cuFFT's C2R transform does not at every size (measured on
    an H100: at 4096 points and 128 x 128 the output moved by 12% relative), so on CUDA they are
    zeroed before the call.
    """
    e = y.shape[-1]
    keep = torch.ones(e, dtype=y.real.dtype, device=y.device)
    keep[0] = 0.0
    if m % 2 == 0 and e > m // 2:
        keep[m // 2] = 0.0
    return torch.complex(y.real, y.imag * keep)


def _left_matmul(mat: torch.Tensor, x: torch.Tensor, axis: int) -> torch.Tensor:
    """Contract ``mat: (p, q)`` with dim ``axis`` (size q) of mode-major ``x``; axes before
    ``axis`` are batch dims, so the result stays contiguous in mode-major order."""
    lead = x.shape[:axis]
    rest = x.shape[axis + 1 :]
    y = mat @ x.reshape(*lead, x.shape[axis], -1)  # (*lead, p, prod(rest))
    return y.view(*lead, mat.shape[0], *rest)


def _freqs(e: int) -> list[int]:
    """Kept frequencies of a non-last dim in block order: 0..e-1, then -e..-1."""
    return list(range(e)) + list(range(-e, 0))


@cache_unless_tracing(maxsize=64)
def _rdft_basis(n: int, e: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``(n, 2e)`` real: columns ``cos/N, -sin/N`` per kept frequency, interleaved."""
    t = torch.arange(n, dtype=torch.float64)[:, None] * torch.arange(e, dtype=torch.float64)
    ang = 2 * math.pi * torch.remainder(t, n) / n  # remainder keeps the angle exact-ish
    basis = torch.stack([torch.cos(ang), -torch.sin(ang)], dim=-1).reshape(n, 2 * e) / n
    return basis.to(dtype=dtype, device=device)


@cache_unless_tracing(maxsize=64)
def _irdft_basis(m: int, e: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``(2e, m)`` real: rows ``c_k cos, -c_k sin`` so that ``[Re Y, Im Y] @ H`` is irfft."""
    k = torch.arange(e, dtype=torch.float64)
    c = torch.full((e,), 2.0, dtype=torch.float64)
    c[0] = 1.0
    if m % 2 == 0 and e > m // 2:
        c[m // 2] = 1.0
    t = k[:, None] * torch.arange(m, dtype=torch.float64)
    ang = 2 * math.pi * torch.remainder(t, m) / m
    h = torch.stack([c[:, None] * torch.cos(ang), -c[:, None] * torch.sin(ang)], dim=1)
    return h.reshape(2 * e, m).to(dtype=dtype, device=device)


@cache_unless_tracing(maxsize=64)
def _dft_basis(
    n: int, e: int, dtype: torch.dtype, device: torch.device, *, inverse: bool
) -> torch.Tensor:
    """Forward ``(2e, n)``: ``exp(-2 pi i f n / N) / N``; inverse ``(n, 2e)``:
    ``exp(+2 pi i f n / N)`` over the kept frequencies ``f`` in block order."""
    f = torch.tensor(_freqs(e), dtype=torch.float64)
    t = f[:, None] * torch.arange(n, dtype=torch.float64)
    ang = 2 * math.pi * torch.remainder(t, n) / n
    if inverse:
        mat = torch.polar(torch.ones_like(ang), ang).T
    else:
        mat = torch.polar(torch.ones_like(ang), -ang) / n
    return mat.to(dtype=dtype, device=device).contiguous()
