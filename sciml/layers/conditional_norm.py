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

from .._scalars import is_real
from ._cache import tracing, transforming
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


def _compute_dtype(like: torch.Tensor) -> torch.dtype:
    """The dtype ``t`` is computed in: ``like``'s, or autocast's where that is narrower (the
    ``Linear`` maps of t run in autocast's dtype)."""
    if like.dtype == torch.float32 and torch.is_autocast_enabled(like.device.type):
        fast = torch.get_autocast_dtype(like.device.type)
        if torch.finfo(fast).max < torch.finfo(like.dtype).max:
            return fast
    return like.dtype


def _past(dtype: torch.dtype, who: str = "the model") -> str:
    return f"past the largest {dtype} value {torch.finfo(dtype).max} (the dtype {who} runs in)"


def _check_fits(expected: str, t: object, like: torch.Tensor, who: str) -> None:
    """A ValueError ``f"{expected}, got t=..., past the largest ..."`` if a value of ``t``, as
    given, is larger than :func:`_compute_dtype` of ``like`` holds; anything that is not a real
    number or tensor is left to :func:`lead_time` to refuse.

    (why) the cast made such a value inf (float16: t = 1e5), and the norm ran to NaN without
    an error. A tensor's values are read only where the cast narrows its dtype, so a t already
    in the model's dtype (as ScOT hands its norms) costs nothing; as in ScOT's check, traced
    by ``torch.compile`` / ``torch.export`` an assert in the graph raises, and inside a
    ``torch.func`` transform, which cannot read them, nothing is checked."""
    dtype = _compute_dtype(like)
    top = torch.finfo(dtype).max
    if is_real(t):
        if t > top:
            # (why) traced, a float may be symbolic, which dynamo cannot format
            raise ValueError(
                f"{expected}, got t={'a traced float' if tracing() else t}, {_past(dtype, who)}"
            )
        return
    if not isinstance(t, torch.Tensor):
        try:  # (why) a list is read in float64, as given, before the cast
            t = torch.as_tensor(t, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            return
    if t.dtype == torch.bool or t.is_complex():
        return
    info = torch.finfo(t.dtype) if t.is_floating_point() else torch.iinfo(t.dtype)
    if info.max <= top or transforming():
        return
    past = t > top
    if tracing():
        torch._assert_async(~past.any(), f"{expected}, got a value {_past(dtype, who)}")
    elif bool(past.any()):
        raise ValueError(
            f"{expected}, got t with values {t[past].tolist()[:4]}, {_past(dtype, who)}"
        )


_NORM_T = "ConditionalLayerNorm expected a lead time t no larger than its dtype holds"


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
        _check_fits(_NORM_T, t, x, "the norm")
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
