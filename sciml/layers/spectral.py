"""Spectral convolution: a global linear operator acting on truncated Fourier modes.

For ``u: (batch, in_channels, *spatial)`` on a periodic grid, :class:`SpectralConv` computes

    (K u)(x) = IFFT( W(k) · FFT(u)(k) )(x),   k in the kept set K,

where ``W(k)`` is a complex ``in_channels x out_channels`` matrix per kept frequency and every
frequency outside ``K`` is zeroed. Transforms are ``norm="forward"``, so the coefficients of a
smooth function do not depend on the grid size and the layer is discretisation-consistent.

``modes`` meaning (one entry per spatial dim): along every dim but the last, the ``m`` lowest
non-negative and the ``m`` lowest negative frequencies are kept (``2m`` in all); along the last
dim, which uses the real FFT, the ``m`` lowest non-negative frequencies are kept.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["SpectralConv"]


class SpectralConv(nn.Module):
    """Fourier-space channel mixing on a truncated spectrum, for 1, 2 or 3 spatial dims.

    Args:
        in_channels: channels of the input.
        out_channels: channels of the output.
        modes: kept frequencies per spatial dim (see the module docstring).
        bias: add a learned per-channel bias after the inverse transform.

    Initialisation: see :meth:`reset_parameters`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        modes: Sequence[int],
        *,
        bias: bool = False,
    ) -> None:
        super().__init__()
        modes = tuple(int(m) for m in modes)
        if not 1 <= len(modes) <= 3 or any(m < 1 for m in modes):
            raise ValueError(f"modes must hold 1 to 3 positive ints, got {modes}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.modes = modes
        # The kept block: 2m per non-last dim (both signs), m along the last (rfft) dim.
        block = tuple(2 * m for m in modes[:-1]) + (modes[-1],)
        self.weight = nn.Parameter(
            torch.empty(in_channels, out_channels, *block, dtype=torch.cfloat)
        )
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Complex weights with real and imaginary parts ~ N(0, s^2), s^2 = 1 / (in + out).

        With forward-normalised transforms this keeps the output variance of the kept band close
        to the input's (Glorot's balance between fan-in and fan-out across the channel mix).
        """
        std = math.sqrt(1.0 / (self.in_channels + self.out_channels))
        with torch.no_grad():
            re, im = torch.randn_like(self.weight.real), torch.randn_like(self.weight.real)
            self.weight.copy_(torch.complex(re, im) * std)

    @property
    def ndim(self) -> int:
        return len(self.modes)

    def forward(self, u: torch.Tensor, out_shape: Sequence[int] | None = None) -> torch.Tensor:
        """Apply the spectral convolution.

        Args:
            u: ``(batch, in_channels, *spatial)`` real tensor with ``len(modes)`` spatial dims.
            out_shape: spatial size of the output (default: the input's). A larger size
                zero-pads the spectrum (band-limited super-resolution).

        Returns:
            ``(batch, out_channels, *out_shape)``.
        """
        d = self.ndim
        if u.ndim != d + 2 or u.shape[1] != self.in_channels:
            raise ValueError(
                f"expected u with {d} spatial dims (batch, {self.in_channels}, "
                f"{', '.join(f'n{i}' for i in range(d))}), got shape {tuple(u.shape)}"
            )
        spatial = tuple(u.shape[2:])
        out_shape = tuple(out_shape) if out_shape is not None else spatial
        for n_in, n_out, m, last in zip(spatial, out_shape, self.modes, [False] * (d - 1) + [True]):
            need = m if last else 2 * m
            cap = min(n_in, n_out) // 2 + 1 if last else min(n_in, n_out)
            if need > cap:
                raise ValueError(
                    f"modes={self.modes} keep {need} frequencies along a dim of size "
                    f"{min(n_in, n_out)}; at most {cap} fit (grid {spatial} -> {out_shape})"
                )
        dims = tuple(range(-d, 0))
        coeffs = torch.fft.rfftn(
            u.float() if u.dtype == torch.half else u, dim=dims, norm="forward"
        )
        block = self._gather(coeffs)  # (b, i, *block)
        mixed = torch.einsum("bi...,io...->bo...", block, self.weight.to(block.dtype))
        out_freq = tuple(out_shape[:-1]) + (out_shape[-1] // 2 + 1,)
        out = self._scatter(mixed, out_freq)
        y = torch.fft.irfftn(out, s=out_shape, dim=dims, norm="forward")
        if self.bias is not None:
            y = y + self.bias.view(1, -1, *([1] * d))
        return y

    def _gather(self, coeffs: torch.Tensor) -> torch.Tensor:
        """Copy the kept modes into one compact block ``(b, c, 2m_1, ..., m_d)``."""
        block = coeffs.narrow(-1, 0, self.modes[-1])
        for axis, m in zip(range(2, 2 + self.ndim - 1), self.modes[:-1]):
            n = block.shape[axis]
            block = torch.cat([block.narrow(axis, 0, m), block.narrow(axis, n - m, m)], dim=axis)
        return block

    def _scatter(self, block: torch.Tensor, freq_shape: tuple[int, ...]) -> torch.Tensor:
        """Place the compact block into a zero spectrum of size ``freq_shape``."""
        b, c = block.shape[:2]
        out = block.new_zeros((b, c, *freq_shape))
        last = slice(0, self.modes[-1])
        for signs in itertools.product((0, 1), repeat=self.ndim - 1):
            dst, src = [], []
            for s, m, n in zip(signs, self.modes[:-1], freq_shape[:-1]):
                dst.append(slice(0, m) if s == 0 else slice(n - m, n))
                src.append(slice(0, m) if s == 0 else slice(m, 2 * m))
            out[(..., *dst, last)] = block[(..., *src, last)]
        return out

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, modes={self.modes}"
