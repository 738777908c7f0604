"""ConvNeXt block (Liu et al., "A ConvNet for the 2020s", CVPR 2022) on channels-last grids::

    y = x + DropPath( gamma * W_2 GELU( W_1 Norm(DWConv7x7(x), t) ) )

``DWConv`` is a depthwise ``7 x 7`` convolution, ``W_1: c -> 4c`` and ``W_2: 4c -> c`` pointwise
linear maps, ``gamma`` a per-channel layer scale. ``Norm`` may be time-conditioned.
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_dtype, check_grid, check_int, check_tensor
from .conditional_norm import layer_norm
from .drop_path import DropPath

__all__ = ["ConvNeXtBlock"]


class ConvNeXtBlock(nn.Module):
    """ConvNeXt block on ``(b, h, w, dim)``; returns the same shape."""

    def __init__(
        self,
        dim: int,
        *,
        conditional: bool = False,
        eps: float = 1e-5,
        layer_scale: float = 1e-6,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.dim = check_int("dim", dim)
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = layer_norm(dim, conditional=conditional, eps=eps)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale)))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, t: torch.Tensor | float | None = None) -> torch.Tensor:
        """``x``: ``(b, h, w, dim)`` channels-last; ``t``: lead time (conditioned norm only)."""
        check_tensor("ConvNeXtBlock", "x", x)
        if x.ndim != 4 or x.shape[-1] != self.dim:
            raise ValueError(
                f"ConvNeXtBlock expected channels-last x of shape (batch, h, w, {self.dim}), got "
                f"{tuple(x.shape)}"
            )
        check_dtype("ConvNeXtBlock", "x", x, self.dwconv.weight.dtype)
        check_grid("ConvNeXtBlock", "x", x, (1, 2))
        y = self.dwconv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y, t))))
        return x + self.drop_path(self.gamma * y)
