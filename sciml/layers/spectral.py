"""Spectral convolution: a global linear operator acting on truncated Fourier modes.

For ``u: (batch, in_channels, *spatial)`` on a periodic grid, :class:`SpectralConv` computes

    (K u)(x) = IFFT( W(k) · FFT(u)(k) )(x),   k in the kept set K,

where ``W(k)`` is a complex ``in_channels x out_channels`` matrix per kept frequency and every
frequency outside ``K`` is zeroed. Transforms are ``norm="forward"``, so the coefficients of a
smooth function do not depend on the grid size and the layer is discretisation-consistent.

``modes`` meaning (one entry per spatial dim): along every dim but the last, the ``m`` lowest
non-negative and the ``m`` lowest negative frequencies are kept (``2m`` in all); along the last
dim, which uses the real FFT, the ``m`` lowest non-negative frequencies are kept.

Output size: the inverse transform may target another grid. A larger grid zero-pads the spectrum
(band-limited super-resolution: the output is the same trigonometric polynomial sampled more
finely, a kept Nyquist bin split between ``+n/2`` and ``-n/2`` as ``scipy.signal.resample``
splits it); a smaller grid keeps only the kept frequencies it can represent (those in
``-(n_out // 2) .. (n_out - 1) // 2`` per non-last dim, ``min(m, n_out // 2 + 1)`` along the
last).

How the truncated transforms are computed is a choice (see
:mod:`sciml.layers.spectral_backends`): pruned FFTs, truncated DFT matrices (plain, or fused into
one autograd node with a hand-written backward), or on CUDA a Triton kernel;
:class:`~sciml.layers.spectral_backends.Auto` picks by size and device.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn

from .._scalars import is_int
from ._checks import (
    as_input_precision,
    check_dtype,
    check_grid,
    check_int,
    check_ints,
    check_size,
    check_tensor,
    widen,
)
from ._complex import REAL_OF, ComplexCasts
from .spectral_backends import Auto, SpectralBackend

__all__ = ["SpectralConv"]


class SpectralConv(ComplexCasts):
    """Fourier-space channel mixing on a truncated spectrum, for 1, 2 or 3 spatial dims.

    Args:
        in_channels: channels of the input.
        out_channels: channels of the output.
        modes: kept frequencies per spatial dim (see the module docstring).
        bias: add a learned per-channel bias after the inverse transform.
        backend: how the truncated transforms are computed (default :class:`Auto`).

    Attributes:
        weight: complex ``(in_channels, out_channels, 2 m_1, ..., 2 m_{d-1}, m_d)``; along a
            non-last dim index ``j < m`` is frequency ``j`` and ``m + j`` is ``j - m``. It is
            stored mode-major in memory (a permuted view of a ``(*block, in, out)`` buffer) so
            that the channel mixing is one batched GEMM with no copy.

    Initialisation: see :meth:`reset_parameters`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        modes: Sequence[int],
        *,
        bias: bool = False,
        backend: SpectralBackend | None = None,
    ) -> None:
        super().__init__()
        modes = check_ints(
            "modes", modes, per="spatial dim"
        )  # a float would be truncated silently by int()
        if not 1 <= len(modes) <= 3:
            raise ValueError(f"modes must hold 1 to 3 positive ints, got {modes}")
        in_channels = check_int("in_channels", in_channels)
        out_channels = check_int("out_channels", out_channels)
        if backend is not None and not isinstance(backend, SpectralBackend):
            raise TypeError(
                f"backend must be a sciml.layers.spectral_backends.SpectralBackend "
                f"(FFT(), DFTMatmul(), FusedDFT(), Auto()), got {type(backend).__name__}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.modes = modes
        self.backend = backend if backend is not None else Auto()
        d = len(modes)
        # The kept block: 2m per non-last dim (both signs), m along the last (rfft) dim.
        block = tuple(2 * m for m in modes[:-1]) + (modes[-1],)
        storage = torch.empty(*block, in_channels, out_channels, dtype=torch.cfloat)
        self.weight = nn.Parameter(storage.permute(d, d + 1, *range(d)))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Complex weights with real and imaginary parts ~ N(0, s^2), s^2 = 1 / (in + out).

        So ``E|W|^2 = 2 / (in + out)``: with forward-normalised transforms this keeps the output
        variance of the kept band close to the input's (Glorot's balance between fan-in and
        fan-out across the channel mix). It is also neuraloperator's default (``init_std =
        sqrt(2 / (in + out))`` for the complex entry), so converted and fresh models agree.
        """
        std = math.sqrt(1.0 / (self.in_channels + self.out_channels))
        with torch.no_grad():
            re, im = torch.randn_like(self.weight.real), torch.randn_like(self.weight.real)
            self.weight.copy_(torch.complex(re, im) * std)
            if self.bias is not None:
                self.bias.zero_()

    @property
    def ndim(self) -> int:
        """The number of spatial dims ``d`` (1, 2 or 3), ``len(modes)``."""
        return len(self.modes)

    def effective_modes(self, spatial: Sequence[int], out_shape: Sequence[int]) -> tuple[int, ...]:
        """Kept modes for an input grid ``spatial`` and output grid ``out_shape``.

        Raises ``ValueError`` when the input grid cannot hold ``modes`` or either grid has
        another number of dims; a smaller output grid truncates to what it can represent.
        """
        d = self.ndim
        if len(spatial) != d or len(out_shape) != d:
            # (why) zip stopped at the shorter: a 2D layer asked about (8,) gave (3,), and one
            # asked about (8, 8) -> (8, 8, 8) answered without a word
            raise ValueError(
                f"expected spatial and out_shape with {d} entries (one per spatial dim of "
                f"modes={self.modes}), got {tuple(spatial)} and {tuple(out_shape)}"
            )
        eff = []
        for i, (n_in, n_out, m) in enumerate(zip(spatial, out_shape, self.modes)):
            last = i == d - 1
            need = m if last else 2 * m
            cap = n_in // 2 + 1 if last else n_in
            if need > cap:
                raise ValueError(
                    f"modes={self.modes} keep {need} frequencies along a dim of size "
                    f"{n_in}; at most {cap} fit (grid {tuple(spatial)} -> {tuple(out_shape)})"
                )
            if n_out < 1:
                raise ValueError(f"out_shape must be positive, got {tuple(out_shape)}")
            # a non-last output dim of n points represents -(n // 2) .. (n - 1) // 2: for odd n
            # that is n // 2 + 1 non-negative frequencies, one more than negative ones (the
            # block's extra negative slot aliases onto the top positive one and is zeroed in
            # forward, see _alias_mask)
            eff.append(min(m, n_out // 2 + 1) if last else min(m, (n_out + 1) // 2))
        if any(e < 1 for e in eff):
            raise ValueError(
                f"out_shape {tuple(out_shape)} keeps no frequency of modes {self.modes}"
            )
        return tuple(eff)

    def mode_weight(self, modes: Sequence[int] | None = None) -> torch.Tensor:
        """The weight in mode-major layout ``(2e_1, ..., e_d, in, out)`` for effective ``modes``
        (default: all). A view when nothing is truncated.

        Raises ``ValueError`` unless ``modes`` holds one int per spatial dim within
        ``1 .. self.modes``."""
        # (why) more modes than held gave the whole block under another shape ((5, 3) of
        # modes (3, 3): 6 rows, not 10), 0 modes an empty block, a short tuple a wrong one
        if modes is not None and (
            len(modes) != self.ndim
            or not all(is_int(e) and 1 <= e <= m for e, m in zip(modes, self.modes))
        ):
            raise ValueError(
                f"expected modes with {self.ndim} ints in 1 .. {self.modes} (at most the "
                f"layer's), got {tuple(modes)}"
            )
        return self._mode_weight(modes)

    def _mode_weight(self, modes: Sequence[int] | None) -> torch.Tensor:
        # (why) unchecked: forward's effective modes are valid, and may be SymInts under
        # torch.compile(dynamic=True)
        d = self.ndim
        w = self.weight.permute(*range(2, d + 2), 0, 1)
        if modes is None or tuple(modes) == self.modes:
            return w
        w = w.narrow(d - 1, 0, modes[-1])
        for axis in range(d - 1):
            e, m = modes[axis], self.modes[axis]
            if e < m:
                w = torch.cat([w.narrow(axis, 0, e), w.narrow(axis, 2 * m - e, e)], dim=axis)
        return w

    def forward(self, u: torch.Tensor, out_shape: Sequence[int] | None = None) -> torch.Tensor:
        """Apply the spectral convolution.

        Args:
            u: ``(batch, in_channels, *spatial)`` real tensor with ``len(modes)`` spatial dims,
                float32 for complex64 weights, float64 for complex128 (``.double()``); half
                precision is computed in float32 and returned in the input's dtype (in float32
                under ``torch.autocast``).
            out_shape: spatial size of the output (default: the input's). A larger size
                zero-pads the spectrum (band-limited super-resolution; a kept Nyquist bin of an
                even input dim, last or not, is split between ``+n/2`` and ``-n/2`` as
                ``scipy.signal.resample`` does); a smaller one truncates the kept modes to those
                it can represent.

        Returns:
            ``(batch, out_channels, *out_shape)``: ``y = irfftn(W(k) rfftn(u)(k))`` over the kept
            ``k``, both transforms ``norm="forward"``.
        """
        d = self.ndim
        check_tensor("SpectralConv", "u", u)
        if u.ndim != d + 2 or u.shape[1] != self.in_channels:
            raise ValueError(
                f"expected u with {d} spatial dims (batch, {self.in_channels}, "
                f"{', '.join(f'n{i}' for i in range(d))}), got shape {tuple(u.shape)}"
            )
        if u.is_complex():
            raise ValueError(f"SpectralConv expects a real input, got dtype {u.dtype}")
        # float64 input to a complex64 weight (or the reverse) would run in the weight's
        # precision, or the input's, without a word: ask for one precision instead
        check_dtype("SpectralConv", "u", u, REAL_OF.get(self.weight.dtype, self.weight.dtype))
        # (why) before effective_modes, whose "modes=... keep 8 frequencies along a dim of size
        # 0" reads as too many modes; FNO, SwinV2Block and ConvNeXtBlock word it so
        check_grid("SpectralConv", "u", u, range(2, d + 2))
        spatial = tuple(u.shape[2:])
        out_shape = (
            check_size("SpectralConv", "out_shape", out_shape) if out_shape is not None else spatial
        )
        if len(out_shape) != d:
            raise ValueError(f"out_shape must have {d} entries, got {out_shape}")
        eff = self.effective_modes(spatial, out_shape)
        given, u = u, widen(u)
        backend = self.backend.resolve(spatial, eff, u.device)
        # the parameter itself unless the output grid truncates the kept modes
        w = (
            self.weight
            if eff == self.modes
            else self._mode_weight(eff).permute(d, d + 1, *range(d))
        )
        mask = _alias_mask(eff, out_shape, w.real.dtype, w.device)
        if mask is not None:
            w = w * mask
        if w.dtype == torch.complex32:  # a .half() layer: complex products in complex64
            w = w.to(torch.complex64)
        # (why) u is widened and w complex: autocast ran the matmul backends' real GEMMs in
        # bfloat16 (DFTMatmul, Auto on the CPU: a bfloat16 output 1e-2 off; TritonSpectral's
        # reference ops: "Expected both inputs to be Half, Float or Double tensors")
        # (why) entered only where autocast is on: torch.autocast("meta", ...) raises, and a
        # model run on the meta device (shapes only) failed here with "unsupported scalarType"
        on = u.device.type != "meta" and torch.is_autocast_enabled(u.device.type)
        with torch.autocast(u.device.type, enabled=False) if on else contextlib.nullcontext():
            nyquist = _upsampled_nyquist_axes(spatial, eff, out_shape)
            if nyquist:
                y = _upsampled_nyquist(backend, u, w, eff, out_shape, nyquist)
            else:
                y = backend.convolve(u, w, eff, out_shape)  # (i, o, 2e_1, ..., e_d) weight
        if self.bias is not None:
            y = y + self.bias.view(1, -1, *([1] * d)).to(y.dtype)
        return as_input_precision(y, given)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, modes={self.modes}, backend={self.backend}"
        )


def _alias_mask(
    modes: Sequence[int], out_shape: Sequence[int], dtype: torch.dtype, device: torch.device
) -> torch.Tensor | None:
    """``(1, 1, 2e_1, ..., e_d)`` zeros at the block slots whose frequency the output grid
    cannot represent, or None when it represents them all.

    Along a non-last dim of odd size ``n = 2p + 1`` with ``e = p + 1`` kept modes, the block's
    frequency ``-(p + 1)`` (index ``e``) is ``+p`` on that grid. The output keeps ``-p .. p``,
    as a resampling of the full-grid output would, so that slot contributes nothing (without
    the mask it would add onto ``+p``; with ``e = p``, as before, ``+p`` was dropped).
    """
    d = len(modes)
    hit = [a for a in range(d - 1) if out_shape[a] < 2 * modes[a]]
    if not hit:
        return None
    mask = torch.ones(*(2 * e for e in modes[:-1]), modes[-1], dtype=dtype, device=device)
    for a in hit:
        mask.narrow(a, modes[a], 1).zero_()
    return mask.view(1, 1, *mask.shape)


def _upsampled_nyquist_axes(
    spatial: Sequence[int], modes: Sequence[int], out_shape: Sequence[int]
) -> tuple[int, ...]:
    """The dims whose kept block holds the input's Nyquist bin ``k = n / 2`` (``n`` even:
    ``modes[-1] = n / 2 + 1`` on the last dim, ``2 modes[a] = n`` on the others, where the
    block's frequency ``-n / 2`` is that bin) and whose output grid is finer than the input's."""
    d = len(modes)
    axes = []
    for a, (n, m, n_out) in enumerate(zip(spatial, modes, out_shape)):
        full = m == n // 2 + 1 if a == d - 1 else 2 * m == n
        if n % 2 == 0 and full and n_out > n:
            axes.append(a)
    return tuple(axes)


def _upsampled_nyquist(
    backend: SpectralBackend,
    u: torch.Tensor,
    w: torch.Tensor,
    modes: Sequence[int],
    out_shape: Sequence[int],
    axes: Sequence[int],
) -> torch.Tensor:
    """``backend.convolve`` onto an output grid finer than the input along the dims ``axes``,
    whose kept block holds the input's Nyquist bin ``k = n / 2`` (see
    :func:`_upsampled_nyquist_axes`).

    On ``n`` points the inverse transform reads that bin once: ``irfft`` along the last dim as
    ``Re(Y) cos(pi j)``, the complex ``ifft`` along another dim as ``Y (-1)^j``, the bin
    ``-n / 2`` being ``+n / 2`` too. On a finer grid it is an ordinary bin: read twice and with
    its imaginary part along the last dim (the output disagreed with the ``out_shape = spatial``
    output even at the input's points), and along another dim as the one-sided wave
    ``exp(-i pi n j / m)``, whose sine part vanishes on the input's points but not between
    them. The bin is taken as the band-limited cosine instead (what ``scipy.signal.resample``
    does, splitting it between ``+n/2`` and ``-n/2``): its contribution is computed on ``n``
    points along that dim, where it is ``r (-1)^j``, and ``r`` is spread over the fine grid by
    ``cos(pi n j / m)``. Several such dims take the tensor product: one convolution per subset
    of them (at most 8, in 3D).
    """
    d = len(modes)
    masks = {}
    for a in axes:
        nyq = torch.zeros(w.shape[2 + a], dtype=w.real.dtype, device=w.device)
        nyq[modes[a] - 1 if a == d - 1 else modes[a]] = 1.0  # slot of n / 2 (last) or -n / 2
        masks[a] = nyq.view(-1, *([1] * (d - 1 - a)))
    y = None
    for split in itertools.product((False, True), repeat=len(axes)):
        part_w, grid = w, list(out_shape)
        for a, on in zip(axes, split):
            part_w = part_w * (masks[a] if on else 1 - masks[a])
            if on:
                grid[a] = u.shape[2 + a]
        part = backend.convolve(u, part_w, modes, tuple(grid))
        for a, on in zip(axes, split):
            if on:  # r (-1)^j along a: r is its value at j = 0
                n, m = u.shape[2 + a], out_shape[a]
                j = torch.arange(m, device=u.device)
                # (why) the remainder keeps the angle exact:
                # cos(2 pi (n / 2) j / m) = cos(pi (n j mod 2m) / m)
                wave = torch.cos(torch.remainder(n * j, 2 * m).double() * (math.pi / m))
                part = part.narrow(2 + a, 0, 1) * wave.to(part.dtype).view(-1, *([1] * (d - 1 - a)))
        y = part if y is None else y + part
    return y
