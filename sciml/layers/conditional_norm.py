"""Layer norms that optionally depend on the lead time (Poseidon's time-conditioned norm).

    ConditionalLayerNorm(x, t) = gamma(t) * (x - mean(x)) / sqrt(var(x) + eps) + beta(t)
    gamma(t) = a_g t + b_g,   beta(t) = a_b t + b_b          (each a Linear(1, dim))

Mean and variance run over the last (channel) axis, as in ``nn.LayerNorm``. With ``t`` fixed the
layer is an ordinary affine LayerNorm, so a time-conditioned model can be read as a family of
ordinary models indexed by ``t`` (Herde et al., "Poseidon", 2024, eq. 3.3).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_dtype, check_int, check_tensor

__all__ = ["ConditionalLayerNorm", "LayerNorm", "layer_norm", "lead_time"]


def lead_time(t: torch.Tensor | float, batch: int, like: torch.Tensor) -> torch.Tensor:
    """Lead time as a ``(batch or 1, 1)`` column in ``like``'s dtype and device.

    Accepts a Python float, a 0-d tensor, or a tensor of ``batch`` (or 1) values of shape
    ``(batch,)`` / ``(batch, 1)``.
    """
    try:
        # (why) the dtype given, checked before the cast: a complex t lost its imaginary part
        # (torch only warned) and a bool one became 1.0 or 0.0, both without an error
        given = t.dtype if isinstance(t, torch.Tensor) else torch.as_tensor(t).dtype
    except (TypeError, ValueError, RuntimeError):
        given = None
    if given is not None and (given == torch.bool or given.is_complex):
        raise TypeError(f"expected a real lead time t (a float or a real tensor), got {given}")
    try:
        if given is None:
            raise TypeError
        t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(
            f"expected a lead time t as a float or a tensor, got {type(t).__name__} {t!r}"
        ) from None
    # (1, batch) or (batch, 2) would be read as batch values: only a column or a vector is
    if t.numel() not in (1, batch) or t.ndim > 2 or (t.ndim == 2 and t.shape[1] != 1):
        raise ValueError(
            f"expected a lead time t with 1 or batch={batch} values, of shape (), (batch,) or "
            f"(batch, 1), got shape {tuple(t.shape)}"
        )
    return t.reshape(-1, 1)


class ConditionalLayerNorm(nn.Module):
    """LayerNorm without its own affine map, then a scale and a shift affine in ``t``.

    Parameters ``scale`` and ``shift`` are ``Linear(1, dim)``; their biases are the scale and
    shift at ``t = 0``.
    """

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.dim, self.eps = check_int("dim", dim), eps
        self.scale = nn.Linear(1, dim)
        self.shift = nn.Linear(1, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Scale 1 and shift 0 at every ``t`` (a plain LayerNorm until trained)."""
        nn.init.zeros_(self.scale.weight)
        nn.init.ones_(self.scale.bias)
        nn.init.zeros_(self.shift.weight)
        nn.init.zeros_(self.shift.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor | float | None) -> torch.Tensor:
        """``x``: ``(batch, ..., dim)`` (channels last); ``t``: lead time, see :func:`lead_time`.

        Returns ``(batch, ..., dim)``: ``gamma(t) * LN(x) + beta(t)``.
        """
        if t is None:
            raise ValueError("ConditionalLayerNorm needs the lead time t; got t=None")
        check_dtype("ConditionalLayerNorm", "x", x, self.scale.weight.dtype)
        tt = lead_time(t, x.shape[0], x)  # (b, 1)
        shape = (tt.shape[0],) + (1,) * (x.ndim - 2) + (self.dim,)
        gamma = self.scale(tt).reshape(shape)
        beta = self.shift(tt).reshape(shape)
        return torch.addcmul(beta, F.layer_norm(x, (self.dim,), eps=self.eps), gamma)

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}"


class LayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` over the last axis whose ``forward(x, t)`` ignores ``t``, so blocks call
    conditioned and unconditioned norms alike."""

    def forward(self, x: torch.Tensor, t: torch.Tensor | float | None = None) -> torch.Tensor:
        """``x``: ``(batch, ..., dim)`` (channels last); ``t``: ignored.

        Returns ``(batch, ..., dim)``: ``weight * (x - mean(x)) / sqrt(var(x) + eps) + bias`` over
        the last axis.
        """
        check_tensor("LayerNorm", "x", x)
        if self.weight is not None:
            check_dtype("LayerNorm", "x", x, self.weight.dtype)
        return super().forward(x)


def layer_norm(dim: int, *, conditional: bool, eps: float = 1e-5) -> nn.Module:
    """A :class:`ConditionalLayerNorm` if ``conditional`` else a :class:`LayerNorm`."""
    return ConditionalLayerNorm(dim, eps) if conditional else LayerNorm(dim, eps=eps)
