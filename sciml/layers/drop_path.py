"""Stochastic depth (Huang et al., 2016): drop a residual branch per sample while training."""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_tensor

__all__ = ["DropPath"]


class DropPath(nn.Module):
    """Multiply a residual branch ``(batch, ...)`` by ``Bernoulli(1 - p) / (1 - p)`` per sample
    in training mode; the identity in eval mode or when ``p == 0``."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"expected drop-path probability in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(batch, ...)``, one residual branch per sample.

        Returns ``x * mask / (1 - p)`` of the same shape, ``mask`` one ``Bernoulli(1 - p)`` draw
        per sample, in training mode; ``x`` itself in eval mode or when ``p == 0``.
        """
        check_tensor("DropPath", "x", x)
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"
