"""A :class:`~sciml.layers.spectral_backends.SpectralBackend` running on the Triton kernels.

A subclass of :class:`~sciml.layers.spectral_backends.DFTMatmul` (same algorithm: only kept
modes are ever computed) that replaces its primitives with kernels: the truncated real DFT
along the last dim and its inverse, fused with their twiddle generation (``rdft`` /
``irdft``), and the per-mode channel mixing and the non-last-dim DFTs as complex GEMMs
(``cbmm``); every op has its own backward (see :mod:`sciml.kernels.autograd`).
``impl="torch"`` runs the same graph on the PyTorch reference ops (used by tests on CPU).
"""

from __future__ import annotations

import torch

from ..layers.spectral_backends import DFTMatmul
from . import autograd as K
from .reference import irfft_weights

__all__ = ["TritonSpectral"]


class TritonSpectral(DFTMatmul):
    """Spectral transforms and mixing on Triton kernels (CUDA, or the interpreter on CPU).

    Args:
        impl: ``"triton"`` for the kernels, or ``"torch"`` for the same graph on the PyTorch
            reference ops of :mod:`sciml.kernels.reference` (runs anywhere; the tests use it).

    Raises:
        ValueError: ``impl`` is neither.

    With ``impl="triton"`` and Triton not installed, the first transform raises an
    ``ImportError`` that names the extra: ``pip install 'sciml[kernels]'``; on a tensor off
    CUDA (kernels not interpreted), a ``ValueError`` that names the device.
    """

    def __init__(self, *, impl: str = "triton") -> None:
        if impl not in ("triton", "torch"):
            raise ValueError(f"impl must be 'triton' or 'torch', got {impl!r}")
        self.impl = impl

    def __repr__(self) -> str:
        return f"TritonSpectral(impl={self.impl!r})"

    def mix(self, block: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """The per-mode channel mixing on the complex GEMM kernel (``cbmm``, differentiable).

        Args:
            block: kept coefficients ``(K, b, i)`` complex, ``K`` the number of kept modes.
            weight: ``(K, i, o)`` complex, one ``i x o`` matrix per mode.

        Returns:
            ``block @ weight``, ``(K, b, o)`` complex.
        """
        return K.cbmm(block, weight, impl=self.impl)

    def _rdft(self, u: torch.Tensor, e: int) -> torch.Tensor:
        scale = torch.full((e,), 1.0 / u.shape[-1], dtype=u.dtype, device=u.device)
        return K.rdft(u, e, scale, impl=self.impl)

    def _irdft(self, y: torch.Tensor, m: int) -> torch.Tensor:
        w = irfft_weights(y.shape[-1], m, y.real.dtype, y.device)
        return K.irdft(y, m, w, impl=self.impl)

    def _left(self, mat: torch.Tensor, x: torch.Tensor, axis: int) -> torch.Tensor:
        """``mat (p, q)`` applied to dim ``axis`` of mode-major ``x`` as one batched GEMM."""
        lead, rest = x.shape[:axis], x.shape[axis + 1 :]
        batch = 1
        for s in lead:
            batch *= s
        xr = x.reshape(batch, x.shape[axis], -1)
        y = K.cbmm(mat.expand(batch, *mat.shape), xr, impl=self.impl)
        return y.view(*lead, mat.shape[0], *rest)
